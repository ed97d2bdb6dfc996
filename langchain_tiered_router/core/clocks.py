"""Timers that a worker pool's queue does not run down.

A backend runs blocking calls on a pool of worker threads (``transport.max_concurrency``,
the event loop's default executor). Time a call spends waiting there for a thread is the
pool's, not the call's: counted, it gave up on calls Bedrock was still answering, sent
them again and escalated them, and timed out gates whose grader waited for a thread. So
each async timer that covers such calls is a clock in ``CLOCKS`` (innermost last), and
``submit_timed`` tells every clock when a call starts waiting, when a worker starts it,
and when it is dropped from the queue unsent:

* ``CallClock``, a model call's timer: while the call waits only the request's deadline
  runs; from its start, its own ``call_timeout`` (the tier's timeout cut to the deadline).
* ``BudgetClock``, a gate's judgement budget (``gate_timeout_s``): it stands still while
  any call of the judgement waits for a thread, and runs on when none does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from typing import Any, Callable, Iterator

from .deadline import call_timeout, time_left
from .tiers import Tier
from .types import RouteRequest

__all__ = ["CallClock", "BudgetClock", "CLOCKS", "call_clock", "budget_clock", "submit_timed", "current_call_clock"]


class _Clock:
    """An ``asyncio.Timeout`` moved by calls waiting for and running on a worker pool."""

    def __init__(self, timer: asyncio.Timeout):
        self.timer = timer
        self.loop = asyncio.get_running_loop()

    def expired(self) -> bool:
        return self.timer.expired()

    def queued(self) -> object:
        """A call starts waiting for a worker (on the event loop); its token."""
        return object()

    def started(self, token: object) -> None:
        """A worker started the call (from any thread)."""

    def dropped(self, token: object) -> None:
        """The call left the queue unsent (cancelled; from any thread)."""

    def _soon(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed meanwhile: nobody waits for this call
            pass

    def _reschedule(self, limit: float | None) -> None:
        if self.timer.expired():
            return
        try:
            self.timer.reschedule(None if limit is None else self.loop.time() + max(limit, 0.0))
        except RuntimeError:  # the timed block has ended (the call came back first)
            pass


class CallClock(_Clock):
    """One model call's timer: the deadline while it waits, its timeout from its start."""

    def __init__(self, timer: asyncio.Timeout, tier: Tier, request: RouteRequest):
        super().__init__(timer)
        self.tier, self.request = tier, request

    def queued(self) -> object:
        self._reschedule(time_left(self.request))
        return object()

    def started(self, token: object) -> None:
        self._soon(self._start)

    def _start(self) -> None:
        self._reschedule(call_timeout(self.tier, self.request))


class BudgetClock(_Clock):
    """A judgement's budget: it stands still while any of its calls waits for a worker."""

    def __init__(self, timer: asyncio.Timeout, budget_s: float):
        super().__init__(timer)
        self.left = budget_s
        self.running_since: float | None = self.loop.time()
        self.waiting: set[object] = set()

    def queued(self) -> object:
        token = object()
        if not self.waiting and self.running_since is not None:  # stop: keep what is left
            self.left -= self.loop.time() - self.running_since
            self.running_since = None
            self._reschedule(None)
        self.waiting.add(token)
        return token

    def started(self, token: object) -> None:
        self._soon(self._done_waiting, token)

    def dropped(self, token: object) -> None:
        self._soon(self._done_waiting, token)

    def _done_waiting(self, token: object) -> None:
        self.waiting.discard(token)
        if not self.waiting and self.running_since is None:  # run on with what was left
            self.running_since = self.loop.time()
            self._reschedule(self.left)


CLOCKS: contextvars.ContextVar[tuple[_Clock, ...]] = contextvars.ContextVar("tiered_router_clocks", default=())


@contextlib.contextmanager
def _pushed(clock: _Clock) -> Iterator[Any]:
    token = CLOCKS.set((*CLOCKS.get(), clock))
    try:
        yield clock
    finally:
        CLOCKS.reset(token)


def call_clock(timer: asyncio.Timeout, tier: Tier, request: RouteRequest) -> contextlib.AbstractContextManager:
    """A ``CallClock`` for the model call awaited inside."""
    return _pushed(CallClock(timer, tier, request))


def budget_clock(timer: asyncio.Timeout, budget_s: float) -> contextlib.AbstractContextManager:
    """A ``BudgetClock`` for the judgement awaited inside."""
    return _pushed(BudgetClock(timer, budget_s))


def current_call_clock() -> CallClock | None:
    """The innermost model call's clock, if the call awaited now runs under one."""
    for clock in reversed(CLOCKS.get()):
        if isinstance(clock, CallClock):
            return clock
    return None


def submit_timed(submit: Callable[..., Any], fn: Callable[..., Any], *args: Any) -> Any:
    """``submit(fn, *args)`` (an executor's ``submit``, a loop's ``run_in_executor``...),
    the future it returns told to every clock of the calls awaited now: the call waits
    from here, runs from when a worker starts it, or is dropped if cancelled queued."""
    clocks = CLOCKS.get()
    if clocks:  # only this event loop's timers (a context copied to another thread's loop keeps them)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        clocks = tuple(clock for clock in clocks if clock.loop is loop)
    if not clocks:
        return submit(fn, *args)
    tokens = [clock.queued() for clock in clocks]

    def started_then(*call_args: Any) -> Any:
        for clock, token in zip(clocks, tokens):
            clock.started(token)
        return fn(*call_args)

    future = submit(started_then, *args)

    def ended(done: Any) -> None:
        if done.cancelled():  # never ran
            for clock, token in zip(clocks, tokens):
                clock.dropped(token)

    future.add_done_callback(ended)
    return future
