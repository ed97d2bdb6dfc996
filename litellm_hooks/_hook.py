"""The LiteLLM proxy callback: route requests for tiered models with the core.

Seams used (litellm 1.110.2), each for one job:

* ``async_pre_call_hook`` - routes. A stream whose route has no gate goes straight
  through: the start tier is chosen (pin, classifier, a permitted tier request)
  and ``data["model"]`` is rewritten to that tier's model group. Anything else is
  routed in full by the core ``Router`` - attempts, gates, escalation, retries,
  telemetry - each call going through the proxy's own router; the answer waits in
  the route table for the ``tiered_router`` provider to serve it.
* ``async_post_call_response_headers_hook`` - the ``x-tiered-router-*`` headers.
* ``async_post_call_streaming_iterator_hook`` - records a stream that went straight
  through once it ends (tokens, cost, baseline).

A forbidden tier request is refused with 403 (``access.on_forbidden: reject``) or
ignored and logged; a ladder exhausted under ``on_exhausted: raise`` is a 502 whose
body lists every attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, AsyncGenerator

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from langchain_tiered_router.core import LadderExhaustedError, TierAnswer, TierNotAllowedError, TransportError

from ._convert import transport_error_from_litellm, usage_from_litellm
from ._request import route_request_from_proxy
from ._response import routing_headers, routing_summary
from ._routes import ROUTES, RouteEntry, RouteTable
from ._settings import RouterSet, tiered_source_for

__all__ = ["TieredRouterHook", "ROUTE_ID_KEY", "proxy_llm_router"]

log = logging.getLogger("litellm_hooks")

ROUTE_ID_KEY = "tiered_router_route_id"
_CHAT_CALL_TYPES = frozenset({"completion", "acompletion"})


def proxy_llm_router() -> Any:
    """The proxy's ``llm_router``, read at call time: the proxy builds it after
    loading the callbacks, and rebuilds it when models change."""
    from litellm.proxy import proxy_server

    return proxy_server.llm_router


def _route_id(data: Any) -> str | None:
    meta = data.get("metadata") if isinstance(data, dict) else None
    return meta.get(ROUTE_ID_KEY) if isinstance(meta, dict) else None


class TieredRouterHook(CustomLogger):
    """Register as ``litellm_settings.callbacks: litellm_hooks.proxy_handler_instance``."""

    def __init__(self, routers: RouterSet | None = None, table: RouteTable = ROUTES, **kwargs: Any):
        super().__init__(**kwargs)
        self.routers = routers or RouterSet(proxy_llm_router)
        self.table = table

    # -- routing -------------------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> Any:
        if call_type not in _CHAT_CALL_TYPES:
            return data
        source = tiered_source_for(proxy_llm_router(), data.get("model"))
        if source is None:
            return data
        router, backend = self.routers.get(source)
        allowed = sorted(router.allow_tier_request)
        request = route_request_from_proxy(data, user_api_key_dict, allowed)
        metadata = data.setdefault("metadata", {})
        route_id = uuid.uuid4().hex
        metadata[ROUTE_ID_KEY] = route_id
        stream = bool(data.get("stream"))
        try:
            if stream and router.streams_through(request):
                started = await router.abegin(request, backend)
                include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
                entry = RouteEntry(source, started=started, stream=True, include_usage=include_usage)
                data["model"] = backend.group(started.tier)
                data["stream_options"] = {**(data.get("stream_options") or {}), "include_usage": True}
                summary = routing_summary(started.result, streamed_through=True)
            else:
                result = await router.aroute(request, backend)
                entry = RouteEntry(source, result=result, stream=stream)
                summary = routing_summary(result)
        except TierNotAllowedError as exc:
            log.warning("refused tier request: %s", exc)
            raise HTTPException(status_code=403, detail={
                "error": "tier_not_allowed", "message": str(exc), "tier": exc.tier, "caller": exc.caller}) from None
        except LadderExhaustedError as exc:
            attempts = exc.result.to_metadata()["attempts"] if exc.result is not None else []
            raise HTTPException(status_code=502, detail={
                "error": "ladder_exhausted", "message": str(exc), "attempts": attempts}) from None
        if request.metadata.get("ignored_tier_request"):
            summary["ignored_tier_request"] = request.metadata["ignored_tier_request"]
        entry.summary = summary
        self.table.put(route_id, entry)
        # LiteLLM's standard logging payload (and so its spend logs and callbacks)
        # carries spend_logs_metadata as is.
        spend_meta = metadata.get("spend_logs_metadata")
        metadata["spend_logs_metadata"] = {**(spend_meta if isinstance(spend_meta, dict) else {}),
                                           "tiered_router": summary}
        return data

    # -- response headers ------------------------------------------------------------

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: dict | None = None,
                                                    litellm_call_info: dict | None = None) -> dict | None:
        entry = self.table.release(_route_id(data))
        if entry is None:
            return None
        return routing_headers(entry.routing, streamed_through=entry.started is not None)

    # -- streams passed straight through ---------------------------------------------

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> AsyncGenerator[Any, None]:
        route_id = _route_id(request_data)
        entry = self.table.get(route_id)
        if entry is None or entry.started is None:
            async for chunk in response:
                yield chunk
            return
        router, backend = self.routers.get(entry.config_key)
        started, began = entry.started, time.perf_counter()
        texts: list[str] = []
        usage = None
        finish_reason = None
        try:
            async for chunk in response:
                chunk_usage = getattr(chunk, "usage", None)
                if chunk_usage is not None:
                    usage = chunk_usage
                for choice in getattr(chunk, "choices", None) or []:
                    delta = getattr(choice, "delta", None)
                    if delta is not None and getattr(delta, "content", None):
                        texts.append(delta.content)
                    finish_reason = getattr(choice, "finish_reason", None) or finish_reason
                if chunk_usage is not None and not getattr(chunk, "choices", None) and not entry.include_usage:
                    continue  # the usage chunk we asked for on the client's behalf
                yield chunk
        except Exception as exc:
            tier, model_id = started.tier.name, started.tier.model_id
            mapped = transport_error_from_litellm(exc, tier=tier, model_id=model_id)
            if texts or isinstance(mapped, TransportError):
                # A stream that broke after it began was cut, whatever LiteLLM calls the break.
                kind = "stream_cut" if texts else mapped.kind  # type: ignore[union-attr]
                error: Exception = TransportError(str(exc), tier=tier, model_id=model_id, kind=kind, cause=exc)
            else:
                error = mapped if mapped is not None else exc
            router.finish(started, backend, error=error, latency_ms=(time.perf_counter() - began) * 1000)
            self.table.release(route_id)
            raise
        except (GeneratorExit, asyncio.CancelledError) as exc:  # the client hung up: still one record
            router.finish(started, backend, error=exc, latency_ms=(time.perf_counter() - began) * 1000)
            self.table.release(route_id)
            raise
        answer = TierAnswer(text="".join(texts), usage=usage_from_litellm(usage), model_id=started.tier.model_id,
                            stop_reason=finish_reason)
        router.finish(started, backend, answer=answer, latency_ms=(time.perf_counter() - began) * 1000)
        self.table.release(route_id)
