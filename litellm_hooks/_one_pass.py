"""One pass through LiteLLM per attempt: the proxy's own call is the route's first attempt.

A tiered model served by the ``tiered_router`` provider costs every routed request two
passes through LiteLLM's request path (the proxy's call of ``tiered``, then the
provider's call of the tier). A chat request takes one instead, unless the model's
``litellm_params`` say ``tiered_router_one_pass: false``:

* the hook's pre-call step starts the core ``Router``'s route for the request; when the
  engine asks for its first attempt, the request is rewritten to that tier's model group
  (and the tier's parameters), and the proxy makes that call itself, with everything it
  does for any call: the caller's limits and budget, the deployment's retries, logging;
* the post-call step hands the proxy's response to the engine as that attempt's answer.
  The engine judges it; when a gate fails, the next tiers are called through the proxy's
  router as the provider calls them (``no-log``). The response the client gets, and the
  one event LiteLLM logs, carry the served answer, the routed cost and every attempt's
  tokens (``_accounting``), like the provider's;
* a streamed request's proxy call streams: the response-headers step hands that stream
  to the engine's stream and runs it to its first chunk (so the headers describe the
  routing), and the streaming iterator gives the client the route's chunks: the tier's
  own as they come when no gate needs the whole answer, else the served answer once it
  passed (``_stream_handoff``). LiteLLM logs the request once the route is billed.

What differs from the provider: the proxy's own call is retried by LiteLLM's router
(``num_retries`` is the router YAML's ``retry.max_retries`` unless the client set it),
and, when the router YAML escalates a tier that stays down (``retry.on_exhausted:
escalate``, the default), the tiers above are that call's LiteLLM ``fallbacks``: a first
tier still failing after its retries is passed over by LiteLLM's router, and the engine
is told so (a ``failed_over`` transport error for each group passed over, the fallback's
answer as the next attempt's), then judges that answer as any other. The fallbacks are
set only where they call what the engine would: not when the operator configured some
for that group, or a tier above has other parameters than the first. A request with the
client's own ``fallbacks``, every request of a tiered model the operator configured
``fallbacks`` for, every request of a router with a request deadline, and a request whose
content LiteLLM fetches by URL, takes the provider's path (``_needs_the_provider``). An error after all of that is the request's error; the engine records it but
neither retries nor escalates, since the proxy has already answered the client; so is
a streamed call that breaks. From the pre-call step to a post-call step, the route of
one request is kept under its ``litellm_call_id`` (LiteLLM hands the failure hook no
logging object), and is that request's only while it holds the request's own metadata
dict: a client may set the id (``x-litellm-call-id``), and a second request that reuses
one still in flight takes the provider's path. The response steps run first of the
proxy's callbacks (``_hook._ResponseSide``), so another callback's post-call step (an
output guardrail) reads the served answer.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

from langchain_tiered_router.core import Backend, RouteRequest, RoutingResult, TierAnswer, TierStream
from langchain_tiered_router.core.engine import AsyncRoutedStream
from langchain_tiered_router.core.errors import ConfigError, TierCallError, TransportError
from langchain_tiered_router.core.tiers import Tier

from ._accounting import bill_on_logging_object, mark_routed, publish_route
from ._backend import LiteLLMRouterBackend
from ._convert import answer_from_response, failure_kind, retries_made
from ._provider import misconfigured
from ._settings import (ONE_PASS_PARAM, PROVIDER, check_deployment, deployments, one_pass_switch,
                        tiered_config_source)
from ._stream_handoff import (HandoffStream, ProxyStream, client_chunks, delivered_error, log_failure, usage_chunk,
                              wants_usage)

__all__ = ["ONE_PASS_PARAM", "OnePassRoutes", "provider_path"]

log = logging.getLogger("litellm_hooks")

_NO_ANSWER_S = 900.0  # a proxy call neither hook saw end (a path LiteLLM added): the route gives up


class HandoffBackend(Backend):
    """The route's backend: its first attempt is handed to the proxy (``asked`` gets the
    tier and request; the post-call step sets ``answer``: the answer, or for a streamed
    request the proxy's stream); every other call goes through ``inner``, as on the
    provider's path."""

    # LiteLLM's router times the proxy's call (``timeout`` per try, its retries and
    # fallbacks after it) and the calls through ``inner``; a route here has no deadline
    # (``_needs_the_provider``). Timed by the engine too, an attempt still being retried
    # by LiteLLM was given up and made again through ``inner``.
    times_its_calls = True

    def __init__(self, inner: LiteLLMRouterBackend, *, streamed: bool = False):
        loop = asyncio.get_running_loop()
        self.inner, self.streamed = inner, streamed
        self.asked: asyncio.Future[tuple[Tier, RouteRequest]] = loop.create_future()
        self.answer: asyncio.Future[TierAnswer | ProxyStream] = loop.create_future()
        self.answered_with_error = False
        # What the proxy's call already got from tiers above the first (LiteLLM's
        # fallbacks): by tier name, an answer (or stream) or the error to raise when the
        # engine asks. The engine asks in ladder order, as the fallbacks ran; a tier it
        # skips instead (its circuit open, the deadline passed) leaves its outcome unread.
        self.outcomes: dict[str, TierAnswer | ProxyStream | TierCallError] = {}
        # Called with the routing as the route closes, before anything else runs on the
        # loop: a failed stream's record reaches LiteLLM's failure log in time.
        self.on_close: Callable[[RoutingResult], None] | None = None

    async def handed(self, tier: Tier, request: RouteRequest) -> TierAnswer | ProxyStream | None:
        """What the proxy's call got for ``tier`` (``None``: call it through ``inner``)."""
        if self.answered_with_error and tier.name not in self.outcomes:
            # the engine stops at a delivered error; nothing is called after it
            error = TierCallError("not called: the proxy answered the client with the first attempt's error",
                                  tier=tier.name, model_id=tier.model_id)
            error.delivered = True
            raise error
        if self.asked.done():
            outcome = self.outcomes.pop(tier.name, None)
            if isinstance(outcome, TierCallError):
                raise outcome
            return outcome
        self.asked.set_result((tier, request))
        async with asyncio.timeout(_NO_ANSWER_S):  # not wait_for: on 3.11 it can lose a cancellation
            return await asyncio.shield(self.answer)

    async def acall(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        outcome = await self.handed(tier, request)
        if isinstance(outcome, TierAnswer):
            return outcome
        return await self.inner.acall(tier, request)

    def stream(self, tier: Tier, request: RouteRequest, *, live: bool) -> TierStream:
        if self.streamed:
            return HandoffStream(self, tier, request, live)
        return super().stream(tier, request, live=live)

    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        return self.inner.call(tier, request)

    def ask(self, tier: Tier, prompt: str) -> TierAnswer:
        return self.inner.ask(tier, prompt)

    async def aask(self, tier: Tier, prompt: str) -> TierAnswer:
        return await self.inner.aask(tier, prompt)


def _notify_backend(result: RoutingResult, request: RouteRequest, backend: Backend) -> None:
    """The router's observer that hands a one-pass route's end to its backend."""
    if isinstance(backend, HandoffBackend) and backend.on_close is not None:
        backend.on_close(result)


class _Pending:
    """One request between the proxy's pre-call and post-call steps. A streamed one
    also holds the route's stream (``routed``, ``chunks``; ``task`` reads its first chunk)."""

    def __init__(self, task: asyncio.Future, backend: HandoffBackend, tier: Tier, metadata: dict, model: str,
                 llm_router: Any, fallbacks: list[Tier], tries: int):
        self.task, self.backend, self.tier, self.metadata, self.model = task, backend, tier, metadata, model
        self.llm_router, self.fallbacks = llm_router, fallbacks  # the tiers above, as LiteLLM fallbacks
        self.tries = tries  # LiteLLM's calls of a group before it falls over: 1 + the call's num_retries
        self.caller_timeout = False  # the caller shortened the call's timeout: its timeouts are the caller's
        self.routed: AsyncRoutedStream | None = None
        self.chunks: AsyncIterator[Any] | None = None
        self.client_usage = False  # the client asked for the usage chunk
        self.proxy: ProxyStream | None = None  # the proxy's stream of the first tier, once handed over
        self.extra_metadata: dict | None = None  # a fallback's call logs from its own copy of the metadata
        self.logging_obj: Any = None  # the logging object LiteLLM logs the stream on
        self.fallbacks_failed: list[str] = []  # the fallback groups LiteLLM tried that failed, in order


_RESERVED = object()  # a call id whose route is being started
_MODELS_CACHED = 1024  # model names whose route is remembered (a proxy serves far fewer)


class OnePassRoutes:
    """The hook's side of one-pass routing. ``provider`` is the ``tiered_router``
    provider the proxy loaded (or a function returning it): its routers (one per router
    YAML) serve both paths."""

    def __init__(self, provider: Any):
        self._provider = provider  # the provider, or a function returning it (read on the first one-pass request)
        self._targets: dict[tuple[int, str], str | None] = {}
        self._background: set[asyncio.Task] = set()
        self._pending: dict[str, _Pending | object] = {}  # by call id; ``_RESERVED`` while starting

    @property
    def provider(self) -> Any:
        if callable(self._provider) and not hasattr(self._provider, "routers"):
            self._provider = self._provider()
        return self._provider

    def target(self, llm_router: Any, model: Any) -> str | None:
        """The router YAML of a one-pass tiered model (``None``: any other model)."""
        if llm_router is None or not isinstance(model, str):
            return None
        key = (id(llm_router), model)
        if key not in self._targets:
            if len(self._targets) >= _MODELS_CACHED:  # clients may send any name: bounded
                self._targets.clear()
            try:
                self._targets[key] = _one_pass_source(llm_router, model)
            except ConfigError as exc:  # the operator's mistake: the documented 500 that names it
                raise misconfigured(exc, model) from None
        return self._targets[key]

    async def start(self, data: dict, source: str, llm_router: Any) -> dict:
        """Start the route; rewrite ``data`` into the proxy's call of the first tier."""
        logging_obj, call_id = data.get("litellm_logging_obj"), data.get("litellm_call_id")
        if logging_obj is None or not call_id:  # no way to find the route at the response: the provider's path
            return provider_path(data)
        if call_id in self._pending:  # a client's x-litellm-call-id, reused while its first request runs:
            return provider_path(data)  # this one takes the provider's path, never the other's route (``_mine``)
        self._pending[call_id] = _RESERVED  # from here: the route below awaits before it is kept
        try:
            return await self._start(data, source, llm_router, logging_obj, call_id)
        finally:
            if self._pending.get(call_id) is _RESERVED:  # not routed here after all
                del self._pending[call_id]

    async def _start(self, data: dict, source: str, llm_router: Any, logging_obj: Any, call_id: str) -> dict:
        try:
            router, inner = self.provider.routers.get(source)
        except ConfigError as exc:
            raise misconfigured(exc, str(data.get("model"))) from None
        if _needs_the_provider(router, data, llm_router):
            return provider_path(data)
        model = str(data.get("model"))
        metadata = data.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else data.setdefault("metadata", {})
        request = self.provider.route_request(data.get("messages") or [], data,
                                              {**metadata, "model_group": metadata.get("model_group") or model})
        request.metadata["proxy_path"] = "one_pass"  # in the record: which path served it
        streamed = data.get("stream") is True  # what the proxy streams
        backend = HandoffBackend(inner, streamed=streamed)
        routed = chunks = None
        if streamed:
            if _notify_backend not in router.observers:
                router.add_observer(_notify_backend)
            routed = router.astream(request, backend)
            chunks = routed.__aiter__()
            task: asyncio.Future = asyncio.ensure_future(chunks.__anext__())  # runs the route to its first chunk
            self.provider.attach(logging_obj, routed.result)  # live: the headers are built after the first chunk
        else:
            task = asyncio.create_task(router.aroute(request, backend))
        await asyncio.wait((task, backend.asked), return_when=asyncio.FIRST_COMPLETED)
        if not backend.asked.done():  # refused (a tier request, access) or failed before any call
            self._keep(task)
            error = task.exception() or RuntimeError("the route ended without calling a tier")
            raise self.provider.refusal(error, metadata, logging_obj, model) from None
        tier, attempt = backend.asked.result()
        call = inner.call_kwargs(tier, attempt, for_proxy=True)
        for name, value in call.items():  # the tier's defaults; the client's own parameters win
            if name in ("model", "timeout") or name not in data:
                data[name] = value
        caller_timeout = _shortened_timeout(data, tier.timeout_s)  # what the call is now given
        # The router YAML's retries, made by LiteLLM's router for the proxy's call.
        data.setdefault("num_retries", router.retry.max_retries)
        fallbacks = _fallback_tiers(router, inner, tier, attempt, call, data, llm_router)
        if fallbacks:
            data["fallbacks"] = [inner.group(t) for t in fallbacks]
        pending = _Pending(task, backend, tier, metadata, model, llm_router, fallbacks,
                           tries=1 + _int(data.get("num_retries")))
        pending.caller_timeout = caller_timeout
        self._pending[call_id] = pending
        if streamed:
            pending.routed, pending.chunks = routed, chunks
            pending.client_usage = wants_usage(data.get("stream_options"))
            # The usage chunk prices the attempt and marks the stream's end (``ProxyStream``).
            options = data.get("stream_options")
            data["stream_options"] = {**(options if isinstance(options, Mapping) else {}), "include_usage": True}
            # a route that ended before the proxy's stream reached it (a path LiteLLM added) is forgotten
            task.add_done_callback(lambda _: self._forget(call_id, pending) if pending.proxy is None else None)
        else:
            task.add_done_callback(lambda _: self._forget(call_id, pending))
        return data

    async def finish(self, data: dict, response: Any) -> Any:
        """The proxy's response is the first attempt's answer; the route decides what the
        client gets. ``None``: not a one-pass request."""
        pending = self._mine(data)
        if pending is None or pending.routed is not None:  # a streamed route ends in ``stream``
            return None
        self._pending.pop(data.get("litellm_call_id"), None)
        logging_obj = data.get("litellm_logging_obj")
        served = _fallback_that_served(pending, response)
        if served is None:
            outcome = _answer_or_error(response, pending.tier)
            if isinstance(outcome, TierCallError):
                pending.backend.answer.set_exception(outcome)
            else:
                pending.backend.answer.set_result(outcome)
        else:
            _failed_over(pending, served, response)
            _fallback_is_the_route(response)
        pending.metadata["model_group"] = pending.model  # LiteLLM logs the model the client called
        logged = ProxyStream.logged_metadata(logging_obj)
        if served is not None and logged is not None and logged is not pending.metadata:
            pending.extra_metadata = logged  # the fallback's call logs the request from its own copy
            logged["model_group"] = pending.model
        try:
            result = await pending.task
        except Exception as exc:  # noqa: BLE001 - a refused or exhausted route: the provider's error for it
            if isinstance(getattr(exc, "result", None), RoutingResult):
                _log_as_routed(pending, exc.result, logging_obj)
            raise self.provider.refusal(exc, pending.metadata, logging_obj, pending.model) from None
        self.provider.attach(logging_obj, result)
        if pending.extra_metadata is not None:
            publish_route(result, pending.extra_metadata, pending.model)
        return _served(response, result, pending, logging_obj)

    async def handoff(self, data: dict, response: Any) -> None:
        """Hand the proxy's stream of the first tier to its streamed route, and run the
        route to its first chunk: the proxy asks for the response headers before it reads
        a chunk, and they describe the routing (gated: all of it; else the tier streaming)."""
        pending = self._mine(data)
        if pending is None or pending.routed is None or pending.proxy is not None:
            return
        served_tier = _fallback_that_served(pending, response)
        pending.proxy = proxy = ProxyStream(response, served_tier or pending.tier)
        pending.metadata["model_group"] = pending.model  # LiteLLM logs the model the client called
        pending.logging_obj = logging_obj = proxy.logging_obj(data.get("litellm_logging_obj"))
        logged = proxy.logged_metadata(logging_obj)
        if logged is not None and logged is not pending.metadata:  # a fallback's call: its own copy
            pending.extra_metadata = logged
        # The route's record and cost reach LiteLLM's logging as the route closes, whatever
        # ends it (served, failed, the client gone): before LiteLLM logs the request.
        pending.backend.on_close = lambda result: self._bill(result, pending, logging_obj)
        if served_tier is None:
            pending.backend.answer.set_result(pending.proxy)
        else:
            _failed_over(pending, served_tier, pending.proxy)
            _fallback_is_the_route(response)
        try:
            await asyncio.wait((pending.task,))  # its outcome is read by ``stream``
        except asyncio.CancelledError:  # the client left before the first chunk: the route stops
            self._pending.pop(data.get("litellm_call_id"), None)
            pending.task.cancel()  # the route's close bills what was spent (``on_close``)
            self._keep(pending.task)
            raise

    def deployment_headers(self, data: Any, result: RoutingResult) -> dict[str, str]:
        """A streamed one-pass request's ``x-litellm-model-group`` (the model the client
        called, not the first tier's group the proxy's call was made on) and the served
        deployment's ``x-litellm-model-*`` when another tier than the first serves it
        (``{}``: another request)."""
        pending = self._mine(data)
        if pending is None:
            return {}
        return {**_served_deployment(pending, result), "x-litellm-model-group": pending.model}

    def routes_stream(self, data: Any) -> bool:
        """Whether ``data`` is a streamed request this routes in one pass."""
        pending = self._mine(data)
        return pending is not None and pending.routed is not None

    async def stream(self, data: dict, response: Any) -> AsyncIterator[Any]:
        """The route's stream for the client (``routes_stream``): the served answer, then
        (when the client asked for it) the routed usage."""
        pending = self._mine(data)
        assert pending is not None and pending.routed is not None and pending.chunks is not None
        await self.handoff(data, response)  # the headers hook did this, unless the proxy skipped it
        self._pending.pop(data.get("litellm_call_id"), None)
        routed, proxy, logging_obj = pending.routed, pending.proxy, pending.logging_obj
        assert proxy is not None
        sent: list[Any] = []
        template = None
        done = False
        try:
            try:
                first = await pending.task
            except StopAsyncIteration:
                items: list[Any] = []
            else:
                items = [first]
            while True:
                for item in items:
                    for chunk in client_chunks(item, template):
                        template = template or chunk
                        sent.append(chunk)
                        yield chunk
                try:
                    items = [await pending.chunks.__anext__()]
                except StopAsyncIteration:
                    break
            done = True
        except Exception as exc:  # noqa: BLE001 - the route ended without an answer (billed as it closed)
            await proxy.aclose()
            if proxy.error is not None:  # the proxy's stream broke: its own error, which LiteLLM logs
                raise proxy.error from None
            error = self.provider.refusal(exc, pending.metadata, logging_obj, pending.model)
            await log_failure(logging_obj, error)  # the proxy logs none for an error raised by this hook
            raise error from None
        finally:
            if not done:  # the client went away: the route's close bills what was spent
                await routed.aclose()
                await proxy.aclose()
        await proxy.settle(sent, routed.result)  # now LiteLLM logs the request, once, with the routed cost
        if pending.client_usage:
            yield usage_chunk(routed.result, template)

    @staticmethod
    def _bill(result: RoutingResult, pending: _Pending, logging_obj: Any) -> None:
        """The routing into the metadata LiteLLM logs (and a fallback's copy of it), and the
        routed cost and tokens onto the logging object."""
        if not result.attempts:
            return
        publish_route(result, pending.metadata, pending.model)
        if pending.extra_metadata is not None:
            pending.extra_metadata["model_group"] = pending.model
            publish_route(result, pending.extra_metadata, pending.model)
        _log_as_routed(pending, result, logging_obj)
        bill_on_logging_object(logging_obj, result)

    def fail(self, data: dict, error: BaseException) -> _Pending | None:
        """The proxy's call of the first tier failed and its error goes to the client: the
        engine records it as that attempt's outcome and stops. Returns the request's route;
        ``None``: not a one-pass request."""
        pending = self._mine(data)
        if pending is None:
            return None
        self._pending.pop(data.get("litellm_call_id"), None)
        mapped = delivered_error(error, pending.tier)  # the client has it: no retry, no escalation
        if isinstance(mapped, TransportError):  # LiteLLM's tries of the first tier, for the circuit breaker
            mapped.calls = 0 if mapped.kind == "timeout" and pending.caller_timeout else pending.tries
        pending.backend.answered_with_error = True
        tried = [t for t in pending.fallbacks if pending.backend.inner.group(t) in pending.fallbacks_failed]
        if tried and isinstance(mapped, TransportError) and not pending.backend.answer.done():
            # LiteLLM fell back through tiers above, each failed as a tier fails (not on the
            # client's own error, such as an image URL it cannot fetch), and the last one's
            # error is the client's
            _failed_over(pending, tried[-1], None)
            last = delivered_error(error, tried[-1])
            if isinstance(last, TransportError):
                last.calls = _unwell_tries(pending, pending.backend.inner.group(tried[-1]))
            pending.backend.outcomes[tried[-1].name] = last
        elif not pending.backend.answer.done():
            pending.backend.answer.set_exception(mapped)
        self._keep(pending.task)
        return pending

    def fallback_failed(self, kwargs: Mapping[str, Any]) -> None:
        """LiteLLM's router tried a fallback group of a one-pass request and it failed
        (``CustomLogger.log_failure_fallback_event``): if the whole chain fails, the route's
        record shows every tier called, not the first alone."""
        pending = self._pending.get(kwargs.get("litellm_call_id"))  # the fallback's kwargs hold a copy of the metadata
        group = kwargs.get("model")
        if isinstance(pending, _Pending) and isinstance(group, str) and \
                any(pending.backend.inner.group(t) == group for t in pending.fallbacks):
            pending.fallbacks_failed.append(group)

    @staticmethod
    async def ended(pending: _Pending, wait_s: float = 1.0) -> RoutingResult | None:
        """The routing of a request ``fail`` ended: the route stops at the delivered error
        (no tier is called), so its result is complete within moments; ``None`` if it is
        not within ``wait_s``."""
        try:
            outcome = await asyncio.wait_for(asyncio.shield(pending.task), wait_s)
        except asyncio.TimeoutError:
            return None
        except Exception as exc:  # noqa: BLE001 - the route's own error carries its result
            outcome = getattr(exc, "result", None)
        if pending.routed is not None:
            outcome = pending.routed.result
        return outcome if isinstance(outcome, RoutingResult) else None

    def _forget(self, call_id: str, pending: _Pending) -> None:
        if self._pending.get(call_id) is pending:  # not a later request that reused the id
            del self._pending[call_id]

    def _mine(self, data: Any) -> _Pending | None:
        """The route of this request: kept under its call id, which a client may set
        (``x-litellm-call-id``), so it is this request's only if it holds this request's
        own metadata dict (LiteLLM hands every hook the same request dict)."""
        if not isinstance(data, dict):
            return None
        pending = self._pending.get(data.get("litellm_call_id"))
        return pending if isinstance(pending, _Pending) and pending.metadata is data.get("metadata") else None

    def _keep(self, task: asyncio.Task) -> None:
        """A route nobody awaits any more finishes in the background (its record is written
        when it ends); its exception is read there, not left unretrieved."""
        self._background.add(task)
        task.add_done_callback(_finished_in_background)
        task.add_done_callback(self._background.discard)


def _finished_in_background(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("one-pass route ended with %r", task.exception())


def provider_path(data: dict) -> dict:
    """``data`` marked for the provider's path: LiteLLM's router calls the tiered model
    once. The route retries and escalates its tier calls itself; LiteLLM retrying the
    routed call (its ``num_retries``, when the proxy's ``router_settings`` leave it on)
    would run the whole ladder again, and pay it, after each failure."""
    data["num_retries"] = 0
    return data


def _needs_the_provider(router: Any, data: Mapping[str, Any], llm_router: Any = None) -> bool:
    """Requests one pass cannot route as the router YAML says: they take the provider's
    path. The client's own ``fallbacks`` would let a model outside the route answer the
    proxy's call, billed and recorded as the first tier's; the operator's fallbacks for
    the tiered model itself apply to a call of that model, which one pass never makes;
    and LiteLLM's retries and fallbacks of that call know nothing of a request deadline
    (``transport.deadline_s``). A request pointing at content LiteLLM fetches itself (an
    image or a file by http(s) URL) is fetched again for each try: one that cannot be
    fetched is the client's error, which LiteLLM's router would retry and fall over
    through every tier, with its backoff between tries, before the 400 (six fetches on a
    three-tier ladder retried once); the provider makes one attempt and answers it at once."""
    if data.get("fallbacks") or getattr(router, "deadline_s", None) is not None:
        return True
    if _points_at_urls(data.get("messages")):
        return True
    return llm_router is not None and _has_own_fallbacks(llm_router, str(data.get("model")), wildcard=False)


def _points_at_urls(messages: Any) -> bool:
    """Whether a content part of ``messages`` is an image or a file given by http(s) URL."""
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, Mapping) or part.get("type") not in ("image_url", "file"):
                continue
            ref = part.get("image_url") if part.get("type") == "image_url" else part.get("file")
            if isinstance(ref, Mapping):
                ref = ref.get("url") or ref.get("file_id") or ref.get("file_data")
            if isinstance(ref, str) and ref.lstrip()[:8].lower().startswith(("http://", "https://")):
                return True
    return False


def _one_pass_source(llm_router: Any, model: str) -> str | None:
    """The router YAML of a tiered model that routes one-pass (the default), else ``None``.

    A model name whose tiered deployments name different router YAMLs takes the
    provider's path, where LiteLLM balances between them as between any deployments:
    one-pass would route every request with the first one's."""
    sources, refused = [], None
    for deployment in deployments(llm_router, model):
        params = deployment.get("litellm_params") or {}
        if not isinstance(params, Mapping):
            continue
        try:
            if not str(params.get("model") or "").startswith(PROVIDER + "/"):
                continue
            check_deployment(params)  # first: a misspelt key explains a missing one
            source = tiered_config_source(params)
            if source is None or not one_pass_switch(params.get(ONE_PASS_PARAM, True)):
                continue
        except ConfigError as exc:  # this deployment cannot route (said at start); the others may
            refused = refused or exc
            continue
        if source not in sources:
            sources.append(source)
    if not sources and refused is not None:
        raise refused
    if len(sources) > 1:
        log.warning("model %r has tiered deployments with different router configs (%s): it routes through "
                    "the provider, which LiteLLM balances between them; give each config its own model_name "
                    "to choose one", model, ", ".join(Path(s).name for s in sources))
        return None
    return sources[0] if sources else None


def _served(response: Any, result: RoutingResult, pending: _Pending, logging_obj: Any) -> Any:
    """The proxy's own response object, now carrying the served answer, every attempt's
    tokens and the routed cost: LiteLLM logs this very object once the hooks are done."""
    served = result.answer.raw if result.answer is not None else None
    if served is not None and served is not response:
        response.choices = served.choices
        response.model = getattr(served, "model", response.model)
    mark_routed(response, result, publish_route(result, pending.metadata, pending.model))
    # read after this hook, they override what LiteLLM knew of the proxy's call (of the
    # first tier's group): the model the client called, the deployment that served
    served_by = {**_served_deployment(pending, result), "x-litellm-model-group": pending.model}
    hidden = response._hidden_params
    hidden["additional_headers"] = {**(hidden.get("additional_headers") or {}), **served_by}
    _log_as_routed(pending, result, logging_obj)
    bill_on_logging_object(logging_obj, result)
    return response


def _served_deployment(pending: _Pending, result: RoutingResult) -> dict[str, str]:
    """LiteLLM's ``x-litellm-model-*`` headers of the deployment that served the route (or
    is streaming it), when that is not the proxy's call of the first tier: they name the
    deployment of the call the proxy made, and an escalated route was served by another."""
    name = result.tier or result.current_tier
    if name is None or name == pending.tier.name:
        return {}
    deployment, model_id, api_base = _serving_deployment(pending, result, name)
    params: Mapping[str, Any] = (deployment.get("litellm_params") or {}) if deployment is not None else {}
    headers = {"x-litellm-model-id": model_id, "x-litellm-model-name": params.get("model"),
               "x-litellm-model-api-base": str(api_base).split("?")[0] if api_base else None}
    return {k: str(v) for k, v in headers.items() if v}


def _log_as_routed(pending: _Pending, result: RoutingResult, logging_obj: Any) -> None:
    """LiteLLM logs the request (its spend log keeps the model and deployment id) on the
    deployment of the proxy's own call, the first tier's: an escalated route is logged on
    the deployment that served it, one that ended without an answer on the routed model
    itself (``tiered_router/<model>``, as the provider's path logs every route)."""
    name = result.tier
    if name == pending.tier.name:
        return
    deployment = _serving_deployment(pending, result, name)[0] if name is not None else None
    params = (deployment.get("litellm_params") or {}) if deployment is not None else {}
    model = params.get("model") or f"{PROVIDER}/{pending.model}"
    for metadata in (pending.metadata, pending.extra_metadata, ProxyStream.logged_metadata(logging_obj)):
        if metadata is None:
            continue
        metadata["deployment"] = model  # what LiteLLM names the logged call's model after
        if deployment is not None and deployment.get("model_info"):
            metadata["model_info"] = deployment["model_info"]


def _serving_deployment(pending: _Pending, result: RoutingResult, name: str) -> tuple[dict | None, Any, Any]:
    """The deployment of tier ``name`` that answered (LiteLLM's ``model_id`` on the
    answer, else the group's only one), with its model id and API base."""
    raw = result.answer.raw if result.answer is not None else None
    hidden = getattr(raw, "_hidden_params", None)
    hidden = hidden if isinstance(hidden, Mapping) else {}
    model_id, api_base = hidden.get("model_id"), hidden.get("api_base")
    found = deployments(pending.llm_router, pending.backend.inner.groups.get(name, name)) \
        if pending.llm_router is not None else []
    if model_id:
        deployment = next((d for d in found if (d.get("model_info") or {}).get("id") == model_id), None)
    else:
        deployment = found[0] if len(found) == 1 else None
    if deployment is not None:
        model_id = model_id or (deployment.get("model_info") or {}).get("id")
        api_base = api_base or (deployment.get("litellm_params") or {}).get("api_base")
    return deployment, model_id, api_base


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _failed_over(pending: _Pending, served: Tier, response: Any) -> None:
    """LiteLLM's router passed over the first tier (and any fallback before ``served``):
    each gets a ``failed_over`` error and ``served`` the response (or the proxy's stream),
    read as the engine asks."""
    backend = pending.backend
    passed = [pending.tier, *(t for t in pending.fallbacks if t.index < served.index)]
    for tier, after in zip(passed, [*passed[1:], served]):
        error = TransportError(f"LiteLLM's router failed over from group {backend.inner.group(tier)!r} to "
                               f"{backend.inner.group(after)!r} after its retries (its failure log has the error)",
                               tier=tier.name, model_id=tier.model_id, kind="failed_over")
        error.calls = _unwell_tries(pending, backend.inner.group(tier))  # for the circuit breaker
        if tier is pending.tier:
            backend.answer.set_exception(error)
        else:
            backend.outcomes[tier.name] = error
    if response is not None:  # None: ``served`` failed too, its outcome is set by the caller
        backend.outcomes[served.name] = response if isinstance(response, ProxyStream) else \
            _answer_or_error(response, served)


def _unwell_tries(pending: _Pending, group: str) -> int:
    """How many of LiteLLM's tries of ``group`` count against its tier's circuit: those
    whose failure says the tier is unwell, by LiteLLM's record of each failed try
    (``previous_models`` in the request's metadata). LiteLLM's router falls back on a
    client's error too (a parameter the first tier's model does not take) and on a timeout
    the caller shortened: counted, a few such requests from one caller would send every
    caller of the router YAML up the ladder. Without the records, every try counts."""
    records = [r for r in pending.metadata.get("previous_models") or () if isinstance(r, Mapping)]
    if not records:
        return pending.tries

    def unwell(record: Mapping[str, Any]) -> bool:
        kind = failure_kind(record.get("exception_type"))
        return kind is not None and not (pending.caller_timeout and kind == "timeout")

    mine = [r for r in records if r.get("model_group") == group]
    if not mine:  # a fallback's own failures are not in the request's records: read as the request's
        return pending.tries if any(unwell(r) for r in records) else 0
    return min(sum(1 for r in mine if unwell(r)), pending.tries)  # LiteLLM records the last failure once more


def _shortened_timeout(data: Mapping[str, Any], tier_timeout: float | None) -> bool:
    """Whether the call's timeout (the caller's ``timeout`` or ``x-litellm-timeout``, which
    LiteLLM puts there, cut to the tier's own) is below the tier's own timeout: its
    timeouts are then the caller's doing."""
    try:
        seconds = float(data.get("timeout"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return seconds > 0 and (tier_timeout is None or seconds < tier_timeout)


def _fallback_is_the_route(response: Any) -> None:
    """LiteLLM's fallback to a tier above is the route's own escalation, and the client
    called the tiered model: LiteLLM stamps a fallback's model on the response (and on
    each streamed chunk) when its fallback count is above 0, so the count the client's
    response carries is the route's, which reports its escalation itself."""
    hidden = getattr(response, "_hidden_params", None)
    headers = hidden.get("additional_headers") if isinstance(hidden, dict) else None
    if isinstance(headers, dict) and headers.get("x-litellm-attempted-fallbacks"):
        headers["x-litellm-attempted-fallbacks"] = 0


def _answer_or_error(response: Any, tier: Tier) -> TierAnswer | TierCallError:
    """The proxy's response as ``tier``'s answer; a reply the core cannot read is that
    attempt's error (the engine treats it as any malformed one)."""
    try:
        answer = answer_from_response(response, tier=tier.name, model_id=tier.model_id)
    except TierCallError as exc:
        return exc
    answer.retried = retries_made(response)
    return answer


def _fallback_tiers(router: Any, inner: LiteLLMRouterBackend, tier: Tier, attempt: RouteRequest,
                    call: Mapping[str, Any], data: Mapping[str, Any], llm_router: Any) -> list[Tier]:
    """The tiers above ``tier`` that LiteLLM may fall back to for the proxy's call: the
    engine's own escalation order, as far as each would be called as the first is."""
    if router.retry.on_exhausted != "escalate" or "fallbacks" in data:
        return []  # the engine would not escalate, or the client's (empty) fallbacks stand
    if _has_own_fallbacks(llm_router, inner.group(tier)):
        return []  # the operator's fallbacks for this group stay in force
    same = {k: v for k, v in call.items() if k not in ("model", "timeout")}
    chain = []
    for above in router.ladder:
        if above.index <= tier.index:
            continue
        theirs = inner.call_kwargs(above, attempt, for_proxy=True)
        if {k: v for k, v in theirs.items() if k not in ("model", "timeout")} != same:
            break  # a fallback call carries the first tier's parameters: not this tier's
        chain.append(above)
    return chain


def _has_own_fallbacks(llm_router: Any, group: str, *, wildcard: bool = True) -> bool:
    """Whether the operator's ``router_settings.fallbacks`` name ``group`` (or ``*``)."""
    configured = getattr(llm_router, "fallbacks", None) or []
    return any(isinstance(entry, Mapping) and (group in entry or (wildcard and "*" in entry)) for entry in configured)


def _fallback_that_served(pending: _Pending, response: Any) -> Tier | None:
    """The fallback tier whose deployment answered, or ``None`` (the first tier did)."""
    if not pending.fallbacks:
        return None
    hidden = getattr(response, "_hidden_params", None) or {}
    served_id = hidden.get("model_id") if isinstance(hidden, Mapping) else None
    if not served_id:
        return None
    for tier in pending.fallbacks:
        for deployment in deployments(pending.llm_router, pending.backend.inner.group(tier)):
            info = deployment.get("model_info") or {}
            if isinstance(info, Mapping) and info.get("id") == served_id:
                return tier
    return None
