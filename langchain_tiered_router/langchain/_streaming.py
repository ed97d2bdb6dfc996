"""Streaming a routed answer: straight through from one tier, or replayed after gating.

Straight through (no gate applies, ``Router.streams_through``): the chosen tier's
ConverseStream chunks leave as they arrive. The engine's loop cannot drive this (its
attempts return whole answers), so transport errors are retried here on the same tier,
as ``config.retry`` says, but only while nothing has been emitted; a failure after
that, or after the retries, raises ``LadderExhaustedError``. There is no escalation on
this path. Routing metadata goes on one final chunk: string values in
``response_metadata`` are concatenated when chunks merge.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Iterator

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from ..core.engine import Router, StartedRoute
from ..core.errors import LadderExhaustedError, TierCallError, TransportError
from ..core.types import RouteRequest, RoutingResult
from ._convert import message_chunk
from ._runs import end_run
from .backend import LangChainBackend, as_ai_message

__all__ = ["served_metadata", "final_chunk", "replay", "pass_through", "apass_through"]

_CLOSED = "stream closed by the consumer"


def served_metadata(result: RoutingResult) -> dict[str, Any]:
    return {"model_name": result.model_id, "model_id": result.model_id, "routing": result.to_metadata()}


def final_chunk(result: RoutingResult, like: ChatGenerationChunk | None) -> ChatGenerationChunk:
    """The one chunk carrying routing metadata, its content typed like the others'."""
    content: Any = [] if like is not None and isinstance(like.message.content, list) else ""
    return ChatGenerationChunk(message=AIMessageChunk(content=content, response_metadata=served_metadata(result),
                                                      chunk_position="last"))


def replay(result: RoutingResult, backend: LangChainBackend) -> Iterator[ChatGenerationChunk]:
    """The served attempt's buffered chunks, then the routing chunk."""
    assert result.served is not None and result.served.answer is not None
    chunks = backend.chunks_of(result.served.answer) or [message_chunk(as_ai_message(result.served.answer))]
    yield from chunks
    yield final_chunk(result, chunks[-1])


def pass_through(router: Router, request: RouteRequest, backend: LangChainBackend) -> Iterator[ChatGenerationChunk]:
    route = router.begin(request, backend)
    tier, retried, started = route.tier, [], time.perf_counter()
    while True:
        run = backend.runs.start(tier) if backend.runs else None
        chunks: list[ChatGenerationChunk] = []
        held: list[ChatGenerationChunk] | None = []  # None once output has left
        try:
            for chunk in backend.stream_tier(tier, request):
                chunks.append(chunk)
                if held is not None and not _has_output(chunk):
                    held.append(chunk)
                    continue
                yield from held or []
                held = None
                yield chunk
            answer = backend.answer_from_chunks(tier, chunks)
        except GeneratorExit:
            end_run(run, error=RuntimeError(_CLOSED))
            router.finish(route, backend, error=RuntimeError(_CLOSED), latency_ms=_ms(started), retried_on=retried)
            raise
        except Exception as exc:
            end_run(run, error=exc)
            if _retryable(exc, router, retried, emitted=held is None):
                retried.append(exc.kind)  # type: ignore[attr-defined]
                time.sleep(router.retry.delay(len(retried)))
                continue
            result = router.finish(route, backend, error=exc, latency_ms=_ms(started), retried_on=retried)
            raise _exhausted(result, route, exc, emitted=held is None) from exc
        end_run(run, answer)
        result = router.finish(route, backend, answer=answer, latency_ms=_ms(started), retried_on=retried)
        yield from held or []
        yield final_chunk(result, chunks[-1] if chunks else None)
        return


async def apass_through(router: Router, request: RouteRequest, backend: LangChainBackend
                        ) -> AsyncIterator[ChatGenerationChunk]:
    route = await router.abegin(request, backend)
    tier, retried, started = route.tier, [], time.perf_counter()
    while True:
        run = await backend.runs.astart(tier) if backend.runs else None
        chunks: list[ChatGenerationChunk] = []
        held: list[ChatGenerationChunk] | None = []
        try:
            async for chunk in backend.astream_tier(tier, request):
                chunks.append(chunk)
                if held is not None and not _has_output(chunk):
                    held.append(chunk)
                    continue
                for early in held or []:
                    yield early
                held = None
                yield chunk
            answer = backend.answer_from_chunks(tier, chunks)
        except (GeneratorExit, asyncio.CancelledError) as exc:
            await _await(end_run(run, error=RuntimeError(_CLOSED)))
            router.finish(route, backend, error=RuntimeError(f"{_CLOSED} ({type(exc).__name__})"),
                          latency_ms=_ms(started), retried_on=retried)
            raise
        except Exception as exc:
            await _await(end_run(run, error=exc))
            if _retryable(exc, router, retried, emitted=held is None):
                retried.append(exc.kind)  # type: ignore[attr-defined]
                await asyncio.sleep(router.retry.delay(len(retried)))
                continue
            result = router.finish(route, backend, error=exc, latency_ms=_ms(started), retried_on=retried)
            raise _exhausted(result, route, exc, emitted=held is None) from exc
        await _await(end_run(run, answer))
        result = router.finish(route, backend, answer=answer, latency_ms=_ms(started), retried_on=retried)
        for late in held or []:
            yield late
        yield final_chunk(result, chunks[-1] if chunks else None)
        return


def _has_output(chunk: ChatGenerationChunk) -> bool:
    message = chunk.message
    return bool(message.content) or bool(getattr(message, "tool_call_chunks", None))


def _retryable(exc: Exception, router: Router, retried: list[str], *, emitted: bool) -> bool:
    retry = router.retry
    return (not emitted and isinstance(exc, TransportError) and exc.kind in retry.retry_on
            and len(retried) < retry.max_retries)


def _exhausted(result: RoutingResult, route: StartedRoute, exc: Exception, *, emitted: bool) -> LadderExhaustedError:
    tier = route.tier
    err = exc if isinstance(exc, TierCallError) else TierCallError(f"{type(exc).__name__}: {exc}", tier=tier.name,
                                                                    model_id=tier.model_id, cause=exc)
    when = "after output was streamed; it cannot be retried" if emitted else "while streaming"
    return LadderExhaustedError(f"tier {tier.name} failed {when}: {err}", [err], result)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def _await(value: Any) -> None:
    if hasattr(value, "__await__"):
        await value
