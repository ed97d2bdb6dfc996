"""Stopping a process under load: SIGTERM and SIGINT lose no record; ``kill -9`` loses at
most the last flush interval, and with ``durable: true`` no acknowledged record."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from langchain_tiered_router.core.telemetry import SqliteSink

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("shutdown_child.py")


def _start(tmp_path: Path, mode: str, durable: bool = False, shadow: bool = False
           ) -> tuple[subprocess.Popen, Path, Path]:
    db, log = tmp_path / "t.db", tmp_path / "requests.log"
    args = [sys.executable, str(CHILD), str(db), str(log), mode] + (["durable"] if durable else []) \
        + (["shadow"] if shadow else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"child did not start: {line!r} {proc.stderr.read()}")  # type: ignore[union-attr]
    return proc, db, log


def _log(path: Path) -> tuple[set[str], dict[str, float]]:
    started, done = set(), {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[0] == "started":
            started.add(parts[1])
        elif parts[0] == "done" and len(parts) == 3:
            done[parts[1]] = float(parts[2])
    return started, done


def _rows(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT request_id FROM routing_records")}


@pytest.mark.parametrize("mode, signum", [("threads", signal.SIGTERM), ("asyncio", signal.SIGTERM),
                                          ("threads", signal.SIGINT), ("asyncio", signal.SIGINT)])
def test_a_signal_under_load_loses_no_record(tmp_path, mode, signum):
    proc, db, log = _start(tmp_path, mode)
    time.sleep(0.3)  # well into the load
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    started, done = _log(log)
    rows = _rows(db)
    assert proc.returncode != 0  # it was stopped, not finished
    assert len(done) >= 200
    assert started <= rows, f"{len(started - rows)} of {len(started)} records lost; stderr: {err[-2000:]}"
    if signum == signal.SIGTERM and mode == "threads":
        assert proc.returncode == 128 + signal.SIGTERM  # the exit status a SIGTERM death reports


def test_kill_9_loses_at_most_the_last_flush_interval(tmp_path):
    proc, db, log = _start(tmp_path, "threads")
    time.sleep(1.5)
    killed_at = time.monotonic()
    proc.kill()
    proc.wait(timeout=30)
    _, done = _log(log)
    rows = _rows(db)
    older = {rid for rid, at in done.items() if at < killed_at - 0.5}  # flush_interval_s: 0.5
    assert len(older) >= 200
    assert older <= rows, f"{len(older - rows)} records acknowledged more than 0.5 s before the kill were lost"


@pytest.mark.parametrize("shadow", [False, True], ids=["plain", "shadow-sampled"])
def test_kill_9_with_durable_loses_no_acknowledged_record(tmp_path, shadow):
    """With shadow sampling, a sampled request's record waited in memory for its shadow
    call and reached the journal only then: a kill meanwhile lost it (7 of 40 at a tenth
    sampled). Its journal keeps it now, shadow "pending", until the final form replaces it."""
    proc, db, log = _start(tmp_path, "threads", durable=True, shadow=shadow)
    time.sleep(1.0)
    proc.kill()
    proc.wait(timeout=30)
    _, done = _log(log)
    journal = Path(f"{db}.journal")
    assert any(journal.iterdir())  # what was acknowledged and not yet committed waits there
    sink = SqliteSink(db, durable=True)  # the next process replays the journal
    assert sink.flush(timeout=60)
    rows = _rows(db)
    assert set(done) <= rows, f"{len(set(done) - rows)} acknowledged records lost"
    assert sink.failed == 0
    sink.close()
    assert not any(p.name.startswith("seg-") for p in journal.iterdir())
    if shadow:  # the sampled ones, their shadows cut off by the kill
        with sqlite3.connect(db) as conn:
            pending = conn.execute("SELECT count(*) FROM routing_records WHERE shadow_status = 'pending'").fetchone()
        assert pending[0] > 20


def test_a_replica_starting_on_the_same_durable_file_takes_nothing_from_a_live_one(tmp_path):
    """Replicas share one SQLite file and its journal folder. A replica that starts (here a
    sink in this process, which writes one record and closes) must leave the running
    one's open segment alone: it replayed and deleted it, the running one went on
    acknowledging records into the deleted file, and a ``kill -9`` then lost them."""
    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.telemetry.record import record_from_result
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import RouteRequest

    tiers = [{"name": "cheap", "model_id": "x.cheap", "price": {"input_per_mtok": 1, "output_per_mtok": 2}}]
    router = build_router({"tiers": tiers, "pinning": {"enabled": False}}, telemetry=False)
    result = router.route(RouteRequest(text="hi", request_id="from-the-other-replica"), ScriptedBackend({"*": "ok"}))
    proc, db, log = _start(tmp_path, "threads", durable=True)
    try:
        other = SqliteSink(db, durable=True)
        other.write(record_from_result(result))
        assert other.flush(timeout=60)
        other.close()
        time.sleep(0.3)  # the running replica acknowledges more meanwhile
    finally:
        proc.kill()  # a child left running would route requests until the machine stops
        proc.wait(timeout=30)
    _, done = _log(log)
    sink = SqliteSink(db, durable=True)  # the next process replays what the killed one left
    assert sink.flush(timeout=60)
    sink.close()
    rows = _rows(db)
    assert "from-the-other-replica" in rows
    assert set(done) <= rows, f"{len(set(done) - rows)} acknowledged records lost"
