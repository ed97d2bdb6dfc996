"""The fleet's sink: PostgreSQL, so replicas on many hosts write one store.

The same table, columns and record JSON as the SQLite sink (``sqlite.py``), so
``tiered-router report --db postgresql://...`` reads the same report; the same
background writer (``writer.py``: bounded queue, a writer that never dies, group
commit, a journal with ``durable: true``). A server that is down or restarting makes
the writer retry for ``retry_s``, then count and log the records (or keep them in the
journal). Needs psycopg 3: ``pip install 'langchain-tiered-router[postgres]'``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import weakref
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, TelemetryError
from ..redact import redact_secrets
from .forks import set_aside
from .journal import Journal, journal_scope
from .record import PendingRecord, RoutingRecord, built
from .schema import COLUMNS, ON_CONFLICT, PROVISIONAL_SHADOW, missing_columns, schema_sql
from .sqlite import record_row
from .writer import BackgroundSink, Store, StoreUnavailable, refuse_other_settings, sink_settings

__all__ = ["PostgresSink", "PostgresStore", "POSTGRES_SCHEMA", "DSN_ENV", "is_postgres_dsn", "psycopg_module",
           "redact_dsn", "load_postgres", "write_postgres_labels"]

DSN_ENV = "TIERED_ROUTER_POSTGRES_DSN"

log = logging.getLogger("langchain_tiered_router")

POSTGRES_SCHEMA = schema_sql(real="DOUBLE PRECISION", bigint="BIGINT")

_INSERT = (f"INSERT INTO routing_records ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)}) "
           f"{ON_CONFLICT}")


def is_postgres_dsn(text: str) -> bool:
    return str(text).startswith(("postgresql://", "postgres://"))


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for logs and errors."""
    return redact_secrets(dsn)


def psycopg_module(path: str = "kind") -> Any:
    """psycopg, or a ``ConfigError`` at ``path``: a sink's ``kind``; "" where a command
    was given a DSN (``report --db``), which has no config key to name."""
    try:
        import psycopg
    except ImportError:
        what = "the postgres sink" if path else "a postgresql:// database"
        raise ConfigError(f"{what} needs psycopg 3: pip install 'langchain-tiered-router[postgres]'",
                          path=path) from None
    return psycopg


def ensure_schema(conn: Any) -> None:
    """Create the tables once; two replicas starting together may race, which is harmless.
    A ``routing_records`` table made by an older writer (or by hand) gets the columns it
    lacks, as the SQLite store's does: every insert names every column."""
    psycopg = psycopg_module()
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(727274)")  # one creator at a time
            _add_missing_columns(conn)  # before the schema's index, which reads a column
            conn.execute(POSTGRES_SCHEMA)
    except psycopg.errors.UniqueViolation:  # pragma: no cover - the lock makes this rare
        pass


def _add_missing_columns(conn: Any) -> None:
    have = {row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'routing_records'")}
    try:
        missing = missing_columns(have, real="DOUBLE PRECISION", bigint="BIGINT")
    except ValueError as exc:
        raise TelemetryError(f"{exc} (use another database or schema)") from None
    for declaration in missing:
        conn.execute(f"ALTER TABLE routing_records ADD COLUMN IF NOT EXISTS {declaration}")


_UNIQUE_ON_REQUEST_ID = """
SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = 'routing_records'::regclass AND i.indisunique AND i.indnatts = 1 AND a.attname = 'request_id'
"""
_STATUS_OF_MANY = "SELECT request_id, shadow_status FROM routing_records WHERE request_id = ANY(%s)"
_SHADOW_STATUS = COLUMNS.index("shadow_status")
_PLAIN_INSERT = f"INSERT INTO routing_records ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)})"
_REPLACE_PENDING = (f"UPDATE routing_records SET {', '.join(f'{c} = %s' for c in COLUMNS[1:])} "
                    f"WHERE request_id = %s AND shadow_status = '{PROVISIONAL_SHADOW}'")
# libpq's TCP settings: a server gone without a word (a failover, a partition) is noticed
# in about half a minute, not after the kernel's TCP timeout of minutes
_TCP = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
        "tcp_user_timeout": 30_000}


def unique_request_ids(conn: Any, psycopg: Any) -> bool:
    """Whether ``request_id`` alone is unique in the table, making the index when the
    table has none and allows one. A table made by hand, or partitioned (whose unique
    keys must hold the partition key), may lack it: ``ON CONFLICT (request_id)`` then
    refused every insert. Without it rows go in one by one, a repeated id kept once."""
    if conn.execute(_UNIQUE_ON_REQUEST_ID).fetchone():
        return True
    try:
        with conn.transaction():
            conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS routing_records_request_id ON routing_records (request_id)")
        return True
    except psycopg.Error as exc:
        log.warning("postgres routing_records has no unique index on request_id alone and cannot get one (%s): rows "
                    "are inserted one by one, checked for their request id", str(exc).strip().splitlines()[0])
        return False


class PostgresStore(Store):
    """One connection, opened on first insert and again after the server went away.

    An insert that has not come back in ``insert_timeout_s`` (a server that stopped
    answering on a connection the kernel keeps open: the writer waited for minutes and
    the queue overflowed) has its connection shut: the store counts as unavailable, the
    writer retries, and the journal keeps what ``durable`` sinks acknowledged."""

    insert_timeout_s = 15.0

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.description = f"postgres {redact_dsn(dsn)}"
        self._conn: Any = None
        self._psycopg = psycopg_module()
        self._upsert = True  # ``unique_request_ids``, read when connected

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                conn = self._connect()
                ensure_schema(conn)
                self._upsert = unique_request_ids(conn, self._psycopg)
            except self._psycopg.OperationalError as exc:
                raise StoreUnavailable(str(exc).strip()) from exc
            self._conn = conn
        return self._conn

    def _connect(self) -> Any:
        """Connected with ``_TCP`` where the DSN does not set those itself (a libpq too
        old to know them connects without)."""
        given = self._psycopg.conninfo.conninfo_to_dict(self.dsn)
        tcp = {k: v for k, v in _TCP.items() if k not in given}
        try:
            return self._psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, **tcp)
        except self._psycopg.ProgrammingError as exc:
            if "invalid connection option" not in str(exc):
                raise
            return self._psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)

    def insert(self, records: Sequence[RoutingRecord | PendingRecord]) -> int:
        conn = self._connection()
        rows = [record_row(built(r)) for r in records]  # a pending record lives only until its row is made
        watchdog = threading.Timer(self.insert_timeout_s, _shut, (conn,))
        watchdog.daemon = True
        watchdog.start()
        try:
            with conn.transaction():
                with conn.cursor() as cur:
                    if self._upsert:
                        cur.executemany(_INSERT, rows)
                        return max(0, cur.rowcount)
                    return self._insert_checked(cur, rows)
        except self._psycopg.OperationalError as exc:  # the server went away: reconnect, retry
            self.close()
            raise StoreUnavailable(str(exc).strip()) from exc
        finally:
            watchdog.cancel()

    @staticmethod
    def _insert_checked(cur: Any, rows: list[tuple]) -> int:
        """Without a unique index: a batch's rows added unless their request id is there, a
        provisional row replaced by its final form; in three statements per batch (one
        query, then the inserts and updates pipelined), under a lock that makes the check
        and the insert one step across replicas."""
        cur.execute("SELECT pg_advisory_xact_lock(727275)")  # held to the transaction's end
        ids = list({row[0] for row in rows})
        status = dict(cur.execute(_STATUS_OF_MANY, (ids,)).fetchall())
        inserts, updates = [], []
        for row in rows:
            rid = row[0]
            if rid not in status:
                inserts.append(row)
            elif status[rid] == PROVISIONAL_SHADOW:
                updates.append((*row[1:], rid))
            else:
                continue
            status[rid] = row[_SHADOW_STATUS]
        if inserts:
            cur.executemany(_PLAIN_INSERT, inserts)
        if updates:
            cur.executemany(_REPLACE_PENDING, updates)
        return len(inserts) + len(updates)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def after_fork(self) -> None:
        if self._conn is not None:  # the parent's socket: closing it here would end the parent's session
            set_aside(self._conn)
            self._conn = None


def _database_of(dsn: str) -> str:
    """Which database a DSN names (host, port, database): replicas whose DSNs differ in a
    password, an ``application_name`` or the order of parameters write one store, and
    replay each other's journals (and no password goes into a file name's hash)."""
    try:
        info = psycopg_module().conninfo.conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - the DSN is refused when the store connects
        return redact_dsn(dsn)
    env = os.environ  # what libpq fills in where the DSN is silent (PGDATABASE=prod vs staging)
    host = info.get("host") or env.get("PGHOST") or ""
    port = info.get("port") or env.get("PGPORT") or 5432
    user = info.get("user") or env.get("PGUSER") or ""
    dbname = info.get("dbname") or env.get("PGDATABASE") or user
    service = info.get("service") or env.get("PGSERVICE") or ""
    return f"postgres://{host}:{port}/{dbname}?service={service}"


def _shut(conn: Any) -> None:
    """Shut a connection's socket under a call blocked on it (the call then fails)."""
    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    except (OSError, ValueError, AttributeError):  # closed meanwhile
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
        log.warning("postgres: an insert got no answer in %gs; its connection is shut and the store tried again later",
                    PostgresStore.insert_timeout_s)
    except OSError:
        pass
    finally:
        sock.close()


def _dsn(dsn: str | None) -> str:
    dsn = dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise ConfigError(f"a postgres sink needs 'dsn' (or ${DSN_ENV})", path="dsn")
    if not is_postgres_dsn(dsn):
        raise ConfigError("dsn must start with postgresql://", path="dsn")
    return dsn


_shared: "weakref.WeakValueDictionary[str, PostgresSink]" = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


class PostgresSink(BackgroundSink):
    """Batched, thread-safe PostgreSQL writer; a duplicate request id is kept once."""

    def __init__(self, dsn: str | None = None, *, batch_size: int = 2_000, flush_interval_s: float = 0.5,
                 linger_s: float = 0.05, queue_size: int = 10_000, retry_s: float = 10.0, durable: bool = False,
                 journal_dir: str | Path | None = None):
        self.dsn = _dsn(dsn)
        if durable and not journal_dir:
            raise ConfigError("a durable postgres sink needs 'journal_dir'", path="journal_dir")
        journal = Journal(journal_dir, scope=journal_scope(_database_of(self.dsn))) if durable else None  # type: ignore[arg-type]
        super().__init__(PostgresStore(self.dsn), batch_size=batch_size, flush_interval_s=flush_interval_s,
                         linger_s=linger_s, queue_size=queue_size, retry_s=retry_s, journal=journal)

    @classmethod
    def shared(cls, dsn: str | None, **kwargs: Any) -> "PostgresSink":
        """The process's writer for this database, created on first use; a ``ConfigError``
        when it was made with other settings (``refuse_other_settings``)."""
        key = hashlib.sha256(_dsn(dsn).encode()).hexdigest()
        settings = sink_settings(cls, kwargs)
        with _shared_lock:
            sink = _shared.get(key)
            if sink is None:
                sink = cls(dsn, **kwargs)
                sink.settings = settings
                _shared[key] = sink
            else:
                refuse_other_settings(sink, settings, f"the PostgreSQL database {redact_dsn(_dsn(dsn))}")
        return sink


def load_postgres(dsn: str, since: float | None) -> tuple[list[str], list[tuple]]:
    """Record JSON texts and label rows from the database at ``dsn`` (for the report)."""
    psycopg = psycopg_module(path="")
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
            if "routing_records" not in tables:
                raise TelemetryError(f"{redact_dsn(dsn)} has no routing_records table")
            rows = conn.execute("SELECT record FROM routing_records WHERE ts >= %s ORDER BY ts, request_id",
                                (since if since is not None else float("-inf"),)).fetchall()
            labels = (conn.execute("SELECT request_id, served_score, baseline_score, source FROM labels").fetchall()
                      if "labels" in tables else [])
    except psycopg.Error as exc:
        raise TelemetryError(f"cannot read {redact_dsn(dsn)}: {str(exc).strip()}") from None
    return [r[0] for r in rows], labels


def write_postgres_labels(dsn: str, rows: list[tuple]) -> None:
    """Store label rows (request id, served score, baseline score, source), replacing earlier ones."""
    psycopg = psycopg_module(path="")
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            ensure_schema(conn)
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO labels VALUES (%s, %s, %s, %s) ON CONFLICT (request_id) DO UPDATE "
                                "SET served_score = EXCLUDED.served_score, baseline_score = EXCLUDED.baseline_score, "
                                "source = EXCLUDED.source", rows)
    except psycopg.Error as exc:
        raise TelemetryError(f"cannot write labels to {redact_dsn(dsn)}: {str(exc).strip()}") from None
