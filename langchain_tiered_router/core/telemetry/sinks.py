"""Where records go: one small base (``Sink.write``) and the simple sinks.

A sink that raises must not fail the request nor drop the record quietly:
``SinkSet`` catches the error, logs it with the record as JSON (so it can be
replayed from the log) and carries on with the other sinks.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from ..types import money
from .forks import set_aside
from .record import PendingRecord, RoutingRecord, logged_json, record_json

__all__ = ["Sink", "SinkSet", "JsonlSink", "LoggingSink", "MemorySink"]

log = logging.getLogger("langchain_tiered_router.telemetry")


class Sink(ABC):
    """A destination for routing records. ``write`` must be safe from many threads."""

    # True when ``write_pending`` takes a record still to be built (``PendingRecord``)
    # and builds it off the request path.
    defers = False

    @abstractmethod
    def write(self, record: RoutingRecord) -> None:
        """Record one request (may buffer; ``flush`` makes it durable)."""

    def write_pending(self, pending: PendingRecord) -> None:
        self.write(pending.build())

    def write_provisional(self, record: RoutingRecord) -> None:
        """A record whose final form comes later (a shadow-sampled request's, written when
        its shadow call ends; ``shadow_status`` "pending"). A sink that promises no
        acknowledged record is lost (a journal) keeps it, so a crash in between loses
        nothing, and lets the final form take its place; the others wait for that."""

    @property
    def durable(self) -> bool:
        """Whether this sink keeps provisional records (``write_provisional``)."""
        return False

    def flush(self, timeout: float | None = None) -> bool:
        """Make every record written so far durable; False when ``timeout`` ran out first."""
        return True

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)

    def after_fork(self) -> None:
        """In a forked child, for a sink a writer thread runs (``offload``): let go of what
        is the parent's (``forks``). Nothing to do for most."""


class SinkSet(Sink):
    """Fans a record out to several sinks; one sink's failure is logged, never raised."""

    def __init__(self, sinks: Sequence[Sink]):
        self.sinks = list(sinks)
        self.failures = 0

    @property
    def defers(self) -> bool:  # type: ignore[override]
        return bool(self.sinks) and all(sink.defers for sink in self.sinks)

    def write(self, record: RoutingRecord) -> None:
        self._fan_out("write", record)

    def write_pending(self, pending: PendingRecord) -> None:
        self._fan_out("write_pending", pending)

    def write_provisional(self, record: RoutingRecord) -> None:
        self._fan_out("write_provisional", record)  # a no-op on all but durable sinks

    @property
    def durable(self) -> bool:
        return any(sink.durable for sink in self.sinks)

    def _fan_out(self, method: str, record: RoutingRecord | PendingRecord) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(record)
            except Exception:  # noqa: BLE001 - telemetry never fails a request
                self.failures += 1
                log.exception("telemetry sink %s failed; the record follows so it is not lost: %s",
                              type(sink).__name__, logged_json(record))

    def flush(self, timeout: float | None = None) -> bool:
        return self._each("flush", timeout)

    def close(self, timeout: float | None = None) -> None:
        self._each("close", timeout)

    def _each(self, method: str, timeout: float | None) -> bool:
        """Call ``method`` on every sink within one shared ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = True
        for sink in self.sinks:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ok = getattr(sink, method)(left) is not False and ok
            except Exception:  # noqa: BLE001
                self.failures += 1
                ok = False
                log.exception("telemetry sink %s failed to %s", type(sink).__name__, method)
        return ok


class MemorySink(Sink):
    """Keeps records in a list: for tests and for the demo's own bookkeeping."""

    def __init__(self) -> None:
        self.records: list[RoutingRecord] = []
        self._lock = threading.Lock()

    def write(self, record: RoutingRecord) -> None:
        with self._lock:
            self.records.append(record)


class JsonlSink(Sink):
    """One JSON object per line, appended under a lock; money as strings. A file renamed
    or deleted under it (log rotation) is started again at its path."""

    def __init__(self, path: str | Path):
        self.path = Path(path).absolute()  # opened on the first write: the file named now, not after a chdir
        self._lock = threading.Lock()
        self._fh: Any = None

    def probe(self) -> None:
        """Open the file for appending now: a path that can never be written is the
        config's error, not every record lost on the writer thread."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise ConfigError(f"cannot append to {self.path}: {type(exc).__name__}: {exc}", path="path") from None

    def write(self, record: RoutingRecord) -> None:
        line = record_json(record)  # any text, a lone surrogate included, as valid UTF-8 JSON
        with self._lock:
            if self._fh is not None and self._moved():
                self._fh.close()  # rotated (renamed) or deleted: the next line starts the file again
                self._fh = None
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")
            self._fh.write(line + "\n")
            self._fh.flush()

    def _moved(self) -> bool:
        """Whether the open file is no longer the one at ``path`` (logrotate renamed it, or
        it was deleted), as ``logging.handlers.WatchedFileHandler`` checks."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return True
        opened = os.fstat(self._fh.fileno())
        return (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino)

    def close(self, timeout: float | None = None) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def after_fork(self) -> None:
        """In a forked child: a lock of its own (the parent's writer may have held this
        one) and a file object of its own; the parent's is kept, never closed here."""
        self._lock = threading.Lock()
        if self._fh is not None:
            set_aside(self._fh)
            self._fh = None


class LoggingSink(Sink):
    """One log line per request, on the configured logger and level (no handler installed)."""

    def __init__(self, logger: str = "langchain_tiered_router.telemetry", level: str | int = "INFO"):
        self.logger = logging.getLogger(logger)
        self.level = level if isinstance(level, int) else logging.getLevelName(level.upper())
        if not isinstance(self.level, int):
            raise ConfigError(f"unknown logging level {level!r}", path="level")

    def write(self, record: RoutingRecord) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        self.logger.log(
            self.level,
            "routed %s tier=%s model=%s escalated=%s flagged=%s cost_usd=%s baseline_cost_usd=%s shadow_score=%s",
            record.request_id, record.tier, record.model_id, record.escalated, record.flagged,
            money(record.cost_usd), money(record.baseline_cost_usd), record.shadow_score,
            extra={"routing_record": record.to_json_dict()},
        )
