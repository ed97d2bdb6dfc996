"""What the router did for a LangChain run, by run id, for the handler that records it.

``TieredRouterCallbackHandler`` records a run from its message's routing metadata, or
from the ``LadderExhaustedError`` that carries the result. A run that ends otherwise (a
consumer that left a stream, a caller's error such as an unusable ``stop``) hands its
handler neither; the router still routed it, so its result is kept here for the
handler's ``on_llm_error``. The handler also takes the request and backend of a run that
ended with its message, to run its shadow call (``telemetry.shadow``).

Kept only for runs a handler said it records (``expect``), until it takes them. A
waiter (``take_routed(then=...)``) is registered only for a run whose route is open (``mark``
seen, its result not yet): its result is sure to come, when the route closes. The
limits below only guard against runs whose end never comes; they are never reached by
runs that end.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, NamedTuple
from uuid import UUID

from ..core.types import RouteRequest, RoutingResult

__all__ = ["Routed", "expect", "listen", "mark", "observe", "take_routed", "KEPT"]

KEPT = 65_536  # run ids remembered per kind: a leak guard for runs whose end never comes
_RUN_ID = "_lc_run_id"  # on the request object, outside its fields: never recorded


class Routed(NamedTuple):
    """A routed run: the engine's result, and the request and backend it was routed with."""

    result: RoutingResult
    request: RouteRequest
    backend: Any


_expected: OrderedDict[UUID, None] = OrderedDict()  # runs a handler records (started, not yet ended)
_open: OrderedDict[UUID, None] = OrderedDict()  # runs whose route began (``mark``) and has not closed
_results: OrderedDict[UUID, Routed] = OrderedDict()
_waiting: dict[UUID, Callable[[Routed], None]] = {}
_lock = threading.Lock()
_listeners = 0


def listen() -> None:
    """A handler exists: from now on routed runs are tied to their run ids."""
    global _listeners
    with _lock:
        _listeners += 1


def _remember(ids: OrderedDict[UUID, None], run_id: UUID) -> None:
    ids[run_id] = None
    while len(ids) > KEPT:
        dropped, _ = ids.popitem(last=False)
        if ids is _open:
            _waiting.pop(dropped, None)


def expect(run_id: UUID) -> None:
    """A handler records ``run_id`` (its start was seen): keep its result for it."""
    with _lock:
        _remember(_expected, run_id)


def mark(request: RouteRequest, run_id: UUID | None) -> None:
    """Tie ``request`` to the LangChain run it is routed for: its route is open."""
    if run_id is not None and _listeners:
        request.__dict__[_RUN_ID] = run_id
        with _lock:
            _remember(_open, run_id)


def observe(result: RoutingResult, request: RouteRequest, backend: Any) -> None:
    """The router's observer: a run's result goes to the handler waiting for it, else is
    kept until its handler asks (dropped when no handler records the run)."""
    run_id = request.__dict__.get(_RUN_ID)
    if run_id is None:
        return
    routed = Routed(result, request, backend)
    with _lock:
        _open.pop(run_id, None)
        waiting = _waiting.pop(run_id, None)
        if waiting is None and run_id in _expected:
            _results[run_id] = routed
            while len(_results) > KEPT:
                _results.popitem(last=False)
    if waiting is not None:
        waiting(routed)


def take_routed(run_id: UUID, then: Callable[[Routed], None] | None = None) -> Routed | None:
    """The routed run ``run_id``, and the handler no longer expects it. When its route is
    still open (LangChain reports an async stream the consumer left before the route has
    closed), ``then`` gets it as the route closes; a run never routed here (another chat
    model, a ``tier:<name>`` attempt run) gets nothing and leaves nothing behind."""
    with _lock:
        _expected.pop(run_id, None)
        routed = _results.pop(run_id, None)
        if routed is None and then is not None and run_id in _open:
            _waiting[run_id] = then
        return routed

