"""The embedded default sink: SQLite in WAL mode, written by one background thread.

Requests never wait on the disk: ``write`` puts the record on a queue and a single
writer thread inserts a batch in one transaction when it holds ``batch_size`` rows
or ``flush_interval_s`` after its first row, whichever comes first. One writer per
database file per process (``SqliteSink.shared``), so routers that share a file do
not fight over its lock. ``flush`` waits for the queue to drain; ``close`` (also run
at exit) drains and stops the thread. A batch that fails is retried row by row; a
row that still fails is logged with its JSON. A request id is stored once.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from .record import RoutingRecord
from .sinks import Sink

__all__ = ["SqliteSink", "SCHEMA", "connect"]

log = logging.getLogger("langchain_tiered_router.telemetry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS routing_records (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    session_id TEXT,
    integration TEXT,
    policy TEXT,
    tier TEXT,
    model_id TEXT,
    escalated INTEGER,
    flagged INTEGER,
    error TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd TEXT,
    baseline_tier TEXT,
    baseline_cost_usd TEXT,
    savings_usd TEXT,
    latency_ms REAL,
    shadow_status TEXT,
    shadow_score REAL,
    shadow_cost_usd TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS routing_records_ts ON routing_records (ts);
CREATE TABLE IF NOT EXISTS labels (
    request_id TEXT PRIMARY KEY,
    served_score REAL,
    baseline_score REAL,
    source TEXT
);
"""

_COLUMNS = ("request_id", "ts", "session_id", "integration", "policy", "tier", "model_id", "escalated",
            "flagged", "error", "input_tokens", "output_tokens", "cost_usd", "baseline_tier",
            "baseline_cost_usd", "savings_usd", "latency_ms", "shadow_status", "shadow_score",
            "shadow_cost_usd", "record")
_INSERT = (f"INSERT OR IGNORE INTO routing_records ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection with the schema in place, WAL on, and a wait on a busy lock."""
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


def _row(record: RoutingRecord) -> tuple[Any, ...]:
    data = record.to_json_dict()
    return (record.request_id, record.ts, record.session_id, record.integration, record.policy, record.tier,
            record.model_id, int(record.escalated), int(record.flagged), record.error, record.input_tokens,
            record.output_tokens, data["cost_usd"], record.baseline_tier, data["baseline_cost_usd"],
            data["savings_usd"], record.latency_ms, record.shadow_status, record.shadow_score,
            data["shadow_cost_usd"], json.dumps(data, ensure_ascii=False, default=str))


_STOP = object()
_open_sinks: "weakref.WeakSet[SqliteSink]" = weakref.WeakSet()
_shared: "weakref.WeakValueDictionary[str, SqliteSink]" = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()
_atexit_registered = False


def _close_all() -> None:
    for sink in list(_open_sinks):
        try:
            sink.close()
        except Exception:  # noqa: BLE001 - at exit, log and go on to the next file
            log.exception("closing telemetry database %s failed", sink.path)


class SqliteSink(Sink):
    """Batched, thread-safe SQLite writer. A duplicate request id is kept once."""

    def __init__(self, path: str | Path, *, batch_size: int = 200, flush_interval_s: float = 0.5):
        self.path = Path(path)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.written = 0  # rows inserted (duplicates not counted)
        self.failed = 0
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        global _atexit_registered
        with _registry_lock:
            _open_sinks.add(self)
            if not _atexit_registered:
                atexit.register(_close_all)
                _atexit_registered = True

    @classmethod
    def shared(cls, path: str | Path, **kwargs: Any) -> "SqliteSink":
        """The process's writer for this file, created on first use."""
        key = str(Path(path).resolve())
        with _registry_lock:
            sink = _shared.get(key)
        if sink is None:
            sink = cls(path, **kwargs)
            with _registry_lock:
                sink = _shared.setdefault(key, sink)
        return sink

    # -- the request side: never touches the disk ---------------------------------

    def write(self, record: RoutingRecord) -> None:
        self._ensure_thread()
        self._queue.put(record)

    def flush(self, timeout: float | None = 60) -> None:
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        if not done.wait(timeout):
            log.error("telemetry database %s did not flush within %ss", self.path, timeout)

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(60)
        if thread.is_alive():
            log.error("telemetry writer for %s did not stop; records may be missing", self.path)
            return
        late, _ = self._drain([])  # a write that raced with close: written here, not lost
        if late:
            conn = connect(self.path)
            try:
                self._insert(conn, late)
            finally:
                conn.close()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                thread = threading.Thread(target=self._run, name=f"tiered-router-sqlite:{self.path.name}",
                                          daemon=True)
                thread.start()
                self._thread = thread

    # -- the writer thread -----------------------------------------------------------

    def _run(self) -> None:
        conn = connect(self.path)
        try:
            stop = False
            while not stop:
                batch: list[RoutingRecord] = []
                waiters: list[threading.Event] = []
                item = self._queue.get()
                deadline = time.monotonic() + self.flush_interval_s
                while True:
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, threading.Event):
                        waiters.append(item)
                    else:
                        batch.append(item)
                    if stop or waiters or len(batch) >= self.batch_size:
                        break  # a flush or close writes now; otherwise wait to fill the batch
                    try:
                        item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                if waiters or stop:
                    rest, saw_stop = self._drain(waiters)
                    batch.extend(rest)
                    stop = stop or saw_stop
                if batch:
                    self._insert(conn, batch)
                for event in waiters:
                    event.set()
        finally:
            conn.close()

    def _drain(self, waiters: list[threading.Event]) -> tuple[list[RoutingRecord], bool]:
        """Everything queued right now (records written before a flush are in it)."""
        rest, stop = [], False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return rest, stop
            if isinstance(item, threading.Event):
                waiters.append(item)
            elif item is _STOP:
                stop = True
            else:
                rest.append(item)

    def _insert(self, conn: sqlite3.Connection, batch: list[RoutingRecord]) -> None:
        rows = [_row(r) for r in batch]
        try:
            with conn:
                before = conn.total_changes
                conn.executemany(_INSERT, rows)
                self.written += conn.total_changes - before
            return
        except sqlite3.Error:
            log.exception("telemetry batch of %d rows failed on %s; retrying one by one", len(rows), self.path)
        for record, row in zip(batch, rows):
            try:
                with conn:
                    before = conn.total_changes
                    conn.execute(_INSERT, row)
                    self.written += conn.total_changes - before
            except sqlite3.Error:
                self.failed += 1
                log.exception("telemetry record lost from %s; its JSON follows: %s", self.path, row[-1])
