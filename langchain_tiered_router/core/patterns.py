"""Regular expressions from configs, run by RE2: time linear in the text, whatever the pattern.

Python's ``re`` backtracks: ``^(a+)+$`` on 27 ``a`` and a ``b`` takes seconds inside C,
holding the GIL, so no thread and no timeout can stop it. Every pattern a config or a
client supplies (regex gates, JSON-schema ``pattern`` and ``patternProperties``) is
compiled here by RE2 (``google-re2``), which has no backtracking; the few features it
lacks (backreferences, look-around, ``\\Z``) are a ``ConfigError`` at load.

A regex gate's pattern is written in Python's syntax, so ``python_pattern`` first gives
it the meaning Python's ``re`` gives it where RE2's differs: ``\\d``, ``\\w`` and ``\\s``
Unicode-wide (RE2's are ASCII: ``^\\w+$`` failed ``café``), ``$`` before a final newline
too (an answer ending in ``\\n`` failed ``\\d+$``), ``{,n}`` as ``{0,n}`` (RE2 reads it as
text). JSON-schema patterns are ECMA-262's, whose classes are ASCII as RE2's: as written.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

from .errors import ConfigError

__all__ = ["compile_pattern", "python_pattern", "MAX_PATTERN_CHARS"]

MAX_PATTERN_CHARS = 10_000


def _options(ignore_case: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is our ConfigError, not a line on stderr
    options.case_sensitive = not ignore_case
    return options


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str, ignore_case: bool = False, *, path: str = "pattern", python: bool = False) -> Any:
    """The RE2 program for ``pattern``; a ``ConfigError`` naming ``path`` when RE2 cannot run it.
    ``python``: the pattern is Python's (``python_pattern``); limits and errors speak of it
    as written, not of its rewriting."""
    if not isinstance(pattern, str):
        raise ConfigError(f"a pattern must be a string, got {type(pattern).__name__}", path=path)
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ConfigError(f"pattern of {len(pattern)} characters; at most {MAX_PATTERN_CHARS}", path=path)
    try:
        return re2.compile(python_pattern(pattern) if python else pattern, _options(ignore_case))
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ConfigError(f"pattern {pattern[:80]!r} cannot run on RE2, the linear-time engine used for every "
                          f"pattern ({detail}); backreferences, look-around and \\Z are not supported "
                          "(use \\z for the end of the text)", path=path) from None


_WORD, _SPACE = r"\p{L}\p{N}_", r"\s\v\x{1C}-\x{1F}\x{85}\p{Z}"  # Python's \w (alnum or _), \s (str.isspace)
# escape -> (outside a class, inside one); None inside: RE2's own (a negated class cannot nest)
_CLASSES = {"d": (r"\p{Nd}", r"\p{Nd}"), "D": (r"\P{Nd}", r"\P{Nd}"), "w": (f"[{_WORD}]", _WORD),
            "W": (f"[^{_WORD}]", None), "s": (f"[{_SPACE}]", _SPACE), "S": (f"[^{_SPACE}]", None)}
_MULTILINE = re.compile(r"\(\?[a-zA-Z]*m")  # an inline (?m): ``$`` is each line's end in both engines
_NO_LOWER = re.compile(r"\{,(\d+)\}")


def python_pattern(pattern: str) -> str:
    """``pattern`` (Python's syntax) rewritten so that RE2 matches what Python's ``re`` matches."""
    out: list[str] = []
    multiline = _MULTILINE.search(pattern) is not None
    i, n, in_class, class_opened = 0, len(pattern), False, False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            escape = pattern[i + 1]
            wide = _CLASSES.get(escape)
            out.append(pattern[i:i + 2] if wide is None or wide[in_class] is None else wide[in_class])
            i, class_opened = i + 2, False
            continue
        if in_class:
            in_class = not (c == "]" and not class_opened)  # a "]" first in a class is itself
            class_opened = False
        elif c == "[":
            in_class = class_opened = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
        elif c == "$" and not multiline:
            out.append(r"(?:\n?\z)")  # Python's ``$``: the end, or before a newline that ends the text
            i += 1
            continue
        elif c == "{":
            bound = _NO_LOWER.match(pattern, i)
            if bound:
                out.append(f"{{0,{bound.group(1)}}}")
                i = bound.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)
