"""The background writer behind the database sinks (SQLite, PostgreSQL): it never dies.

Requests never wait on a database: ``write`` puts the record on a bounded queue and one
writer thread inserts whatever is queued in one transaction (group commit: rows that
arrive during a commit go in the next one). After the first record of a batch it lets
more gather for ``linger_s`` (50 ms by default; a flush, a stop or a full batch cut it
short): woken for every record, the writer took the GIL and the CPU's caches from the
requests once per request (with the linger a routed request takes 0.91-0.95x of the CPU
it took then, in the overhead benchmark's A/B). What can go wrong, and what happens then:

* the queue is full (the database cannot keep up): the record is dropped and counted
  (``dropped``), its JSON logged at DEBUG, a warning at most every few seconds; the
  request is never blocked. With a journal (``durable: true``) nothing is dropped: the
  record is already on disk and is replayed from there.
* the store cannot be opened or reached (a directory, not a database, a server down), or
  another connection holds it locked past the store's own wait (SQLite's busy wait): the
  batch is retried for ``retry_s`` from that first failure (a retry waits on a lock no
  longer than what is left of it), then each record is counted (``failed``) and logged
  with its JSON (with a journal, kept there), and the writer goes on with the next batch.
* one record cannot be written (a lone surrogate the database will not encode, a bug):
  it is counted and logged with its JSON; the rest of its batch is written.

``flush(timeout)`` and ``close(timeout)`` honour their timeout. ``close`` runs at
interpreter exit, and on SIGTERM / SIGINT (``shutdown.py``), so an ordinary shutdown
loses nothing; ``kill -9`` loses what was queued and not yet committed: the records of
one linger and one commit (``durable: true`` loses none).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import inspect
import itertools
import logging
import math
import os
import sys
import threading
import time
import weakref
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import ConfigError
from .journal import Journal
from .record import PendingRecord, RoutingRecord, built, logged_json, record_json
from .schema import PROVISIONAL_SHADOW
from .shutdown import at_exit, watch_signals
from .sinks import Sink

__all__ = ["Store", "StoreUnavailable", "PartialWrite", "BackgroundSink", "waiting_for_room", "record_json",
           "clean_text", "refuse_other_settings", "sink_settings"]

class _SafeLog:
    """The writer's log. A handler that raises (a bug in it; the logging sink's own
    logger, whose handler just refused a record) must end neither the writer thread nor
    a request that writes inline: what it could not say is lost, never the writer."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return self.logger.isEnabledFor(level)

    def _say(self, method: str, msg: str, *args: Any, **kwargs: Any) -> None:
        try:
            getattr(self.logger, method)(msg, *args, **kwargs)
        except Exception:  # noqa: BLE001 - see the class docstring
            pass

    def debug(self, msg: str, *args: Any) -> None:
        self._say("debug", msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self._say("warning", msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self._say("error", msg, *args)

    def exception(self, msg: str, *args: Any) -> None:
        self._say("exception", msg, *args)


log = _SafeLog(logging.getLogger("langchain_tiered_router.telemetry"))


# Set (``waiting_for_room``) where a caller may wait for a full queue rather than drop:
# a batch run's records, never a live request's.
WAIT_FOR_ROOM: contextvars.ContextVar[bool] = contextvars.ContextVar("tiered_router_wait_for_room", default=False)


@contextlib.contextmanager
def waiting_for_room() -> Iterator[None]:
    """Within it, a write to a full queue waits (up to a minute) for the writer to make
    room instead of dropping the record: back-pressure for a batch, which can wait."""
    token = WAIT_FOR_ROOM.set(True)
    try:
        yield
    finally:
        WAIT_FOR_ROOM.reset(token)


class StoreUnavailable(Exception):
    """The store cannot be opened or reached right now: the whole batch is retried later."""


class PartialWrite(Exception):
    """A store that writes record by record wrote ``written`` of a batch and not ``lost``
    (each with why): the writer counts both and retries none (a retry would repeat the
    written ones)."""

    def __init__(self, written: int, lost: list[tuple[Any, str]]):
        super().__init__(f"{len(lost)} records not written")
        self.written, self.lost = written, lost


class Store(ABC):
    """Where a background writer puts records; used from the writer thread only."""

    description: str = "store"
    # How long a fork waits for this store's writer to end its transaction (``_before_fork``):
    # long enough for a healthy store, short enough that one that is down does not hang a fork.
    fork_wait_s: float = 2.0

    @abstractmethod
    def insert(self, records: Sequence[RoutingRecord | PendingRecord]) -> int:
        """Insert in one transaction, keeping a request id once; returns the rows added.
        A ``PendingRecord`` is built here (``built``), one at a time, and not kept.

        Raises ``StoreUnavailable`` when the store cannot be opened or reached; any other
        exception means the batch failed, and the writer tries its records one by one.
        """

    # Whether ``close`` only lets go of what the next ``insert`` opens again (a database
    # connection, a file): then an idle writer closes the store as it ends (``idle_exit_s``).
    reopens: bool = False

    def limit_wait(self, seconds: float) -> None:
        """The longest the next ``insert`` may wait for a store another connection holds
        (a lock) before it raises ``StoreUnavailable``: what is left of the writer's retry
        window, ``inf`` before the store first failed. A store that does not wait ignores it."""

    def close(self) -> None:
        """Release the connection (the writer may open it again)."""

    def after_fork(self) -> None:
        """In a forked child: forget the parent's connection without closing it (closing
        it here would act on the parent's); the child's writer opens its own."""


def clean_text(value: Any) -> Any:
    """A string every database accepts: lone surrogates and NUL replaced (U+FFFD). The
    record's JSON keeps the exact original, escaped."""
    if not isinstance(value, str) or value.isascii() and "\x00" not in value:
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value.replace("\x00", "\ufffd")


class _Marker:
    """A flush or stop request in the queue; ``done`` is a plain flag a signal handler can poll."""

    def __init__(self, stop: bool = False):
        self.stop = stop
        self.done = False
        self.event = threading.Event()

    def finish(self) -> None:
        self.done = True
        self.event.set()


_sinks: "weakref.WeakSet[BackgroundSink]" = weakref.WeakSet()
_registry_lock = threading.Lock()
_atexit_registered = False


def open_sinks() -> list["BackgroundSink"]:
    return list(_sinks)


_held_for_fork: list["BackgroundSink"] = []


def _before_fork() -> None:
    """Fork between two of each writer's transactions: a store connection the child
    inherits in the middle of one leaves SQLite's per-process lock table saying a write
    is under way, and every write of the child's own connection then waits on it (the
    child's records stayed in its journal, "database is locked"). Each store says how
    long that wait may be (``Store.fork_wait_s``); past it, a store that is down, the
    fork goes ahead."""
    _registry_lock.acquire()
    for sink in list(_sinks):
        if sink._store_lock.acquire(timeout=sink.store.fork_wait_s):
            _held_for_fork.append(sink)
        else:
            log.warning("forking while the telemetry writer for %s is still inside a write (waited %ss): "
                        "the new process may be unable to write there", sink.store.description,
                        sink.store.fork_wait_s)


def _after_fork_in_parent() -> None:
    while _held_for_fork:
        _held_for_fork.pop()._store_lock.release()
    _registry_lock.release()


def _after_fork_in_child() -> None:
    """A forked child (a pre-forking server's worker, a ``multiprocessing`` process) has
    no writer thread, and its locks may have been held by the parent's: each sink starts
    afresh there, or every record the child makes would wait in a queue nobody reads."""
    global _registry_lock
    _registry_lock = threading.Lock()
    _held_for_fork.clear()
    for sink in list(_sinks):
        try:
            sink._after_fork()
        except Exception:  # noqa: BLE001 - the next sinks still start afresh
            log.exception("telemetry %s could not start afresh in a forked process", sink.store.description)
    util = sys.modules.get("multiprocessing.util")
    if util is not None:  # its children end in os._exit, after its finalizers but not atexit's
        util.register_after_fork(_close_all, _finalize_in_multiprocessing_child)


def _finalize_in_multiprocessing_child(_: Any) -> None:
    """Run by ``multiprocessing`` in its child, after it cleared the parent's finalizers:
    the sinks drained when the child ends."""
    sys.modules["multiprocessing.util"].Finalize(None, _close_all, exitpriority=0)


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


def _close_all() -> None:
    for sink in open_sinks():
        try:
            sink.close()
        except Exception:  # noqa: BLE001 - at exit, log and go on to the next sink
            log.exception("closing telemetry %s failed", sink.store.description)


class BackgroundSink(Sink):
    """A bounded queue and one writer thread in front of a ``Store``.

    Counters: ``written`` (rows added; a duplicate request id is not), ``failed`` (records
    the store refused, each logged with its JSON), ``dropped`` (queue full, no journal).
    """

    # A writer with nothing to write for this long ends (the next record starts another),
    # closing a store that reopens: a destination a process has stopped writing to (a router
    # per tenant, let go) kept a thread, its wake-ups and its open files for good.
    idle_exit_s: float = 30.0

    # The options a process's shared writer for a destination was made with (``shared``,
    # ``build_sink``): a config asking that destination for others is refused.
    settings: dict[str, Any] | None = None

    def __init__(self, store: Store, *, batch_size: int = 2_000, flush_interval_s: float = 0.5,
                 linger_s: float = 0.05, queue_size: int = 10_000, retry_s: float = 10.0,
                 journal: Journal | None = None):
        self.store = store
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.linger_s = linger_s
        self._urgent = threading.Event()  # a flush, a stop or a full batch: commit without lingering
        self.queue_size = queue_size
        self.retry_s = retry_s
        self.journal = journal
        self.written = self.failed = self.dropped = 0
        self._queue: collections.deque[Any] = collections.deque()  # append / popleft need no lock
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._store_lock = threading.Lock()  # the writer thread, or a write after close
        self._closed = False
        self._stopping: threading.Thread | None = None  # the writer close() is stopping
        # a close that waited its whole timeout for a stuck writer (an exporter that never
        # returns): later closes (each router sharing this writer, then the exit's pass over
        # every sink) do not wait for it again, or exit took (routers + 1) x the timeout
        self._gave_up = False
        self._draining = False  # after SIGTERM / SIGINT: each write waits for its commit
        self._seq = itertools.count(1)
        self._handled = 0  # the highest sequence number the writer is done with
        self._issued = 0  # the highest sequence number queued
        self._handled_cond = threading.Condition()
        self._last_drop_warning = 0.0
        self._replayed = False
        # queued record's sequence number -> its journal ticket, confirmed once committed
        # (a segment whose records are all confirmed is deleted, not inserted again)
        self._tickets: dict[int, int] = {}
        self._next_early_rotation = 0.0
        global _atexit_registered
        with _registry_lock:
            _sinks.add(self)
            if not _atexit_registered:
                at_exit(_close_all)
                _atexit_registered = True
        watch_signals(open_sinks)

    # -- the request side -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Closed: a later write is written inline (``close``)."""
        return self._closed

    @property
    def defers(self) -> bool:  # type: ignore[override]
        """Without a journal the writer thread may build the record; a journal must hold
        it on disk before the request goes on."""
        return self.journal is None

    def write_pending(self, pending: PendingRecord) -> None:
        self.write(pending)  # type: ignore[arg-type]

    @property
    def durable(self) -> bool:  # type: ignore[override]
        return self.journal is not None

    def write_provisional(self, record: RoutingRecord) -> None:
        """Into the journal only: a crash before the final form replays it (the store keeps
        it, "pending"); the final form, written later, takes its place in the store."""
        if self.journal is not None:
            self.journal.append(record_json(record), provisional=True)

    def write(self, record: RoutingRecord | PendingRecord) -> None:  # type: ignore[override]
        ticket = None
        if self.journal is not None:
            record = built(record)
            ticket = self.journal.append(record_json(record))  # acknowledged once on disk (group commit)
        if self._closed:
            if ticket is not None:  # written here, and by the close's replay
                self.journal.replay([ticket])  # type: ignore[union-attr]
            stopping = self._stopping
            if stopping is not None and stopping.is_alive():
                # The writer is stopping: this record is written here, and the queue left to
                # it (taking the queue would take its stop marker too: it never stopped), and
                # not queued behind the marker (under load the writer's last batch grew as
                # fast as it wrote: close never ended).
                self._commit([record])
                return
            self._write_now([record])
            return
        self._ensure_thread()
        if len(self._queue) >= self.queue_size and not (WAIT_FOR_ROOM.get() and self._wait_for_room()):
            if ticket is not None:
                self.journal.replay([ticket])  # type: ignore[union-attr]
            self._drop(record)
            return
        seq = self._issued = next(self._seq)
        if ticket is not None:
            self._tickets[seq] = ticket
        self._queue.append((seq, record))
        if self._thread is None:  # the writer ended idle between ``_ensure_thread`` and the append
            self._ensure_thread()
        if not self._wake.is_set():
            self._wake.set()
        if len(self._queue) >= self.batch_size and not self._urgent.is_set():
            self._urgent.set()
        if self._draining:
            self._wait_handled(seq, 5.0)

    def _wait_for_room(self, timeout: float = 60.0) -> bool:
        """Wait (inside ``waiting_for_room``) until the writer has made room in the queue."""
        deadline = time.monotonic() + timeout
        self._urgent.set()
        self._wake.set()
        with self._handled_cond:
            while len(self._queue) >= self.queue_size and self._thread is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._handled_cond.wait(min(left, 0.1))
        return len(self._queue) < self.queue_size

    def _drop(self, record: RoutingRecord | PendingRecord) -> None:
        if self.journal is not None:
            return  # on disk already: the writer replays the journal
        self.dropped += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("telemetry queue full; record dropped: %s", logged_json(record))
        now = time.monotonic()
        if now - self._last_drop_warning > 5:
            self._last_drop_warning = now
            log.warning("telemetry queue for %s is full (%d records): %d records dropped so far",
                        self.store.description, self.queue_size, self.dropped)

    def flush(self, timeout: float | None = 60) -> bool:
        """Wait until every record written so far is committed (or refused); False on timeout."""
        if self._thread is None:
            return self._replay_journal_now() if self.journal is not None else True
        if self.journal is None and self._handled >= self._issued:
            # every record queued so far is committed (or refused): nothing to wait for, and
            # no timeout to miss (``flush_all`` may have none left for this sink). A journal's
            # records may still wait in it for a replay, which the marker's pass tries.
            return True
        marker = _Marker()
        self._queue.append(marker)
        self._urgent.set()
        self._wake.set()
        if not marker.event.wait(timeout):
            log.error("telemetry %s did not flush within %ss", self.store.description, timeout)
            return False
        return True

    def close(self, timeout: float | None = 60) -> None:
        """Write what is queued, stop the writer; later writes are written inline."""
        with self._lock:
            thread, self._thread = self._thread, None
            stopping = self._stopping
            if thread is not None:
                self._stopping = thread
            self._closed = True
        if thread is None and stopping is not None and stopping.is_alive():
            # another close is stopping the writer (a sink shared by two routers): wait for
            # it; sweeping the queue here would take its stop marker, and the writer would never stop
            if not self._gave_up:
                stopping.join(timeout)
            return
        if thread is not None:
            marker = _Marker(stop=True)
            self._queue.append(marker)
            self._urgent.set()
            self._wake.set()
            thread.join(timeout)
            if thread.is_alive():
                self._gave_up = True
                log.error("telemetry writer for %s did not stop within %ss; %d records still queued",
                          self.store.description, timeout, len(self._queue))
                return
        self._write_now([])  # a write that raced with close
        if self.journal is not None:
            self._replay_journal(final=True)
        with self._store_lock:
            self.store.close()

    def _after_fork(self) -> None:
        """In a forked child: new locks and events, no writer thread yet (the next record
        starts one), an empty queue (what the parent had queued is the parent's to write:
        written here too it would be written twice), the store and journal on their own."""
        self._lock, self._store_lock = threading.Lock(), threading.Lock()
        self._wake, self._urgent = threading.Event(), threading.Event()
        self._handled_cond = threading.Condition()
        self._queue = collections.deque()
        self._tickets = {}
        self._thread = None
        self._draining = False
        self.store.after_fork()
        if self.journal is not None:
            self.journal.after_fork()

    def begin_drain(self) -> _Marker:
        """On a shutdown signal: from now on every write waits for its commit; returns a
        marker whose ``done`` flag says the records queued so far are committed. Takes no
        lock, so a signal handler may call it."""
        self._draining = True
        marker = _Marker()
        thread = self._thread
        if thread is None or not thread.is_alive():  # no writer: nothing queued (later writes start one, or go inline)
            marker.done = True
            return marker
        self._queue.append(marker)
        return marker

    def _wait_handled(self, seq: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._handled_cond:
            while self._handled < seq and self._thread is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._handled_cond.wait(left)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name=f"tiered-router-writer:{self.store.description}",
                                          daemon=True)
                thread.start()
                self._thread = thread

    # -- the writer thread -----------------------------------------------------------

    def _run(self) -> None:
        if self.journal is not None:
            self._replay_journal()  # what an earlier process acknowledged and did not commit
        orphans_at = time.monotonic() + (self.journal.orphan_scan_s if self.journal is not None else 0.0)
        active_at = time.monotonic()
        while True:
            self._wake.clear()
            if not self._queue:  # a signal handler's marker wakes no one: poll often
                self._wake.wait(min(self.flush_interval_s, 0.1))
                if not self._queue and time.monotonic() - active_at >= self.idle_exit_s and self._end_idle():
                    return
            else:
                active_at = time.monotonic()
            if self._queue and self.linger_s > 0 and not self._draining:
                self._urgent.wait(min(self.linger_s, self.flush_interval_s))
            self._urgent.clear()
            records, markers, stop = self._take()
            try:
                if records:
                    committed = self._commit([r for _, r in records])
                    if self.journal is not None:
                        self._confirm(records, committed)
                        if committed and time.monotonic() >= self._next_early_rotation and \
                                self.journal.holds_failed():
                            # the store answers again: what it did not take (or the full queue
                            # left in the journal) is replayed now; once a second at most, so a
                            # queue that stays full does not cut a segment for every batch
                            self._next_early_rotation = time.monotonic() + 1.0
                            self.journal.rotate()
                if self.journal is not None and not stop and time.monotonic() >= orphans_at:
                    orphans_at = time.monotonic() + self.journal.orphan_scan_s
                    self.journal.adopt_orphans()  # what a dead peer left (a replica scaled away)
                if self.journal is not None and not stop and self.journal.closed_segments():
                    self._replay_journal()
            except Exception:  # noqa: BLE001 - the writer never dies (``_commit`` already catches its own)
                log.exception("telemetry writer for %s hit an unexpected error", self.store.description)
            finally:
                if records:
                    with self._handled_cond:
                        self._handled = max(self._handled, records[-1][0])
                        self._handled_cond.notify_all()
                for marker in markers:
                    marker.finish()
            if stop:
                return

    def _end_idle(self) -> bool:
        """End this writer, idle (not with a journal: it scans for what peers left); False
        when a record came in the meantime. A write that finds no writer starts one."""
        if self.journal is not None:
            return False
        with self._lock:
            if self._queue or self._thread is not threading.current_thread():
                return False
            self._thread = None
        if self.store.reopens:
            with self._store_lock:
                self.store.close()
        return True

    def _take(self) -> tuple[list[tuple[int, RoutingRecord]], list[_Marker], bool]:
        records: list[tuple[int, RoutingRecord]] = []
        markers: list[_Marker] = []
        stop = False
        while len(records) < self.batch_size or markers:
            try:
                item = self._queue.popleft()
            except IndexError:
                break
            if isinstance(item, _Marker):
                markers.append(item)
                stop = stop or item.stop
                if not stop and len(records) >= self.batch_size:
                    break
            else:
                records.append(item)
        if stop:  # take everything: the writer ends after this batch
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, _Marker):
                    markers.append(item)
                else:
                    records.append(item)
        return records, markers, stop

    def _confirm(self, records: list[tuple[int, Any]], committed: bool) -> None:
        """Tell the journal these queued records are committed (not: their segment is
        replayed, as before)."""
        assert self.journal is not None
        tickets = [t for t in (self._tickets.pop(seq, None) for seq, _ in records) if t is not None]
        if committed:
            self.journal.confirm(tickets)
        else:
            self.journal.replay(tickets)

    def _commit(self, records: list[Any]) -> bool:
        """Insert a batch (records, or pending records the store builds one by one); never
        raises; whether every record was written. With a journal, a batch the store cannot
        take now stays in the journal and is replayed from there (not counted as lost). A
        pending record that cannot be built (a bug) fails its batch, which is then written
        one record at a time, so it alone is counted and logged."""
        try:
            lost, _ = self._insert(records)
        except Exception as exc:  # noqa: BLE001 - the writer must survive anything
            log.exception("telemetry writer for %s hit an unexpected error", self.store.description)
            lost = [(r, f"{type(exc).__name__}: {exc}") for r in records]
        if lost and self.journal is not None:  # the journal replay writes them, or counts them
            log.warning("telemetry %s: %d records not written now (%s); they stay in the journal %s",
                        self.store.description, len(lost), lost[0][1], self.journal.directory)
            return False
        self._give_up(lost)
        return not lost

    def _insert(self, records: list[RoutingRecord]) -> tuple[list[tuple[RoutingRecord, str]], bool]:
        """Insert with retries; returns (records not written, with why; whether the store was down).

        ``retry_s`` counts from the first failure, not the first attempt: that attempt may
        have spent the store's own wait on a lock (SQLite's busy wait, 30 s), and counted
        from before it the default 10 s left no retry (records were counted lost seconds
        before the lock cleared). The last retry is at the deadline, and none waits past
        it (``Store.limit_wait``).

        The store is held for each attempt, not across the pauses between them: a fork
        waits for the store (``_before_fork``), and a store that is down would hold it for
        the whole ``retry_s``."""
        deadline = math.inf
        pause = 0.05
        while True:
            try:
                with self._store_lock:
                    self.store.limit_wait(deadline - time.monotonic())
                    try:
                        self.written += self.store.insert(records)
                    except PartialWrite as exc:
                        self.written += exc.written
                        return exc.lost, False
                return [], False
            except StoreUnavailable as exc:
                now = time.monotonic()
                deadline = min(deadline, now + self.retry_s)
                if now >= deadline or self._closed:
                    return [(r, f"{self.store.description} unavailable: {exc}") for r in records], True
                time.sleep(min(pause, deadline - now))
                pause = min(2.0, pause * 2)
            except Exception as exc:  # noqa: BLE001 - isolate the record at fault
                if len(records) == 1:
                    return [(records[0], f"{type(exc).__name__}: {exc}")], False
                log.warning("telemetry batch of %d rows failed on %s (%s: %s); writing them one by one",
                            len(records), self.store.description, type(exc).__name__, exc)
                lost: list[tuple[RoutingRecord, str]] = []
                down = False
                for record in records:
                    one, unavailable = self._insert([record])
                    lost += one
                    down = down or unavailable
                return lost, down

    def _give_up(self, lost: Sequence[tuple[RoutingRecord, str]]) -> None:
        for record, reason in lost:
            self.failed += 1
            text = logged_json(record)
            log.error("telemetry record lost from %s (%s); its JSON follows: %s", self.store.description,
                      reason, text)

    def _write_now(self, records: list[RoutingRecord]) -> None:
        """Inline write (after close): whatever is still queued, then ``records``."""
        queued = [item[1] for item in self._drain_queue()]
        if queued or records:
            self._commit(queued + records)

    def _drain_queue(self) -> list[Any]:
        out = []
        while True:
            try:
                item = self._queue.popleft()
            except IndexError:
                return out
            if isinstance(item, _Marker):
                item.finish()
            else:
                out.append(item)

    # -- the journal (durable: true) -----------------------------------------------

    def _replay_journal_now(self) -> bool:
        """No writer thread yet (nothing written in this process): replay what an earlier
        process left in the journal."""
        self._replay_journal()
        return True

    def _replay_journal(self, final: bool = False) -> None:
        """Insert the records of closed journal segments (every segment at start and at
        close), then delete each; a record inserted twice is kept once. A segment the
        store cannot take now is kept for the next pass. A segment of this process whose
        every record the writer committed is deleted unread, and one whose last records are
        still queued waits for them (at close it is replayed)."""
        assert self.journal is not None
        first = not self._replayed
        self._replayed = True
        if final or first:
            self.journal.rotate()
        for segment in self.journal.closed_segments():
            state = self.journal.state(segment)
            if state == "settled":  # this process wrote it and committed all of it
                self.journal.remove(segment)
                continue
            if state == "waiting" and not final:  # its last records are still queued
                continue
            records, bad = self.journal.read(segment)
            records = _without_superseded(records)
            for line in bad:
                log.error("telemetry journal %s: a torn line (never acknowledged) skipped: %r", segment, line[:200])
            lost: list[tuple[RoutingRecord, str]] = []
            for start in range(0, len(records), self.batch_size):
                try:
                    more, unavailable = self._insert(records[start:start + self.batch_size])
                except Exception:  # noqa: BLE001
                    log.exception("replaying telemetry journal %s failed; kept for later", segment)
                    return
                if unavailable:
                    log.warning("telemetry %s unavailable; journal %s kept for later", self.store.description,
                                segment)
                    return
                lost += more
            self._give_up(lost)
            self.journal.remove(segment)


def _without_superseded(records: list[RoutingRecord]) -> list[RoutingRecord]:
    """A segment's records without the provisional ones whose final form it also holds
    (a shadow-sampled request journals both): each request goes to the store once, and
    ``written`` counts it once."""
    final = {r.request_id for r in records if r.shadow_status != PROVISIONAL_SHADOW}
    return [r for r in records if r.shadow_status != PROVISIONAL_SHADOW or r.request_id not in final]


def sink_settings(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A shared sink's writer options with their defaults (its keyword-only parameters);
    the journal folder resolved, and none without ``durable`` (it is not read then)."""
    settings = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.kind is p.KEYWORD_ONLY} | kwargs
    if "journal_dir" in settings:
        journal_dir = settings["journal_dir"]
        settings["journal_dir"] = str(Path(journal_dir).resolve()) if journal_dir and settings.get("durable") else None
    return settings


def refuse_other_settings(sink: BackgroundSink, wanted: dict[str, Any], destination: str) -> None:
    """A process keeps one writer per destination, made with the first config's settings:
    a second config asking for others (``durable: true``, ``journal_dir``, ``queue_size``...)
    is refused, or they were silently ignored (no journal, another queue)."""
    have = sink.settings or {}
    differ = [key for key in wanted if key in have and have[key] != wanted[key]]
    if differ:
        said = "; ".join(f"{key} {wanted[key]!r} here, {have[key]!r} there" for key in differ)
        raise ConfigError(f"{destination} is already written in this process by a router config with other "
                          f"settings for it ({said}); one process keeps one writer per destination: give every "
                          "config the same settings for it, or another destination", path=differ[0])
