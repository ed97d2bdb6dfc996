"""The lines of the files ``collect`` reads (prompts, an output to resume), read as every
JSONL file of the package is (``core.text_lines``); a bad byte is ``error`` naming its line."""

from __future__ import annotations

from pathlib import Path

from ...core.text_lines import NotUtf8
from ...core.text_lines import utf8_lines as _lines
from .errors import CollectError

__all__ = ["utf8_lines"]


def utf8_lines(data: bytes, path: str | Path, error: type[CollectError]) -> list[str]:
    """``data``'s lines, or ``error("FILE:LINE: not UTF-8 (byte 0x..); ...")``."""
    try:
        return _lines(data)
    except NotUtf8 as exc:
        raise error(f"{path}:{exc.line}: {exc}") from None
