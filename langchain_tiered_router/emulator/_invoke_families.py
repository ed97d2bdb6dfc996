"""InvokeModel bodies of Nova, Mistral, Llama and Titan models, and the family lookup.

- ``amazon.nova*``: Converse-like ``messages``/``system``/``inferenceConfig`` in,
  ``output.message.content`` + ``stopReason`` + ``usage`` out; streams Converse-like
  events (``contentBlockDelta`` ...) as chunks.
- Mistral Large 2 (24.07), Pixtral Large: ``messages`` in, ``choices: [{message,
  stop_reason}]`` out (a chat completion).
- ``mistral.*``: ``prompt`` in, ``outputs: [{text, stop_reason}]`` out.
- ``meta.llama4*``: as ``meta.*``, with Llama 4's template.
- ``meta.*``: ``prompt`` in, ``generation``, ``prompt_token_count``,
  ``generation_token_count``, ``stop_reason`` out.
- ``amazon.titan-text*``: ``inputText`` in, ``results: [{outputText, ...}]`` out.

The prompt families send one templated string; the user's own words are taken from
the last ``[INST]`` / Llama 3 user header / ``Human:`` / ``User:`` turn for rules and replay.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._answer import Answer
from ._conversation import Conversation, ConversationBuilder, parse_converse_request
from ._converse_shapes import content_blocks, converse_stream_events, split_text
from ._invoke_anthropic import AnthropicMessages
from ._invoke_base import InvokeFamily, invocation_metrics, require
from ._routing import family_of
from ._wire_errors import WireError

__all__ = ["family_for"]

_USER_TURN_PATTERNS = (
    re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\s*(.*?)\s*<\|eot_id\|>", re.S),
    re.compile(r"<\|header_start\|>user<\|header_end\|>\s*(.*?)\s*<\|eot\|>", re.S),  # Llama 4
    re.compile(r"\[INST\]\s*(?:<<SYS>>.*?<</SYS>>\s*)?(.*?)\s*\[/INST\]", re.S),
    re.compile(r"Human:\s*(.*?)\s*(?=\n\nAssistant:|$)", re.S),
    re.compile(r"User:\s*(.*?)\s*(?=\nBot:|$)", re.S),  # Titan's conversation format
)


def user_words(prompt: str) -> str:
    """The last user turn inside a chat template, or the whole prompt stripped."""
    for pattern in _USER_TURN_PATTERNS:
        found = pattern.findall(prompt)
        if found:
            return found[-1].strip()
    return prompt.strip()


def _prompt_conversation(prompt: Any, max_tokens: Any, stop: Any) -> Conversation:
    if not isinstance(prompt, str):
        raise WireError.validation("Malformed input request: prompt must be a string.")
    builder = ConversationBuilder()
    builder.turn("user").texts.append(user_words(prompt))
    builder.count(prompt)  # the whole template counts towards input tokens
    conv = builder.build()
    conv.max_tokens = int(max_tokens) if max_tokens else None
    conv.stop_sequences = [str(s) for s in stop or [] if s]
    return conv


def _answer_text(answer: Answer) -> str:
    if answer.tool_call is not None:  # a scripted tool call, for a model without tool blocks
        return json.dumps({"name": answer.tool_call.name, "parameters": answer.tool_call.input})
    return answer.text or ""


class Nova:
    name = "nova"

    def parse(self, body: dict[str, Any]) -> Conversation:
        return parse_converse_request(body, max_tokens_keys=("max_new_tokens", "maxTokens"))

    def _usage(self, answer: Answer) -> dict[str, int]:
        return {"inputTokens": answer.usage.input_tokens, "outputTokens": answer.usage.output_tokens,
                "totalTokens": answer.usage.total_tokens,
                "cacheReadInputTokenCount": answer.usage.cache_read or 0,
                "cacheWriteInputTokenCount": answer.usage.cache_write or 0}

    def render(self, answer: Answer, latency_ms: int) -> dict[str, Any]:
        return {"output": {"message": {"role": "assistant", "content": content_blocks(answer)}},
                "stopReason": answer.stop_reason, "usage": self._usage(answer)}

    def stream(self, answer: Answer, latency_ms: int) -> list[dict[str, Any]]:
        chunks = [{kind: payload} for kind, payload in converse_stream_events(answer, latency_ms)]
        chunks[-1] = {"metadata": {"usage": self._usage(answer), "metrics": {}, "trace": {}},
                      "amazon-bedrock-invocationMetrics": invocation_metrics(answer, latency_ms)}
        return chunks


def _text_stop(answer: Answer) -> str:
    return "length" if answer.stop_reason == "max_tokens" else "stop"


class Mistral:
    name = "mistral"

    def parse(self, body: dict[str, Any]) -> Conversation:
        return _prompt_conversation(require(body, "prompt"), body.get("max_tokens"), body.get("stop"))

    def render(self, answer: Answer, latency_ms: int) -> dict[str, Any]:
        return {"outputs": [{"text": _answer_text(answer), "stop_reason": _text_stop(answer)}]}

    def stream(self, answer: Answer, latency_ms: int) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = [{"outputs": [{"text": piece, "stop_reason": None}]}
                                        for piece in split_text(_answer_text(answer))]
        chunks.append({"outputs": [{"text": "", "stop_reason": _text_stop(answer)}],
                       "amazon-bedrock-invocationMetrics": invocation_metrics(answer, latency_ms)})
        return chunks


class MistralChat:
    name = "mistral_chat"

    def parse(self, body: dict[str, Any]) -> Conversation:
        messages = require(body, "messages")
        if not isinstance(messages, list) or not messages:
            raise WireError.validation("Malformed input request: messages must be a non-empty array.")
        builder = ConversationBuilder()
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise WireError.validation("Malformed input request: each message needs a role and a string content.")
            role = str(message.get("role"))
            if role == "system":
                builder.count(message["content"])
                continue
            builder.text(builder.turn("assistant" if role == "assistant" else "user"), message["content"])
        conv = builder.build()
        conv.max_tokens = int(body["max_tokens"]) if body.get("max_tokens") else None
        return conv

    def render(self, answer: Answer, latency_ms: int) -> dict[str, Any]:
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": _answer_text(answer)},
                             "stop_reason": _text_stop(answer)}]}

    def stream(self, answer: Answer, latency_ms: int) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "message": {"role": "assistant", "content": piece},
                                                      "stop_reason": None}]}
                                        for piece in split_text(_answer_text(answer))]
        chunks.append({"choices": [{"index": 0, "message": {"role": "assistant", "content": ""},
                                    "stop_reason": _text_stop(answer)}],
                       "amazon-bedrock-invocationMetrics": invocation_metrics(answer, latency_ms)})
        return chunks


class Meta:
    name = "meta"

    def parse(self, body: dict[str, Any]) -> Conversation:
        return _prompt_conversation(require(body, "prompt"), body.get("max_gen_len"), None)

    def render(self, answer: Answer, latency_ms: int) -> dict[str, Any]:
        return {"generation": _answer_text(answer), "prompt_token_count": answer.usage.input_tokens,
                "generation_token_count": answer.usage.output_tokens, "stop_reason": _text_stop(answer)}

    def stream(self, answer: Answer, latency_ms: int) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        pieces = split_text(_answer_text(answer))
        for index, piece in enumerate(pieces):
            chunks.append({"generation": piece,
                           "prompt_token_count": answer.usage.input_tokens if index == 0 else None,
                           "generation_token_count": max(1, answer.usage.output_tokens * (index + 1) // len(pieces)),
                           "stop_reason": None})
        chunks.append({"generation": "", "prompt_token_count": None,
                       "generation_token_count": answer.usage.output_tokens, "stop_reason": _text_stop(answer),
                       "amazon-bedrock-invocationMetrics": invocation_metrics(answer, latency_ms)})
        return chunks


class Titan:
    name = "titan"

    def parse(self, body: dict[str, Any]) -> Conversation:
        config = body.get("textGenerationConfig") or {}
        return _prompt_conversation(require(body, "inputText"), config.get("maxTokenCount"),
                                    config.get("stopSequences"))

    def _reason(self, answer: Answer) -> str:
        return {"max_tokens": "LENGTH", "stop_sequence": "STOP_CRITERIA_MET"}.get(answer.stop_reason, "FINISH")

    def render(self, answer: Answer, latency_ms: int) -> dict[str, Any]:
        return {"inputTextTokenCount": answer.usage.input_tokens,
                "results": [{"tokenCount": answer.usage.output_tokens, "outputText": _answer_text(answer),
                             "completionReason": self._reason(answer)}]}

    def stream(self, answer: Answer, latency_ms: int) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = [
            {"outputText": piece, "index": 0, "totalOutputTextTokenCount": None, "completionReason": None,
             "inputTextTokenCount": answer.usage.input_tokens if i == 0 else None}
            for i, piece in enumerate(split_text(_answer_text(answer)))]
        chunks.append({"outputText": "", "index": 0, "totalOutputTextTokenCount": answer.usage.output_tokens,
                       "completionReason": self._reason(answer), "inputTextTokenCount": None,
                       "amazon-bedrock-invocationMetrics": invocation_metrics(answer, latency_ms)})
        return chunks


_FAMILIES: dict[str, InvokeFamily] = {
    "anthropic": AnthropicMessages(), "nova": Nova(), "mistral": Mistral(), "mistral_chat": MistralChat(),
    "meta": Meta(), "llama4": Meta(), "titan": Titan(),
}


def family_for(model_id: str) -> InvokeFamily:
    """The body family of a model id; a ValidationException for ones the emulator lacks."""
    family = _FAMILIES.get(family_of(model_id))
    if family is None:
        raise WireError.validation(
            f"The emulator has no InvokeModel body format for {model_id}; use Converse, "
            "or one of anthropic.*, amazon.nova*, mistral.*, meta.*, amazon.titan-text*.")
    return family
