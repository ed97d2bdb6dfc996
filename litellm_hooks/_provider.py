"""The ``tiered_router`` LiteLLM provider: where a proxy request is routed.

Declared in the proxy's ``custom_provider_map``; a model whose ``litellm_params.model``
is ``tiered_router/<name>`` is what clients call. LiteLLM hands the provider the
messages, the chat parameters (with the deployment's ``tiered_router_config``) and the
call's metadata, which carries the caller's key alias, team and user and the request
headers; the provider routes with the core ``Router``, each tier call going through
the proxy's own router (its rate limits, logging and spend tracking still apply).

* ``acompletion``: ``Router.aroute``; the served tier's response comes back with a
  ``tiered_router`` field, its cost set to the whole routed cost and its usage to every
  attempt's tokens (``_accounting``: what LiteLLM logs and bills, once, to the caller).
* ``astreaming``: ``Router.astream``; chunks from a tier with no gate pass straight
  through as they arrive, a gated answer is replayed once it passed, and the last
  chunk carries the usage and the routing record.

Each tier call goes through the proxy's own router (deployment choice, its retries and
cooldowns) marked ``no-log``: the routed request is the one LiteLLM logs. Nothing is
kept between requests but the routers (one per router YAML, built when the provider
is loaded). The routing of one request is attached to that request's LiteLLM logging
object, where the ``TieredRouterHook`` reads it to add the ``x-tiered-router-*`` headers.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, Mapping

from litellm import CustomLLM
import litellm.constants
from litellm.llms.custom_llm import CustomLLMError

from langchain_tiered_router.core import (ConfigError, LadderExhaustedError, RouteRequest, RoutingResult, TierAnswer,
                                          TierNotAllowedError)
from langchain_tiered_router.core.errors import (GateFailed, MalformedReplyError, TierCallError,
                                                  UnknownTierRequestError)
from langchain_tiered_router.core.telemetry.record import record_from_result

from ._accounting import bill_on_logging_object, mark_routed, publish_route, routed_usage
from ._preload import preload_first_request
from ._response import routing_headers
from ._request import BadChatRequest, route_request_from_call
from ._settings import CONFIG_ENV, RouterSet, provider_config_source, proxy_llm_router

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
        self.routers = routers or RouterSet(proxy_llm_router, log_tier_calls=False)
        self._sources: dict[tuple[str, str, str | None], str] = {}
        if routers is None:  # loaded by the proxy: the first request must not pay for building or loading
            self.routers.prebuild_from_proxy_config()
            preload_first_request()

    def _source(self, model: str, params: Mapping[str, Any]) -> str:
        """The router YAML of a call, resolved once per deployment (it reads the file system)."""
        key = (model, str(params.get("tiered_router_config")), os.environ.get(CONFIG_ENV))
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = provider_config_source(model, params)
        return source

    def _request(self, model: str, messages: list, optional_params: Mapping[str, Any] | None,
                 litellm_params: Mapping[str, Any] | None, timeout: Any = None) -> tuple[Any, Any, RouteRequest, dict]:
        params = dict(optional_params or {})
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
            # the client's (or the deployment's) timeout, which LiteLLM hands over apart: each tier call's
            params.setdefault("timeout", float(timeout))
        for name in ("drop_params", "additional_drop_params"):  # LiteLLM hands these over apart; each tier needs them
            value = (litellm_params or {}).get(name)
            if value is not None and name not in params:
                params[name] = value
        try:
            router, backend = self.routers.get(self._source(model, params))
        except ConfigError as exc:
            raise misconfigured(exc, model) from None
        metadata = (litellm_params or {}).get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        return router, backend, self.route_request(messages, params, metadata), metadata

    @staticmethod
    def route_request(messages: list, params: Mapping[str, Any], metadata: Mapping[str, Any]) -> RouteRequest:
        """The core's request for a proxy call; a bad ``response_format`` schema is the client's 400."""
        try:
            return route_request_from_call(messages, params, metadata)
        except BadChatRequest as exc:
            raise CustomLLMError(status_code=400, message=json.dumps({"error": exc.code, "message": str(exc)})) \
                from None
        except ConfigError as exc:
            detail = {"error": "bad_response_format", "message": str(exc)[:500]}
            raise CustomLLMError(status_code=400, message=json.dumps(detail)) from None

    @staticmethod
    def _publish(result: RoutingResult, metadata: dict) -> dict[str, Any]:
        return publish_route(result, metadata, metadata.get("model_group"))

    def refusal(self, exc: BaseException, metadata: dict, logging_obj: Any, proxy_model: str | None
                ) -> BaseException:
        """The error the client gets for a route that ended without an answer: the HTTP
        error of a refused or exhausted route, whose record, routed cost and tokens go to
        LiteLLM's failure log, billed to the caller; any other error as it is."""
        if not isinstance(exc, _REFUSED):
            return exc
        result = getattr(exc, "result", None)
        error = _http_error(exc)
        if isinstance(result, RoutingResult):
            publish_route(result, metadata, proxy_model)
            bill_on_logging_object(logging_obj, result)
            # the error response's x-tiered-router-* headers: LiteLLM sends an error's own headers
            error.headers = routing_headers(result)  # type: ignore[attr-defined]
        wait = ending_retry_after(exc) if isinstance(exc, LadderExhaustedError) else None
        if wait is not None:  # the tier's own wait (Bedrock's Retry-After), for the client's backoff
            error.headers = {**(getattr(error, "headers", None) or {}), "retry-after": str(math.ceil(wait))}
        return error

    @staticmethod
    def attach(logging_obj: Any, result: RoutingResult) -> None:
        _attach(logging_obj, result)

    async def acompletion(self, model: str, messages: list, *args: Any, optional_params: dict | None = None,
                          litellm_params: dict | None = None, logging_obj: Any = None, **kwargs: Any) -> Any:
        router, backend, request, metadata = self._request(model, messages, optional_params, litellm_params,
                                                           kwargs.get("timeout"))
        if is_health_probe(metadata):
            return await probe(router, backend, request)
        try:
            result = await router.aroute(request, backend)
        except _REFUSED as exc:
            raise self._failed(exc, metadata, logging_obj) from None
        _attach(logging_obj, result)
        summary = self._publish(result, metadata)
        # on the logging object too: LiteLLM drops the response's own cost when it reshapes
        # the answer for another endpoint (``/v1/completions`` re-prices the routed tokens)
        bill_on_logging_object(logging_obj, result)
        return mark_routed(copy.copy(result.answer.raw), result, summary)  # type: ignore[union-attr]

    async def astreaming(self, model: str, messages: list, *args: Any, optional_params: dict | None = None,
                         litellm_params: dict | None = None, logging_obj: Any = None,
                         **kwargs: Any) -> AsyncIterator[dict]:
        router, backend, request, metadata = self._request(model, messages, optional_params, litellm_params,
                                                           kwargs.get("timeout"))
        routed = router.astream(request, backend)
        _attach(logging_obj, routed.result)  # live: the headers are built after the first chunk
        # The routing record comes on a last chunk of empty text, which LiteLLM's Messages
        # API turns into an empty text block when the answer ended in a tool call: so a
        # tool-call chunk is held back until the next chunk comes (text goes out at once),
        # and the answer's last one carries the record.
        held: dict | None = None
        try:
            async for chunk in routed:
                for generic in generic_chunks(chunk):
                    if held is not None:
                        yield held
                        held = None
                    if generic["tool_use"] is not None:
                        held = generic
                    else:
                        yield generic
        except _REFUSED as exc:
            raise self._failed(exc, metadata, logging_obj) from None
        except BaseException:  # the client went away: what was spent is billed all the same
            await routed.aclose()  # records the interrupted attempt first
            self._publish(routed.result, metadata)
            bill_on_logging_object(logging_obj, routed.result)
            raise
        finally:
            await routed.aclose()
        summary = self._publish(routed.result, metadata)
        bill_on_logging_object(logging_obj, routed.result)  # LiteLLM cannot price a tiered_router stream
        finish = finish_chunk(routed.result, summary)
        if held is not None:
            held["provider_specific_fields"] = finish.pop("provider_specific_fields")
            yield held
        yield finish

    def _failed(self, exc: Exception, metadata: dict, logging_obj: Any) -> BaseException:
        return self.refusal(exc, metadata, logging_obj, metadata.get("model_group"))

    def completion(self, *args: Any, **kwargs: Any) -> Any:
        raise CustomLLMError(status_code=500, message="the tiered_router provider is async only (the proxy)")

    def embedding(self, model: str, *args: Any, **kwargs: Any) -> Any:
        raise _chat_only(model, "embeddings")

    async def aembedding(self, model: str, *args: Any, **kwargs: Any) -> Any:
        raise _chat_only(model, "embeddings")

    def image_generation(self, model: str, *args: Any, **kwargs: Any) -> Any:
        raise _chat_only(model, "image generation")

    async def aimage_generation(self, model: str, *args: Any, **kwargs: Any) -> Any:
        raise _chat_only(model, "image generation")

    def streaming(self, *args: Any, **kwargs: Any) -> Iterator[dict]:
        raise CustomLLMError(status_code=500, message="the tiered_router provider is async only (the proxy)")


_REFUSED = (TierNotAllowedError, UnknownTierRequestError, LadderExhaustedError)
# The account LiteLLM's health checks run as (spelled so in LiteLLM's constants).
HEALTH_ACCOUNT = getattr(litellm.constants, "LITTELM_INTERNAL_HEALTH_SERVICE_ACCOUNT_NAME",
                         "litellm-internal-health-check")


def is_health_probe(metadata: Mapping[str, Any]) -> bool:
    """LiteLLM's own health check (``/health``, background checks): its calls carry the
    proxy's health-check service account as key alias and team, which no client sets."""
    return (metadata.get("user_api_key_alias") == HEALTH_ACCOUNT
            and metadata.get("user_api_key_team_id") == HEALTH_ACCOUNT)


async def probe(router: Any, backend: Any, request: RouteRequest) -> Any:
    """A health check asks whether the model can answer, not for a routed answer: each
    tier is tried in turn, cheapest first, until one answers (as the router passes over
    a tier that is down), with no gate and no record. Routing it would escalate the
    check's one-word prompt through gates made for real requests, at up to every tier's
    price per check, and count it as traffic in the savings report. The tier calls are
    LiteLLM's own health-check calls; a ladder where no tier answers is unhealthy."""
    failure: Exception | None = None
    for tier in router.ladder:
        try:
            answer = await backend.acall(tier, request)
        except TierCallError as exc:
            failure = exc
            continue
        return copy.copy(answer.raw)
    raise failure or CustomLLMError(status_code=500, message="the ladder has no tier")


def _attach(logging_obj: Any, result: RoutingResult) -> None:
    if logging_obj is not None:
        setattr(logging_obj, ROUTE_ATTR, result)


def _chat_only(model: str, what: str) -> CustomLLMError:
    """A tiered model routes chat: another kind of call is the client's 400, not LiteLLM's
    500 "Not implemented yet!"."""
    detail = {"error": "unsupported_call", "model": model,
              "message": f"a tiered model routes chat completions, not {what}: call a deployment for that"}
    return CustomLLMError(status_code=400, message=json.dumps(detail))


def misconfigured(exc: ConfigError, model: str) -> CustomLLMError:
    """A tiered model whose router YAML cannot be loaded: the operator's error, a 500
    that names it (LiteLLM reports an error without a status as a bug of its own)."""
    log.error("tiered model %s is misconfigured: %s", model, exc)
    message = str(exc)
    if exc.source:  # the client gets the file's name, not the proxy's folders (LiteLLM redacts those on some
        message = message.replace(exc.source, Path(exc.source).name)  # routes only: /v1/messages passed them)
    detail = {"error": "router_misconfigured", "model": model, "message": message[:1000]}
    if exc.source:
        detail["config_file"] = Path(exc.source).name
        detail["key"] = exc.path or None
        detail["hint"] = "the router YAML of litellm_params.tiered_router_config; the proxy's log names its path"
    return CustomLLMError(status_code=500, message=json.dumps(detail))


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
    status, ended_on = ending_status(exc)
    detail = {"error": "ladder_exhausted", "message": str(exc), "ended_on": ended_on, "attempts": attempts,
              "request_id": exc.result.request_id if exc.result is not None else None}
    return CustomLLMError(status_code=status, message=json.dumps(detail))


# The status a plain deployment answers the upstream failure with (LiteLLM's mapping of
# Bedrock's errors), by the core's kind of the tier call that ended the ladder.
_UPSTREAM_STATUS = {"throttled": 429, "timeout": 408, "deadline": 408, "context_window": 400, "validation": 400}


def _ending_error(exc: LadderExhaustedError) -> tuple[Exception | None, bool]:
    """(the failure that ended the ladder, whether a tier after it was passed over with its
    circuit open): a tier passed over is not a call, the call before it ended the ladder."""
    passed_over = False
    for error in reversed(exc.exceptions):
        if isinstance(error, GateFailed):
            return error, passed_over
        if not isinstance(error, TierCallError):
            continue
        if getattr(error, "kind", None) == "circuit_open" and error.cause is None:
            passed_over = True
            continue
        return error, passed_over
    return None, passed_over


def ending_status(exc: LadderExhaustedError) -> tuple[int, str]:
    """(HTTP status, what ended the ladder) for an exhausted ladder: the status a plain
    deployment gives the last tier call's failure, so clients back off on a throttle
    (429), give up on a prompt over the context window or one the model refused (400)
    and retry a timeout (408) or an upstream 5xx as they would there; 503 when every
    tier left was passed over with its circuit open; 502 when no tier's answer passed a
    gate (``gate_failed``: plain would have served it) or the last failure has no such
    status (a reply that did not parse, a model not available, a connection refused)."""
    error, passed_over = _ending_error(exc)
    if error is None:
        return (503, "circuit_open") if passed_over else (502, "unknown")
    if isinstance(error, GateFailed):
        return 502, "gate_failed"
    kind = getattr(error, "kind", None) or ("malformed" if isinstance(error, MalformedReplyError) else "error")
    status = _UPSTREAM_STATUS.get(kind)
    upstream = getattr(getattr(error, "cause", None), "status_code", None)
    if status is None and kind == "server_error":
        status = upstream if isinstance(upstream, int) and 500 <= upstream <= 599 else 503
    return status or 502, kind


def ending_retry_after(exc: LadderExhaustedError) -> float | None:
    """The ``Retry-After`` (seconds) the throttled tier call that ended the ladder was
    given, for the client's 429; ``None`` when it was given none."""
    error, _ = _ending_error(exc)
    wait = getattr(error, "retry_after_s", None) if getattr(error, "kind", None) == "throttled" else None
    return wait if isinstance(wait, (int, float)) and wait > 0 else None


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
    """The last chunk: finish reason, every attempt's usage, the routing record."""
    answer = result.answer
    usage = routed_usage(result)
    return {"text": "", "is_finished": True, "finish_reason": (answer.stop_reason if answer else None) or "stop",
            "index": 0, "tool_use": None,
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": usage.total_tokens,
                      "prompt_tokens_details": usage.prompt_tokens_details.model_dump(exclude_none=True),
                      "completion_tokens_details": usage.completion_tokens_details.model_dump(exclude_none=True)},
            "provider_specific_fields": {"tiered_router": summary}}
