"""The PostgreSQL sink against a real server: the same records and the same report as
SQLite, many threads, a database that is not there yet (durable: kept in the journal)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.analysis.report import load_records
from langchain_tiered_router.cli import app
from langchain_tiered_router.core.telemetry import MemorySink, Recorder, SqliteSink
from langchain_tiered_router.core.telemetry.postgres import PostgresSink
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

pytestmark = pytest.mark.postgres


def _backend() -> ScriptedBackend:
    return ScriptedBackend({"cheap": lambda r: "ok" if int(r.text) % 3 else "no", "mid": "ok",
                            "frontier": "ok"})


def test_postgres_holds_the_same_records_and_gives_the_same_report_as_sqlite(
        make_router, priced_config, postgres_dsn, tmp_path):
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": str(tmp_path / "t.db")},
                                            {"kind": "postgres", "dsn": postgres_dsn, "batch_size": 64}]}
    router = make_router(priced_config)
    backend = _backend()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: router.route(RouteRequest(text=str(i), session_id=f"s\udcff{i % 7}"), backend),
                      range(600)))
    assert router.observers[0].flush(timeout=60)
    pg_sink = router.observers[0].sinks.sinks[1]
    assert isinstance(pg_sink, PostgresSink) and pg_sink.written == 600 and pg_sink.failed == 0
    from_sqlite, _ = load_records(tmp_path / "t.db")
    from_pg, _ = load_records(postgres_dsn)
    assert [r.to_json_dict() for r in from_pg] == [r.to_json_dict() for r in from_sqlite]
    runner = CliRunner()
    reports = [runner.invoke(app, ["report", "--db", db, "--json"]) for db in (str(tmp_path / "t.db"), postgres_dsn)]
    assert [r.exit_code for r in reports] == [0, 0], reports[1].output
    assert json.loads(reports[0].output) == json.loads(reports[1].output)
    assert json.loads(reports[1].output)["requests"] == 600
    text = runner.invoke(app, ["report", "--db", postgres_dsn])
    assert text.exit_code == 0 and "cheaper" in text.output


def test_a_table_an_older_writer_made_gets_the_columns_it_lacks(make_router, priced_config, postgres_dsn):
    """As the SQLite store does: a ``routing_records`` table without the shadow columns
    (an older release's, or made by hand) gets them, and no record is lost (every insert
    failed with ``UndefinedColumn``); one that lacks a column every record needs is said."""
    import psycopg

    from langchain_tiered_router.core.errors import TelemetryError
    from langchain_tiered_router.core.telemetry.postgres import ensure_schema
    from langchain_tiered_router.core.telemetry.recorder import flush_all

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE routing_records (request_id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL,"
                     " session_id TEXT, integration TEXT, policy TEXT, tier TEXT, model_id TEXT, escalated INTEGER,"
                     " flagged INTEGER, error TEXT, input_tokens BIGINT, output_tokens BIGINT, cost_usd TEXT,"
                     " baseline_tier TEXT, baseline_cost_usd TEXT, savings_usd TEXT, latency_ms DOUBLE PRECISION,"
                     " record TEXT NOT NULL)")
    priced_config["telemetry"] = {"sinks": [{"kind": "postgres", "dsn": postgres_dsn}]}
    router = make_router(priced_config)
    for i in range(5):
        router.route(RouteRequest(text=str(i + 1), request_id=f"r{i}"), _backend())
    assert flush_all()
    assert router.observers[0].sinks.sinks[0].failed == 0
    assert sorted(r.request_id for r in load_records(postgres_dsn)[0]) == [f"r{i}" for i in range(5)]
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA foreign_one")
        conn.execute("SET search_path TO foreign_one")
        conn.execute("CREATE TABLE routing_records (request_id TEXT PRIMARY KEY, note TEXT)")
        with pytest.raises(TelemetryError, match="has no column ts, which every record needs"):
            ensure_schema(conn)


def test_a_duplicate_request_id_is_kept_once(make_router, priced_config, postgres_dsn):
    memory = MemorySink()
    make_router(priced_config, observers=[Recorder([memory])]).route(RouteRequest(text="1", request_id="same"),
                                                                     _backend())
    sink = PostgresSink(postgres_dsn)
    for _ in range(3):
        sink.write(memory.records[0])
    sink.close()
    assert [r.request_id for r in load_records(postgres_dsn)[0]] == ["same"] and sink.written == 1


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_provisional_record_gives_way_to_its_final_form_and_nothing_else_does(
        make_router, priced_config, postgres_dsn, tmp_path, store):
    """A shadow-sampled request's record is journaled "pending" until its shadow ends
    (a crash meanwhile keeps it so); its final form replaces it in the store, whichever
    is inserted first. Any other repeat of a request id is kept once, as it came first."""
    import dataclasses

    memory = MemorySink()
    router = make_router(priced_config, observers=[Recorder([memory])])
    for rid in ("final-first", "pending-first", "repeat"):
        router.route(RouteRequest(text="1", request_id=rid), _backend())
    done = {r.request_id: dataclasses.replace(r, shadow_status="done", shadow_score=1.0) for r in memory.records}
    pending = {rid: dataclasses.replace(r, shadow_status="pending", shadow_score=None) for rid, r in done.items()}

    def sink():
        return (SqliteSink(tmp_path / "t.db", durable=True) if store == "sqlite" else
                PostgresSink(postgres_dsn, durable=True, journal_dir=tmp_path / "journal"))

    first = sink()
    first.write(done["final-first"])
    first.write_provisional(pending["pending-first"])  # a crash now: replayed as it is
    first.write(done["repeat"])
    first.close()
    second = sink()
    second.write_provisional(pending["final-first"])  # no effect: the final form is there
    second.write(done["pending-first"])  # replaces the provisional one
    second.write(dataclasses.replace(done["repeat"], shadow_score=0.0))  # a repeat: the first kept
    second.close()
    rows = {r.request_id: (r.shadow_status, r.shadow_score)
            for r in load_records(tmp_path / "t.db" if store == "sqlite" else postgres_dsn)[0]}
    assert rows == {"final-first": ("done", 1.0), "pending-first": ("done", 1.0), "repeat": ("done", 1.0)}


def test_durable_records_wait_in_the_journal_while_the_database_is_missing(
        make_router, priced_config, postgres_server_dsn, tmp_path):
    import psycopg

    name = "late_" + uuid.uuid4().hex[:8]
    dsn = postgres_server_dsn.rsplit("/", 1)[0] + "/" + name
    sink = PostgresSink(dsn, durable=True, journal_dir=tmp_path / "journal", retry_s=0.2)
    router = make_router(priced_config, observers=[Recorder([sink])])
    ids = [router.route(RouteRequest(text=str(i)), _backend()).request_id for i in range(30)]
    sink.flush(timeout=30)
    assert sink.written == 0 and sink.failed == 0  # not lost: on disk, waiting
    with psycopg.connect(postgres_server_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    sink.close()  # replays the journal into the database that is there now
    assert sorted(r.request_id for r in load_records(dsn)[0]) == sorted(ids)
    assert not list((tmp_path / "journal").glob("seg-*"))


def test_report_names_an_unreachable_database_in_one_line(postgres_server_dsn):
    dsn = postgres_server_dsn.rsplit("/", 1)[0].replace("tr@", "tr:secret@") + "/no_such_db"
    result = CliRunner().invoke(app, ["report", "--db", dsn])
    assert result.exit_code == 2
    assert "no_such_db" in result.output and "secret" not in result.output


def test_a_partitioned_table_without_a_unique_request_id_still_takes_every_record(make_router, priced_config,
                                                                                   postgres_dsn):
    """A table partitioned by time (its key ``(request_id, ts)``: a unique key must hold the
    partition key) refused every insert, ``ON CONFLICT (request_id)`` matching no
    constraint: all records lost. Rows now go in one by one, a repeated id kept once and a
    provisional row still giving way to its final form."""
    import dataclasses

    import psycopg

    from langchain_tiered_router.core.telemetry.postgres import POSTGRES_SCHEMA

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        body = POSTGRES_SCHEMA.split("routing_records (", 1)[1].split(");", 1)[0]
        body = body.replace("request_id TEXT PRIMARY KEY", "request_id TEXT NOT NULL")
        conn.execute(f"CREATE TABLE routing_records ({body}, PRIMARY KEY (request_id, ts)) PARTITION BY RANGE (ts)")
        conn.execute("CREATE TABLE routing_records_all PARTITION OF routing_records DEFAULT")
    memory = MemorySink()
    router = make_router(priced_config, observers=[Recorder([memory])])
    for rid in ("a", "b", "c"):
        router.route(RouteRequest(text="1", request_id=rid), _backend())
    a, b, c = memory.records
    sink = PostgresSink(postgres_dsn)
    sink.write(a)
    sink.write(dataclasses.replace(a, ts=a.ts + 1))  # a repeat, another partition key: kept once
    sink.write_provisional(dataclasses.replace(b, shadow_status="pending"))
    sink.write(dataclasses.replace(b, shadow_status="done", shadow_score=1.0))
    sink.write(c)
    sink.close()
    rows = {r.request_id: r.shadow_status for r in load_records(postgres_dsn)[0]}
    assert rows == {"a": None, "b": "done", "c": None} and sink.failed == 0


def test_a_server_that_stops_answering_does_not_hold_the_writer(make_router, priced_config, postgres_dsn):
    """A server that stops answering on an open connection (its backend frozen: the kernel
    keeps the socket, as in a failover without a reset) held the writer inside ``insert``
    until it came back: the queue filled and dropped records, ``flush`` timed out and
    ``retry_s`` was never applied. The insert's connection is now shut after
    ``insert_timeout_s``: the store is unavailable and retried for ``retry_s`` from that
    failure, and the retry's new connection (another backend) writes the records."""
    import os
    import signal

    memory = MemorySink()
    router = make_router(priced_config, observers=[Recorder([memory])])
    for i in range(6):
        router.route(RouteRequest(text=str(i), request_id=f"f{i}"), _backend())
    sink = PostgresSink(postgres_dsn, retry_s=1.0)
    sink.store.insert_timeout_s = 1.0
    sink.write(memory.records[0])
    assert sink.flush(timeout=30) and sink.written == 1
    backend_pid = sink.store._conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    os.kill(backend_pid, signal.SIGSTOP)
    try:
        for record in memory.records[1:]:
            sink.write(record)
        assert sink.flush(timeout=60)  # handled: not stuck behind the frozen connection
        assert sink.failed == 0 and sink.written == 6
    finally:
        os.kill(backend_pid, signal.SIGCONT)
    sink.write(dataclasses_replace_id(memory.records[1], "after"))
    sink.close()
    assert {r.request_id for r in load_records(postgres_dsn)[0]} == {f"f{i}" for i in range(6)} | {"after"}


def dataclasses_replace_id(record, request_id):
    import dataclasses

    return dataclasses.replace(record, request_id=request_id)


def test_a_second_config_asking_one_database_for_other_writer_settings_is_refused(make_router, priced_config,
                                                                                  postgres_dsn, tmp_path):
    """As for a SQLite file: the process's one writer for the database keeps the first
    config's settings, so a second config's ``durable: true`` was silently dropped."""
    from langchain_tiered_router.core.errors import ConfigError

    priced_config["telemetry"] = {"sinks": [{"kind": "postgres", "dsn": postgres_dsn, "queue_size": 500}]}
    first = make_router(priced_config)
    assert make_router(priced_config).observers[0].sinks.sinks[0] is first.observers[0].sinks.sinks[0]
    priced_config["telemetry"] = {"sinks": [{"kind": "postgres", "dsn": postgres_dsn, "queue_size": 500,
                                             "durable": True, "journal_dir": str(tmp_path / "j")}]}
    with pytest.raises(ConfigError, match="durable True here, False there") as info:
        make_router(priced_config)
    assert info.value.path == "telemetry.sinks[0].durable"
