"""The telemetry writer never dies: strings a database will not encode, a store that is a
directory or not a database, a record that fails, a full queue; flush honours its timeout."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from langchain_tiered_router.analysis.report import load_records
from langchain_tiered_router.core.telemetry import MemorySink, Recorder
from langchain_tiered_router.core.telemetry.recorder import flush_all
from langchain_tiered_router.core.telemetry.writer import BackgroundSink, Store
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

LONE = "s-\udcff"


def _rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT request_id FROM routing_records")]


def test_a_lone_surrogate_neither_kills_the_writer_nor_loses_a_record(make_router, priced_config, tmp_path):
    priced_config["telemetry"] = {"store_text": True, "sinks": [{"kind": "sqlite", "path": str(tmp_path / "s.db")}]}
    router = make_router(priced_config)
    backend = ScriptedBackend({"*": f"ok {LONE}"})
    router.route(RouteRequest(text="first", session_id=LONE, request_id="lone-1"), backend)
    for i in range(100):
        router.route(RouteRequest(text=str(i), session_id=f"plain-{i}"), backend)
    assert flush_all(timeout=30)
    sink = router.observers[0].sinks.sinks[0]
    assert len(_rows(tmp_path / "s.db")) == 101 and sink.failed == 0 and sink.written == 101
    (record,) = [r for r in load_records(tmp_path / "s.db")[0] if r.request_id == "lone-1"]
    assert record.session_id == LONE and record.answer_text == f"ok {LONE}"  # the JSON keeps it exact
    with sqlite3.connect(tmp_path / "s.db") as conn:
        (column,) = conn.execute("SELECT session_id FROM routing_records WHERE request_id='lone-1'").fetchone()
    assert column == "s-\ufffd"  # the queryable column holds what SQLite can store


class _Picky(Store):
    """A store that refuses one request id (as a database refuses a row it cannot take)."""

    description = "picky store"

    def __init__(self) -> None:
        self.rows: list[str] = []

    def insert(self, records):
        if any(r.request_id == "poison" for r in records):
            raise ValueError("cannot store this one")
        self.rows += [r.request_id for r in records]
        return len(records)


def test_a_record_the_store_refuses_is_counted_and_logged_and_the_rest_are_written(
        make_router, priced_config, caplog):
    store = _Picky()
    sink = BackgroundSink(store, retry_s=0)
    router = make_router(priced_config, observers=[Recorder([sink])])
    backend = ScriptedBackend({"*": "ok"})
    with caplog.at_level(logging.ERROR, logger="langchain_tiered_router.telemetry"):
        for rid in ["a", "poison", "b", "c"]:
            router.route(RouteRequest(text=rid, request_id=rid), backend)
        assert sink.flush(timeout=30)
    assert store.rows.count("poison") == 0 and sorted(store.rows) == ["a", "b", "c"]
    assert sink.failed == 1 and sink.written == 3
    (line,) = [r.getMessage() for r in caplog.records if "record lost" in r.getMessage()]
    assert json.loads(line.split("its JSON follows: ", 1)[1])["request_id"] == "poison"
    router.route(RouteRequest(text="after", request_id="after"), backend)
    sink.close()
    assert "after" in store.rows


@pytest.mark.parametrize("bad", ["directory", "not_sqlite"])
def test_a_path_that_is_no_database_counts_and_logs_every_record_and_flush_keeps_its_timeout(
        make_router, priced_config, tmp_path, caplog, bad):
    path = tmp_path / "store"
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(path), "retry_s": 1}]}
    router = make_router(priced_config)
    # either there when the router is built is a ConfigError (test_sinks); put there after, not
    if path.exists():
        path.unlink()
    if bad == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"this is not a database file" * 100)
    with caplog.at_level(logging.ERROR, logger="langchain_tiered_router.telemetry"):
        for i in range(5):
            router.route(RouteRequest(text=str(i), request_id=f"r{i}"), ScriptedBackend({"*": "ok"}))
        finished = threading.Event()
        outcome: list[bool] = []
        waiter = threading.Thread(target=lambda: (outcome.append(router.observers[0].flush(timeout=0.2)),
                                                  finished.set()))
        waiter.start()
        assert finished.wait(30), "flush(timeout=0.2) did not return"
        assert outcome == [False]  # the store is still being retried: flush says so instead of hanging
        assert router.observers[0].flush(timeout=30)  # after retry_s the records are given up, logged
    sink = router.observers[0].sinks.sinks[0]
    assert sink.failed == 5 and sink.written == 0
    logged = {json.loads(r.getMessage().split("its JSON follows: ", 1)[1])["request_id"]
              for r in caplog.records if "record lost" in r.getMessage()}
    assert logged == {f"r{i}" for i in range(5)}


class _Stuck(Store):
    description = "stuck store"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.count = 0

    def insert(self, records):
        self.release.wait(30)
        self.count += len(records)
        return len(records)


def test_a_full_queue_drops_and_counts_and_never_blocks_the_request(make_router, priced_config):
    store = _Stuck()
    sink = BackgroundSink(store, queue_size=10, batch_size=1)
    memory = MemorySink()
    router = make_router(priced_config, observers=[Recorder([sink, memory])])
    backend = ScriptedBackend({"*": "ok"})
    for i in range(50):  # the store is stuck: every request still returns
        router.route(RouteRequest(text=str(i)), backend)
    assert len(memory.records) == 50
    assert sink.dropped >= 39  # one batch in the stuck insert, ten queued, the rest dropped
    store.release.set()
    assert sink.flush(timeout=30)
    assert store.count + sink.dropped == 50 and sink.failed == 0
    sink.close()


class _StuckEntered(_Stuck):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()

    def insert(self, records):
        self.entered.set()
        return super().insert(records)


def test_a_writer_that_did_not_stop_is_not_waited_for_again(make_router, priced_config):
    """A writer stuck in its store (an OpenTelemetry exporter that never returns) held the
    process's exit for the timeout once per router sharing it, and once more for the exit's
    pass over every sink: (routers + 1) x 60 s, past any orchestrator's grace period. The
    first close waits its time and says so; the next ones do not wait again."""
    store = _StuckEntered()
    sink = BackgroundSink(store, batch_size=1, linger_s=0)
    router = make_router(priced_config, observers=[Recorder([sink])])
    router.route(RouteRequest(text="stuck"), ScriptedBackend({"*": "ok"}))
    assert store.entered.wait(30)  # the writer is inside the stuck insert
    sink.close(timeout=0.2)
    stopping = sink._stopping
    assert stopping is not None and stopping.is_alive()
    joins: list[float | None] = []
    real_join = stopping.join
    stopping.join = lambda timeout=None: joins.append(timeout)  # type: ignore[method-assign]
    sink.close(timeout=60)  # another router's close, then the exit's
    sink.close(timeout=60)
    assert joins == []
    stopping.join = real_join  # type: ignore[method-assign]
    store.release.set()
    stopping.join(30)
    assert store.count == 1 and not stopping.is_alive()


def _threads_building_records(monkeypatch) -> list[str]:
    """The name of the thread of each record build from now on (wherever it is called from)."""
    import langchain_tiered_router.core.telemetry.record as record_module
    import langchain_tiered_router.core.telemetry.recorder as recorder_module

    built_on: list[str] = []
    original = record_module.record_from_result

    def spy(*args, **kwargs):
        built_on.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(record_module, "record_from_result", spy)
    monkeypatch.setattr(recorder_module, "record_from_result", spy)
    return built_on


def test_a_background_sink_builds_the_record_on_its_own_thread(make_router, priced_config, tmp_path, monkeypatch):
    """Telemetry costs the request one enqueue: the record is built by the writer."""
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(tmp_path / "s.db")}]}
    router = make_router(priced_config)
    built_on = _threads_building_records(monkeypatch)
    results = [router.route(RouteRequest(text=str(i)), ScriptedBackend({"*": "ok"})) for i in range(50)]
    assert flush_all(timeout=30)
    assert len(built_on) == 50 and all(name.startswith("tiered-router-writer") for name in built_on)
    records = {r.request_id: r for r in load_records(tmp_path / "s.db")[0]}
    assert set(records) == {r.request_id for r in results}
    for result in results:
        assert records[result.request_id].tier == result.tier
        assert records[result.request_id].cost_usd == result.cost_usd


def test_a_record_that_cannot_be_built_is_counted_and_logged_never_raised(make_router, priced_config, tmp_path,
                                                                          monkeypatch, caplog):
    import langchain_tiered_router.core.telemetry.record as record_module

    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(tmp_path / "s.db")}]}
    router = make_router(priced_config)
    original = record_module.record_from_result

    def flaky(result, *args, **kwargs):
        if result.request_id == "broken":
            raise RuntimeError("a bug while building")
        return original(result, *args, **kwargs)

    monkeypatch.setattr(record_module, "record_from_result", flaky)
    backend = ScriptedBackend({"*": "ok"})
    with caplog.at_level(logging.ERROR, logger="langchain_tiered_router.telemetry"):
        router.route(RouteRequest(text="a", request_id="broken"), backend)  # does not raise
        router.route(RouteRequest(text="b", request_id="fine"), backend)
        assert flush_all(timeout=30)
    sink = router.observers[0].sinks.sinks[0]
    assert _rows(tmp_path / "s.db") == ["fine"] and sink.failed == 1
    assert "broken" in caplog.text and "could not be built" in caplog.text


def test_a_durable_sink_builds_the_record_before_the_request_returns(make_router, priced_config, tmp_path,
                                                                     monkeypatch):
    """A journal acknowledges a record once it is on disk, so the request thread builds it."""
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(tmp_path / "s.db"), "durable": True}]}
    router = make_router(priced_config)
    built_on = _threads_building_records(monkeypatch)
    router.route(RouteRequest(text="x", request_id="journaled"), ScriptedBackend({"*": "ok"}))
    assert built_on == [threading.current_thread().name]
    assert flush_all(timeout=30)
    assert _rows(tmp_path / "s.db") == ["journaled"]


def test_a_lingering_writer_commits_a_batch_in_one_go_and_a_flush_or_a_full_batch_cuts_the_linger(
        make_router, priced_config, tmp_path):
    """With ``linger_s`` the writer lets records gather after the first one; a flush, and a
    queue holding a full batch, make it commit at once. A linger of a minute here: had either
    waited for it, the flush would time out and the rows would not land in time."""
    path = tmp_path / "s.db"
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(path), "linger_s": 60,
                                              "flush_interval_s": 3600, "batch_size": 5}]}
    router = make_router(priced_config)
    sink = router.observers[0].sinks.sinks[0]
    assert sink.linger_s == 60
    backend = ScriptedBackend({"*": "ok"})
    try:
        first = [router.route(RouteRequest(text=str(i)), backend).request_id for i in range(3)]
        time.sleep(0.3)
        assert not path.exists() or _rows(path) == []  # three of five: still lingering
        assert sink.flush(timeout=10)
        assert sorted(_rows(path)) == sorted(first)
        more = [router.route(RouteRequest(text=f"more {i}"), backend).request_id for i in range(5)]  # a full batch
        deadline = time.monotonic() + 10
        while len(_rows(path)) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(_rows(path)) == sorted(first + more)
    finally:
        sink.close(timeout=10)  # a failed assertion must not leave a writer lingering for a minute


def test_a_journaled_record_holding_a_unicode_line_separator_is_replayed(make_router, priced_config, tmp_path):
    """orjson writes U+2028 and U+0085 raw; the journal's reader split lines with
    ``str.splitlines``, so a stored prompt holding one came back as two "torn" halves and
    was skipped: an acknowledged record lost on replay."""
    from langchain_tiered_router.core.telemetry import SqliteSink
    from langchain_tiered_router.core.telemetry.journal import Journal
    from langchain_tiered_router.core.telemetry.record import record_from_result, record_json

    priced_config["telemetry"] = {"sinks": [], "store_text": True}
    result = make_router(priced_config).route(RouteRequest(text="one\u2028two\x85three", request_id="sep"),
                                              ScriptedBackend({"*": "ok"}))
    journal = Journal(tmp_path / "s.db.journal")  # as a killed process left it
    journal.append(record_json(record_from_result(result, store_text=True)))
    journal.rotate()  # its segment closed, unheld: as a process that died left it
    journal._owner.close()  # the process ends: the OS lets its owner lock go
    sink = SqliteSink(tmp_path / "s.db", durable=True)  # the next process replays it
    assert sink.flush(timeout=30)
    sink.close()
    (record,) = load_records(tmp_path / "s.db")[0]
    assert record.request_id == "sep" and record.prompt_text == "one\u2028two\x85three" and sink.failed == 0


def test_flush_all_does_not_call_a_flushed_sink_late_when_another_ate_its_time(make_router, priced_config, caplog):
    """A stuck store takes all of ``flush_all``'s time; a sink whose records are all
    committed is not then reported as one that "did not flush within 0.0s"."""
    stuck, picky = _Stuck(), _Picky()
    slow, healthy = BackgroundSink(stuck, batch_size=1), BackgroundSink(picky)
    backend = ScriptedBackend({"*": "ok"})
    routers = [make_router(priced_config, observers=[Recorder([sink])]) for sink in (slow, healthy)]
    try:
        routers[0].route(RouteRequest(text="a"), backend)
        routers[1].route(RouteRequest(text="b", request_id="b"), backend)
        assert healthy.flush(timeout=10) and picky.rows == ["b"]
        with caplog.at_level(logging.ERROR, logger="langchain_tiered_router"):
            assert not flush_all(timeout=0.3)  # the stuck one did not flush
        said = [r.getMessage() for r in caplog.records if "did not flush" in r.getMessage()]
        assert any("stuck store" in line for line in said) and not any("picky store" in line for line in said)
    finally:
        stuck.release.set()
        slow.close()
        healthy.close()


def test_an_idle_writer_ends_and_lets_go_of_its_file_and_the_next_record_starts_another(tmp_path, monkeypatch):
    """A destination a process stopped writing to (a router per tenant, let go) kept its
    writer thread, its ten wake-ups a second and its open files for good: 2,000 such
    paths were 2,000 threads and 6,000 file descriptors. An idle writer now ends."""
    import gc
    import os
    import weakref

    from langchain_tiered_router.core.telemetry import SqliteSink

    monkeypatch.setattr(BackgroundSink, "idle_exit_s", 0.3)
    path = tmp_path / "tenant.db"

    def open_files() -> list[str]:
        return [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}")]

    def writers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == f"tiered-router-writer:database {path}"]

    sink = SqliteSink(path)
    router = build_router_for(sink)
    router.route(RouteRequest(text="a", request_id="a"), ScriptedBackend({"*": "ok"}))
    assert sink.flush(timeout=10) and writers() and str(path) in open_files()
    deadline = time.monotonic() + 10
    while writers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not writers() and str(path) not in open_files()
    router.route(RouteRequest(text="b", request_id="b"), ScriptedBackend({"*": "ok"}))  # starts another
    assert sink.flush(timeout=10) and sorted(_rows(path)) == ["a", "b"]
    while writers() and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    gone = weakref.ref(sink)
    del sink, router
    gc.collect()
    assert gone() is None  # no thread holds a writer nothing else does


def build_router_for(sink):
    from langchain_tiered_router.core.build import build_router

    return build_router({"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                                   {"name": "top", "model_id": "amazon.nova-pro-v1:0"}], "telemetry": {"sinks": []}},
                        observers=[Recorder([sink])])


def test_a_shadow_backlog_leaves_the_sinks_a_quarter_of_the_recorders_time():
    """Slow baseline calls queued for shadow scoring took all of ``close``'s 60 s; the
    sinks got 0 s and reported that they "did not stop within 0.0s"."""
    class Backlog:  # shadow calls that take whatever time they are given
        given: list = []

        def flush(self, timeout=None):
            self.given.append(timeout)
            time.sleep(timeout)
            return False

        close = flush

    class Timed(MemorySink):
        def __init__(self):
            super().__init__()
            self.given: list = []

        def flush(self, timeout=None):
            self.given.append(timeout)
            return True

        def close(self, timeout=None):
            self.given.append(timeout)

    sink, shadow = Timed(), Backlog()
    recorder = Recorder([sink], shadow=shadow)
    recorder.flush(timeout=0.4)
    recorder.close(timeout=0.4)
    assert shadow.given == [pytest.approx(0.3), pytest.approx(0.3)]
    assert all(0.05 < t <= 0.1 for t in sink.given)


def test_a_durable_sink_inserts_each_record_once_and_replays_only_what_it_did_not_commit(make_router, priced_config,
                                                                                         tmp_path):
    """Each closed journal segment was replayed though the writer had committed every record
    in it: every record inserted twice (a second database write, and a segment read into
    memory, per 8 MB). A segment whose records were all committed is now deleted unread;
    one holding a record the store did not take is replayed, as soon as the store answers."""
    from langchain_tiered_router.core.telemetry import SqliteSink
    from langchain_tiered_router.core.telemetry.writer import StoreUnavailable

    priced_config["telemetry"] = {"sinks": []}
    backend = ScriptedBackend({"*": "ok"})

    def journaled(name: str, segment_bytes: int) -> tuple[Any, list[int], threading.Event]:
        sink = SqliteSink(tmp_path / f"{name}.db", durable=True, linger_s=0, retry_s=0.2)
        sink.journal.segment_bytes = segment_bytes
        inserted: list[int] = []
        insert, down = sink.store.insert, threading.Event()

        def counted(records):
            if down.is_set():
                raise StoreUnavailable("scripted outage")
            inserted.append(len(records))
            return insert(records)

        sink.store.insert = counted
        return sink, inserted, down

    sink, inserted, _ = journaled("healthy", 4_000)  # a segment every few records
    router = make_router(priced_config)
    router.add_observer(Recorder([sink]))
    ids = [router.route(RouteRequest(text=f"q{i}"), backend).request_id for i in range(60)]
    sink.close(timeout=30)  # every segment closed and replayed, or let go
    assert sorted(_rows(tmp_path / "healthy.db")) == sorted(ids)
    assert sum(inserted) == 60 and not list((tmp_path / "healthy.db.journal").glob("seg-*"))

    sink, inserted, down = journaled("outage", 10**7)  # one segment, filled by nothing here
    router = make_router(priced_config)
    router.add_observer(Recorder([sink]))
    ids = [router.route(RouteRequest(text=f"q{i}"), backend).request_id for i in range(30)]
    assert sink.flush(timeout=30)
    down.set()  # these stay in the journal: their segments are replayed
    ids += [router.route(RouteRequest(text=f"later {i}"), backend).request_id for i in range(20)]
    time.sleep(0.5)
    down.clear()
    ids += [router.route(RouteRequest(text=f"after {i}"), backend).request_id for i in range(30)]
    # once the store answers again, the open segment holding what it did not take is closed
    # and replayed (before, those records waited for the segment to fill 8 MB, or the close)
    deadline = time.monotonic() + 20
    while sorted(_rows(tmp_path / "outage.db")) != sorted(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(_rows(tmp_path / "outage.db")) == sorted(ids)
    sink.close(timeout=30)
    assert sorted(_rows(tmp_path / "outage.db")) == sorted(ids) and sink.failed == 0
    assert not list((tmp_path / "outage.db.journal").glob("seg-*"))
