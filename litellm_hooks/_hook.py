"""The LiteLLM proxy callback: one-pass routing and the ``x-tiered-router-*`` headers.

Routing happens here for a chat request to a tiered model (unless it is marked
``tiered_router_one_pass: false``): the pre-call step starts the route and hands its
first attempt to the proxy's own call, the post-call steps give that call's response,
stream (the streaming iterator) or error back to the route (``_one_pass.py``,
``_stream_handoff.py``); the response and stream steps run first of the proxy's
callbacks (``_ResponseSide``), the pre-call step last. The models switched off are routed by the ``tiered_router``
provider (``_provider.py``).

A provider can add no plain response header of its own (LiteLLM prefixes provider
headers with ``llm_provider-``), so ``async_post_call_response_headers_hook`` reads the
routing attached to the request's logging object and turns it into headers. For a
stream the proxy asks after the first chunk is in, so the tier streaming (or, for a
gated route, the whole routing) is known by then.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator

import litellm
from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from langchain_tiered_router.core.errors import ConfigError

from ._convert import client_content_error
from ._one_pass import OnePassRoutes, provider_path
from ._provider import attached_route
from ._request import asks_a_tier
from ._response import HEADER_PREFIX, routing_headers
from ._settings import deployments, proxy_llm_router, tiered_config_source

__all__ = ["TieredRouterHook", "runs_after_the_other_pre_call_checks"]

log = logging.getLogger("litellm_hooks")

_MODELS_CACHED = 1024  # model names whose kind is remembered (a proxy serves far fewer)


class TieredRouterHook(CustomLogger):
    """Register as ``litellm_settings.callbacks: litellm_hooks.proxy_handler_instance``."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._one_pass: OnePassRoutes | None = None
        self._routed_models: dict[tuple[int, str], bool] = {}
        self._response_side = _ResponseSide(self)

    def _routes(self) -> OnePassRoutes:
        if self._one_pass is None:
            self._one_pass = OnePassRoutes(_loaded_provider)
        return self._one_pass

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> Any:
        if not runs_after_the_other_pre_call_checks(self):
            return None  # once, after a start: the provider's path while this hook moves to the end
        if call_type not in ("completion", "acompletion") or not isinstance(data, dict):
            return None
        routes = self._routes()
        llm_router = proxy_llm_router()
        source = routes.target(llm_router, data.get("model"))
        if source is None:
            if self._routed(llm_router, data.get("model")):
                _stream_as_the_proxy_reads_it(data)
                provider_path(data)
                if asks_a_tier(data):
                    _skip_cache_lookup(data)
            return None
        _first_in_callbacks(self._response_side)
        _stream_as_the_proxy_reads_it(data)
        return await routes.start(data, source, llm_router)

    def _routed(self, llm_router: Any, model: Any) -> bool:
        """Whether ``model`` is a tiered model (the provider serves it), once per model."""
        if llm_router is None or not isinstance(model, str):
            return False
        key = (id(llm_router), model)
        known = self._routed_models.get(key)
        if known is None:
            if len(self._routed_models) >= _MODELS_CACHED:  # clients may send any name: bounded
                self._routed_models.clear()
            known = self._routed_models[key] = _routed_model({"model": model})
        return known

    async def log_failure_fallback_event(self, original_model_group: str, kwargs: dict,
                                         original_exception: Exception) -> None:
        """LiteLLM's router tried one of a one-pass request's fallback tiers and it failed."""
        if self._one_pass is not None:
            try:
                self._one_pass.fallback_failed(kwargs)
            except Exception:  # noqa: BLE001 - bookkeeping for the record: never the request's failure
                log.exception("could not note a failed fallback")

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> Any:
        """A one-pass request's error is its first attempt's outcome; an image URL of a
        routed request that LiteLLM could not fetch is the client's 400, not the 500 LiteLLM
        makes of it (it is neither retried, escalated nor held against the tier). The error
        the client gets carries the route's ``x-tiered-router-*`` headers, plain."""
        pending = self._one_pass.fail(request_data, original_exception) if self._one_pass is not None else None
        one_pass = pending is not None
        if pending is not None:  # the error is LiteLLM's, after its fallbacks: the route's headers join it
            result = await OnePassRoutes.ended(pending)
            if result is not None:
                _add_route_headers(original_exception, routing_headers(result))
        else:
            _plain_route_headers(original_exception)
        message = client_content_error(original_exception)
        if message is None or not (one_pass or _routed_model(request_data)):
            return None
        return HTTPException(status_code=400, detail={"error": {
            "message": message, "type": "invalid_request_error", "code": "content_not_fetched"}})

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: dict | None = None,
                                                    litellm_call_info: dict | None = None) -> dict | None:
        if self._one_pass is not None and isinstance(data, dict) and data.get("stream") is True:
            await self._one_pass.handoff(data, response)  # a streamed route runs to its first chunk
        logging_obj = data.get("litellm_logging_obj") if isinstance(data, dict) else None
        result = attached_route(logging_obj) or attached_route(getattr(response, "logging_obj", None))
        if result is None:
            return None
        headers = routing_headers(result)
        if self._one_pass is not None and isinstance(data, dict) and data.get("stream") is True:
            headers.update(self._one_pass.deployment_headers(data, result))  # LiteLLM's named the first tier's
            _no_first_call_cost(logging_obj)
        return headers


class _ResponseSide(CustomLogger):
    """The one-pass response steps, first in ``litellm.callbacks`` (the hook itself runs
    last, after the other pre-call checks): the served answer replaces the first tier's
    before any other callback's post-call step reads it (an output guardrail masks what
    the client gets, not a gate-failed answer), and a streamed route is the stream the
    other callbacks wrap. Put there by the hook when it starts its first one-pass route."""

    def __init__(self, hook: "TieredRouterHook"):
        super().__init__()
        self._hook = hook

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        one_pass = self._hook._one_pass
        return await one_pass.finish(data, response) if one_pass is not None else None

    def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                request_data: dict) -> AsyncIterator[Any]:
        """The route's stream for a streamed one-pass request; any other stream is handed
        back as it is (LiteLLM iterates what this returns: no extra step per chunk)."""
        one_pass = self._hook._one_pass
        if one_pass is None or not one_pass.routes_stream(request_data):
            return response
        return one_pass.stream(request_data, response)


def _no_first_call_cost(logging_obj: Any) -> None:
    """A streamed one-pass route's headers go out before its served stream has ended, so
    its cost is not known yet; LiteLLM would send the cost breakdown of the proxy's own
    call (the first tier's, at the cost map's prices) as the response's. It is dropped
    here, before the headers are built; the routed cost is billed as the stream ends."""
    if logging_obj is not None and getattr(logging_obj, "finalized_cost", None) is None \
            and getattr(logging_obj, "cost_breakdown", None) is not None:
        logging_obj.cost_breakdown = None


def _plain_route_headers(exc: Exception) -> None:
    """The provider's error for a refused route carries the ``x-tiered-router-*`` headers
    (and ``x-should-retry``), which LiteLLM hands the client prefixed ``llm_provider-``
    as any provider's; its error response takes an error's own ``headers`` as they are,
    so they are set there (read after this hook)."""
    carried = getattr(exc, "litellm_response_headers", None)
    if getattr(exc, "headers", None) or not carried:
        return
    try:
        if any(str(name).lower().startswith(HEADER_PREFIX) for name in carried):
            exc.headers = dict(carried)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an error type that takes no attribute, headers of another shape
        return


def _add_route_headers(exc: Exception, routing: dict[str, str]) -> None:
    """The route's ``x-tiered-router-*`` headers on an error of LiteLLM's own (a first tier
    call that failed after LiteLLM's retries and fallbacks), beside the headers LiteLLM
    gives it from the provider's reply (``llm_provider-*``, rate limits)."""
    own = getattr(exc, "headers", None)
    try:
        if isinstance(own, dict):
            own.update(routing)
            return
        carried = getattr(exc, "litellm_response_headers", None)
        exc.headers = {**(_provider_headers(carried) if carried else {}), **routing}  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):  # an error type that takes no attribute, headers of another shape
        return


def _provider_headers(carried: Any) -> dict[str, str]:
    """The headers LiteLLM's error response makes of a provider's reply headers (it reads
    an error's own ``headers`` instead, once set)."""
    try:
        from litellm.litellm_core_utils.llm_response_utils.get_headers import get_response_headers
    except ImportError:  # a LiteLLM that keeps it elsewhere: the route's headers alone
        return {}
    return get_response_headers(dict(carried))


def _stream_as_the_proxy_reads_it(data: dict) -> None:
    """A routed request's ``stream`` as the bool the proxy acts on: it streams only for
    ``True`` (``"false"``, ``"yes"`` or ``1`` answer whole), while the provider and the
    route read any truthy value as a stream. Left as sent, a ``"false"`` was routed as a
    stream the proxy never read, and the client got the first tier's answer unjudged."""
    if "stream" in data and not isinstance(data["stream"], bool):
        data["stream"] = False


def _skip_cache_lookup(data: dict) -> None:
    """A request that asks for a tier must reach the router, which checks who may ask and
    calls that tier: on the provider's path LiteLLM's response cache would answer it
    with another request's routed answer (one pass caches each tier call on its own)."""
    cache = data.get("cache")
    data["cache"] = {**(cache if isinstance(cache, dict) else {}), "no-cache": True}


def _first_in_callbacks(side: CustomLogger) -> None:
    callbacks = litellm.callbacks
    if callbacks and callbacks[0] is side:
        return
    if any(cb is side for cb in callbacks):
        callbacks.remove(side)
    callbacks.insert(0, side)


def runs_after_the_other_pre_call_checks(hook: CustomLogger) -> bool:
    """Whether every other pre-call step of the proxy (its rate limiters, budget and
    guardrail checks) runs before ``hook``; if not, ``hook`` moves to the end of
    ``litellm.callbacks`` and answers False for this request.

    One-pass routing rewrites the request into a call of the first tier: a check that
    ran after it would judge a call of that tier, not of the model the client called (a
    key's rpm limit on ``tiered`` passed over, one on ``cheap`` applied). The proxy adds
    its own hooks after the config's callbacks, so the first request finds this one
    ahead of them (whatever it asks for); if it is a routed one it takes the provider's
    path, where the model is never rewritten."""
    callbacks = litellm.callbacks
    position = next((i for i, cb in enumerate(callbacks) if cb is hook), None)
    if position is None:
        return True  # not called by the proxy's own loop: nothing runs after it
    if not any(_checks_before_calls(cb) for cb in callbacks[position + 1:]):
        return True
    callbacks.append(callbacks.pop(position))
    log.info("tiered router hook moved after the proxy's other pre-call checks; this request takes the "
             "provider's path")
    return False


def _checks_before_calls(callback: Any) -> bool:
    if isinstance(callback, str):
        return True  # not resolved yet: it may be a check
    own = getattr(type(callback), "async_pre_call_hook", None)
    return isinstance(callback, CustomLogger) and own is not None and own is not CustomLogger.async_pre_call_hook


def _routed_model(data: Any) -> bool:
    """Whether the request called a tiered model (served by the provider)."""
    model = data.get("model") if isinstance(data, dict) else None
    llm_router = proxy_llm_router()
    if llm_router is None or not isinstance(model, str):
        return False
    try:
        return any(tiered_config_source(d.get("litellm_params")) for d in deployments(llm_router, model))
    except ConfigError:
        return True  # a tiered model missing its router YAML is still one


def _loaded_provider() -> Any:
    """The provider instance the proxy loaded from its ``custom_provider_map``."""
    import litellm_hooks

    return litellm_hooks.tiered_router_provider
