"""Answers in the shapes of Converse and ConverseStream (and Nova's InvokeModel).

ConverseStream sends, in order: ``messageStart``; for a tool call
``contentBlockStart`` (tool name and id); ``contentBlockDelta`` pieces (text, or the
tool input as pieces of a JSON string); ``contentBlockStop``; ``messageStop`` with
the stop reason; ``metadata`` with usage, metrics and, for a prompt router, the trace.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._answer import Answer, Usage

__all__ = ["converse_body", "converse_stream_events", "split_text", "usage_dict"]


def split_text(text: str, words_per_piece: int = 3) -> list[str]:
    """Deterministic streaming pieces: a few words each, whitespace kept."""
    words = re.findall(r"\S+\s*|\s+", text)
    pieces = ["".join(words[i:i + words_per_piece]) for i in range(0, len(words), words_per_piece)]
    return pieces or [""]


def split_json(data: str, size: int = 12) -> list[str]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [""]


def usage_dict(usage: Usage) -> dict[str, int]:
    out = {"inputTokens": usage.input_tokens, "outputTokens": usage.output_tokens,
           "totalTokens": usage.total_tokens}
    if usage.cache_read is not None:
        out["cacheReadInputTokens"] = usage.cache_read
        out["cacheWriteInputTokens"] = usage.cache_write or 0
        if usage.cache_ttl is not None and usage.cache_write:  # the writes per ttl, as Bedrock reports them
            out["cacheDetails"] = [{"inputTokens": usage.cache_write, "ttl": usage.cache_ttl}]
    return out


def _trace(answer: Answer) -> dict[str, Any] | None:
    if answer.router_arn is None:
        return None
    return {"promptRouter": {"invokedModelId": answer.model_id}}


def content_blocks(answer: Answer) -> list[dict[str, Any]]:
    if answer.tool_call is not None:
        call = answer.tool_call
        return [{"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.input}}]
    return [{"text": answer.text or ""}]


def converse_body(answer: Answer, latency_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content_blocks(answer)}},
        "stopReason": answer.stop_reason,
        "usage": usage_dict(answer.usage),
        "metrics": {"latencyMs": latency_ms},
    }
    if (trace := _trace(answer)) is not None:
        body["trace"] = trace
    return body


def converse_stream_events(answer: Answer, latency_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """(event type, payload) pairs of one ConverseStream reply."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    if answer.tool_call is not None:
        call = answer.tool_call
        events.append(("contentBlockStart", {
            "start": {"toolUse": {"toolUseId": call.id, "name": call.name}}, "contentBlockIndex": 0}))
        for piece in split_json(json.dumps(call.input, ensure_ascii=False)):
            events.append(("contentBlockDelta", {"delta": {"toolUse": {"input": piece}},
                                                 "contentBlockIndex": 0}))
    else:
        for piece in split_text(answer.text or ""):
            events.append(("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": 0}))
    events.append(("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(("messageStop", {"stopReason": answer.stop_reason}))
    metadata: dict[str, Any] = {"usage": usage_dict(answer.usage), "metrics": {"latencyMs": latency_ms}}
    if (trace := _trace(answer)) is not None:
        metadata["trace"] = trace
    events.append(("metadata", metadata))
    return events
