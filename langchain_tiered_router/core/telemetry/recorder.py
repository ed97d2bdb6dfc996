"""The observer that turns each ``RoutingResult`` into a record and sends it to the sinks.

The engine calls it after every request, success or failure. It never raises into
the request (the engine also guards it) and never waits on a sink or a shadow call.
Recorders still open at interpreter exit are closed (shadows finished, sinks
drained) at exit (``shutdown.at_exit``), from a hook registered when the first recorder is made.
"""

from __future__ import annotations

import contextvars
import dataclasses
import threading
import time
import weakref
from typing import Any, Sequence

from ..backends import Backend
from ..types import RouteRequest, RoutingResult
from .comparators import build_comparator
from .record import PendingRecord, RoutingRecord, record_from_result
from .schema import PROVISIONAL_SHADOW as PROVISIONAL
from .shadow import ShadowSampler
from .build import build_sinks
from .shutdown import at_exit
from .writer import open_sinks
from .sinks import Sink, SinkSet

__all__ = ["Recorder", "build_recorder", "build_recorder_observers", "flush_all", "ShadowHandoff", "shadow_of",
           "NOT_SAMPLED"]

_SHADOW = "_tiered_router_shadow"  # on the request object, outside its fields: never recorded
SHADOW_FIELDS = tuple(f.name for f in dataclasses.fields(RoutingRecord) if f.name.startswith("shadow_"))


class ShadowHandoff:
    """The outcome of a request's shadow call, for others who record the same request
    (LangChain's callback handler): one shadow call, however many record it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: RoutingRecord | None = None
        self._then: list[Any] = []

    def finish(self, record: RoutingRecord) -> None:
        with self._lock:
            self._done, then, self._then = record, self._then, []
        for callback in then:
            callback(record)

    def then(self, callback: Any) -> None:
        """``callback(record)`` once the shadow call has ended (at once if it has)."""
        with self._lock:
            if self._done is None:
                self._then.append(callback)
                return
        callback(self._done)

    @staticmethod
    def merged(record: RoutingRecord, shadowed: RoutingRecord) -> RoutingRecord:
        """``record`` with the shadow fields of ``shadowed``."""
        return dataclasses.replace(record, **{f: getattr(shadowed, f) for f in SHADOW_FIELDS})


NOT_SAMPLED = "not sampled"  # a recorder drew for the request and left it unshadowed


def shadow_of(request: RouteRequest) -> ShadowHandoff | str | None:
    """The request's shadow call when a recorder sampled it, ``NOT_SAMPLED`` when one drew
    and did not, None when no recorder with a shadow sampler saw it: whoever else records
    the request follows that draw (a second draw paid for shadows whose rows were lost)."""
    return request.__dict__.get(_SHADOW)

_recorders: "weakref.WeakSet[Recorder]" = weakref.WeakSet()
_lock = threading.Lock()
_atexit_registered = False


def _close_all() -> None:
    for recorder in list(_recorders):
        recorder.close()


def flush_all(timeout: float | None = 60) -> bool:
    """Flush every live recorder (shadows finished, sinks drained), e.g. before reading the
    DB, within one ``timeout`` for all; False when it ran out."""
    deadline = None if timeout is None else time.monotonic() + timeout
    ok = True
    for recorder in list(_recorders):
        ok = recorder.flush(_left(deadline)) and ok
    # and the sinks of recorders no longer referenced (a model built per call, LangChain's
    # configurable fields): their writers still hold queued records
    for sink in open_sinks():
        ok = sink.flush(_left(deadline)) and ok
    return ok


def _shadows_share(timeout: float | None) -> float | None:
    """The part of a flush's or close's time shadow calls may take: three quarters. A
    backlog of slow baseline calls took all of it, and the sinks, given nothing left, said
    they "did not stop within 0.0s" while their writers still held the records (the
    cancelled shadows' among them) for the drain at exit to write."""
    return None if timeout is None else timeout * 0.75


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class Recorder:
    """``observer(result, request, backend)``: record, maybe shadow, write."""

    def __init__(self, sinks: Sink | Sequence[Sink], *, store_text: bool = False,
                 shadow: ShadowSampler | None = None):
        self.sinks = sinks if isinstance(sinks, SinkSet) else SinkSet([sinks] if isinstance(sinks, Sink) else sinks)
        self.store_text = store_text
        self.shadow = shadow
        global _atexit_registered
        with _lock:
            _recorders.add(self)
            if not _atexit_registered:
                at_exit(_close_all)  # runs before the writers' hook, registered before it (LIFO)
                _atexit_registered = True

    def __call__(self, result: RoutingResult, request: RouteRequest, backend: Backend) -> None:
        sampled = self.shadow is not None and self.shadow.wants(result)
        if self.shadow is not None and not sampled:
            request.__dict__[_SHADOW] = NOT_SAMPLED
        if sampled:
            record = record_from_result(result, request, store_text=self.store_text)
            if self.sinks.durable:  # the record waits for its shadow: a journal holds it meanwhile
                self.sinks.write_provisional(dataclasses.replace(record, shadow_status=PROVISIONAL))
            # written when the shadow call ends, on its thread: in this request's context
            # still (a span's parent, a logging filter's context variable)
            context = contextvars.copy_context()
            handoff = request.__dict__[_SHADOW] = ShadowHandoff()

            def done(scored: RoutingRecord) -> None:
                context.run(self.write, scored)
                handoff.finish(scored)

            self.shadow.submit(record, result, request, backend, done)
        elif self.sinks.defers:  # background writers only: they build the record on their thread
            self.sinks.write_pending(PendingRecord(result, request, self.store_text))
        else:
            self.write(record_from_result(result, request, store_text=self.store_text))

    def write(self, record: RoutingRecord) -> None:
        self.sinks.write(record)

    def flush(self, timeout: float | None = 60) -> bool:
        """Finish shadow calls, then drain the sinks, within ``timeout`` in all."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = self.shadow.flush(_shadows_share(timeout)) if self.shadow is not None else True
        return self.sinks.flush(_left(deadline)) and ok

    def close(self, timeout: float | None = 60) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.shadow is not None:
            self.shadow.close(_shadows_share(timeout))
        self.sinks.close(_left(deadline))


def build_recorder(config: Any, ladder: Any, *, sinks: Sequence[Sink] | None = None) -> Recorder:
    """A recorder for ``config.telemetry`` (``sinks`` replaces the configured ones)."""
    tel = config.telemetry
    shadow = None
    if tel.shadow.fraction > 0:
        comparator = build_comparator(tel.shadow.comparator, ladder.baseline.name)
        shadow = ShadowSampler(ladder, comparator, fraction=tel.shadow.fraction, seed=tel.shadow.seed,
                               max_in_flight=tel.shadow.max_in_flight, store_text=tel.store_text,
                               judge_tier=tel.shadow.comparator.judge_tier)
    return Recorder(SinkSet(list(sinks)) if sinks is not None else build_sinks(tel.sinks),
                    store_text=tel.store_text, shadow=shadow)


def build_recorder_observers(config: Any, ladder: Any) -> list[Recorder]:
    """What ``build_router`` installs: one recorder, or none when nothing would be recorded."""
    tel = config.telemetry
    if not tel.sinks:
        return []
    return [build_recorder(config, ladder)]
