"""The sinks that write inline (JSONL, logging, OpenTelemetry), moved off the request path.

Built from a config, they run behind the bounded queue and the writer thread of the
database sinks (``writer.BackgroundSink``), so a request pays one enqueue: not a JSON
encoding and a file write, nor a span exporter (OpenTelemetry's ``SimpleSpanProcessor``
exports inside ``span.end()``: with an OTLP exporter, a network call per request).

Each record carries a copy of its request's context (``contextvars``) and is written
inside it: a span keeps the request's current span as its parent, and a logging filter
that reads a context variable sees the request's value, as when they were written inline.
A sink constructed directly (``Recorder([JsonlSink(path)])``) still writes inline.
"""

from __future__ import annotations

import contextvars
from typing import Any, Sequence

from .record import PendingRecord, RoutingRecord, built
from .sinks import JsonlSink, Sink
from .writer import BackgroundSink, PartialWrite, Store

__all__ = ["OffloadedSink", "SinkStore"]


class InContext(PendingRecord):
    """A record (built or still pending) with the context of the request that made it;
    a ``PendingRecord`` so that ``built`` and the writer's logging take it as one."""

    __slots__ = ("record", "context")

    def __init__(self, record: RoutingRecord | PendingRecord, context: contextvars.Context):
        self.record, self.context = record, context

    @property
    def request_id(self) -> str:
        return self.record.request_id

    def build(self) -> RoutingRecord:
        return built(self.record)


class SinkStore(Store):
    """An inline sink as the writer thread's store: each record written in its request's context."""

    def __init__(self, sink: Sink, description: str):
        self.sink = sink
        self.description = description
        self.reopens = isinstance(sink, JsonlSink)  # its next line opens the file again

    def insert(self, records: Sequence[Any]) -> int:
        written, lost = 0, []
        for item in records:  # one at a time: a batch retried whole would write its first records twice
            try:
                record = built(item)
                context = item.context if isinstance(item, InContext) else None
                if context is None:
                    self.sink.write(record)
                else:
                    context.run(self.sink.write, record)
                written += 1
            except Exception as exc:  # noqa: BLE001 - counted and logged with its JSON by the writer
                lost.append((item, f"{type(exc).__name__}: {exc}"))
        if lost:
            raise PartialWrite(written, lost)
        return written

    def close(self) -> None:
        self.sink.close()

    def after_fork(self) -> None:
        self.sink.after_fork()


class OffloadedSink(BackgroundSink):
    """``sink`` behind a writer thread; the request's context travels with each record."""

    def __init__(self, sink: Sink, description: str, **options: Any):
        super().__init__(SinkStore(sink, description), **options)
        self.sink = sink

    def write(self, record: RoutingRecord | PendingRecord) -> None:  # type: ignore[override]
        super().write(InContext(record, contextvars.copy_context()))
