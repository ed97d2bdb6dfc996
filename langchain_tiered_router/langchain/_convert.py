"""LangChain messages to and from the core's value types.

Kept apart from the backend so the chat model and the output parsers read replies
the same way: text, tool calls, usage with cache tokens split out, served model id.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk

from ..core import conversation
from ..core.pricing import Usage
from ..core.types import TierAnswer

__all__ = ["request_text", "usage_of", "served_model_id", "to_answer", "merge_chunks", "message_chunk",
           "strip_model_name"]


def _text(message: BaseMessage) -> str:
    content = message.content
    return content if isinstance(content, str) else conversation.blocks_text(content)


def _role(message: BaseMessage) -> str:
    if isinstance(message, HumanMessage):
        return conversation.USER
    if isinstance(message, SystemMessage):
        return conversation.SYSTEM
    if isinstance(message, ToolMessage):
        return conversation.TOOL
    return conversation.ASSISTANT


def request_text(messages: Sequence[BaseMessage]) -> str:
    """What classifiers and gates read, decided by the core (``core.conversation``)."""
    return conversation.request_text((_role(m), _text(m)) for m in messages)


def usage_of(message: AIMessage) -> Usage:
    """Token counts in the core's convention: cache reads/writes are not input tokens.

    langchain-aws folds cache tokens into ``input_tokens``; they are priced at
    other rates, so they are taken out again here.
    """
    return usage_from_metadata(message.usage_metadata)


def usage_from_metadata(meta: Mapping[str, Any] | None) -> Usage:
    """``usage_of`` for a LangChain ``UsageMetadata`` dict."""
    if not meta:
        return Usage()
    details = meta.get("input_token_details") or {}
    read = int(details.get("cache_read") or 0)
    # with a cache point's ttl, langchain-aws reports the writes per ttl and
    # ``cache_creation`` as 0
    hour = int(details.get("ephemeral_1h_input_tokens") or 0)
    write = max(int(details.get("cache_creation") or 0), int(details.get("ephemeral_5m_input_tokens") or 0) + hour)
    return Usage(max(0, int(meta.get("input_tokens", 0)) - read - write), int(meta.get("output_tokens", 0)),
                 read, write, hour)


def served_model_id(message: AIMessage, default: str) -> str:
    """The model that really answered: a prompt router names it in its trace."""
    trace = (message.response_metadata or {}).get("trace") or {}
    invoked = (trace.get("promptRouter") or {}).get("invokedModelId") if isinstance(trace, dict) else None
    return str(invoked) if invoked else default


def _tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    """The message's tool calls; one whose arguments were not JSON (``invalid_tool_calls``)
    has ``args`` ``None``, so the tool-call check fails it rather than miss it."""
    invalid = getattr(message, "invalid_tool_calls", None)
    if not message.tool_calls and not invalid:
        return []
    calls = [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls]
    calls += [{"name": c.get("name"), "args": None, "id": c.get("id")} for c in invalid or []]
    return calls


def to_answer(message: AIMessage, model_id: str, raw: Any = None) -> TierAnswer:
    """``raw`` is what the call returned when more than the message (its ``ChatGeneration``)."""
    return TierAnswer(
        text=_text(message),
        usage=usage_of(message),
        model_id=served_model_id(message, model_id),
        tool_calls=_tool_calls(message),
        stop_reason=(message.response_metadata or {}).get("stopReason"),
        raw=message if raw is None else raw,
    )


def merge_chunks(chunks: Sequence[ChatGenerationChunk]) -> AIMessage:
    """One message from a tier's streamed chunks (tool-call chunks parsed into calls)."""
    if not chunks:
        return AIMessage(content="")
    merged = chunks[0].message
    for chunk in chunks[1:]:
        merged = merged + chunk.message
    if isinstance(merged, AIMessageChunk):
        return AIMessage(content=merged.content, tool_calls=merged.tool_calls,
                         invalid_tool_calls=merged.invalid_tool_calls, usage_metadata=merged.usage_metadata,
                         response_metadata=merged.response_metadata, additional_kwargs=merged.additional_kwargs)
    return merged  # type: ignore[return-value]


def strip_model_name(chunk: ChatGenerationChunk) -> ChatGenerationChunk:
    """Drop per-tier names from a chunk: string metadata is concatenated on merge, so
    the served model's name goes on one final chunk only."""
    meta: dict[str, Any] = chunk.message.response_metadata
    if "model_name" in meta:
        chunk.message.response_metadata = {k: v for k, v in meta.items() if k != "model_name"}
    return chunk


def message_chunk(message: AIMessage) -> ChatGenerationChunk:
    """A whole message as one chunk, for a tier that cannot stream."""
    return ChatGenerationChunk(message=AIMessageChunk(
        content=message.content, usage_metadata=message.usage_metadata, additional_kwargs=message.additional_kwargs,
        response_metadata={k: v for k, v in message.response_metadata.items() if k != "model_name"},
        tool_call_chunks=[{"name": c["name"], "args": json.dumps(c["args"]), "id": c.get("id"), "index": i}
                          for i, c in enumerate(message.tool_calls)]))
