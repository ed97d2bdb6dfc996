"""The lines of a record-per-line text file (JSONL), read the same way everywhere.

UTF-8, a byte-order mark allowed; lines end at ``\\n`` only (``\\r\\n`` too), not where
``str.splitlines`` would cut: JSON written with ``ensure_ascii=False`` keeps U+2028 and
U+0085 raw inside its strings, and those would cut a record in two. A byte that is not
UTF-8 is named with its line, so each reader can say which file and line to fix.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

__all__ = ["NotUtf8", "utf8_lines", "json_text"]


class NotUtf8(ValueError):
    """A byte that is not UTF-8, at ``line`` (1-based)."""

    def __init__(self, line: int, byte: int):
        super().__init__(f"not UTF-8 (byte 0x{byte:02x}); save the file as UTF-8")
        self.line, self.byte = line, byte


def utf8_lines(data: bytes) -> list[str]:
    """``data``'s lines, without their line ends (a final line end adds no empty line)."""
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8(body.count(b"\n", 0, exc.start) + 1, body[exc.start]) from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and not lines[-1] else lines


def json_text(value: Any, **kwargs: Any) -> str:
    """JSON for a UTF-8 file: non-ASCII text kept as it is, unless the value holds a lone
    surrogate (``"\\ud800"`` is valid JSON a reader hands over, and no UTF-8): then every
    non-ASCII character is escaped, which reads back exactly. U+2028, U+2029 and U+0085
    are escaped always: a reader that splits lines with ``str.splitlines`` (another
    service's) would cut the record there. They occur only inside strings, where an
    escape means the same character."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, **kwargs)
    return text.translate(_LINE_BREAKS_ESCAPED)


_LINE_BREAKS_ESCAPED = {0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\u0085"}
