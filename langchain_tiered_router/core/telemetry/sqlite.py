"""The embedded default sink: SQLite in WAL mode, behind the background writer.

Requests never wait on the disk: ``SqliteSink`` is a ``BackgroundSink`` (bounded queue,
one writer thread that never dies, group commit; ``writer.py``) in front of a
``SqliteStore``. One writer per database file per process (``SqliteSink.shared``), so
routers that share a file do not fight over its lock (a config asking it for other
settings is refused); several processes may write one file (WAL; a lock held past the
busy wait is retried for ``retry_s``). A request id is stored once. ``durable: true`` adds a
write-ahead journal beside the file (``<file>.journal/``) and commits with
``synchronous=FULL``.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import weakref
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from .forks import ForkSafeLock, set_aside
from .journal import Journal, journal_scope
from .record import PendingRecord, RoutingRecord, built
from .schema import COLUMNS, ON_CONFLICT, missing_columns, schema_sql
from .writer import (BackgroundSink, Store, StoreUnavailable, clean_text, record_json, refuse_other_settings,
                     sink_settings)

__all__ = ["SqliteSink", "SqliteStore", "SCHEMA", "COLUMNS", "connect", "record_row"]

log = logging.getLogger("langchain_tiered_router.telemetry")

SCHEMA = schema_sql(real="REAL", bigint="INTEGER")



# Many rows per statement: ``executemany`` releases and takes back the GIL once per row,
# and with request threads waiting for the GIL each take-back can wait a switch
# interval (5 ms). One statement of 400 rows holds 8,400 parameters (SQLite allows 32,766).
# A batch is cut into statements of these sizes only, largest first: each size is one
# prepared statement in the connection's cache (a 400-row statement's program is large;
# one per remainder size would fill the cache with them, tens of MB).
_STATEMENT_SIZES = (400, 100, 20, 5, 1)


def _statement_sizes(n: int) -> list[int]:
    """``n`` rows as statement sizes from ``_STATEMENT_SIZES`` (greedy, largest first)."""
    sizes = []
    for size in _STATEMENT_SIZES:
        count, n = divmod(n, size)
        sizes += [size] * count
    return sizes


@functools.lru_cache(maxsize=2 * len(_STATEMENT_SIZES))
def _insert_many(n: int, upsert: bool = True) -> str:
    """``n`` rows in one statement; ``upsert``: a provisional row gives way (``ON_CONFLICT``),
    which needs a unique index on ``request_id`` (a table made by hand may have none)."""
    one = f"({', '.join('?' for _ in COLUMNS)})"
    if not upsert:
        return f"INSERT OR IGNORE INTO routing_records ({', '.join(COLUMNS)}) VALUES {', '.join([one] * n)}"
    return f"INSERT INTO routing_records ({', '.join(COLUMNS)}) VALUES {', '.join([one] * n)} {ON_CONFLICT}"


def unique_request_ids(conn: sqlite3.Connection) -> bool:
    """Whether ``request_id`` is unique in the table (its primary key, or a unique index),
    making the index when the table has none and holds no repeated id. A table made by an
    older writer or by hand may lack it; ``ON CONFLICT (request_id)`` then refused every
    insert. With repeats it stays as it is, and new rows are added with ``INSERT OR
    IGNORE`` (said once in the log)."""
    for _, name, unique, *_ in conn.execute("PRAGMA index_list(routing_records)").fetchall():
        if unique and [r[2] for r in conn.execute(f"PRAGMA index_info('{name}')")] == ["request_id"]:
            return True
    try:
        with conn:
            conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS routing_records_request_id ON routing_records (request_id)")
        return True
    except sqlite3.IntegrityError:
        log.warning("routing_records holds repeated request ids and no unique index on them: a shadow-sampled "
                    "request's provisional row will not give way to its final one")
        return False


# A record's row is about 1.6 KB (its JSON): a 4 KB page holds two, so most inserts
# split a page. 16 KB pages hold ten, and inserting costs about half. SQLite takes the
# size only when it creates the file; an existing file keeps its own.
PAGE_SIZE = 16_384
# The writer's page cache (KiB): the request-id index of a few hundred thousand rows
# stays in memory, so an insert into it does not read a random page from disk.
WRITER_CACHE_KIB = 32_768


def connect(path: str | Path, *, synchronous: str = "NORMAL", checkpoint_pages: int | None = None,
            cache_kib: int | None = None, busy_wait_s: float = 30.0) -> sqlite3.Connection:
    """A connection with the schema in place, WAL on, and a wait on a busy lock (``busy_wait_s``).

    ``checkpoint_pages``: how large the WAL grows before this connection copies it into
    the database (SQLite's default, 1000 pages, means a fsync every 4 MB: at thousands of
    rows a second that fsync, not the insert, is most of the writer's time)."""
    conn = sqlite3.connect(str(path), timeout=busy_wait_s, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before WAL: it applies to a new file only
        if cache_kib is not None:
            conn.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        if checkpoint_pages is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
        _add_missing_columns(conn)  # before the schema's index, which reads a column
        conn.executescript(SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """A ``routing_records`` table made by an older writer (or by hand) gets the columns it
    lacks, so no record is lost to "no column named ..."; one that lacks a required column
    is no telemetry table, said once as the store's error."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(routing_records)")}
    try:
        missing = missing_columns(have, real="REAL", bigint="INTEGER")
    except ValueError as exc:
        raise sqlite3.DatabaseError(f"{exc} (use another database file)") from None
    for declaration in missing:
        conn.execute(f"ALTER TABLE routing_records ADD COLUMN {declaration}")


def _money(value: Any) -> str | None:
    return None if value is None else (format(value, "f") if isinstance(value, Decimal) else str(value))


def record_row(record: RoutingRecord) -> tuple[Any, ...]:
    """The row of one record: columns for queries (text made encodable) and the exact
    record as ASCII JSON."""
    c = clean_text
    return (c(record.request_id), record.ts, c(record.session_id), c(record.integration), c(record.policy),
            c(record.tier), c(record.model_id), int(record.escalated), int(record.flagged), c(record.error),
            record.input_tokens, record.output_tokens, _money(record.cost_usd), c(record.baseline_tier),
            _money(record.baseline_cost_usd), _money(record.savings_usd), record.latency_ms,
            c(record.shadow_status), record.shadow_score, _money(record.shadow_cost_usd), record_json(record))


class SqliteStore(Store):
    """One SQLite file, opened on first insert (and again after a failure)."""

    reopens = True

    # A process forked inside this writer's transaction can never write the file: SQLite's
    # lock table, copied into it, says the transaction is still going on. A transaction on
    # a local file ends within the busy wait (30 s), so a fork waits for it that long.
    fork_wait_s = 60.0

    # How long one insert waits for a lock another connection holds (SQLite's busy wait)
    # before the file counts as unavailable and the writer's retries begin; a retry waits
    # no longer than what is left of ``retry_s`` (``limit_wait``), and at least
    # ``min_busy_wait_s``, so a peer's commit under way does not fail the last retry.
    busy_wait_s = 30.0
    min_busy_wait_s = 0.5

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL"):
        self.path = Path(path).absolute()  # connected on the first write: the file named now, not after a chdir
        self.synchronous = synchronous
        self.description = f"database {self.path}"
        self._conn: sqlite3.Connection | None = None
        self._upsert = True  # ``unique_request_ids``, read when connected
        self._wait_s = self.busy_wait_s  # the next insert's busy wait (``limit_wait``)
        self._conn_wait_s = self._wait_s  # the open connection's

    def limit_wait(self, seconds: float) -> None:
        # tenths of a second: the first attempt of every batch asks for the same wait, and
        # the connection is not told again
        self._wait_s = round(min(self.busy_wait_s, max(self.min_busy_wait_s, seconds)), 1)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = connect(self.path, synchronous=self.synchronous, checkpoint_pages=2_500,
                                     cache_kib=WRITER_CACHE_KIB, busy_wait_s=self._wait_s)
                self._conn_wait_s = self._wait_s
                self._upsert = unique_request_ids(self._conn)
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        elif self._conn_wait_s != self._wait_s:
            self._conn.execute(f"PRAGMA busy_timeout={int(self._wait_s * 1000)}")
            self._conn_wait_s = self._wait_s
        return self._conn

    def probe(self) -> None:
        """Open the file now, in the caller's thread: a path that can never hold the
        database (under a regular file, in a place that cannot be written, a file that is
        not SQLite) is the config's error, not every record lost on the writer thread.
        A file that is only busy (locked) is left to the writer, which waits and retries."""
        try:
            self._connection()
        except StoreUnavailable as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return
            raise ConfigError(f"cannot keep the database at {self.path}: {exc}", path="path") from None
        self.close()  # the writer connects on its first write, to the file at the path then

    def insert(self, records: Sequence[RoutingRecord | PendingRecord]) -> int:
        conn = self._connection()
        rows = [record_row(built(r)) for r in records]  # a pending record lives only until its row is made
        try:
            with conn:
                before = conn.total_changes
                start = 0
                for size in _statement_sizes(len(rows)):
                    part = rows[start:start + size]
                    start += size
                    conn.execute(_insert_many(size, self._upsert), [value for row in part for value in row])
                return conn.total_changes - before
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "disk I/O" in str(exc) or "readonly" in str(exc):
                self.close()
                raise StoreUnavailable(str(exc)) from exc
            raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def after_fork(self) -> None:
        if self._conn is not None:
            set_aside(self._conn)
            self._conn = None


_shared: "weakref.WeakValueDictionary[str, SqliteSink]" = weakref.WeakValueDictionary()
_shared_lock = ForkSafeLock()  # a fork while another thread makes a sink: the child makes its own


class SqliteSink(BackgroundSink):
    """Batched, thread-safe SQLite writer. A duplicate request id is kept once."""

    def __init__(self, path: str | Path, *, batch_size: int = 2_000, flush_interval_s: float = 0.5,
                 linger_s: float = 0.05, queue_size: int = 10_000, retry_s: float = 10.0, durable: bool = False,
                 journal_dir: str | Path | None = None):
        self.path = Path(path)
        # the default folder is this database's alone, and moves with it: its segments name no
        # store (a scope there stranded a journal whose database was restored elsewhere)
        journal = Journal(journal_dir or f"{self.path}.journal",
                          scope=journal_scope(str(self.path.resolve())) if journal_dir else None) if durable else None
        super().__init__(SqliteStore(self.path, synchronous="FULL" if durable else "NORMAL"),
                         batch_size=batch_size, flush_interval_s=flush_interval_s, linger_s=linger_s,
                         queue_size=queue_size, retry_s=retry_s, journal=journal)

    @classmethod
    def shared(cls, path: str | Path, **kwargs: Any) -> "SqliteSink":
        """The process's writer for this file, created on first use; a ``ConfigError`` when
        it was made with other settings (``refuse_other_settings``)."""
        key = str(Path(path).resolve())
        settings = sink_settings(cls, kwargs)
        with _shared_lock:
            sink = _shared.get(key)
            if sink is None or sink.closed:  # the file resolved now, not after a chdir
                sink = cls(key, **kwargs)
                sink.store.probe()
                sink.settings = settings
                _shared[key] = sink
            else:
                refuse_other_settings(sink, settings, f"the SQLite file {key}")
        return sink

