"""InvokeModel bodies of ``anthropic.*`` models: the Anthropic Messages API on Bedrock.

Request: ``anthropic_version``, ``max_tokens``, ``messages`` (string or block content),
optional ``system``, ``tools``, ``tool_choice``, ``stop_sequences``; ``cache_control``
on a block marks a cache point after it. Response: a ``message`` with content blocks,
``stop_reason`` and ``usage``. Streaming: Anthropic's events (``message_start`` ...
``message_stop``) as JSON chunks.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ._answer import Answer
from ._conversation import (
    Conversation, ConversationBuilder, ToolCall, ToolChoice, ToolResult, ToolSpec, Turn,
)
from ._converse_shapes import split_json, split_text
from ._invoke_base import invocation_metrics, require
from ._routing import base_model_id
from ._wire_errors import WireError

__all__ = ["AnthropicMessages"]


def _model_name(model_id: str) -> str:
    """``anthropic.claude-3-haiku-20240307-v1:0`` -> ``claude-3-haiku-20240307``."""
    name = base_model_id(model_id).removeprefix("anthropic.")
    return re.sub(r"-v\d+(:\d+)?$", "", name)


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def _blocks(builder: ConversationBuilder, turn: Turn, content: Any) -> None:
    if isinstance(content, str):
        builder.text(turn, content)
        return
    if not isinstance(content, list):
        raise WireError.validation("messages: content must be a string or a list of blocks")
    for block in content:
        if not isinstance(block, dict):
            raise WireError.validation("messages: each content block must be an object")
        kind = block.get("type")
        if kind == "text":
            builder.text(turn, str(block.get("text", "")))
        elif kind == "tool_use":
            builder.tool_call(turn, ToolCall(str(block.get("id", "")), str(block.get("name", "")),
                                             dict(block.get("input") or {})))
        elif kind == "tool_result":
            builder.tool_result(turn, ToolResult(str(block.get("tool_use_id", "")),
                                                 _result_text(block.get("content")),
                                                 bool(block.get("is_error"))))
        if "cache_control" in block:
            builder.cache_point()


class AnthropicMessages:
    name = "anthropic"

    def parse(self, body: dict[str, Any]) -> Conversation:
        require(body, "anthropic_version")
        max_tokens = require(body, "max_tokens")
        messages = require(body, "messages")
        builder = ConversationBuilder()
        for tool in body.get("tools") or []:
            builder.tool(ToolSpec(str(tool.get("name", "")), str(tool.get("description", "")),
                                  dict(tool.get("input_schema") or {})))
            if "cache_control" in tool:
                builder.cache_point()
        system = body.get("system") or ""
        for block in [{"type": "text", "text": system}] if isinstance(system, str) else system:
            if isinstance(block, dict) and block.get("text"):
                builder.count(str(block["text"]))
                builder.conversation.system += str(block["text"])
                if "cache_control" in block:
                    builder.cache_point()
        if not isinstance(messages, list):
            raise WireError.validation("messages: must be a list")
        for message in messages:
            if not isinstance(message, dict):
                raise WireError.validation("messages: each message must be an object")
            _blocks(builder, builder.turn(str(message.get("role"))), message.get("content"))
        conv = builder.build()
        if not conv.turns:
            raise WireError.validation("messages: at least one message is required")
        conv.max_tokens = int(max_tokens)
        conv.stop_sequences = [str(s) for s in body.get("stop_sequences") or [] if s]
        choice = body.get("tool_choice") or {}
        if choice.get("type") in ("auto", "any", "tool"):
            conv.tool_choice = ToolChoice(choice["type"], choice.get("name"))
        return conv

    def _content(self, answer: Answer) -> list[dict[str, Any]]:
        if answer.tool_call is not None:
            call = answer.tool_call
            return [{"type": "tool_use", "id": call.id.replace("tooluse_", "toolu_bdrk_"),
                     "name": call.name, "input": call.input}]
        return [{"type": "text", "text": answer.text or ""}]

    def _usage(self, answer: Answer) -> dict[str, int]:
        usage = {"input_tokens": answer.usage.input_tokens, "output_tokens": answer.usage.output_tokens}
        if answer.usage.cache_read is not None:
            usage["cache_read_input_tokens"] = answer.usage.cache_read
            usage["cache_creation_input_tokens"] = answer.usage.cache_write or 0
        return usage

    def render(self, answer: Answer, latency_ms: int) -> dict[str, Any]:
        return {
            "id": "msg_bdrk_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
            "model": _model_name(answer.model_id), "content": self._content(answer),
            "stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence,
            "usage": self._usage(answer),
        }

    def stream(self, answer: Answer, latency_ms: int) -> list[dict[str, Any]]:
        message = self.render(answer, latency_ms)
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {**self._usage(answer), "output_tokens": 1}}
        chunks: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
        block = message["content"][0]
        if block["type"] == "tool_use":
            chunks.append({"type": "content_block_start", "index": 0,
                           "content_block": {**block, "input": {}}})
            for piece in split_json(json.dumps(block["input"], ensure_ascii=False)):
                chunks.append({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "input_json_delta", "partial_json": piece}})
        else:
            chunks.append({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "text", "text": ""}})
            for piece in split_text(block["text"]):
                chunks.append({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": piece}})
        chunks.append({"type": "content_block_stop", "index": 0})
        chunks.append({"type": "message_delta",
                       "delta": {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence},
                       "usage": {"output_tokens": answer.usage.output_tokens}})
        chunks.append({"type": "message_stop",
                       "amazon-bedrock-invocationMetrics": invocation_metrics(answer, latency_ms)})
        return chunks
