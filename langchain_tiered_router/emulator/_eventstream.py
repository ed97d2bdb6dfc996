"""AWS event-stream framing (``application/vnd.amazon.eventstream``), encode side only.

One message is::

    [total length u32][headers length u32][prelude CRC32 u32][headers][payload][message CRC32 u32]

big-endian, CRC32 as ``binascii.crc32``; the message CRC covers every byte before it.
Headers here are all strings (type 7): ``[name len u8][name][7][value len u16][value]``.
botocore's ``botocore.eventstream`` decodes exactly this, which the tests rely on.
"""

from __future__ import annotations

import json
import struct
from binascii import crc32
from typing import Any, Mapping

__all__ = ["encode_message", "event_frame", "exception_frame", "corrupt_frame", "with_invalid_utf8",
           "reframe_with_invalid_utf8"]

_STRING_HEADER = 7


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Frame one event-stream message."""
    raw_headers = _encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", crc32(prelude) & 0xFFFFFFFF)
    body = head + raw_headers + payload
    return body + struct.pack(">I", crc32(body) & 0xFFFFFFFF)


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_frame(event_type: str, payload: Any) -> bytes:
    """An ``event`` message whose JSON payload is one member of the stream union."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, _json(payload))


def exception_frame(member: str, message: str, **fields: Any) -> bytes:
    """An ``exception`` message, the way Bedrock reports an error after the stream opened."""
    headers = {
        ":exception-type": member,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, _json({"message": message, **fields}))


def corrupt_frame(frame: bytes) -> bytes:
    """The same frame with a wrong message CRC: what a garbled stream looks like."""
    return frame[:-4] + struct.pack(">I", (struct.unpack(">I", frame[-4:])[0] ^ 0xFFFFFFFF))


INVALID_UTF8 = b"\xff\xfe"


def with_invalid_utf8(data: bytes) -> bytes:
    """``data`` with bytes that are not UTF-8 inside its first JSON ``"text"`` string
    (or at its end): a reply whose framing and checksums are right but whose text is not text."""
    at = data.find(b'"text":')
    at = data.find(b'"', at + 7) + 1 if at >= 0 else len(data)
    return data[:at] + INVALID_UTF8 + data[at:]


def reframe_with_invalid_utf8(frame: bytes) -> bytes:
    """The same event-stream message, its payload made invalid UTF-8, CRCs recomputed."""
    _, header_length = struct.unpack(">II", frame[:8])
    headers, payload = frame[12:12 + header_length], frame[12 + header_length:-4]
    payload = with_invalid_utf8(payload)
    prelude = struct.pack(">II", 12 + header_length + len(payload) + 4, header_length)
    body = prelude + struct.pack(">I", crc32(prelude) & 0xFFFFFFFF) + headers + payload
    return body + struct.pack(">I", crc32(body) & 0xFFFFFFFF)
