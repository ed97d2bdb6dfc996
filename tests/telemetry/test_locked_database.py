"""A SQLite file another connection holds locked: the writer waits (SQLite's busy wait),
then retries for ``retry_s``; a lock that outlasts both is counted, or kept in the journal.

SQLite's 30 s busy wait is scaled down to 1 s (``SqliteStore.busy_wait_s``) so the tests
run in seconds; the ratios are those of the defaults (busy wait 30 s, ``retry_s`` 10 s).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from langchain_tiered_router.core.telemetry.recorder import flush_all
from langchain_tiered_router.core.telemetry.sqlite import SqliteStore
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest


def _rows(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT request_id FROM routing_records")}


def _hold_lock(path: Path) -> sqlite3.Connection:
    """Another connection's write transaction: every other writer waits for it."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


@pytest.fixture
def short_busy_wait(monkeypatch):
    monkeypatch.setattr(SqliteStore, "busy_wait_s", 1.0)


def test_a_lock_outlasting_the_busy_wait_is_retried_for_retry_s_and_loses_nothing(
        make_router, priced_config, tmp_path, short_busy_wait):
    """The first insert spent the whole busy wait, which was longer than ``retry_s``
    counted from the same start: no retry, and every queued record counted lost a moment
    before the lock cleared (14 of 1,000 under a 33 s lock). ``retry_s`` now counts from
    the first failure."""
    db = tmp_path / "t.db"
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(db), "retry_s": 1.0}]}
    router = make_router(priced_config)
    backend = ScriptedBackend({"*": "ok"})
    holder = _hold_lock(db)
    ids = {router.route(RouteRequest(text=f"q{i}"), backend).request_id for i in range(20)}
    time.sleep(1.5)  # past the busy wait (1 s), within it plus retry_s (2 s)
    holder.execute("ROLLBACK")
    assert flush_all(timeout=30)
    sink = router.observers[0].sinks.sinks[0]
    assert _rows(db) == ids and sink.written == 20 and sink.failed == 0


def test_a_lock_outlasting_the_busy_wait_and_retry_s_is_counted_or_kept_in_the_journal(
        make_router, priced_config, tmp_path, short_busy_wait, caplog):
    """Past the busy wait and ``retry_s`` the writer lets the batch go (and writes the next
    one): counted failed and logged, or with ``durable: true`` kept in the journal and
    written once the lock is gone."""
    backend = ScriptedBackend({"*": "ok"})
    outcomes = {}
    for durable in (False, True):
        db = tmp_path / f"durable-{durable}.db"
        priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(db), "retry_s": 0.5,
                                                 "durable": durable}]}
        router = make_router(priced_config)
        sink = router.observers[0].sinks.sinks[0]
        holder = _hold_lock(db)
        with caplog.at_level(logging.WARNING, logger="langchain_tiered_router.telemetry"):
            ids = {router.route(RouteRequest(text=f"q{i}"), backend).request_id for i in range(10)}
            deadline = time.monotonic() + 20
            while sink.failed == 0 and "stay in the journal" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        given_up_under_lock = sink.failed == 10 or "stay in the journal" in caplog.text
        holder.execute("ROLLBACK")
        sink.close(timeout=30)  # a durable sink replays its journal
        outcomes[durable] = (given_up_under_lock, sink.failed, _rows(db) == ids)
    assert outcomes == {False: (True, 10, False), True: (True, 0, True)}
