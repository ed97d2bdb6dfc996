"""Routing results of LangChain runs, by run id, for runs that end without a message.

``TieredRouterCallbackHandler`` records a run from its message's routing metadata, or
from the ``LadderExhaustedError`` that carries the result. A run that ends otherwise (a
consumer that left a stream, a caller's error such as an unusable ``stop``) hands its
handler neither; the router still routed it, so its result is kept here for the
handler's ``on_llm_error``. Kept only while a handler exists, and at most ``KEPT``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable
from uuid import UUID

from ..core.types import RouteRequest, RoutingResult

__all__ = ["listen", "mark", "observe", "take", "KEPT"]

KEPT = 256  # runs whose handler never asks (a handler on another chain) are dropped oldest first
_RUN_ID = "_lc_run_id"  # on the request object, outside its fields: never recorded

_results: OrderedDict[UUID, RoutingResult] = OrderedDict()
_waiting: OrderedDict[UUID, Callable[[RoutingResult], None]] = OrderedDict()
_lock = threading.Lock()
_listeners = 0


def listen() -> None:
    """A handler exists: from now on failed runs are kept for it."""
    global _listeners
    with _lock:
        _listeners += 1


def mark(request: RouteRequest, run_id: UUID | None) -> None:
    """Tie ``request`` to the LangChain run it is routed for."""
    if run_id is not None and _listeners:
        request.__dict__[_RUN_ID] = run_id


def observe(result: RoutingResult, request: RouteRequest, backend: Any) -> None:
    """The router's observer: a run's result goes to the handler waiting for it, else is
    kept until its handler asks (a run that ends with its message drops it unread)."""
    run_id = request.__dict__.get(_RUN_ID)
    if run_id is None:
        return
    with _lock:
        waiting = _waiting.pop(run_id, None)
        if waiting is None:
            _results[run_id] = result
            while len(_results) > KEPT:
                _results.popitem(last=False)
    if waiting is not None:
        waiting(result)


def take(run_id: UUID, then: Callable[[RoutingResult], None] | None = None) -> RoutingResult | None:
    """The kept result of ``run_id``; when there is none yet (LangChain reports an async
    stream the consumer left before the route has closed), ``then`` gets it as it closes."""
    with _lock:
        result = _results.pop(run_id, None)
        if result is None and then is not None:
            _waiting[run_id] = then
            while len(_waiting) > KEPT:
                _waiting.popitem(last=False)
        return result
