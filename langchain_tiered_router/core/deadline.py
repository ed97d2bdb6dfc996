"""A request's time budget: one deadline for every call, retry, backoff and escalation.

The engine stamps ``RouteRequest.deadline`` (a ``time.monotonic()`` instant) when a
request starts, from ``transport.deadline_s``. Before each call, retry and escalation
it checks the time left; each call gets ``call_timeout``: the tier's own timeout, cut
to what is left. Async calls are abandoned at that timeout by the engine; a sync call
is bounded by the backend (botocore's read timeout, LiteLLM's ``timeout``, or a wait
on a worker thread).

A backend that queues its calls on a worker pool tells the engine's timer when a call
waits there and when a worker starts it (``CallClock``): the tier's timeout is one
call's time at the tier, so it runs from the start; while the call waits for a free
worker only the request's deadline runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from typing import Any, Callable, Iterator

from .errors import TransportError
from .tiers import Tier
from .types import RouteRequest

__all__ = ["stamp_deadline", "time_left", "call_timeout", "deadline_error", "CallClock", "CALL_CLOCK", "call_clock",
           "for_a_worker"]


def stamp_deadline(request: RouteRequest, deadline_s: float | None) -> None:
    """Start the request's clock (once: a request routed again keeps its first deadline)."""
    if deadline_s is not None and request.deadline is None:
        request.deadline = time.monotonic() + deadline_s


def time_left(request: RouteRequest) -> float | None:
    """Seconds until the request's deadline (negative when past); None without one."""
    return None if request.deadline is None else request.deadline - time.monotonic()


def call_timeout(tier: Tier, request: RouteRequest) -> float | None:
    """How long one call to ``tier`` may take: its timeout, cut to the time left."""
    left = time_left(request)
    limits = [t for t in (tier.timeout_s, None if left is None else max(left, 0.0)) if t is not None]
    return min(limits) if limits else None


def deadline_error(tier: Tier, request: RouteRequest, limit: float | None, *, sent: bool = True) -> TransportError:
    """The timeout of a call to ``tier``. ``sent=False``: the call was still queued (on a
    worker pool) when its time ran out, so it never reached the tier: not the tier's doing,
    it does not count against the tier's circuit."""
    left = time_left(request)
    passed = left is not None and left <= 0.001
    why = "the request's deadline passed" if passed else f"no answer within {limit:.3g}s"
    if not sent:
        why += " before a worker thread was free to send the call (transport.max_concurrency)"
    error = TransportError(f"timeout: {why}", tier=tier.name, model_id=tier.model_id, kind="timeout")
    if not sent:
        error.calls, error.reached_tier = 0, False
    elif passed and (tier.timeout_s is None or limit is None or limit < tier.timeout_s - 0.001):
        # cut short by the request's deadline before the tier's own timeout ran out: the
        # tier may have been answering in time, so it does not count against its circuit
        # (it is billed: Bedrock had the call)
        error.calls = 0
    return error


class CallClock:
    """The engine's timer of one async tier call (an ``asyncio.Timeout`` set to its
    ``call_timeout``), moved by a backend that queues the call on a worker pool: while
    the call waits for a worker only the request's deadline runs (``queued``, on the
    event loop), and its own timeout starts when a worker starts it (``started``, from
    the worker's thread). Counting the wait as the call's time gave up on calls Bedrock
    was still answering, sent them again and escalated them, once more requests were in
    flight than ``transport.max_concurrency``."""

    def __init__(self, timer: asyncio.Timeout, tier: Tier, request: RouteRequest):
        self.timer, self.tier, self.request = timer, tier, request
        self.loop = asyncio.get_running_loop()

    def expired(self) -> bool:
        return self.timer.expired()

    def queued(self) -> None:
        """The call waits for a worker: only the deadline runs (on the event loop)."""
        left = time_left(self.request)
        self._reschedule(None if left is None else max(left, 0.0))

    def started(self) -> None:
        """A worker started the call (from any thread): its own timeout runs from now."""
        try:
            self.loop.call_soon_threadsafe(self._start)
        except RuntimeError:  # the loop closed meanwhile: nobody waits for this call
            pass

    def _start(self) -> None:
        self._reschedule(call_timeout(self.tier, self.request))

    def _reschedule(self, limit: float | None) -> None:
        if self.timer.expired():
            return
        try:
            self.timer.reschedule(None if limit is None else self.loop.time() + limit)
        except RuntimeError:  # the timed block has ended (the call came back first)
            pass


CALL_CLOCK: contextvars.ContextVar[CallClock | None] = contextvars.ContextVar("tiered_router_call_clock",
                                                                              default=None)


@contextlib.contextmanager
def call_clock(timer: asyncio.Timeout, tier: Tier, request: RouteRequest) -> Iterator[CallClock]:
    """``CallClock`` of the call awaited inside, for its backend to move (``CALL_CLOCK``)."""
    clock = CallClock(timer, tier, request)
    token = CALL_CLOCK.set(clock)
    try:
        yield clock
    finally:
        CALL_CLOCK.reset(token)


def for_a_worker(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, about to be queued on a worker pool, under the clock of the call it makes
    (if the engine times one): the clock learns now that the call waits, and when a
    worker starts it."""
    clock = CALL_CLOCK.get()
    if clock is None:
        return fn
    clock.queued()

    def started_then(*args: Any, **kwargs: Any) -> Any:
        clock.started()
        return fn(*args, **kwargs)

    return started_then
