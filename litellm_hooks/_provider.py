"""The ``tiered_router`` LiteLLM provider: where a proxy request is routed.

Declared in the proxy's ``custom_provider_map``; a model whose ``litellm_params.model``
is ``tiered_router/<name>`` is what clients call. LiteLLM hands the provider the
messages, the chat parameters (with the deployment's ``tiered_router_config``) and the
call's metadata, which carries the caller's key alias, team and user and the request
headers; the provider routes with the core ``Router``, each tier call going through
the proxy's own router (its rate limits, logging and spend tracking still apply).

* ``acompletion``: ``Router.aroute``; the served tier's response comes back with a
  ``tiered_router`` field and its cost set to the whole routed cost (every attempt
  and routing call, so LiteLLM's spend for the key counts gate-failed attempts once).
* ``astreaming``: ``Router.astream``; chunks from a tier with no gate pass straight
  through as they arrive, a gated answer is replayed once it passed, and the last
  chunk carries the usage and the routing record.

Nothing is kept between requests but the routers (one per router YAML). The routing
of one request is attached to that request's LiteLLM logging object, where the
``TieredRouterHook`` reads it to add the ``x-tiered-router-*`` headers.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any, AsyncIterator, Iterator, Mapping

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError

from langchain_tiered_router.core import (ConfigError, LadderExhaustedError, RouteRequest, RoutingResult, TierAnswer,
                                          TierNotAllowedError)
from langchain_tiered_router.core.errors import UnknownTierRequestError
from langchain_tiered_router.core.telemetry.record import record_from_result

from ._request import route_request_from_call
from ._response import routing_summary
from ._settings import RouterSet, provider_config_source, proxy_llm_router

__all__ = ["TieredRouterProvider", "ROUTE_ATTR", "attached_route"]

log = logging.getLogger("litellm_hooks")

ROUTE_ATTR = "tiered_router_result"  # on the request's LiteLLM logging object


def attached_route(logging_obj: Any) -> RoutingResult | None:
    """The routing of the request whose logging object this is (``None``: not routed)."""
    return getattr(logging_obj, ROUTE_ATTR, None)


class TieredRouterProvider(CustomLLM):
    """Register as ``custom_provider_map: [{provider: tiered_router,
    custom_handler: litellm_hooks.tiered_router_provider}]``."""

    def __init__(self, routers: RouterSet | None = None):
        super().__init__()
        self.routers = routers or RouterSet(proxy_llm_router)

    def _request(self, model: str, messages: list, optional_params: Mapping[str, Any] | None,
                 litellm_params: Mapping[str, Any] | None) -> tuple[Any, Any, RouteRequest, dict]:
        params = dict(optional_params or {})
        router, backend = self.routers.get(provider_config_source(model, params))
        metadata = (litellm_params or {}).get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        try:
            request = route_request_from_call(messages, params, metadata)
        except ConfigError as exc:  # the client's response_format schema: its error, a 400
            detail = {"error": "bad_response_format", "message": str(exc)[:500]}
            raise CustomLLMError(status_code=400, message=json.dumps(detail)) from None
        return router, backend, request, metadata

    @staticmethod
    def _publish(result: RoutingResult, metadata: dict) -> dict[str, Any]:
        """The record into LiteLLM's logging metadata (its spend logs and callbacks carry it)."""
        summary = routing_summary(result)
        spend = metadata.get("spend_logs_metadata")
        metadata["spend_logs_metadata"] = {**(spend if isinstance(spend, dict) else {}), "tiered_router": summary}
        return summary

    async def acompletion(self, model: str, messages: list, *args: Any, optional_params: dict | None = None,
                          litellm_params: dict | None = None, logging_obj: Any = None, **kwargs: Any) -> Any:
        router, backend, request, metadata = self._request(model, messages, optional_params, litellm_params)
        try:
            result = await router.aroute(request, backend)
        except _REFUSED as exc:
            raise self._failed(exc, metadata) from None
        _attach(logging_obj, result)
        summary = self._publish(result, metadata)
        raw = result.answer.raw  # type: ignore[union-attr]
        response = copy.copy(raw)
        setattr(response, "tiered_router", summary)
        hidden = dict(getattr(raw, "_hidden_params", None) or {})
        hidden["tiered_router"] = summary
        if result.cost_usd is not None:
            hidden["response_cost"] = float(result.cost_usd)  # LiteLLM's own field is a float
        else:
            hidden.pop("response_cost", None)  # unknown: let LiteLLM price it, never 0
        response._hidden_params = hidden
        return response

    async def astreaming(self, model: str, messages: list, *args: Any, optional_params: dict | None = None,
                         litellm_params: dict | None = None, logging_obj: Any = None,
                         **kwargs: Any) -> AsyncIterator[dict]:
        router, backend, request, metadata = self._request(model, messages, optional_params, litellm_params)
        routed = router.astream(request, backend)
        _attach(logging_obj, routed.result)  # live: the headers are built after the first chunk
        try:
            async for chunk in routed:
                for generic in generic_chunks(chunk):
                    yield generic
        except _REFUSED as exc:
            raise self._failed(exc, metadata) from None
        finally:
            await routed.aclose()
        yield finish_chunk(routed.result, self._publish(routed.result, metadata))

    def _failed(self, exc: Exception, metadata: dict) -> CustomLLMError:
        """The HTTP error for a refused or exhausted route; LiteLLM's failure log gets the record too."""
        result = getattr(exc, "result", None)
        if isinstance(result, RoutingResult):
            self._publish(result, metadata)
        return _http_error(exc)

    def completion(self, *args: Any, **kwargs: Any) -> Any:
        raise CustomLLMError(status_code=500, message="the tiered_router provider is async only (the proxy)")

    def streaming(self, *args: Any, **kwargs: Any) -> Iterator[dict]:
        raise CustomLLMError(status_code=500, message="the tiered_router provider is async only (the proxy)")


_REFUSED = (TierNotAllowedError, UnknownTierRequestError, LadderExhaustedError)


def _attach(logging_obj: Any, result: RoutingResult) -> None:
    if logging_obj is not None:
        setattr(logging_obj, ROUTE_ATTR, result)


def _http_error(exc: Exception) -> CustomLLMError:
    if isinstance(exc, TierNotAllowedError):
        log.warning("refused tier request: %s", exc)
        detail = {"error": "tier_not_allowed", "message": str(exc), "tier": exc.tier[:80], "caller": exc.caller}
        return CustomLLMError(status_code=403, message=json.dumps(detail))
    if isinstance(exc, UnknownTierRequestError):  # the caller's mistake: 400, with the names it may use
        detail = {"error": "unknown_tier", "message": str(exc), "tier": exc.tier[:80], "tiers": exc.tiers}
        return CustomLLMError(status_code=400, message=json.dumps(detail))
    assert isinstance(exc, LadderExhaustedError)
    attempts = record_from_result(exc.result).attempts if exc.result is not None else []
    detail = {"error": "ladder_exhausted", "message": str(exc), "attempts": attempts}
    return CustomLLMError(status_code=502, message=json.dumps(detail))


def _generic(text: str = "", tool_use: dict | None = None) -> dict:
    return {"text": text, "is_finished": False, "finish_reason": "", "usage": None, "index": 0, "tool_use": tool_use}


def generic_chunks(chunk: Any) -> Iterator[dict]:
    """LiteLLM generic stream chunks for one chunk of the served answer: a tier's stream
    chunk (its text and tool-call deltas; usage and finish come in ``finish_chunk``) or
    an answer that came whole."""
    if isinstance(chunk, TierAnswer):
        if chunk.text:
            yield _generic(chunk.text)
        for i, call in enumerate(chunk.tool_calls):
            yield _generic(tool_use={"id": call.get("id") or f"call_{i}", "type": "function", "index": i,
                                     "function": {"name": call.get("name"),
                                                  "arguments": json.dumps(call.get("args") or {})}})
        return
    for choice in getattr(chunk, "choices", None) or []:
        delta = getattr(choice, "delta", None)
        if delta is None:
            continue
        if getattr(delta, "content", None):
            yield _generic(delta.content)
        for call in getattr(delta, "tool_calls", None) or []:
            fn = getattr(call, "function", None)
            yield _generic(tool_use={"id": getattr(call, "id", None), "type": "function",
                                     "index": getattr(call, "index", 0) or 0,
                                     "function": {"name": getattr(fn, "name", None),
                                                  "arguments": getattr(fn, "arguments", None) or ""}})


def finish_chunk(result: RoutingResult, summary: dict[str, Any]) -> dict:
    """The last chunk: finish reason, the served attempt's usage, the routing record."""
    answer = result.answer
    usage = answer.usage if answer is not None else None
    prompt = (usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens) if usage else 0
    completion = usage.output_tokens if usage else 0
    return {"text": "", "is_finished": True, "finish_reason": (answer.stop_reason if answer else None) or "stop",
            "index": 0, "tool_use": None,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            "provider_specific_fields": {"tiered_router": summary}}
