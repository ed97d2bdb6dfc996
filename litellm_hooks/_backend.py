"""The core ``Backend`` that answers a tier by calling a ``litellm.Router``.

Each tier is a model group of the router (by default the group is named like the
tier), so every call the core makes - attempts, classifier and grader calls - goes
through LiteLLM's own retries, fallbacks, deployment rate limits and logging.

A streamed request's live attempt (no gate on its tier) streams from the tier group
(``LiteLLMTierStream``); an attempt a gate must judge whole is one plain call.
"""

from __future__ import annotations

import functools
from typing import Any, AsyncIterator, Callable, Iterator, Mapping

from langchain_tiered_router.core import Backend, ConfigError, RouteRequest, TierAnswer, TierStream
from langchain_tiered_router.core.backends import estimated_answer
from langchain_tiered_router.core.deadline import call_timeout, routing_request
from langchain_tiered_router.core.errors import TransportError
from langchain_tiered_router.core.tiers import Tier

from ._convert import (answer_from_chunks, answer_from_response, chunk_has_output, content_text,
                       transport_error_from_litellm)

__all__ = ["LiteLLMRouterBackend", "LiteLLMTierStream", "ChatPayload", "stream_answer"]

# The OpenAI chat parameters, forwarded to a tier whatever LiteLLM calls them.
_CHAT_PARAMS = frozenset({
    "temperature", "top_p", "n", "stop", "max_tokens", "max_completion_tokens", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "response_format", "seed", "tools",
    "tool_choice", "parallel_tool_calls", "reasoning_effort", "thinking", "timeout", "extra_headers",
})
# What a proxy body holds besides the client's parameters: the route's own fields, and
# the proxy's bookkeeping that LiteLLM's list of its own parameters does not name.
_NOT_FORWARDED = frozenset({
    "model", "messages", "stream", "stream_options", "metadata", "proxy_server_request", "secret_fields",
    "standard_logging_object", "litellm_parent_otel_span", "client_disconnected", "weights", "deployment_id",
    "fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "num_retries", "max_retries",
})
_INTERNAL_PREFIXES = ("_", "litellm_", "user_api_key", "tiered_router")


@functools.lru_cache(maxsize=1)
def _litellm_params() -> frozenset[str]:
    from litellm.types.utils import all_litellm_params

    return frozenset(all_litellm_params)


def forwarded(name: str, value: Any, internal: frozenset[str]) -> bool:
    """Whether a body field goes with each tier call: the OpenAI parameters, and what the
    client sent for the model beyond them (Bedrock's ``guardrailConfig``,
    ``requestMetadata``, ``top_k``; LiteLLM's ``drop_params``, ``additional_drop_params``),
    as LiteLLM passes them to the deployment called directly; never LiteLLM's own call
    parameters, the proxy's bookkeeping or the route's fields."""
    if value is None:
        return False
    if name in _CHAT_PARAMS:
        return True
    return name not in _NOT_FORWARDED and name not in internal and not name.startswith(_INTERNAL_PREFIXES)


def litellm_params_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """A tier's ``model_kwargs`` in LiteLLM's names. One router YAML drives both
    integrations, and its examples use ``ChatBedrockConverse``'s names: LiteLLM nested
    ``additional_model_request_fields`` inside Bedrock's ``additionalModelRequestFields``
    (a request Bedrock refuses) and sent ``stop_sequences`` there too, losing the stop.
    Its fields go as LiteLLM's own parameters (the unknown ones LiteLLM hands to
    ``additionalModelRequestFields``), ``stop_sequences`` as ``stop``."""
    out = dict(params)
    extra = out.pop("additional_model_request_fields", None)
    if isinstance(extra, Mapping):
        out = {**extra, **out}
    elif extra is not None:
        out["additional_model_request_fields"] = extra  # not a mapping: LiteLLM's to refuse, as given
    if "stop_sequences" in out and "stop" not in out:
        out["stop"] = out.pop("stop_sequences")
    return out


class ChatPayload(dict):
    """``RouteRequest.payload`` for this backend: ``messages`` plus the client's
    parameters (``temperature``, ``tools``, ``response_format``, a guardrail ...), and for
    ``TieredLiteLLMRouter`` its caller's ``metadata`` (``call_metadata``), which each tier
    call hands to LiteLLM's callbacks."""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "ChatPayload":
        internal = _litellm_params()
        params = {k: v for k, v in body.items() if forwarded(k, v, internal)}
        return cls(messages=list(body.get("messages") or []), params=params)


class LiteLLMRouterBackend(Backend):
    """Calls ``router.acompletion(model=<tier's group>, ...)``.

    ``router`` is a ``litellm.Router`` or a function returning one (the proxy builds
    its router after the callbacks are loaded). ``groups`` maps tier name -> model
    group where they differ. Tier parameters from the router YAML (``max_tokens``,
    ``temperature``, ``model_kwargs``) are defaults the client's own parameters
    override. ``log_tier_calls=False`` marks every call ``no-log``: on the proxy the
    routed request is the one LiteLLM's callbacks and spend log see. LiteLLM's router
    picks each call's deployment (skipping those cooling down); the engine's retry
    policy retries it, so a call asks the router for no retries of its own.
    """

    def __init__(self, router: Any | Callable[[], Any], groups: Mapping[str, str] | None = None, *,
                 log_tier_calls: bool = True):
        self._router = router
        self.groups = dict(groups or {})
        self.log_tier_calls = log_tier_calls

    @property
    def router(self) -> Any:
        router = self._router if hasattr(self._router, "acompletion") else self._router()
        if router is None:
            raise ConfigError("no litellm router: the LiteLLM proxy has not loaded its model_list yet")
        return router

    def group(self, tier: Tier) -> str:
        return self.groups.get(tier.name, tier.name)

    def _kwargs(self, tier: Tier, request: RouteRequest) -> dict[str, Any]:
        return self.call_kwargs(tier, request)

    def call_kwargs(self, tier: Tier, request: RouteRequest, *, for_proxy: bool = False) -> dict[str, Any]:
        """The ``acompletion`` arguments of ``tier``'s call. ``for_proxy``: the proxy makes
        the call itself (one-pass routing), as the client's request, with its own metadata
        and logging."""
        payload = request.payload if isinstance(request.payload, Mapping) else {}
        messages = payload.get("messages") or [{"role": "user", "content": request.text}]
        kwargs: dict[str, Any] = {**litellm_params_of(tier.params), **dict(payload.get("params") or {})}
        limit = call_timeout(tier, request)  # the tier's timeout, cut to the request's deadline
        if limit is not None:
            kwargs["timeout"] = min(limit, float(kwargs["timeout"])) if kwargs.get("timeout") else limit
        if for_proxy:
            return {"model": self.group(tier), "messages": messages, **kwargs}
        # Tag the call so LiteLLM's logs and callbacks can join it to the routed request;
        # the caller's key is deliberately absent: the routed request bills it once.
        kwargs["metadata"] = {**dict(payload.get("call_metadata") or {}),  # the in-process caller's own
                              "tiered_router": {"request_id": request.request_id, "tier": tier.name,
                                                "role": request.metadata.get("call_role", "attempt")}}
        if not self.log_tier_calls:
            kwargs["no-log"] = True
        # the router YAML's retry policy retries a tier call; LiteLLM's router retrying it
        # too (its num_retries) would multiply the tries, unless a tier's params ask for it
        kwargs.setdefault("num_retries", 0)
        # nor may it answer a tier's call from another model group (its fallbacks): that answer
        # would be judged and priced as the tier's; the ladder is the fallback here
        kwargs.setdefault("disable_fallbacks", True)
        return {"model": self.group(tier), "messages": messages, **kwargs}

    def _error(self, exc: Exception, tier: Tier) -> Exception:
        mapped = transport_error_from_litellm(exc, tier=tier.name, model_id=tier.model_id)
        return mapped if mapped is not None else exc

    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        try:
            response = self.router.completion(**self._kwargs(tier, request))
        except Exception as exc:  # noqa: BLE001 - mapped to the core's errors
            raise self._error(exc, tier) from exc
        return answer_from_response(response, tier=tier.name, model_id=tier.model_id)

    async def acall(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        try:
            response = await self.router.acompletion(**self._kwargs(tier, request))
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, tier) from exc
        return answer_from_response(response, tier=tier.name, model_id=tier.model_id)

    def stream(self, tier: Tier, request: RouteRequest, *, live: bool) -> TierStream:
        return LiteLLMTierStream(self, tier, request) if live else super().stream(tier, request, live=live)

    def ask(self, tier: Tier, prompt: str) -> TierAnswer:
        timed = routing_request()  # its timeout is cut to the deadline of the request it is made for
        return self.call(tier, RouteRequest(text=prompt, metadata={"call_role": "routing"},
                                            deadline=None if timed is None else timed.deadline))

    async def aask(self, tier: Tier, prompt: str) -> TierAnswer:
        return await self.acall(tier, RouteRequest(text=prompt, metadata={"call_role": "routing"}))


class LiteLLMTierStream(TierStream):
    """One attempt streamed from the tier's model group (usage asked for, for pricing)."""

    def __init__(self, backend: LiteLLMRouterBackend, tier: Tier, request: RouteRequest):
        self.backend, self.tier, self.request = backend, tier, request

    def _kwargs(self) -> dict[str, Any]:
        kwargs = self.backend._kwargs(self.tier, self.request)
        kwargs.update(stream=True, stream_options={"include_usage": True})
        return kwargs

    def _error(self, exc: Exception, sent: bool) -> Exception:
        mapped = self.backend._error(exc, self.tier)
        if sent and mapped is not exc:  # a stream that broke after it began was cut, whatever LiteLLM calls it
            return TransportError(str(exc), tier=self.tier.name, model_id=self.tier.model_id, kind="stream_cut",
                                  cause=exc)
        return mapped

    def chunks(self) -> Iterator[Any]:
        sent = False
        try:
            for chunk in self.backend.router.completion(**self._kwargs()):
                sent = sent or chunk_has_output(chunk)
                yield chunk
        except Exception as exc:  # noqa: BLE001 - mapped to the core's errors
            raise self._error(exc, sent) from exc

    async def achunks(self) -> AsyncIterator[Any]:
        sent = False
        try:
            async for chunk in await self.backend.router.acompletion(**self._kwargs()):
                sent = sent or chunk_has_output(chunk)
                yield chunk
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, sent) from exc

    def has_output(self, chunk: Any) -> bool:
        return chunk_has_output(chunk)

    def answer(self, chunks: list[Any], *, complete: bool = True) -> TierAnswer:
        return stream_answer(chunks, self.tier, self.request, complete=complete)


def stream_answer(chunks: list[Any], tier: Tier, request: RouteRequest, *, complete: bool = True) -> TierAnswer:
    """The answer in a tier's stream chunks; a stream that broke before its usage chunk
    is priced on estimated tokens (what it sent, and the prompt)."""
    answer = answer_from_chunks(chunks, tier=tier.name, model_id=tier.model_id)
    if complete or answer.usage.output_tokens:
        return answer
    payload = request.payload if isinstance(request.payload, Mapping) else {}
    prompt = "\n".join(content_text(m.get("content")) for m in payload.get("messages") or []) or request.text
    return estimated_answer(answer.text, prompt, tier.model_id)
