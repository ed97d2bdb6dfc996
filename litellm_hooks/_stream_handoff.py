"""A streamed request in one pass: the proxy's own stream is the route's first attempt.

The proxy makes the streamed call of the first tier itself (``_one_pass``) and hands its
chunk stream to the hook's streaming iterator, which feeds it to the engine's stream.
LiteLLM logs a streamed call at the step after its last chunk; ``ProxyStream`` reads up
to that last chunk (the usage chunk, always asked for) and takes the step only once the
route is done and billed (``settle``), so the one event LiteLLM logs carries the routed
cost, every attempt's tokens and the served answer, as on the provider's path.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any, AsyncIterator, Iterator, Mapping

from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

from langchain_tiered_router.core import RouteRequest, RoutingResult, TierAnswer, TierStream
from langchain_tiered_router.core.errors import TierCallError, TransportError
from langchain_tiered_router.core.tiers import Tier

from ._accounting import routed_usage
from ._backend import stream_answer
from ._convert import chunk_has_output, retries_made, transport_error_from_litellm

__all__ = ["ProxyStream", "HandoffStream", "client_chunks", "usage_chunk", "log_failure", "wants_usage",
           "delivered_error"]

log = logging.getLogger("litellm_hooks")

_SETTLE_STEPS = 4  # reads past the usage chunk before a wrapper that will not end is left to close


def _is_usage_chunk(chunk: Any) -> bool:
    """LiteLLM's last chunk of a stream asked for usage: the only one with usage (its
    stream wrapper takes usage off the others), and no output."""
    return getattr(chunk, "usage", None) is not None and not chunk_has_output(chunk)


class ProxyStream:
    """The proxy's own streamed call of one tier, read up to its usage chunk.

    ``error``: what the proxy's stream raised, for the client (LiteLLM's stream wrapper
    has logged it as the request's failure)."""

    def __init__(self, response: Any, tier: Tier):
        self.response, self.tier = response, tier
        self._source = response.__aiter__()
        self.at_usage = False  # the usage chunk is read: the next step is the one that logs
        self.ended = False  # LiteLLM's wrapper ran to its end: it has logged the request
        self.error: BaseException | None = None

    async def _next(self) -> Any:
        chunk = await self._source.__anext__()
        self.at_usage = _is_usage_chunk(chunk)
        return chunk

    async def chunks(self) -> AsyncIterator[Any]:
        sent = False
        while not self.at_usage:  # the next step would log the request: ``settle`` takes it
            try:
                chunk = await self._next()
            except StopAsyncIteration:
                self.ended = True
                return
            except Exception as exc:  # noqa: BLE001 - the request's error: LiteLLM logged it, the client gets it
                self.error = exc
                raise delivered_error(exc, self.tier, sent) from exc
            sent = sent or chunk_has_output(chunk)
            yield chunk

    def logging_obj(self, default: Any) -> Any:
        """The logging object LiteLLM logs this stream on: its own call's (a fallback that
        served has one of its own), else ``default``, the request's."""
        own = getattr(self.response, "logging_obj", None)
        return own if hasattr(own, "model_call_details") else default

    @staticmethod
    def logged_metadata(logging_obj: Any) -> dict | None:
        """The metadata LiteLLM's logged event of ``logging_obj`` is built from."""
        details = getattr(logging_obj, "model_call_details", None)
        params = details.get("litellm_params") if isinstance(details, dict) else None
        metadata = params.get("metadata") if isinstance(params, dict) else None
        return metadata if isinstance(metadata, dict) else None

    async def settle(self, served: list[Any], result: RoutingResult) -> None:
        """Make LiteLLM's wrapper log the served chunks with every attempt's tokens (its
        cost is the logging object's finalized routed cost), then let it log. A stream
        the route stopped reading early (it escalated) is read on to its usage chunk first."""
        try:
            while not (self.at_usage or self.ended):
                try:
                    await self._next()
                except StopAsyncIteration:
                    self.ended = True
            logged = getattr(self.response, "chunks", None)  # LiteLLM's stream wrapper keeps them
            if isinstance(logged, list) and not self.ended:
                template = next((c for c in served if isinstance(c, ModelResponseStream)), None)
                logged[:] = [*served, usage_chunk(result, template)]
            for _ in range(_SETTLE_STEPS):
                if self.ended:
                    return
                try:
                    await self._source.__anext__()
                except StopAsyncIteration:
                    self.ended = True
        except Exception:  # noqa: BLE001 - the answer went out; a wrapper failing to log is LiteLLM's
            log.exception("LiteLLM's stream wrapper failed after the routed answer was sent")
            self.ended = True

    async def aclose(self) -> None:
        """Close without the success step: a request that failed is logged as failed."""
        close = getattr(self.response, "aclose", None)
        if close is not None and not self.ended:
            try:
                await close()
            except Exception:  # noqa: BLE001 - closing a stream that already failed
                log.debug("closing the proxy's stream failed", exc_info=True)


def delivered_error(exc: BaseException, tier: Tier, sent: bool = False) -> TierCallError:
    """The proxy's call of ``tier`` failed with ``exc``, which is the request's error: the
    core's error for it, marked delivered (neither retried nor escalated); a stream that
    broke after output (``sent``) was cut."""
    mapped = transport_error_from_litellm(exc, tier=tier.name, model_id=tier.model_id) \
        if isinstance(exc, Exception) else None
    if sent and isinstance(mapped, TransportError):
        mapped = TransportError(str(exc), tier=tier.name, model_id=tier.model_id, kind="stream_cut", cause=exc)
    error = mapped or TierCallError(f"{type(exc).__name__}: {str(exc)[:300]}", tier=tier.name,
                                    model_id=tier.model_id, cause=exc)
    error.delivered = True
    return error


class HandoffStream(TierStream):
    """One attempt of a streamed one-pass route: the proxy's stream when the handoff
    backend has it for this tier, else the backend's own call (``inner``)."""

    def __init__(self, backend: Any, tier: Tier, request: RouteRequest, live: bool):
        self.backend, self.tier, self.request, self.live = backend, tier, request, live
        self._inner: TierStream | None = None
        self._handed: ProxyStream | None = None

    async def achunks(self) -> AsyncIterator[Any]:
        handed = await self.backend.handed(self.tier, self.request)
        if isinstance(handed, ProxyStream):
            self._handed = handed
            async for chunk in handed.chunks():
                yield chunk
            return
        self._inner = self.backend.inner.stream(self.tier, self.request, live=self.live)
        async for chunk in self._inner.achunks():
            yield chunk

    def chunks(self) -> Iterator[Any]:
        raise TypeError("a one-pass stream is async only (the proxy)")

    def has_output(self, chunk: Any) -> bool:
        return self._inner.has_output(chunk) if self._inner is not None else chunk_has_output(chunk)

    def answer(self, chunks: list[Any], *, complete: bool = True) -> TierAnswer:
        if self._inner is not None:
            return self._inner.answer(chunks, complete=complete)
        answer = stream_answer(chunks, self.tier, self.request, complete=complete)
        if self._handed is not None:  # the proxy's own call, which LiteLLM's router may have retried
            answer.retried = retries_made(self._handed.response)
        return answer


def _same_stream(template: ModelResponseStream | None) -> dict[str, Any]:
    """A new chunk's id, created and model: the stream's (``template``) when there is one."""
    return {"id": template.id, "created": template.created, "model": template.model} if template else {}


def _chunk(template: ModelResponseStream | None, delta: Delta, finish: str | None = None) -> ModelResponseStream:
    return ModelResponseStream(**_same_stream(template),
                               choices=[StreamingChoices(index=0, delta=delta, finish_reason=finish)])


def client_chunks(item: Any, template: ModelResponseStream | None) -> Iterator[ModelResponseStream]:
    """What the client gets of one chunk of the served answer: a tier's stream chunk
    without its usage (the routed usage comes last), or an answer that came whole as
    OpenAI chunks (``template``: the stream's id, created and model)."""
    if isinstance(item, TierAnswer):
        first = _chunk(template, Delta(role="assistant", content=item.text or None))
        template = template or first  # one id for the whole stream, as OpenAI's
        yield first
        if item.tool_calls:
            calls = [{"id": call.get("id") or f"call_{i}", "type": "function", "index": i,
                      "function": {"name": call.get("name"), "arguments": json.dumps(call.get("args") or {})}}
                     for i, call in enumerate(item.tool_calls)]
            yield _chunk(template, Delta(tool_calls=calls))
        yield _chunk(template, Delta(), _finish_reason(item))
        return
    if not isinstance(item, ModelResponseStream) or _is_usage_chunk(item):
        return
    if getattr(item, "usage", None) is not None:
        item.usage = None  # type: ignore[assignment]
    yield item


def _finish_reason(answer: TierAnswer) -> str:
    reason = answer.stop_reason or ("tool_calls" if answer.tool_calls else "stop")
    return {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}.get(reason, reason)


def usage_chunk(result: RoutingResult, template: ModelResponseStream | None) -> ModelResponseStream:
    """The stream's last chunk: every attempt's and routing call's tokens."""
    return ModelResponseStream(**_same_stream(template), choices=[], usage=routed_usage(result))


async def log_failure(logging_obj: Any, error: BaseException) -> None:
    """LiteLLM's failure log of the request, billed with what the logging object holds
    (``bill_on_logging_object``): a stream whose route failed after the proxy's call
    succeeded is logged by nothing else."""
    dispatch = getattr(logging_obj, "dispatch_attempt_failure_handlers", None)
    if dispatch is None or not isinstance(error, Exception):
        return
    try:
        await dispatch(error, "".join(traceback.format_exception(error)))
    except Exception:  # noqa: BLE001 - logging never fails the request further
        log.exception("LiteLLM's failure logging of a one-pass stream failed")


def wants_usage(stream_options: Any) -> bool:
    return isinstance(stream_options, Mapping) and stream_options.get("include_usage") is True
