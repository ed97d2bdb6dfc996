"""The chunks a routed stream sends: the tier's own, then one carrying the routing.

Retries, escalation before the first chunk, pricing and the record are the engine's
(``Router.stream``); this module only shapes what LangChain receives. Routing metadata
goes on one final chunk: string values in ``response_metadata`` are concatenated when
chunks merge.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from ..core.telemetry.record import routing_dict
from ..core.types import RoutingResult, TierAnswer
from ._convert import message_chunk
from .backend import as_ai_message

__all__ = ["served_metadata", "final_chunk", "as_chunk"]


def served_metadata(result: RoutingResult) -> dict[str, Any]:
    return {"model_name": result.model_id, "model_id": result.model_id, "routing": routing_dict(result)}


def as_chunk(chunk: Any) -> ChatGenerationChunk:
    """A chunk of the served answer; an answer that came whole is one chunk."""
    return message_chunk(as_ai_message(chunk)) if isinstance(chunk, TierAnswer) else chunk


def final_chunk(result: RoutingResult, like: ChatGenerationChunk | None) -> ChatGenerationChunk:
    """The one chunk carrying routing metadata, its content typed like the others'."""
    content: Any = [] if like is not None and isinstance(like.message.content, list) else ""
    return ChatGenerationChunk(message=AIMessageChunk(content=content, response_metadata=served_metadata(result),
                                                      chunk_position="last"))
