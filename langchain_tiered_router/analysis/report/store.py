"""Reading records back (SQLite, PostgreSQL or JSONL) and attaching quality labels.

Labels are known after the fact (recorded correctness in a replay, human review):
``write_labels`` stores a served score and a baseline score per request id, and
``load_records`` returns them with the records, so parity can be measured on them.

``load_records`` refuses a store with a damaged record (what ``damage`` calls one);
``read_store``, which the report uses, skips such records and counts them, naming the
first by file and line (JSONL) or rowid and request id (SQLite).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ...core.errors import TelemetryError
from ...core.telemetry.record import RoutingRecord
from ...core.telemetry.sqlite import connect
from .damage import DamagedRecord, parse_record, score_problem
from .slim import ReportRecord


def is_postgres_dsn(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))

__all__ = ["Label", "Skipped", "StoreContents", "load_records", "read_store", "write_labels"]


@dataclass(frozen=True)
class Label:
    """Quality of the served answer and of the baseline's answer on one request (0..1)."""

    request_id: str
    served_score: float
    baseline_score: float
    source: str = "recorded"


@dataclass
class Skipped:
    """Stored rows a read left out: how many, and the first one (its place and why)."""

    count: int = 0
    first: str | None = None  # "FILE:LINE: reason" or "FILE: rowid N, request_id 'x': reason"

    def add(self, where: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = where


@dataclass
class StoreContents:
    """What ``read_store`` found: the usable records and labels, and what it left out.

    A damaged record (see ``damage``) is skipped and counted in ``unreadable``; a label
    whose score is not a number in 0..1 in ``bad_labels``. In a JSONL file a request id
    on more than one line is one request written twice (a re-run appended to the same
    file): it is counted once, from its last line, and the earlier lines in ``repeated``.
    """

    source: str
    records: list[Any]  # RoutingRecord, or ReportRecord when read ``slim``
    labels: dict[str, Label]
    unreadable: Skipped = field(default_factory=Skipped)
    bad_labels: Skipped = field(default_factory=Skipped)
    repeated: Skipped = field(default_factory=Skipped)
    rows_read: int = 0  # records examined: rows in the window (a database), non-blank lines (JSONL)
    notes: list[str] = field(default_factory=list)  # how the store was read, when it matters to the numbers

    def warnings(self) -> list[str]:
        """One line per kind of row left out, naming the first of them."""
        out = list(self.notes)
        if self.unreadable.count:
            n = self.unreadable.count
            out.append(f"skipped {n} unreadable record{'s' if n > 1 else ''} of {self.rows_read} read from "
                       f"{self.source} (left out of every number); the first: {self.unreadable.first}")
        if self.repeated.count:
            n = self.repeated.count
            out.append(f"{n} record{'s' if n > 1 else ''} in {self.source} repeat{'' if n > 1 else 's'} an earlier "
                       f"request_id: each request is counted once, from its last line; the first: "
                       f"{self.repeated.first}")
        if self.bad_labels.count:
            n = self.bad_labels.count
            out.append(f"skipped {n} unusable label{'s' if n > 1 else ''} in {self.source}; the first: "
                       f"{self.bad_labels.first}")
        return out


def load_records(path: str | Path, *, since: float | None = None
                 ) -> tuple[list[RoutingRecord], dict[str, Label]]:
    """Records (oldest first, ``ts >= since``) and their labels from a SQLite DB, a
    PostgreSQL database (``postgresql://...``) or a JSONL file.

    Strict: a damaged record or label raises ``TelemetryError`` naming the file and the
    row or line. ``read_store`` skips and counts them instead (what the report does)."""
    contents = read_store(path, since=since)
    first = contents.unreadable.first or contents.bad_labels.first
    if first is not None:
        raise TelemetryError(first)
    return contents.records, contents.labels


def read_store(path: str | Path, *, since: float | None = None, slim: bool = False) -> StoreContents:
    """Like ``load_records``, but damaged records and labels are skipped and counted
    (with the place of the first), and a JSONL request id written twice is counted once.
    With ``slim`` each record is kept as the ``ReportRecord`` the report reads (a tenth
    of the memory)."""
    if isinstance(path, str) and is_postgres_dsn(path):
        return _read_postgres(path, since, slim)
    path = Path(path)
    if not path.exists():
        raise TelemetryError(f"no telemetry store at {path}")
    if path.is_dir():
        raise TelemetryError(f"{path} is a directory, not a telemetry store")
    try:
        if _is_sqlite(path):
            return _read_sqlite(path, since, slim)
        return _read_jsonl(path, since, slim)
    except OSError as exc:
        raise TelemetryError(f"cannot read {path}: {exc.strerror or exc}") from None


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def _read_postgres(dsn: str, since: float | None, slim: bool) -> StoreContents:
    from ...core.telemetry.postgres import load_postgres, redact_dsn

    texts, label_rows = load_postgres(dsn, since)
    contents = StoreContents(redact_dsn(dsn), [], {})
    for number, text in enumerate(texts, start=1):
        _keep(contents, text, f"{contents.source}: record {number} in time order", slim=slim)
    for rid, served, base, source in label_rows:
        _keep_label(contents, rid, served, base, source, f"{contents.source}: label of request_id {rid!r}")
    return contents


def _open_read_only(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """A read-only connection, and a warning when it had to be ``immutable``.

    Reading a WAL database needs its ``-shm`` (and ``-wal``) beside it: in a read-only
    folder (a mount, a copy kept for audit) SQLite cannot make them and refuses the file
    ("unable to open database file"). ``immutable=1`` reads the database file alone; what
    a ``-wal`` file still holds (a writer that did not close) is then not read, said."""
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn, None
    except sqlite3.OperationalError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_CANTOPEN:
            raise
    conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=30)
    wal = path.with_name(path.name + "-wal")
    size = wal.stat().st_size if wal.exists() else 0
    return conn, (f"read {path} as it is on disk, its folder taking no -shm file: the {size:,} bytes of "
                  f"{wal.name} (records not yet copied into it) are not read" if size else None)


def _read_sqlite(path: Path, since: float | None, slim: bool) -> StoreContents:
    contents = StoreContents(str(path), [], {})
    try:
        conn, note = _open_read_only(path)
        if note is not None:
            contents.notes.append(note)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "routing_records" not in tables:
                raise TelemetryError(f"{path} is a SQLite file without a routing_records table"
                                     + (f" ({note})" if note else ""))
            rows = conn.execute("SELECT rowid, request_id, record FROM routing_records WHERE ts >= ? "
                                "ORDER BY ts, request_id",
                                (since if since is not None else float("-inf"),))
            for rowid, rid, text in rows:
                _keep(contents, text, f"{path}: rowid {rowid}, request_id {rid!r}", slim=slim)
            if "labels" in tables:
                for rowid, rid, served, base, source in conn.execute(
                        "SELECT rowid, request_id, served_score, baseline_score, source FROM labels"):
                    _keep_label(contents, rid, served, base, source,
                                f"{path}: labels rowid {rowid}, request_id {rid!r}")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise TelemetryError(f"cannot read {path}: {exc}") from None
    contents.records.sort(key=lambda r: (r.ts, r.request_id))  # as ordered, unless a column disagrees
    return contents


def _read_jsonl(path: Path, since: float | None, slim: bool) -> StoreContents:
    contents = StoreContents(str(path), [], {})
    last_line: dict[str, int] = {}
    kept: dict[str, Any] = {}
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark from a Windows editor
            if not raw.strip():
                continue
            record = _keep(contents, raw, f"{path}:{number}", append=False, slim=slim)
            if record is None or (since is not None and record.ts < since):
                continue
            rid = record.request_id
            if rid in kept:
                contents.repeated.add(f"{path}:{last_line[rid]}: request_id {rid!r} again at line {number}")
            kept[rid], last_line[rid] = record, number
    contents.records = sorted(kept.values(), key=lambda r: (r.ts, r.request_id))
    return contents


def _keep(contents: StoreContents, text: str | bytes, where: str, *, append: bool = True, slim: bool = False
          ) -> Any:
    """The record in ``text`` (its ``ReportRecord`` with ``slim``), appended to
    ``contents``; None (and counted) when damaged."""
    contents.rows_read += 1
    try:
        record: Any = parse_record(text)
    except DamagedRecord as exc:
        contents.unreadable.add(f"{where}: {exc}")
        return None
    if slim:
        record = ReportRecord(record)
    if append:
        contents.records.append(record)
    return record


def _keep_label(contents: StoreContents, rid: Any, served: Any, base: Any, source: Any, where: str) -> None:
    problem = None if isinstance(rid, str) else f"request_id is {rid!r}, not a string"
    for name, value in (("served_score", served), ("baseline_score", base)):
        reason = score_problem(value)
        if problem is None and reason is not None:
            problem = f"{name} is {reason}"
    if problem is not None:
        contents.bad_labels.add(f"{where}: {problem}")
        return
    contents.labels[rid] = Label(rid, float(served), float(base), str(source) if source else "recorded")


def write_labels(path: str | Path, labels: Iterable[Label]) -> int:
    """Store labels in the SQLite DB (or PostgreSQL database) at ``path``, replacing earlier
    ones; returns the count."""
    if isinstance(path, str) and is_postgres_dsn(path):
        from ...core.telemetry.postgres import write_postgres_labels

        pg_rows = [(l.request_id, l.served_score, l.baseline_score, l.source) for l in labels]
        write_postgres_labels(path, pg_rows)
        return len(pg_rows)
    conn = connect(path)
    try:
        with conn:
            rows = [(l.request_id, l.served_score, l.baseline_score, l.source) for l in labels]
            conn.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)", rows)
    finally:
        conn.close()
    return len(rows)
