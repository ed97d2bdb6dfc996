"""Choosing the answer to a Conversation, in a format-neutral ``Answer``.

Order of precedence for the model that answers:

1. a recorded outcome for this exact prompt (the model's ``replay`` file);
2. the model's rules, first match on the last user message;
3. after a tool result, a text that reports the result;
4. a tool call, when the request forces one (``toolChoice`` any/tool) or the user
   names a tool, with arguments synthesised from the tool's schema;
5. JSON synthesised from the requested output schema (``outputConfig``);
6. the model's ``default``, else the script's ``default_answer``.

Then ``maxTokens`` and stop sequences cut the text as a model would. Token counts are
the recorded ones when replaying, else ``estimate_tokens`` (ceil(chars / 4)). With a
cache point in the request, the text before the last one is the cached prefix: the
first request with a given prefix writes it (``cacheWriteInputTokens``), later ones
read it (``cacheReadInputTokens``); ``inputTokens`` counts the rest, as on Bedrock.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass

from ._conversation import Conversation, ToolCall, estimate_tokens
from ._replay import Recorded, ReplayIndex
from ._routing import RouteChoice, base_model_id
from ._script import EmulatorScript, ModelScript
from ._tool_args import mentioned_tool, synthesise_arguments

__all__ = ["Answer", "Responder", "Usage"]


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cache_read: int | None = None  # None: the request had no cache point
    cache_write: int | None = None
    cache_ttl: str | None = None  # the cache point's ttl: the writes are reported per ttl (``cacheDetails``)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + (self.cache_read or 0) + (self.cache_write or 0)


@dataclass(frozen=True)
class Answer:
    """Either ``text`` or one ``tool_call``; ``stop_reason`` in Converse's vocabulary."""

    text: str | None
    tool_call: ToolCall | None
    stop_reason: str
    usage: Usage
    model_id: str
    router_arn: str | None = None
    stop_sequence: str | None = None


def new_tool_use_id() -> str:
    return "tooluse_" + uuid.uuid4().hex[:22]


def _cut(text: str, conv: Conversation) -> tuple[str, str, str | None]:
    """Apply stop sequences and maxTokens; returns (text, stop reason, stop sequence)."""
    limit = conv.max_tokens * 4 if conv.max_tokens else None
    hits = [(text.find(s), s) for s in conv.stop_sequences if s and s in text]
    if hits:
        index, sequence = min(hits)
        if limit is None or index <= limit:
            return text[:index], "stop_sequence", sequence
    if limit is not None and len(text) > limit:
        return text[:limit], "max_tokens", None
    return text, "end_turn", None


class Responder:
    """Answers conversations for one script; remembers cached prefixes between calls."""

    def __init__(self, script: EmulatorScript):
        self.script = script
        self._replays: dict[str, ReplayIndex] = {}
        for model_id, model in script.models.items():
            if model.replay is not None:
                self._replays[model_id] = ReplayIndex.load(script.resolve_path(model.replay))
        self._seen_prefixes: set[str] = set()
        self._lock = threading.Lock()

    def _model(self, model_id: str) -> tuple[str, ModelScript | None]:
        for key in (model_id, base_model_id(model_id)):
            if key in self.script.models:
                return key, self.script.models[key]
        return model_id, None

    def answer(self, conv: Conversation, route: RouteChoice) -> Answer:
        key, model = self._model(route.model_id)
        prompt = conv.last_user_text
        recorded: Recorded | None = None
        text: str | None = None
        call: ToolCall | None = None
        if model is not None and key in self._replays:
            recorded = self._replays[key].lookup(prompt, model.replay_key or key)
            text = recorded.response if recorded else None
        if text is None and model is not None:
            for rule in model.rules:
                if re.search(rule.match, prompt):
                    if rule.tool_use is not None:
                        call = ToolCall(new_tool_use_id(), rule.tool_use.name, dict(rule.tool_use.input))
                    else:
                        text = rule.answer
                    break
        if text is None and call is None:
            text, call = self._fallback(conv, model)
        return self._finish(conv, route, text, call, recorded)

    def _fallback(self, conv: Conversation, model: ModelScript | None) -> tuple[str | None, ToolCall | None]:
        results = conv.pending_tool_results
        if results:
            parts = []
            for result in results:
                name = conv.tool_name_for(result.tool_use_id) or "tool"
                verb = "failed with" if result.is_error else "returned"
                parts.append(f"The {name} tool {verb}: {result.text}")
            return " ".join(parts), None
        names = [tool.name for tool in conv.tools]
        if names:
            choice = conv.tool_choice
            named = mentioned_tool(names, conv.last_user_text)
            chosen = None
            if choice is not None and choice.kind == "tool" and choice.name in names:
                chosen = choice.name
            elif choice is not None and choice.kind == "any":
                chosen = named or names[0]
            elif named:
                chosen = named
            if chosen is not None:
                spec = next(tool for tool in conv.tools if tool.name == chosen)
                args = synthesise_arguments(spec.schema, conv.last_user_text)
                return None, ToolCall(new_tool_use_id(), chosen, args)
        if conv.output_schema is not None:
            args = synthesise_arguments(conv.output_schema, conv.last_user_text)
            return json.dumps(args, ensure_ascii=False), None
        if model is not None and model.default is not None:
            return model.default, None
        return self.script.default_answer, None

    def _cache_usage(self, conv: Conversation, route: RouteChoice) -> tuple[int, int | None, int | None]:
        """(uncached input chars, cache read tokens, cache write tokens)."""
        if conv.cached_prefix is None:
            return conv.input_chars, None, None
        prefix = conv.cached_prefix
        tokens = estimate_tokens(prefix) if prefix else 0
        digest = hashlib.sha256(f"{route.model_id}\0{prefix}".encode()).hexdigest()
        with self._lock:
            seen = digest in self._seen_prefixes
            self._seen_prefixes.add(digest)
        rest = conv.input_chars - len(prefix)
        return rest, (tokens if seen else 0), (0 if seen else tokens)

    def _finish(self, conv: Conversation, route: RouteChoice, text: str | None, call: ToolCall | None,
                recorded: Recorded | None) -> Answer:
        rest_chars, cache_read, cache_write = self._cache_usage(conv, route)
        input_tokens = max(1, -(-rest_chars // 4))
        if recorded is not None and recorded.input_tokens is not None:
            input_tokens = int(recorded.input_tokens)
        if call is not None:
            output = estimate_tokens(call.name + json.dumps(call.input, ensure_ascii=False))
            usage = Usage(input_tokens, output, cache_read, cache_write, conv.cache_ttl)
            return Answer(None, call, "tool_use", usage, route.model_id, route.router_arn)
        full = text or ""
        cut, reason, sequence = _cut(full, conv)
        output = estimate_tokens(cut)
        if recorded is not None and recorded.output_tokens is not None and cut == full:
            output = int(recorded.output_tokens)
        usage = Usage(input_tokens, output, cache_read, cache_write, conv.cache_ttl)
        return Answer(cut, None, reason, usage, route.model_id, route.router_arn, sequence)
