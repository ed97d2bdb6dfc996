"""The records file a batch run reads: JSON lines, one request each.

Each line is an object with ``prompt`` (a string) or ``messages`` (a list of
``{"role": "user" | "assistant", "content": "..."}``, user first), and optionally
``id`` (default: the line number; ids must be unique) and ``system``. Other keys
are ignored, so a recorded-outcomes workload (``tiered-router demo``) is a records
file too. The file is UTF-8 (a byte-order mark is allowed). A bad line is a
``BatchInputError`` naming the file and the line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..core.text_lines import NotUtf8, utf8_lines
from .errors import BatchInputError
from .state import RecordState

__all__ = ["read_records", "file_digest", "record_id_for"]


def record_id_for(index: int) -> str:
    """Bedrock's recordId for the ``index``-th record: 11 alphanumeric characters."""
    return f"R{index:010d}"


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _messages(raw: dict[str, Any], where: dict[str, Any]) -> list[list[str]]:
    if "messages" in raw and "prompt" in raw:
        raise BatchInputError("a record has 'prompt' or 'messages', not both", **where)
    if "messages" in raw:
        messages = raw["messages"]
        if not isinstance(messages, list) or not messages:
            raise BatchInputError("'messages' must be a non-empty list", **where)
        out = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant") \
                    or not isinstance(message.get("content"), str):
                raise BatchInputError(f"messages[{i}] must be {{'role': 'user'|'assistant', 'content': str}}",
                                      **where)
            if not message["content"].strip():  # Bedrock refuses a blank text block, as a blank prompt is refused here
                raise BatchInputError(f"messages[{i}].content is blank", **where)
            out.append([message["role"], message["content"]])
        if out[0][0] != "user":
            raise BatchInputError("the first message must be the user's", **where)
        return out
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BatchInputError("a record needs 'prompt' (a non-empty string) or 'messages'", **where)
    return [["user", prompt]]


def _text_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BatchInputError(f"cannot read the records file: {exc.strerror or exc}", path=str(path)) from None
    try:
        return utf8_lines(data)
    except NotUtf8 as exc:
        raise BatchInputError(str(exc), path=str(path), line=exc.line) from None


def read_records(path: str | Path) -> list[RecordState]:
    """Every record of a records file, in file order, with its Bedrock recordId."""
    path = Path(path)
    records: list[RecordState] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            continue
        where = {"path": str(path), "line": number}
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise BatchInputError(f"not JSON ({exc.msg})", **where) from None
        if not isinstance(raw, dict):
            raise BatchInputError("a record must be a JSON object", **where)
        given = raw.get("id")
        if "id" in raw and (isinstance(given, bool) or not isinstance(given, (str, int)) or given == ""):
            raise BatchInputError("'id' must be a non-empty string or an integer (or left out: the line number)",
                                  **where)
        record_key = str(given) if "id" in raw else str(number)
        if record_key in seen:
            taken = seen[record_key]
            by = "as its id" if taken > 0 else "as its line number (it has no id)"
            raise BatchInputError(f"id {record_key!r} already used on line {abs(taken)} {by}", **where)
        seen[record_key] = number if "id" in raw else -number
        system = raw.get("system")
        if system is not None and not isinstance(system, str):
            raise BatchInputError("'system' must be a string", **where)
        index = len(records) + 1
        records.append(RecordState(record_id=record_id_for(index), id=record_key, index=index,
                                   messages=_messages(raw, where), system=system))
    if not records:
        raise BatchInputError("the records file holds no records", path=str(path))
    return records
