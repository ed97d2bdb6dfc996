"""One journal folder shared by processes and by stores: a live segment is never taken
for a dead one's, each store replays only its own segments, and a live writer adopts
what a dead peer left."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

from langchain_tiered_router.core.telemetry import SqliteSink
from langchain_tiered_router.core.telemetry import journal as journal_module
from langchain_tiered_router.core.telemetry.journal import Journal, journal_scope
from langchain_tiered_router.core.telemetry.record import record_from_result, record_json
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest


def _rows(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT request_id FROM routing_records")}


def _record_lines(make_router, priced_config, ids: list[str]) -> list[str]:
    priced_config["telemetry"] = {"sinks": []}
    router = make_router(priced_config)
    return [record_json(record_from_result(router.route(RouteRequest(text=i, request_id=i), ScriptedBackend({"*": "ok"}))))
            for i in ids]


def _dead_process_left(directory: Path, db: Path, lines: list[str]) -> None:
    """A journal as a killed process of ``db``'s sink left it: appended, closed, unheld
    (segments in the database's own default folder name no store; in a shared one, theirs)."""
    default = directory == Path(f"{db}.journal")
    journal = Journal(directory, scope=None if default else journal_scope(str(db.resolve())))
    for line in lines:
        journal.append(line)
    journal.rotate()
    journal._owner.close()  # the process ends: the OS lets its owner lock go


def test_a_process_starting_while_a_segment_is_made_never_takes_it(tmp_path, monkeypatch):
    """A replica starting between another's ``open`` of a new segment and its ``flock``
    found the segment unheld, took it for a dead process's, replayed and deleted it: what
    the live replica then acknowledged went into a deleted file (72 of 200 records lost
    in the sweep's run)."""
    real = journal_module.fcntl
    started: list[list[Path]] = []

    def flock(fd: int, op: int) -> None:
        if not started and op == real.LOCK_EX | real.LOCK_NB:
            started.append([])  # (the starting journal's own probes come back here)
            started[0] = Journal(tmp_path, scope="ab").closed_segments()  # another process starts now
        real.flock(fd, op)

    live = Journal(tmp_path, scope="ab")
    monkeypatch.setattr(journal_module, "fcntl", SimpleNamespace(flock=flock, LOCK_EX=real.LOCK_EX,
                                                                 LOCK_NB=real.LOCK_NB))
    live.append('{"request_id": "r1"}')
    assert started == [[]]
    (segment,) = [p for p in tmp_path.iterdir() if p.name.startswith("seg-")]
    assert segment.name.startswith("seg-") and segment.name.endswith(".ab.jsonl")
    assert journal_module._held(segment) and segment.read_text() == '{"request_id": "r1"}\n'


def test_sinks_of_two_databases_sharing_a_journal_folder_replay_only_their_own(make_router, priced_config,
                                                                             tmp_path):
    """Two durable sinks given one ``journal_dir``: the first to start replayed every
    segment it found, so a killed service's records went into the other's database (99 of
    100 in the sweep's run) and were gone from its own."""
    journal_dir, x_db, y_db = tmp_path / "journal", tmp_path / "x.db", tmp_path / "y.db"
    _dead_process_left(journal_dir, x_db, _record_lines(make_router, priced_config, ["x1", "x2"]))
    y = SqliteSink(y_db, durable=True, journal_dir=journal_dir)
    assert y.flush(timeout=30)
    y.close()
    assert _rows(y_db) == set()
    x = SqliteSink(x_db, durable=True, journal_dir=journal_dir)
    assert x.flush(timeout=30)
    x.close()
    assert _rows(x_db) == {"x1", "x2"}
    assert not [p for p in journal_dir.iterdir() if p.name.startswith("seg-")]


def test_a_live_writer_adopts_what_a_dead_peer_left(make_router, priced_config, tmp_path):
    """A replica killed and never restarted (scaled away) left its segment until some new
    process started: the live replicas replayed only what they found when they opened."""
    db = tmp_path / "s.db"
    live = SqliteSink(db, durable=True)
    live.journal.orphan_scan_s = 0.2
    lines = _record_lines(make_router, priced_config, ["live", "peer1", "peer2"])
    live.write(record_from_result(make_router(priced_config).route(RouteRequest(text="live", request_id="live"),
                                                                  ScriptedBackend({"*": "ok"}))))
    assert live.flush(timeout=30)
    _dead_process_left(Path(f"{db}.journal"), db, lines[1:])  # the peer dies after the live one started
    deadline = time.monotonic() + 20
    while _rows(db) != {"live", "peer1", "peer2"} and time.monotonic() < deadline:
        time.sleep(0.1)
    live.close()
    assert _rows(db) == {"live", "peer1", "peer2"}


def test_a_live_peers_closed_segment_is_left_to_it(tmp_path):
    """A segment a live process has closed (rotated, or kept while its store is down) is
    unheld until that process replays it; the orphan scan took it for a dead peer's, and
    both replayed and deleted it."""
    live = Journal(tmp_path, scope="ab")
    live.append('{"request_id": "r1"}')
    live.rotate()
    other = Journal(tmp_path, scope="ab")
    assert other.closed_segments() == [] and other.adopt_orphans() == 0
    live._owner.close()  # the live one dies
    assert other.adopt_orphans() == 1 and [p.name for p in other.closed_segments()] == [
        p.name for p in live.closed_segments()]


def test_replicas_of_one_postgres_database_share_a_journal_scope_whatever_their_dsn_says(tmp_path):
    """The scope hashed the whole DSN: replicas with another password, application_name or
    parameter order never replayed each other's segments, and the file names held a hash
    of the password (a guess could be checked against them offline)."""
    from langchain_tiered_router.core.telemetry.postgres import PostgresSink

    dsns = ["postgresql://router:pw1@db.internal:5432/telemetry?application_name=pod-a",
            "postgresql://router:rotated@db.internal/telemetry", "postgresql://other@db.internal:5432/telemetry"]
    sinks = [PostgresSink(dsn, durable=True, journal_dir=tmp_path / str(i)) for i, dsn in enumerate(dsns)]
    assert len({sink.journal.scope for sink in sinks}) == 1
    another = PostgresSink("postgresql://router:pw1@db.internal:5432/other", durable=True, journal_dir=tmp_path / "x")
    assert another.journal.scope != sinks[0].journal.scope
    assert journal_scope("postgresql://router:pw1@db.internal:5432/telemetry") != sinks[0].journal.scope
    for sink in [*sinks, another]:
        sink.close(timeout=1)


def test_a_database_restored_elsewhere_replays_the_journal_beside_it(make_router, priced_config, tmp_path):
    """Its default journal folder named the database's absolute path in every segment: a
    database and journal moved together (a restore, another mount) left the records in the
    journal for good, silently."""
    import shutil

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    _dead_process_left(old / "s.db.journal", old / "s.db", _record_lines(make_router, priced_config, ["m1", "m2"]))
    shutil.move(str(old), str(new))
    sink = SqliteSink(new / "s.db", durable=True)
    assert sink.flush(timeout=30)
    sink.close()
    assert _rows(new / "s.db") == {"m1", "m2"}


def test_a_replayed_segment_holding_a_provisional_record_and_its_final_form_writes_it_once(
        make_router, priced_config, tmp_path):
    """A shadow-sampled request journals a provisional copy, then its final form; a process
    killed before committing left both, and the replay inserted the provisional row, then
    replaced it: ``written`` counted the request twice."""
    import dataclasses
    import json

    from langchain_tiered_router.core.telemetry.record import RoutingRecord

    (line,) = _record_lines(make_router, priced_config, ["shadowed"])
    final = RoutingRecord.from_json_dict(json.loads(line))
    pending = dataclasses.replace(final, shadow_status="pending")
    done = dataclasses.replace(final, shadow_status="done", shadow_score=1.0)
    db = tmp_path / "s.db"
    _dead_process_left(Path(f"{db}.journal"), db, [record_json(pending), record_json(done)])
    sink = SqliteSink(db, durable=True)
    assert sink.flush(timeout=30)
    sink.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT request_id, shadow_status FROM routing_records").fetchall() == [("shadowed", "done")]
    assert sink.written == 1


def test_a_forked_child_does_not_keep_its_parents_segment_locked(tmp_path):
    """The child kept its copy of the parent's open segment, and with it the lock: a killed
    parent's acknowledged records waited, unreplayed, for the child to end (a pre-fork
    worker's whole life)."""
    import os

    parent = Journal(tmp_path, scope="ab")
    parent.append('{"request_id": "before-fork"}')
    ready, told = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: takes journals of its own, then lives on for a while
        try:
            parent.after_fork()
            os.write(told, b"x")
            time.sleep(3)
        finally:
            os._exit(0)
    os.read(ready, 1)  # the child has forked its journal
    os.close(ready)
    os.close(told)
    try:
        parent._fh.close()  # the parent dies: the OS closes its descriptors
        parent._owner.close()
        assert [p.name for p in Journal(tmp_path, scope="ab").closed_segments()] == [parent._current.name]
    finally:
        os.waitpid(pid, 0)


def test_postgres_databases_named_by_libpq_environment_have_scopes_of_their_own(tmp_path, monkeypatch):
    """Where the DSN names no database, libpq takes PGDATABASE (or a service's): two
    services with one DSN and PGDATABASE prod and staging shared a scope, and the staging
    sink replayed prod's records into staging."""
    from langchain_tiered_router.core.telemetry.postgres import PostgresSink

    scopes = []
    for database in ("prod", "staging"):
        monkeypatch.setenv("PGDATABASE", database)
        sink = PostgresSink("postgresql://postgres@127.0.0.1:5432", durable=True, journal_dir=tmp_path / database)
        scopes.append(sink.journal.scope)
        sink.close(timeout=1)
    monkeypatch.delenv("PGDATABASE")
    for service in ("prod", "staging"):
        sink = PostgresSink(f"postgresql:///?service={service}", durable=True, journal_dir=tmp_path / service)
        scopes.append(sink.journal.scope)
        sink.close(timeout=1)
    assert len(set(scopes)) == 4
