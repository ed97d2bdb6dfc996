"""SIGTERM loses no telemetry record.

A deploy stops a process with SIGTERM, whose default action kills it without running
``atexit``: the records still queued for the database would be lost. (SIGINT needs
nothing: its ``KeyboardInterrupt`` unwinds the process, and asyncio turns it into a
cancellation of the main task; the ``atexit`` close then drains the queues.) When the
first database sink is made in the main thread, a handler is put in front of SIGTERM.
On the signal it asks every sink to commit what is queued and to commit each later
record before its request returns (``BackgroundSink.begin_drain``), waits for that (at
most ``DRAIN_S``, taking no lock a thread it interrupted could hold), then hands the
signal on:

* to the handler that was there before, when there was one (uvicorn's graceful
  shutdown in the LiteLLM proxy): requests still running finish, and their records are
  committed as they end;
* when the action was the default (terminate): ``SystemExit(128 + 15)``, so ``finally``
  blocks, worker threads and the ``atexit`` close still run. With an asyncio loop
  running in the main thread the exit is raised from a loop callback, between tasks'
  steps, so ``asyncio.run`` cancels the requests in flight (each records its
  cancellation) before the process ends;
* an ignored signal stays ignored.

``TIERED_ROUTER_SIGNALS=0`` in the environment leaves the handler alone.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from typing import Any, Callable, Iterable

__all__ = ["watch_signals", "at_exit", "DRAIN_S"]

log = logging.getLogger("langchain_tiered_router.telemetry")


def at_exit(func: Callable[[], None]) -> None:
    """Run ``func`` at interpreter exit before the ``atexit`` handlers, where the
    standard library runs its own executors' shutdown. ``atexit`` runs its handlers
    last in, first out: a tracer provider or log handler set up after the first router
    was shut down (OpenTelemetry's SDK registers its shutdown there) before our drain
    wrote to it, and its spans were lost. Plain ``atexit`` where that hook is missing."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(func)
            return
        except RuntimeError:  # the interpreter is already shutting down
            pass
    atexit.register(func)

DRAIN_S = 5.0
_SIGNALS = (signal.SIGTERM,)
_previous: dict[int, Any] = {}
_lock = threading.Lock()
_sinks_to_drain: Callable[[], Iterable[Any]] = tuple  # set by watch_signals (writer.open_sinks)


def watch_signals(open_sinks: Callable[[], Iterable[Any]]) -> None:
    """Put the drain handler in front of SIGTERM (once, main thread only); on the signal
    it drains ``open_sinks()`` (passed in, so this module needs no writer import)."""
    global _sinks_to_drain
    _sinks_to_drain = open_sinks
    if os.environ.get("TIERED_ROUTER_SIGNALS", "1") in ("0", "false", "no"):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        for signum in _SIGNALS:
            try:
                current = signal.getsignal(signum)
            except (ValueError, OSError):  # pragma: no cover - no signals here
                continue
            if current is _handle or current == signal.SIG_IGN:
                continue
            try:
                signal.signal(signum, _handle)
            except (ValueError, OSError):  # pragma: no cover - an embedded interpreter
                continue
            _previous[signum] = current


def _handle(signum: int, frame: Any) -> None:
    markers = []
    for sink in _sinks_to_drain():
        try:
            markers.append(sink.begin_drain())
        except Exception:  # noqa: BLE001 - a signal handler must go on to the next sink
            pass
    deadline = time.monotonic() + DRAIN_S
    while not all(m.done for m in markers) and time.monotonic() < deadline:
        time.sleep(0.005)
    previous = _previous.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        loop = _running_loop()
        if loop is not None:
            loop.call_soon_threadsafe(_exit, 128 + signum)
            return
        raise SystemExit(128 + signum)


def _running_loop() -> Any:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _exit(code: int) -> None:
    raise SystemExit(code)
