"""Each judgement gets a time budget, and a slow gate never freezes the event loop.

What is guaranteed, and what cannot be:

* Gates whose work is linear in the answer (``Gate.bounded``: JSON schema, regex on
  RE2, confidence, the trained gates) run inline in a blocking ``route``; the
  answer is bounded before they read it (``core.json_answer``).
* Any other gate (a rule, a pydantic model with validators, a self-grade call, your
  own ``Gate``) runs on a worker of a small pool of daemon threads. ``route`` waits at
  most ``timeout_s`` for it; ``aroute`` awaits it within ``asyncio.timeout``, so the
  event loop keeps serving other requests meanwhile. A gate past its budget is a
  failed judgement (``gate timed out``), counted in ``gate_errors``.
* Python cannot stop a thread: the late gate runs on until it returns, holding one
  worker (the pool has ``POOL_SIZE``; a judgement queued behind busy workers times out
  the same way). A gate stuck inside C code that holds the GIL (a backtracking
  ``re`` pattern inside a rule) stalls every thread of the process until it returns;
  no budget can prevent that, which is why every pattern the router itself runs is
  RE2's (``core.patterns``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import queue
import threading
from typing import Any, Callable

from .clocks import budget_clock
from .types import GateVerdict

__all__ = ["judge_within", "ajudge_within", "run_in_pool", "gate_pool", "POOL_SIZE", "DEFAULT_TIMEOUT_S"]

log = logging.getLogger("langchain_tiered_router")

POOL_SIZE = 16
DEFAULT_TIMEOUT_S = 30.0


class _DaemonPool(concurrent.futures.Executor):
    """A fixed pool of daemon threads: a gate that never returns cannot hold up interpreter
    exit, as ``ThreadPoolExecutor``'s joined workers would."""

    def __init__(self, size: int):
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._size = size
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.busy = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        context = contextvars.copy_context()  # the caller's run managers and settings go with the gate
        self._work.put((future, context, fn, args, kwargs))
        with self._lock:
            if len(self._threads) < self._size:
                thread = threading.Thread(target=self._worker, name=f"tiered-router-gate-{len(self._threads)}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _worker(self) -> None:
        while True:
            future, context, fn, args, kwargs = self._work.get()
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self.busy += 1
            try:
                future.set_result(context.run(fn, *args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting judgement
                future.set_exception(exc)
            finally:
                with self._lock:
                    self.busy -= 1


_pool: _DaemonPool | None = None
_pool_lock = threading.Lock()


def gate_pool() -> _DaemonPool:
    """The process's gate workers, started on first use (nothing runs at import)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _DaemonPool(POOL_SIZE)
        return _pool


def _timed_out(gate: Any, timeout_s: float) -> GateVerdict:
    first = not getattr(gate, "_timed_out_before", False)
    try:
        gate._timed_out_before = True  # warned once per gate object; every record counts it
    except AttributeError:  # pragma: no cover - a gate with __slots__
        first = False
    log.log(logging.WARNING if first else logging.DEBUG,
            "gate %s took longer than its %gs budget; judged a failure, counted in gate_errors "
            "(%d gate workers busy)", getattr(gate, "name", gate), timeout_s, gate_pool().busy)
    return GateVerdict(False, f"gate timed out after {timeout_s:g}s", getattr(gate, "name", ""),
                       error="GateTimeout")


def judge_within(judge: Callable[[], GateVerdict], gate: Any, timeout_s: float | None) -> GateVerdict:
    """``judge()`` inline for a bounded gate, else on a gate worker, waiting ``timeout_s`` at most."""
    if timeout_s is None or getattr(gate, "bounded", False):
        return judge()
    future = gate_pool().submit(judge)
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        future.cancel()  # still queued: never runs; running: runs on, its verdict dropped
        return _timed_out(gate, timeout_s)


async def ajudge_within(ajudge: Callable[[], Any], gate: Any, timeout_s: float | None) -> GateVerdict:
    """Await ``ajudge()`` for at most ``timeout_s``; the event loop runs on meanwhile."""
    if timeout_s is None:
        return await ajudge()
    # Not ``asyncio.wait_for``: on Python 3.11 it returns the inner result when that is
    # ready as the caller is cancelled, losing the cancellation (a task cancelled at
    # shutdown then routed on forever); ``asyncio.timeout`` runs the gate in this task.
    try:
        async with asyncio.timeout(timeout_s) as timer:
            with budget_clock(timer, timeout_s):  # a grader's wait for a worker thread is not its time
                return await ajudge()
    except TimeoutError:
        return _timed_out(gate, timeout_s)


async def run_in_pool(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a gate worker, awaited (a gate's sync ``judge`` from ``aroute``)."""
    return await asyncio.wrap_future(gate_pool().submit(fn, *args))
