"""SIGTERM and SIGINT lose no telemetry record.

A deploy stops a process with SIGTERM, whose default action kills it without running
``atexit``: the records still queued for the database would be lost. When the first
database sink is made in the main thread, a handler is put in front of SIGTERM and
SIGINT. On a signal it asks every sink to commit what is queued and to commit each
later record before its request returns (``BackgroundSink.begin_drain``), waits for
that (at most ``DRAIN_S``, taking no lock a thread it interrupted could hold), then
hands the signal on:

* to the handler that was there before, when there was one (uvicorn's graceful
  shutdown in the LiteLLM proxy, Python's ``KeyboardInterrupt`` for SIGINT): requests
  still running finish, and their records are committed as they end;
* when the action was the default (terminate): ``SystemExit(128 + signal)``, so
  ``finally`` blocks, worker threads and the ``atexit`` close still run;
* an ignored signal stays ignored.

``TIERED_ROUTER_SIGNALS=0`` in the environment leaves the handlers alone.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

__all__ = ["watch_signals", "DRAIN_S"]

log = logging.getLogger("langchain_tiered_router.telemetry")

DRAIN_S = 5.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_previous: dict[int, Any] = {}
_lock = threading.Lock()


def watch_signals() -> None:
    """Put the drain handler in front of SIGTERM and SIGINT (once, main thread only)."""
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
    from .writer import open_sinks

    markers = []
    for sink in open_sinks():
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
        raise SystemExit(128 + signum)
