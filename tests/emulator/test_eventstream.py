"""The event-stream framing, decoded by botocore's own parser."""

from __future__ import annotations

import json

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from langchain_tiered_router.emulator._eventstream import corrupt_frame, event_frame, exception_frame


def decode(data: bytes) -> list:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def test_event_and_exception_frames_round_trip() -> None:
    payload = {"delta": {"text": "héllo ✓"}, "contentBlockIndex": 0}
    first, second = decode(event_frame("contentBlockDelta", payload) + exception_frame("throttlingException", "no"))
    assert first.headers == {":event-type": "contentBlockDelta", ":content-type": "application/json",
                             ":message-type": "event"}
    assert json.loads(first.payload) == payload
    assert second.headers[":message-type"] == "exception"
    assert second.headers[":exception-type"] == "throttlingException"
    assert second.to_response_dict()["status_code"] == 400


def test_corrupt_frame_fails_the_checksum() -> None:
    with pytest.raises(ChecksumMismatch):
        decode(corrupt_frame(event_frame("messageStop", {"stopReason": "end_turn"})))
