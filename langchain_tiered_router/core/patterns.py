"""Regular expressions from configs, run by RE2: time linear in the text, whatever the pattern.

Python's ``re`` backtracks: ``^(a+)+$`` on 27 ``a`` and a ``b`` takes seconds inside C,
holding the GIL, so no thread and no timeout can stop it. Every pattern a config or a
client supplies (regex gates, JSON-schema ``pattern`` and ``patternProperties``) is
compiled here by RE2 (``google-re2``), which has no backtracking; the few features it
lacks (backreferences, look-around, ``\\Z``) are a ``ConfigError`` at load.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

from .errors import ConfigError

__all__ = ["compile_pattern", "MAX_PATTERN_CHARS"]

MAX_PATTERN_CHARS = 10_000


def _options(ignore_case: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is our ConfigError, not a line on stderr
    options.case_sensitive = not ignore_case
    return options


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str, ignore_case: bool = False, *, path: str = "pattern") -> Any:
    """The RE2 program for ``pattern``; a ``ConfigError`` naming ``path`` when RE2 cannot run it."""
    if not isinstance(pattern, str):
        raise ConfigError(f"a pattern must be a string, got {type(pattern).__name__}", path=path)
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ConfigError(f"pattern of {len(pattern)} characters; at most {MAX_PATTERN_CHARS}", path=path)
    try:
        return re2.compile(pattern, _options(ignore_case))
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ConfigError(f"pattern {pattern[:80]!r} cannot run on RE2, the linear-time engine used for every "
                          f"pattern ({detail}); backreferences, look-around and \\Z are not supported "
                          "(use \\z for the end of the text)", path=path) from None
