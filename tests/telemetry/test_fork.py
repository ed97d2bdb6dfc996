"""Forked processes (a pre-forking server's workers, ``multiprocessing``) write their own
records: none waits in a queue nobody reads, none of the parent's is written twice."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PRELUDE = """
import os, sys, multiprocessing as mp
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.telemetry import flush_all
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

folder, durable = sys.argv[1], sys.argv[2] == "durable"
router = build_router({
    "tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
              {"name": "frontier", "model_id": "anthropic.claude-sonnet-4-5-20250929-v1:0"}],
    "telemetry": {"sinks": [{"kind": "sqlite", "path": f"{folder}/t.db", "durable": durable},
                            {"kind": "jsonl", "path": f"{folder}/t.jsonl"}]}})
backend = ScriptedBackend({"*": "ok"})

def route(prefix, n):
    for i in range(n):
        router.route(RouteRequest(text="question", request_id=f"{prefix}-{i}"), backend)
"""


def _run(tmp_path: Path, body: str, durable: bool) -> None:
    script = tmp_path / "forks.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    out = subprocess.run([sys.executable, str(script), str(tmp_path), "durable" if durable else "plain"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr


def _stored(tmp_path: Path) -> tuple[list[str], list[str]]:
    with sqlite3.connect(tmp_path / "t.db") as db:
        rows = sorted(r[0] for r in db.execute("SELECT request_id FROM routing_records"))
    lines = sorted(json.loads(line)["request_id"] for line in (tmp_path / "t.jsonl").read_text().splitlines())
    return rows, lines


@pytest.mark.parametrize("durable", [False, True], ids=["plain", "durable"])
def test_multiprocessing_children_records_land_without_a_flush(tmp_path, durable):
    """A ``multiprocessing`` child ends in ``os._exit`` (no ``atexit``): its records were
    lost, every one of them, once its parent had routed a request before forking (the
    child's queue had no writer thread)."""
    _run(tmp_path, """
        def work(k):
            route(f"child{k}", 5)  # and return: no flush

        if __name__ == "__main__":
            route("parent", 1)  # the parent's writer thread runs when it forks
            children = [mp.get_context("fork").Process(target=work, args=(k,)) for k in range(3)]
            for child in children:
                child.start()
            for child in children:
                child.join()
            assert all(child.exitcode == 0 for child in children)
    """, durable)
    expected = sorted(["parent-0"] + [f"child{k}-{i}" for k in range(3) for i in range(5)])
    rows, lines = _stored(tmp_path)
    assert rows == expected and lines == expected


def test_a_fork_while_the_writer_closes_a_journal_segment_leaves_the_child_writing(tmp_path):
    """Forked while the parent's writer was inside ``rotate`` (its journal's lock held, the
    segment's file just closed): the child's fork handler raised on the closed file before
    it made the journal's lock afresh, and the child's first record waited for ever on the
    lock the parent held (a ``multiprocessing`` test hung for its 120 s in CI)."""
    _run(tmp_path, """
        from langchain_tiered_router.core.telemetry.writer import open_sinks

        route("parent", 1)
        flush_all()  # the writer's first pass closed the first segment
        route("parent-open", 1)  # appended to a new one, open
        journal = next(s.journal for s in open_sinks() if getattr(s, "journal", None) is not None)
        with journal._cond:  # as ``rotate`` does: the file closed, not yet let go
            journal._fh.close()
            pid = os.fork()
            if pid == 0:
                route("child", 5)
                os._exit(0 if flush_all(10) else 3)
            closed = journal._close_current()
            journal._publish(closed, journal._segment_first, journal._synced)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        route("parent-after", 1)
        flush_all()
    """, durable=True)
    expected = sorted(["parent-0", "parent-open-0", "parent-after-0"] + [f"child-{i}" for i in range(5)])
    rows, lines = _stored(tmp_path)
    assert rows == expected and lines == expected


def test_a_forked_child_writes_its_own_records_and_never_the_parents_queued_ones(tmp_path):
    """Forked while the parent's records wait in its queue (within the writer's linger):
    the child writes its 5, the parent its 200, each once."""
    _run(tmp_path, """
        route("parent-warm", 1)
        flush_all()
        route("parent", 200)  # queued, not yet written: the writer lingers
        pid = os.fork()
        if pid == 0:
            route("child", 5)
            ok = flush_all(10)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        flush_all()
    """, durable=False)
    expected = sorted(["parent-warm-0"] + [f"parent-{i}" for i in range(200)] + [f"child-{i}" for i in range(5)])
    rows, lines = _stored(tmp_path)
    assert rows == expected and lines == expected  # JSONL appends: a record written twice would show


def test_a_fork_while_another_thread_builds_a_sink_leaves_the_child_able_to_build_sinks(tmp_path):
    """The child inherited the sink registry's lock held by a thread that is not there:
    every sink it built afterwards waited for ever."""
    _run(tmp_path, """
        import threading
        from langchain_tiered_router.core.telemetry import build as sink_build, sqlite as sqlite_sinks
        from langchain_tiered_router.core.config import SinkConfig

        sink_build._shared_lock.acquire()  # as a thread inside build_sink holds it
        sqlite_sinks._shared_lock.acquire()
        pid = os.fork()
        if pid == 0:
            done = threading.Event()
            def build():
                sink_build.build_sinks([SinkConfig(kind="jsonl", path=f"{folder}/child.jsonl"),
                                        SinkConfig(kind="sqlite", path=f"{folder}/child.db")])
                done.set()
            threading.Thread(target=build, daemon=True).start()
            os._exit(0 if done.wait(10) else 4)
        sink_build._shared_lock.release()
        sqlite_sinks._shared_lock.release()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        route("parent", 1)
    """, durable=False)


def test_a_fork_during_a_long_sqlite_write_waits_for_it_and_the_child_writes_its_records(tmp_path):
    """Forked while the parent's writer was inside a SQLite transaction that outlasted the
    fork's 2 s wait (a contended or slow disk): the child inherited SQLite's lock table
    saying a write was under way, waited out its 30 s busy timeout and lost every record,
    "database is locked". The fork now waits for a local file's transaction to end."""
    _run(tmp_path, """
        import threading, time
        from langchain_tiered_router.core.telemetry import sqlite as sqlite_sinks

        parent, inside = os.getpid(), threading.Event()
        real_insert = sqlite_sinks.SqliteStore.insert

        def slow_insert(self, records):  # the parent's first write holds its transaction 2.5 s
            if os.getpid() == parent and not inside.is_set():
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                inside.set()
                time.sleep(2.5)
                conn.execute("COMMIT")
            return real_insert(self, records)

        sqlite_sinks.SqliteStore.insert = slow_insert

        def work(k):
            route(f"child{k}", 5)

        if __name__ == "__main__":
            route("parent", 1)
            assert inside.wait(10)
            child = mp.get_context("fork").Process(target=work, args=(0,))
            child.start()
            child.join(60)
            assert child.exitcode == 0, child.exitcode
    """, durable=False)
    expected = sorted(["parent-0"] + [f"child0-{i}" for i in range(5)])
    rows, lines = _stored(tmp_path)
    assert rows == expected and lines == expected
