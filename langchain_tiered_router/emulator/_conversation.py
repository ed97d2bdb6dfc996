"""One neutral view of a request, whatever wire format it came in.

Every operation (Converse, and InvokeModel for each model family) is parsed into a
``Conversation``; the answer is chosen from it and rendered back in the caller's
format. This module also parses the Converse request shape, which Nova's InvokeModel
body shares.

Token counts are estimates, not a tokenizer: ``ceil(chars / 4)``, at least 1. They
are deterministic, so tests can assert exact numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_tiered_router.core.pricing import estimate_tokens  # the one estimate, re-exported

from ._wire_errors import WireError

__all__ = [
    "Conversation", "ConversationBuilder", "ToolCall", "ToolChoice", "ToolResult", "ToolSpec",
    "Turn", "estimate_tokens", "parse_converse_request",
]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class ToolChoice:
    kind: Literal["auto", "any", "tool"]
    name: str | None = None


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    text: str
    is_error: bool = False


@dataclass
class Turn:
    role: Literal["user", "assistant"]
    texts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


@dataclass
class Conversation:
    """A request reduced to what the answer depends on."""

    turns: list[Turn]
    system: str = ""
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    stop_sequences: list[str] = field(default_factory=list)
    output_schema: dict[str, Any] | None = None
    input_chars: int = 0
    cached_prefix: str | None = None  # None: the request had no cache point
    cache_ttl: str | None = None  # the last cache point's ``ttl`` ("5m", "1h"), when it gave one

    @property
    def last_turn(self) -> Turn | None:
        return self.turns[-1] if self.turns else None

    @property
    def last_user_text(self) -> str:
        """Text of the last message if it is the user's (tool results excluded)."""
        last = self.last_turn
        return last.text if last is not None and last.role == "user" else ""

    @property
    def pending_tool_results(self) -> list[ToolResult]:
        last = self.last_turn
        return list(last.tool_results) if last is not None and last.role == "user" else []

    def tool_name_for(self, tool_use_id: str) -> str | None:
        for turn in self.turns:
            for call in turn.tool_calls:
                if call.id == tool_use_id:
                    return call.name
        return None


class ConversationBuilder:
    """Collects turns and prompt text in order, with cache points, into a Conversation."""

    def __init__(self) -> None:
        self.conversation = Conversation(turns=[])
        self._pieces: list[str] = []
        self._cache_at: int | None = None

    def count(self, text: str) -> None:
        self._pieces.append(text)

    def cache_point(self, point: Any = None) -> None:
        self._cache_at = len(self._pieces)
        ttl = point.get("ttl") if isinstance(point, dict) else None
        if ttl is not None:
            if ttl not in ("5m", "1h"):
                raise WireError.validation(f"Invalid cachePoint ttl {ttl!r}: use 5m or 1h.")
            self.conversation.cache_ttl = ttl

    def turn(self, role: str) -> Turn:
        if role not in ("user", "assistant"):
            raise WireError.validation(f"Unsupported message role {role!r}: use user or assistant.")
        turn = Turn(role=role)  # type: ignore[arg-type]
        self.conversation.turns.append(turn)
        return turn

    def text(self, turn: Turn, text: str) -> None:
        turn.texts.append(text)
        self.count(text)

    def tool_call(self, turn: Turn, call: ToolCall) -> None:
        turn.tool_calls.append(call)
        self.count(call.name + json.dumps(call.input, ensure_ascii=False))

    def tool_result(self, turn: Turn, result: ToolResult) -> None:
        turn.tool_results.append(result)
        self.count(result.text)

    def tool(self, spec: ToolSpec) -> None:
        self.conversation.tools.append(spec)
        self.count(json.dumps([spec.name, spec.description, spec.schema], ensure_ascii=False))

    def build(self) -> Conversation:
        conv = self.conversation
        conv.input_chars = sum(len(piece) for piece in self._pieces)
        if self._cache_at is not None:
            conv.cached_prefix = "".join(self._pieces[: self._cache_at])
        return conv


def check_turn_order(conv: Conversation) -> None:
    """Bedrock's rules on message order, with its wording."""
    if not conv.turns or conv.turns[0].role != "user":
        raise WireError.validation(
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message.")
    for before, after in zip(conv.turns, conv.turns[1:]):
        if before.role == after.role:
            raise WireError.validation(
                "A conversation must alternate between user and assistant roles. Make sure "
                "the conversation alternates between user and assistant roles and try again.")


def _tool_result_text(content: Any) -> str:
    parts = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if "text" in block:
            parts.append(str(block["text"]))
        elif "json" in block:
            parts.append(json.dumps(block["json"], ensure_ascii=False))
    return "\n".join(parts)


def _converse_blocks(builder: ConversationBuilder, turn: Turn, content: Any, where: str) -> None:
    if not isinstance(content, list) or not content:
        raise WireError.validation(
            f"The content field in the Message object at {where} is empty. "
            "Add a ContentBlock object to the content field and try again.")
    for block in content:
        if not isinstance(block, dict):
            raise WireError.validation(f"Malformed content block in {where}.")
        if "text" in block:
            builder.text(turn, str(block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            builder.tool_call(turn, ToolCall(str(use.get("toolUseId", "")), str(use.get("name", "")),
                                             dict(use.get("input") or {})))
        elif "toolResult" in block:
            res = block["toolResult"]
            builder.tool_result(turn, ToolResult(str(res.get("toolUseId", "")),
                                                 _tool_result_text(res.get("content")),
                                                 res.get("status") == "error"))
        elif "cachePoint" in block:
            builder.cache_point(block["cachePoint"])
        elif "guardContent" in block:
            builder.text(turn, str(block["guardContent"].get("text", {}).get("text", "")))
        # image, document, video, audio, reasoningContent: accepted, not counted.


def parse_tool_config(builder: ConversationBuilder, tool_config: Any) -> None:
    """The Converse ``toolConfig``: tool specs, cache points and ``toolChoice``."""
    if not isinstance(tool_config, dict):
        return
    for tool in tool_config.get("tools") or []:
        if "cachePoint" in tool:
            builder.cache_point(tool["cachePoint"])
        elif "toolSpec" in tool:
            spec = tool["toolSpec"]
            schema = (spec.get("inputSchema") or {}).get("json") or {}
            builder.tool(ToolSpec(str(spec.get("name", "")), str(spec.get("description", "")),
                                  schema if isinstance(schema, dict) else {}))
    choice = tool_config.get("toolChoice") or {}
    if "tool" in choice:
        builder.conversation.tool_choice = ToolChoice("tool", str(choice["tool"].get("name", "")))
    elif "any" in choice:
        builder.conversation.tool_choice = ToolChoice("any")
    elif "auto" in choice:
        builder.conversation.tool_choice = ToolChoice("auto")


def _output_schema(output_config: Any) -> dict[str, Any] | None:
    try:
        text_format = output_config["textFormat"]
        schema = text_format["structure"]["jsonSchema"]["schema"]
        return json.loads(schema) if isinstance(schema, str) else dict(schema)
    except (KeyError, TypeError, ValueError):
        return None


def parse_converse_request(body: dict[str, Any], *, max_tokens_keys: tuple[str, ...] = ("maxTokens",)) -> Conversation:
    """A Converse (or Nova InvokeModel) body as a Conversation, checked as Bedrock checks it."""
    builder = ConversationBuilder()
    parse_tool_config(builder, body.get("toolConfig"))
    for block in body.get("system") or []:
        if isinstance(block, dict) and "text" in block:
            builder.count(str(block["text"]))
            builder.conversation.system += ("\n" if builder.conversation.system else "") + str(block["text"])
        elif isinstance(block, dict) and "cachePoint" in block:
            builder.cache_point(block["cachePoint"])
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise WireError.validation("The messages field is required and must be a list.")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise WireError.validation(f"Malformed message at messages.{index}.")
        turn = builder.turn(str(message.get("role")))
        _converse_blocks(builder, turn, message.get("content"), f"messages.{index}")
    conv = builder.build()
    check_turn_order(conv)
    if not conv.tools and any(t.tool_calls or t.tool_results for t in conv.turns):
        raise WireError.validation(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.")
    inference = body.get("inferenceConfig") or {}
    for key in max_tokens_keys:
        if inference.get(key) is not None:
            conv.max_tokens = int(inference[key])
    if conv.max_tokens is not None and conv.max_tokens < 1:
        raise WireError.validation("The maximum tokens you requested must be at least 1.")
    conv.stop_sequences = [str(s) for s in inference.get("stopSequences") or [] if s]
    conv.output_schema = _output_schema(body.get("outputConfig"))
    return conv
