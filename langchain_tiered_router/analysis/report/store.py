"""Reading records back (SQLite, PostgreSQL or JSONL) and attaching quality labels.

Labels are known after the fact (recorded correctness in a replay, human review):
``write_labels`` stores a served score and a baseline score per request id, and
``load_records`` returns them with the records, so parity can be measured on them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ...core.errors import TelemetryError
from ...core.telemetry.record import RoutingRecord
from ...core.telemetry.sqlite import connect


def is_postgres_dsn(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))

__all__ = ["Label", "load_records", "write_labels"]


@dataclass(frozen=True)
class Label:
    """Quality of the served answer and of the baseline's answer on one request (0..1)."""

    request_id: str
    served_score: float
    baseline_score: float
    source: str = "recorded"


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def load_records(path: str | Path, *, since: float | None = None
                 ) -> tuple[list[RoutingRecord], dict[str, Label]]:
    """Records (oldest first, ``ts >= since``) and their labels from a SQLite DB, a
    PostgreSQL database (``postgresql://...``) or a JSONL file."""
    if isinstance(path, str) and is_postgres_dsn(path):
        from ...core.telemetry.postgres import load_postgres

        texts, label_rows = load_postgres(path, since)
        return ([RoutingRecord.from_json_dict(json.loads(t)) for t in texts],
                {rid: Label(rid, served, base, source or "recorded") for rid, served, base, source in label_rows})
    path = Path(path)
    if not path.exists():
        raise TelemetryError(f"no telemetry store at {path}")
    if path.is_dir():
        raise TelemetryError(f"{path} is a directory, not a telemetry store")
    try:
        if _is_sqlite(path):
            return _load_sqlite(path, since)
        return _load_jsonl(path, since), {}
    except OSError as exc:
        raise TelemetryError(f"cannot read {path}: {exc.strerror or exc}") from None


def _load_sqlite(path: Path, since: float | None) -> tuple[list[RoutingRecord], dict[str, Label]]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "routing_records" not in tables:
                raise TelemetryError(f"{path} is a SQLite file without a routing_records table")
            rows = conn.execute("SELECT record FROM routing_records WHERE ts >= ? ORDER BY ts, request_id",
                                (since if since is not None else float("-inf"),)).fetchall()
            labels = {}
            if "labels" in tables:
                for rid, served, base, source in conn.execute(
                        "SELECT request_id, served_score, baseline_score, source FROM labels"):
                    labels[rid] = Label(rid, served, base, source or "recorded")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise TelemetryError(f"cannot read {path}: {exc}") from None
    return [RoutingRecord.from_json_dict(json.loads(r[0])) for r in rows], labels


def _load_jsonl(path: Path, since: float | None) -> list[RoutingRecord]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = RoutingRecord.from_json_dict(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                raise TelemetryError(f"{path}:{number}: not a routing record ({exc})") from None
            if since is None or record.ts >= since:
                out.append(record)
    out.sort(key=lambda r: (r.ts, r.request_id))
    return out


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
