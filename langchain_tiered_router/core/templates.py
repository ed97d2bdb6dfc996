"""Prompt templates from configs (a self-grade gate's, an LLM classifier's): only the
placeholders the code fills, by bare name.

An unknown ``{placeholder}`` would raise on every request (so every answer is judged a
failure); ``{answer.__class__}`` would reach into Python objects. Both are refused at
load; literal braces are written ``{{`` and ``}}``.
"""

from __future__ import annotations

import string
from typing import Iterable

__all__ = ["check_template"]


def check_template(template: str, allowed: Iterable[str], required: Iterable[str] = ()) -> str:
    """``template`` if every placeholder is one of ``allowed``, by bare name, and each of
    ``required`` is there; ``ValueError`` otherwise."""
    allowed = tuple(allowed)
    names = ", ".join("{" + a + "}" for a in allowed)
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        raise ValueError(f"not a valid prompt template ({exc}); write literal braces as {{{{ and }}}}") from None
    for name, spec, conversion in fields:
        if name not in allowed:
            shown = "{" + name[:40] + "}" if name else "{}"
            raise ValueError(f"unknown placeholder {shown}; the template may use {names} "
                             "(write literal braces as {{ and }})")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
    missing = [r for r in required if r not in {f[0] for f in fields}]
    if missing:
        raise ValueError(f"the template never uses {', '.join('{' + m + '}' for m in missing)}")
    return template
