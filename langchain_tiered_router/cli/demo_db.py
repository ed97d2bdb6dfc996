"""The demo's telemetry database: checked before the run, started afresh unless
``--append``, and marked as the demo's own so that a re-run may empty it.

The mark (a table) is the only sign: a file with the default name is not the demo's
for its name. It is made as the run starts, so a run stopped midway leaves a DB its
re-run may empty; a telemetry DB the demo only added to (``--append``) is not marked."""

from __future__ import annotations

import contextlib
from pathlib import Path

__all__ = ["DEFAULT_DB", "prepare_db", "start_afresh", "claim_db", "mark_db"]

DEFAULT_DB = Path("tiered_router_demo.db")
_MARK = "tiered_router_demo_runs"  # a table the demo adds, so a re-run knows the DB is its own


def _tables(db: Path) -> set[str] | None:
    """The tables of an existing file, read without writing it; None: not an SQLite database."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)) as conn:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return None


def _check_writable(db: Path) -> None:
    """Fail before the run, not after it: SQLite creates the file and, in WAL mode, two
    more beside it (``-wal``, ``-shm``), so the folder must take new files. Tried, not
    asked of ``os.access``: a read-only mount or a network share can say yes and then refuse."""
    import tempfile

    folder = db.parent
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".tiered-router-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"--db {db}: cannot write in the folder {folder} ({exc.strerror or exc}); "
                         "give a path in a writable folder") from None
    if db.exists():
        try:
            with open(db, "r+b"):  # opened for writing, not written
                pass
        except OSError as exc:
            raise ValueError(f"--db {db}: the file is not writable ({exc.strerror or exc}); give another path") \
                from None


def prepare_db(db: Path, append: bool) -> str | None:
    """Check ``--db`` before routing, touching nothing. Returns what will be done to an
    earlier DB, to be said. Only a DB an earlier demo wrote (its mark, not its name) will
    be emptied (``start_afresh``, once every other input has been read: a mistyped
    ``--config`` must not cost the last run's rows); ``--append`` adds only to a telemetry
    database (or an empty one); any other existing file is refused, never touched."""
    if db.is_dir():
        raise ValueError(f"--db {db} is a directory; give a file name")
    if not db.parent.exists():
        raise ValueError(f"--db {db}: the folder {db.parent} does not exist (create it, or give another path)")
    if not db.parent.is_dir():
        raise ValueError(f"--db {db}: {db.parent} is a file, not a folder; give another path")
    _check_writable(db)
    if not db.exists():
        return None
    tables = _tables(db)
    if append:
        if tables is None:
            raise ValueError(f"--db {db} exists and is not an SQLite database; --append adds to a telemetry "
                             "database an earlier run wrote: give one, or a new file")
        if tables and "routing_records" not in tables:
            raise ValueError(f"--db {db} is an SQLite database without telemetry (no routing_records table); "
                             "--append adds to a telemetry database an earlier run wrote: give one, or a new file")
        return f"added to the records already in {db} (--append); the report below counts this run only"
    if tables is None or _MARK not in tables:
        raise ValueError(f"--db {db} exists and was not written by the demo; give a new file, or --append to "
                         "add this run to it")
    return f"emptied the earlier {db} first (--append adds to it instead)"


def start_afresh(db: Path, append: bool) -> None:
    """Empty the earlier demo DB ``prepare_db`` accepted (its rows: the mark stays)."""
    if not append and db.exists():
        _empty(db)


def _empty(db: Path) -> None:
    """Delete the earlier run's rows. The rows, not the file: a telemetry writer of this
    process may still hold the file open (the demo run twice in one process)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in sorted(tables & {"routing_records", "labels", _MARK}):
                conn.execute(f"DELETE FROM {table}")
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"--db {db} exists and is not a telemetry database ({exc}); give another path") from None


def claim_db(db: Path) -> None:
    """Just before routing: a DB the demo is about to create is marked as its own now, not
    when the run ends. Made by the telemetry writer's ``connect`` (its page size and WAL
    apply to a new file only)."""
    if db.exists():  # emptied by ``prepare_db`` (the mark kept), or added to (not the demo's)
        return
    from ..core.telemetry.sqlite import connect

    with contextlib.closing(connect(db)) as conn, conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_MARK} (finished_at REAL NOT NULL)")


def mark_db(db: Path) -> None:
    """Note a finished run in a DB the demo claimed; one it only added to stays unmarked."""
    import sqlite3
    import time

    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_MARK,)).fetchone():
            conn.execute(f"INSERT INTO {_MARK} VALUES (?)", (time.time(),))
