"""Bedrock's batch record formats: the ``modelInput`` we write and the ``modelOutput`` we read.

With ``modelInvocationType: InvokeModel`` (Bedrock's default) ``modelInput`` is the
model family's own InvokeModel body and ``modelOutput`` its response body; with
``Converse`` both are Converse shapes, the same for every model. The on-demand path
for small remainders sends the very same bodies to InvokeModel / Converse, so a
record reads back the same way whichever path served it.

Families: ``anthropic.*`` (Messages API), ``amazon.nova*``, ``meta.llama4*`` (Llama 4
template), ``meta.*`` (Llama 3 template), Mistral Large 2 (24.07) and Pixtral Large (a
chat completion: ``messages`` in, ``choices`` out), ``mistral.*`` ([INST] template),
``amazon.titan-text*``. Mistral's bodies carry no token counts: they are estimated
(ceil(characters / 4)) unless the on-demand reply's headers give them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..core.errors import MalformedReplyError
from ..core.pricing import Usage, converse_usage
from ..core.testing import estimate_tokens
from ..core.tiers import Tier
from ..core.types import TierAnswer

__all__ = ["Prompt", "family_of", "model_input", "parse_output", "supports", "DEFAULT_MAX_TOKENS"]

DEFAULT_MAX_TOKENS = 1024
# a turn's opening, its role's close and its end, in each Llama template
_LLAMA_TURNS = {"meta": ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
                "llama4": ("<|header_start|>", "<|header_end|>", "<|eot|>")}
_PROFILE = re.compile(r"^(us|eu|apac|us-gov|global|jp|au|ca)\.")


@dataclass(frozen=True)
class Prompt:
    """One record's conversation: ``messages`` are (role, text) pairs, user first."""

    messages: tuple[tuple[str, str], ...]
    system: str | None = None

    @property
    def text(self) -> str:
        """What gates and classifiers read: the last user message (as the integrations do)."""
        for role, content in reversed(self.messages):
            if role == "user":
                return content
        return self.messages[-1][1] if self.messages else ""

    @property
    def chars(self) -> int:
        return sum(len(c) for _, c in self.messages) + len(self.system or "")


def family_of(model_id: str) -> str:
    base = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    base = _PROFILE.sub("", base)
    for prefix, family in (("anthropic.", "anthropic"), ("amazon.nova", "nova"), ("meta.llama4", "llama4"),
                           ("meta.", "meta"), ("mistral.mistral-large-2407", "mistral_chat"),
                           ("mistral.pixtral-large", "mistral_chat"), ("mistral.", "mistral"),
                           ("amazon.titan-text", "titan")):
        if base.startswith(prefix):
            return family
    return "other"


def supports(model_id: str, invocation_type: str) -> bool:
    return invocation_type == "Converse" or family_of(model_id) != "other"


def _params(tier: Tier) -> tuple[int, float | None]:
    return int(tier.params.get("max_tokens") or DEFAULT_MAX_TOKENS), tier.params.get("temperature")


def _sampling(tier: Tier) -> tuple[float | None, list[str] | None]:
    """The tier's ``top_p`` and stop sequences (``model_kwargs``), as a live call sends them."""
    stop = tier.params.get("stop_sequences", tier.params.get("stop"))
    return tier.params.get("top_p"), (list(stop) if isinstance(stop, (list, tuple)) and stop else None)


# the tier settings a batch record carries; any other a live call would send is named at the start
SENT_PARAMS = frozenset({"max_tokens", "temperature", "top_p", "stop_sequences", "stop"})
SENT_CONVERSE_PARAMS = SENT_PARAMS | {"additional_model_request_fields"}
# settings of the client or of LangChain's model, not of the request body
_NOT_REQUEST_PARAMS = frozenset({"provider", "base_model_id", "base_model", "supports_tool_choice_values",
                                 "region_name", "endpoint_url", "credentials_profile_name", "streaming",
                                 "disable_streaming", "timeout", "max_retries", "config", "default_headers",
                                 "guard_last_turn_only", "output_version"})


def unsent_params(tier: Tier, invocation_type: str) -> list[str]:
    """The tier's ``model_kwargs`` a live call sends that a batch record does not."""
    sent = SENT_CONVERSE_PARAMS if invocation_type == "Converse" else SENT_PARAMS
    if invocation_type != "Converse" and family_of(tier.model_id) in ("meta", "llama4", "mistral_chat"):
        sent = sent - {"stop_sequences", "stop"}  # these InvokeModel bodies take no stop sequences
    return sorted(k for k in tier.params if k not in sent and k not in _NOT_REQUEST_PARAMS)


def model_input(tier: Tier, prompt: Prompt, invocation_type: str = "InvokeModel") -> dict[str, Any]:
    """The ``modelInput`` of one record for ``tier``'s model."""
    max_tokens, temperature = _params(tier)
    top_p, stop = _sampling(tier)
    if invocation_type == "Converse":
        body: dict[str, Any] = {"messages": [{"role": r, "content": [{"text": c}]} for r, c in prompt.messages],
                                "inferenceConfig": {"maxTokens": max_tokens}}
        if prompt.system:
            body["system"] = [{"text": prompt.system}]
        if temperature is not None:
            body["inferenceConfig"]["temperature"] = temperature
        if top_p is not None:
            body["inferenceConfig"]["topP"] = top_p
        if stop:
            body["inferenceConfig"]["stopSequences"] = stop
        extra = tier.params.get("additional_model_request_fields")
        if isinstance(extra, dict) and extra:
            body["additionalModelRequestFields"] = extra
        return body
    family = family_of(tier.model_id)
    if family == "anthropic":
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": max_tokens,
                "messages": [{"role": r, "content": [{"type": "text", "text": c}]} for r, c in prompt.messages]}
        if prompt.system:
            body["system"] = prompt.system
        if temperature is not None:
            body["temperature"] = temperature
        if top_p is not None:
            body["top_p"] = top_p
        if stop:
            body["stop_sequences"] = stop
        return body
    if family == "nova":
        body = {"schemaVersion": "messages-v1",
                "messages": [{"role": r, "content": [{"text": c}]} for r, c in prompt.messages],
                "inferenceConfig": {"max_new_tokens": max_tokens}}
        if prompt.system:
            body["system"] = [{"text": prompt.system}]
        if temperature is not None:
            body["inferenceConfig"]["temperature"] = temperature
        if top_p is not None:
            body["inferenceConfig"]["top_p"] = top_p
        if stop:
            body["inferenceConfig"]["stopSequences"] = stop
        return body
    if family == "mistral_chat":  # Mistral Large 2 (24.07), Pixtral Large: a chat completion body
        messages = ([{"role": "system", "content": prompt.system}] if prompt.system else []) + \
            [{"role": r, "content": c} for r, c in prompt.messages]
        body = {"messages": messages, "max_tokens": max_tokens}
        if temperature is not None:
            body["temperature"] = temperature
        if top_p is not None:
            body["top_p"] = top_p
        return body
    if family in _LLAMA_TURNS:  # Llama 3's template, or Llama 4's (its header and end-of-turn tokens differ)
        start, end, eot = _LLAMA_TURNS[family]
        parts = ["<|begin_of_text|>"]
        turns = ([("system", prompt.system)] if prompt.system else []) + list(prompt.messages)
        parts += [f"{start}{role}{end}\n\n{content}{eot}" for role, content in turns]
        parts.append(f"{start}assistant{end}\n\n")
        body = {"prompt": "".join(parts), "max_gen_len": max_tokens}
    elif family == "mistral":
        text = "<s>"
        for role, content in prompt.messages:
            if role == "user":
                sys = f"{prompt.system}\n\n" if prompt.system and text == "<s>" else ""
                text += f"[INST] {sys}{content} [/INST]"
            else:
                text += f" {content}</s>"
        body = {"prompt": text, "max_tokens": max_tokens}
    elif family == "titan":
        turns = [f"{'User' if r == 'user' else 'Bot'}: {c}" for r, c in prompt.messages]
        text = "\n".join(([prompt.system] if prompt.system else []) + turns) + "\nBot:"
        config: dict[str, Any] = {"maxTokenCount": max_tokens}
        if temperature is not None:
            config["temperature"] = temperature
        if top_p is not None:
            config["topP"] = top_p
        if stop:
            config["stopSequences"] = stop
        return {"inputText": text, "textGenerationConfig": config}
    else:
        raise ValueError(f"no batch record format for model id {tier.model_id!r}; "
                         "set batch.invocation_type: Converse")
    if temperature is not None:
        body["temperature"] = temperature
    if top_p is not None:
        body["top_p"] = top_p
    if stop and family == "mistral":
        body["stop"] = stop
    return body


def _blocks(content: Any) -> tuple[str, list[dict[str, Any]]]:
    texts, calls = [], []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" or ("text" in block and "type" not in block):
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append({"name": block.get("name"), "args": block.get("input") or {}, "id": block.get("id")})
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append({"name": use.get("name"), "args": use.get("input") or {}, "id": use.get("toolUseId")})
    return "".join(texts), calls


def parse_output(tier: Tier, output: Any, prompt: Prompt, invocation_type: str = "InvokeModel",
                 token_counts: tuple[int, int] | None = None) -> TierAnswer:
    """A ``modelOutput`` (or an on-demand reply body) as the core's ``TierAnswer``.

    Raises ``MalformedReplyError`` when the body is not the model's shape.
    """
    family = "converse" if invocation_type == "Converse" else family_of(tier.model_id)
    try:
        if not isinstance(output, dict):
            raise TypeError(f"expected a JSON object, got {type(output).__name__}")
        calls: list[dict[str, Any]] = []
        if family == "anthropic":
            text, calls = _blocks(output["content"])
            u = output["usage"]
            creation = u.get("cache_creation")  # the Messages API's writes per ttl
            usage = Usage(int(u["input_tokens"]), int(u["output_tokens"]),
                          int(u.get("cache_read_input_tokens") or 0), int(u.get("cache_creation_input_tokens") or 0),
                          int(creation.get("ephemeral_1h_input_tokens") or 0) if isinstance(creation, dict) else 0)
            stop = output.get("stop_reason")
        elif family in ("nova", "converse"):
            text, calls = _blocks(output["output"]["message"]["content"])
            u = output["usage"]
            missing = {"inputTokens", "outputTokens"} - set(u)
            if missing:
                raise KeyError(f"usage has no {', '.join(sorted(missing))}")
            usage = converse_usage(u)
            stop = output.get("stopReason")
        elif family in ("meta", "llama4"):
            text = str(output["generation"])
            usage = Usage(int(output["prompt_token_count"]), int(output["generation_token_count"]))
            stop = output.get("stop_reason")
        elif family == "mistral":
            first = output["outputs"][0]
            text, stop = str(first["text"]), first.get("stop_reason")
            usage = Usage(*(token_counts or (estimate_tokens(" " * prompt.chars), estimate_tokens(text))))
        elif family == "mistral_chat":
            first = output["choices"][0]
            content = first["message"]["content"]
            text = content if isinstance(content, str) else _blocks(content)[0]
            stop = first.get("stop_reason") or first.get("finish_reason")
            u = output.get("usage") or {}
            counted = (int(u["prompt_tokens"]), int(u["completion_tokens"])) if "prompt_tokens" in u else None
            usage = Usage(*(counted or token_counts or (estimate_tokens(" " * prompt.chars), estimate_tokens(text))))
        elif family == "titan":
            first = output["results"][0]
            text, stop = str(first["outputText"]), first.get("completionReason")
            usage = Usage(int(output["inputTextTokenCount"]), int(first["tokenCount"]))
        else:
            raise TypeError(f"no batch record format for model id {tier.model_id!r}")
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MalformedReplyError(f"unreadable modelOutput ({type(exc).__name__}: {exc})",
                                  tier=tier.name, model_id=tier.model_id) from None
    return TierAnswer(text=text, usage=usage, model_id=tier.model_id, tool_calls=calls, stop_reason=stop,
                      raw=None)
