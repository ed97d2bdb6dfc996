"""Sinks: SQLite under load from threads and tasks, flush at exit, failures, JSONL, logging, OTel."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from decimal import Decimal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from langchain_tiered_router.analysis.report import load_records
from langchain_tiered_router.core.config import SinkConfig
from langchain_tiered_router.core.telemetry import JsonlSink, MemorySink, Recorder, Sink, SqliteSink, build_sinks
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

from .conftest import answer

REPO = Path(__file__).resolve().parents[2]
N = 2000


def _backend() -> ScriptedBackend:
    return ScriptedBackend({"cheap": lambda r: "ok" if int(r.text) % 3 else "no", "*": "ok"})


def _rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT request_id FROM routing_records")]


def test_2000_requests_from_32_threads_give_exactly_2000_records(make_router, priced_config, tmp_path):
    priced_config["telemetry"]["sinks"] = [{"kind": "sqlite", "path": str(tmp_path / "t.db"), "batch_size": 50,
                                            "flush_interval_s": 0.05}]
    router = make_router(priced_config, observers=None)
    backend = _backend()
    with ThreadPoolExecutor(32) as pool:
        ids = list(pool.map(lambda i: router.route(RouteRequest(text=str(i)), backend).request_id, range(N)))
    router.observers[0].flush()
    rows = _rows(tmp_path / "t.db")
    assert len(rows) == N and set(rows) == set(ids)
    records, _ = load_records(tmp_path / "t.db")
    assert sum(r.escalated for r in records) == len([i for i in range(N) if i % 3 == 0])


async def test_2000_requests_from_asyncio_tasks_give_exactly_2000_records(make_router, priced_config, tmp_path):
    sink = SqliteSink(tmp_path / "a.db", batch_size=64, flush_interval_s=0.05)
    router = make_router(priced_config, observers=[Recorder([sink])])
    backend = _backend()
    results = await asyncio.gather(*(router.aroute(RouteRequest(text=str(i)), backend) for i in range(N)))
    sink.flush()
    rows = _rows(tmp_path / "a.db")
    assert len(rows) == N and set(rows) == {r.request_id for r in results}
    assert sink.written == N and sink.failed == 0


def test_a_duplicate_request_id_is_kept_once(tmp_path, make_router, priced_config):
    sink, memory = SqliteSink(tmp_path / "d.db"), MemorySink()
    make_router(priced_config, observers=[Recorder([memory])]).route(RouteRequest(text="1", request_id="same"),
                                                                     _backend())
    for _ in range(3):
        sink.write(memory.records[0])
    sink.close()
    assert _rows(tmp_path / "d.db") == ["same"]


def test_a_table_an_older_writer_made_gets_the_columns_it_lacks_and_a_foreign_one_is_said_so(
        tmp_path, make_router, priced_config, caplog):
    import sqlite3

    from langchain_tiered_router.analysis.report import load_records
    from langchain_tiered_router.core.telemetry.recorder import flush_all

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # routing_records without the shadow columns
        conn.execute("CREATE TABLE routing_records (request_id TEXT PRIMARY KEY, ts REAL NOT NULL, session_id TEXT,"
                     " integration TEXT, policy TEXT, tier TEXT, model_id TEXT, escalated INTEGER, flagged INTEGER,"
                     " error TEXT, input_tokens INTEGER, output_tokens INTEGER, cost_usd TEXT, baseline_tier TEXT,"
                     " baseline_cost_usd TEXT, savings_usd TEXT, latency_ms REAL, record TEXT NOT NULL)")
    priced_config["telemetry"]["sinks"] = [{"kind": "sqlite", "path": str(db)}]
    router = make_router(priced_config)
    for i in range(5):
        router.route(RouteRequest(text=f"ok {i}", request_id=f"r{i}"), ScriptedBackend({"*": "ok"}))
    flush_all()
    records, _ = load_records(db)
    assert sorted(r.request_id for r in records) == [f"r{i}" for i in range(5)]  # none lost
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE routing_records (request_id TEXT PRIMARY KEY, note TEXT)")
    from langchain_tiered_router.core.telemetry.sqlite import connect

    with pytest.raises(sqlite3.DatabaseError, match="has no column ts, which every record needs"):
        connect(foreign)


@pytest.mark.parametrize("repeats", [False, True], ids=["no repeats", "repeated ids"])
def test_a_table_whose_request_id_is_no_key_still_takes_records(make_router, priced_config, tmp_path, repeats):
    """A table made by hand with ``request_id`` as a plain column: ``ON CONFLICT
    (request_id)`` refused every insert ("does not match any PRIMARY KEY or UNIQUE
    constraint"), and every record was logged as lost. The writer makes the unique index
    it needs; where repeated ids forbid it, it adds rows as before."""
    from langchain_tiered_router.analysis.report import load_records
    from langchain_tiered_router.core.telemetry.recorder import flush_all
    from langchain_tiered_router.core.telemetry.schema import column_declarations

    db = tmp_path / "hand.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE routing_records (" + ", ".join(
            d.replace(" PRIMARY KEY", "") for d in column_declarations(real="REAL", bigint="INTEGER").values()) + ")")
        if repeats:
            row = ("old", 1.0) + (None,) * 18 + ('{"request_id": "old", "ts": 1.0}',)
            conn.executemany(f"INSERT INTO routing_records VALUES ({', '.join('?' * len(row))})", [row, row])
    priced_config["telemetry"]["sinks"] = [{"kind": "sqlite", "path": str(db)}]
    router = make_router(priced_config)
    for i in range(5):
        router.route(RouteRequest(text=f"ok {i}", request_id=f"r{i}"), ScriptedBackend({"*": "ok"}))
    assert flush_all(30)
    with sqlite3.connect(db) as conn:
        ids = sorted(r[0] for r in conn.execute("SELECT request_id FROM routing_records"))
    assert ids == (["old", "old"] if repeats else []) + [f"r{i}" for i in range(5)]
    assert router.observers[0].sinks.sinks[0].failed == 0


def test_the_writer_flushes_at_interpreter_exit(tmp_path):
    """No flush, no close: the atexit hook must drain the queue (interval far too long to fire)."""
    code = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest
config = {{"tiers": [{{"name": "only", "model_id": "x", "price": {{"input_per_mtok": 1, "output_per_mtok": 1}}}}],
          "telemetry": {{"sinks": [{{"kind": "sqlite", "path": {str(tmp_path / 'exit.db')!r},
                                     "batch_size": 100000, "flush_interval_s": 3600}}]}}}}
router = build_router(config)
for i in range(500):
    router.route(RouteRequest(text=str(i)), ScriptedBackend({{"*": "ok"}}))
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)
    assert len(_rows(tmp_path / "exit.db")) == 500


class _Broken(Sink):
    def write(self, record):
        raise OSError("disk on fire")


def test_a_failing_sink_fails_neither_the_request_nor_the_other_sinks_and_is_logged(make_router, priced_config,
                                                                                    caplog):
    memory = MemorySink()
    router = make_router(priced_config, observers=[Recorder([_Broken(), memory])])
    with caplog.at_level(logging.ERROR, logger="langchain_tiered_router.telemetry"):
        result = router.route(RouteRequest(text="1", request_id="keep-me"), _backend())
    assert result.tier == "cheap"
    assert [r.request_id for r in memory.records] == ["keep-me"]
    logged = [r for r in caplog.records if "disk on fire" in (r.exc_text or "")]
    assert logged and "keep-me" in logged[0].getMessage()  # the record itself is in the log line


def test_jsonl_sink_round_trips_exact_money(make_router, priced_config, tmp_path):
    path = tmp_path / "r.jsonl"
    memory = MemorySink()
    recorder = Recorder([JsonlSink(path), memory])
    router = make_router(priced_config, observers=[recorder])
    for i in range(5):
        router.route(RouteRequest(text=str(i)), _backend())
    recorder.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and isinstance(json.loads(lines[0])["cost_usd"], str)
    loaded, _ = load_records(path)
    assert sorted((r.request_id, r.cost_usd, r.baseline_cost_usd) for r in loaded) == \
        sorted((r.request_id, r.cost_usd, r.baseline_cost_usd) for r in memory.records)


def test_logging_sink_uses_the_configured_logger_and_level(make_router, priced_config, caplog):
    sinks = build_sinks([SinkConfig(kind="logging", logger="my.audit", level="WARNING")])
    router = make_router(priced_config, observers=[Recorder(sinks)])
    with caplog.at_level(logging.WARNING, logger="my.audit"):
        router.route(RouteRequest(text="1", request_id="logged-1"), _backend())
        assert sinks.flush(10)  # written from the sink's own thread
    (entry,) = [r for r in caplog.records if r.name == "my.audit"]
    assert entry.levelno == logging.WARNING and "logged-1" in entry.getMessage()
    assert entry.routing_record["request_id"] == "logged-1"


def test_the_library_installs_no_logging_handler():
    code = ("import logging, langchain_tiered_router.core.telemetry as t; "
            "print(logging.getLogger('langchain_tiered_router.telemetry').handlers, "
            "logging.getLogger('langchain_tiered_router').handlers, logging.getLogger().handlers)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[] [] []"


def _otel(make_router, config, **sink):
    """A router writing spans inline to an in-memory exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from langchain_tiered_router.core.telemetry.otel import OTelSink

    exporter, provider, memory = InMemorySpanExporter(), TracerProvider(), MemorySink()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    router = make_router(config, observers=[Recorder([OTelSink(tracer_provider=provider), memory])])
    return router, exporter, memory


def _request_span(exporter, request_id):
    (span,) = [s for s in exporter.get_finished_spans() if s.attributes.get("tiered_router.request_id") == request_id]
    calls = sorted((s for s in exporter.get_finished_spans() if s.parent is not None
                    and s.parent.span_id == span.context.span_id), key=lambda s: s.start_time)
    return span, calls


def test_otel_spans_follow_the_genai_conventions(make_router, priced_config):
    from opentelemetry.trace import SpanKind

    router, exporter, _ = _otel(make_router, priced_config)
    router.route(RouteRequest(text="0", request_id="esc"), _backend())  # 0 % 3 == 0: cheap fails, mid serves
    spans = exporter.get_finished_spans()
    parents = [s for s in spans if s.parent is None]
    children = [s for s in spans if s.parent is not None]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    a = parent.attributes
    # the routing is not a model call: its own operation, and no gen_ai.usage.* to count twice
    assert parent.name == "route cascade" and parent.kind == SpanKind.INTERNAL
    assert a["gen_ai.operation.name"] == "route" and not [k for k in a if k.startswith("gen_ai.usage.")]
    assert a["gen_ai.provider.name"] == "aws.bedrock" and a["gen_ai.system"] == "aws.bedrock"
    assert a["tiered_router.model_id"] == "test.mid-v1"
    assert a["tiered_router.request_id"] == "esc" and a["tiered_router.escalated"] is True
    assert a["tiered_router.tier"] == "mid" and a["tiered_router.baseline_tier"] == "frontier"
    assert a["tiered_router.input_tokens"] == 2 and a["tiered_router.output_tokens"] == 2
    assert all(c.parent.span_id == parent.context.span_id for c in children)
    children.sort(key=lambda c: c.start_time)
    assert [c.name for c in children] == ["chat test.cheap-v1", "chat test.mid-v1"]
    assert all(c.kind == SpanKind.CLIENT and c.attributes["gen_ai.operation.name"] == "chat"
               and c.attributes["gen_ai.provider.name"] == "aws.bedrock" for c in children)
    assert [c.attributes["tiered_router.tier"] for c in children] == ["cheap", "mid"]
    assert [c.attributes["tiered_router.gate_passed"] for c in children] == [False, True]
    assert parent.start_time <= min(c.start_time for c in children)


def test_otel_tokens_are_counted_once_over_the_chat_spans(make_router, priced_config):
    """Only the spans of real model calls carry ``gen_ai.usage.*``: summed over ``chat``
    spans they give the request's tokens (the request span was a ``chat`` span too, 2x)."""
    router, exporter, memory = _otel(make_router, priced_config)
    router.route(RouteRequest(text="0", request_id="esc"), _backend())
    record = memory.records[0]
    chat = [s for s in exporter.get_finished_spans() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in chat) == record.input_tokens == 2
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in chat) == record.output_tokens


def test_otel_routing_calls_get_their_own_spans(make_router, priced_config):
    """A self-grade gate's grader calls (``aux_calls``) are model calls billed in the
    record: each is a child span, so the children add up to the request's cost and tokens."""
    from langchain_tiered_router.core.testing import ScriptedBackend

    priced_config["gates"] = [{"kind": "self_grade", "grader_tier": "cheap", "threshold": 7}]
    def cheap(request):  # the grader scores 3: every answer fails, each graded once
        return answer("3", 80, 1) if "SCORE" in request.text.upper() else answer("weak", 10, 5)

    backend = ScriptedBackend({"cheap": cheap, "*": answer("strong", 10, 5)})
    router, exporter, memory = _otel(make_router, priced_config)
    router.route(RouteRequest(text="q", request_id="graded"), backend)
    record = memory.records[0]
    assert len(record.aux_calls) == 3
    span, calls = _request_span(exporter, "graded")
    graders = [c for c in calls if c.attributes.get("tiered_router.purpose") == "self_grade"]
    assert len(graders) == 3 and len(calls) == len(record.attempts) + 3
    assert all(g.name == "chat test.cheap-v1" and g.attributes["gen_ai.usage.input_tokens"] == 80
               and g.attributes["tiered_router.tier"] == "cheap" for g in graders)
    assert sum(Decimal(c.attributes["tiered_router.cost_usd"]) for c in calls) == record.cost_usd
    assert span.attributes["tiered_router.cost_usd"] == str(record.cost_usd)
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in calls) == record.input_tokens
    assert sum(c.attributes["gen_ai.usage.output_tokens"] for c in calls) == record.output_tokens


def test_otel_input_tokens_include_the_cached_prompt(make_router, priced_config):
    """``gen_ai.usage.input_tokens`` includes cached tokens (the conventions); the cached
    part is also given on its own. It was 1 for a prompt of 1,451 tokens, 1,450 cached."""
    from langchain_tiered_router.core.pricing import Usage
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import TierAnswer

    router, exporter, memory = _otel(make_router, priced_config)
    read, written = (ScriptedBackend({"*": TierAnswer("ok", Usage(1, 4, 1450, 0))}),
                     ScriptedBackend({"*": TierAnswer("ok", Usage(3, 4, 0, 1200))}))
    router.route(RouteRequest(text="q", request_id="cached"), read)
    (_, (call,)) = _request_span(exporter, "cached")
    assert call.attributes["gen_ai.usage.input_tokens"] == 1451
    assert call.attributes["gen_ai.usage.cache_read.input_tokens"] == 1450
    assert "gen_ai.usage.cache_creation.input_tokens" not in call.attributes
    assert memory.records[0].cache_read_tokens == 1450
    router.route(RouteRequest(text="q", request_id="written"), written)
    (_, (call,)) = _request_span(exporter, "written")
    assert call.attributes["gen_ai.usage.input_tokens"] == 1203
    assert call.attributes["gen_ai.usage.cache_creation.input_tokens"] == 1200
    assert "gen_ai.usage.cache_read.input_tokens" not in call.attributes


def test_otel_a_tier_skipped_by_an_open_circuit_is_no_failed_call(make_router, priced_config):
    """A tier skipped because its circuit is open was never called: an event on the
    request span, not an ERROR ``chat`` span (which inflated the model's error rate)."""
    from langchain_tiered_router.core.errors import TransportError
    from langchain_tiered_router.core.testing import ScriptedBackend

    priced_config.update(circuit={"failures": 1, "cooldown_s": 600}, retry={"max_retries": 0})
    throttled = TransportError("throttled", tier="cheap", model_id="test.cheap-v1", kind="throttled")
    backend = ScriptedBackend({"cheap": throttled, "*": "ok"})
    router, exporter, memory = _otel(make_router, priced_config)
    router.route(RouteRequest(text="q", request_id="opens"), backend)  # cheap fails: its circuit opens
    router.route(RouteRequest(text="q", request_id="skips"), backend)
    assert [a["outcome"] for a in memory.records[1].attempts] == ["skipped", "served"]
    span, calls = _request_span(exporter, "skips")
    assert [c.attributes["tiered_router.tier"] for c in calls] == ["mid"]
    assert not [s for s in exporter.get_finished_spans() if s.attributes.get("tiered_router.outcome") == "skipped"]
    (event,) = span.events
    assert event.name == "tiered_router.tier_skipped"
    assert (event.attributes["tiered_router.tier"],
            event.attributes["tiered_router.reason"]) == ("cheap", "circuit_open")
    _, (failed, _) = _request_span(exporter, "opens")  # the call that did fail is a failed chat span
    assert failed.status.status_code.name == "ERROR" and failed.attributes["error.type"] == "throttled"


def test_otel_failed_request_and_response_attributes(make_router, priced_config):
    """Error spans carry ``error.type``; a failed request's span is not named after the
    baseline model that never served it; a served call has its finish reason."""
    from langchain_tiered_router.core.errors import TransportError
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import TierAnswer

    priced_config.update(circuit={"enabled": False}, retry={"max_retries": 0}, on_exhausted="raise")
    down = TransportError("timed out", tier="any", model_id="any", kind="timeout")
    router, exporter, memory = _otel(make_router, priced_config)
    with pytest.raises(Exception):
        router.route(RouteRequest(text="q", request_id="down"), ScriptedBackend({"*": down}))
    span, calls = _request_span(exporter, "down")
    assert memory.records[0].error and span.status.status_code.name == "ERROR"
    assert "frontier" not in span.name and span.name == "route cascade"
    assert span.attributes["error.type"] == "timeout"
    assert len(calls) == 3 and all(c.status.status_code.name == "ERROR" and c.attributes["error.type"] == "timeout"
                                   for c in calls)
    router.route(RouteRequest(text="q", request_id="up"),
                 ScriptedBackend({"*": TierAnswer("ok", stop_reason="end_turn")}))
    span, (call,) = _request_span(exporter, "up")
    assert call.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert "error.type" not in span.attributes and "error.type" not in call.attributes


def test_configured_inline_sinks_write_off_the_request_path_in_the_requests_context(make_router, priced_config,
                                                                                     tmp_path):
    """A configured JSONL, logging or OTel sink costs a request one enqueue: the span is
    made and exported (``SimpleSpanProcessor`` exports inside ``span.end()``) on the
    writer's thread, not the request's, and still nests under the request's current span."""
    import threading

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from langchain_tiered_router.core.telemetry.offload import OffloadedSink
    from langchain_tiered_router.core.telemetry.otel import OTelSink

    class ThreadNoting(InMemorySpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            if any(span.name.startswith("chat ") for span in spans):  # the router's, not the app's
                exported_on.add(threading.get_ident())
            return super().export(spans)

    exported_on: set[int] = set()
    exporter, provider = ThreadNoting(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    configured = build_sinks([SinkConfig(kind="jsonl", path=str(tmp_path / "r.jsonl")),
                              SinkConfig(kind="logging"), SinkConfig(kind="otel")])
    assert all(isinstance(s, OffloadedSink) for s in configured.sinks)
    otel = OffloadedSink(OTelSink(tracer_provider=provider), "OpenTelemetry")
    router = make_router(priced_config, observers=[Recorder([otel, *configured.sinks])])
    with provider.get_tracer("app").start_as_current_span("app request") as app:
        router.route(RouteRequest(text="0", request_id="esc"), _backend())
    assert otel.flush(10) and configured.flush(10)
    assert exported_on and threading.get_ident() not in exported_on
    (routed,) = [s for s in exporter.get_finished_spans() if s.attributes.get("tiered_router.request_id") == "esc"]
    assert routed.parent is not None and routed.parent.span_id == app.get_span_context().span_id
    assert routed.context.trace_id == app.get_span_context().trace_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # the writer's context never leaked into ours
    (line,) = (tmp_path / "r.jsonl").read_text().splitlines()
    assert json.loads(line)["request_id"] == "esc"


def test_a_record_an_offloaded_sink_refuses_is_counted_once_and_the_others_written_once(make_router,
                                                                                        priced_config):
    from langchain_tiered_router.core.telemetry.offload import OffloadedSink
    from langchain_tiered_router.core.telemetry.record import RoutingRecord

    class Picky(MemorySink):
        def write(self, record: RoutingRecord) -> None:
            if record.request_id == "bad":
                raise ValueError("refused")
            super().write(record)

    inner = Picky()
    sink = OffloadedSink(inner, "picky", linger_s=0.2)  # one batch: the refusal must not repeat the rest
    router = make_router(priced_config, observers=[Recorder([sink])])
    for request_id in ["a", "b", "bad", "c", "d"]:
        router.route(RouteRequest(text="1", request_id=request_id), _backend())
    assert sink.flush(10)
    assert [r.request_id for r in inner.records] == ["a", "b", "c", "d"]
    assert (sink.written, sink.failed, sink.dropped) == (4, 1, 0)
    sink.close()


def test_otel_and_logging_write_money_as_the_record_does(make_router, priced_config, caplog):
    """A cost below a millionth of a dollar (cheap tiers bill such requests) is the decimal
    string every other form of the record holds, ``0.00000007``, in the span and in the
    log line too (they wrote ``7E-8``, which most tools read as text or a float)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from langchain_tiered_router.core.telemetry.otel import OTelSink

    priced_config["tiers"][0]["price"] = {"input_per_mtok": 0.035, "output_per_mtok": 0.035}
    exporter, provider, memory = InMemorySpanExporter(), TracerProvider(), MemorySink()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    logged = build_sinks([SinkConfig(kind="logging", logger="my.money", level="INFO")])
    router = make_router(priced_config, observers=[Recorder([OTelSink(tracer_provider=provider), memory]),
                                                   Recorder(logged)])
    with caplog.at_level(logging.INFO, logger="my.money"):
        router.route(RouteRequest(text="1", request_id="tiny"), _backend())  # served by cheap
        assert logged.flush(10)
    record = memory.records[0].to_json_dict()
    assert record["cost_usd"] == "0.00000007"
    (span,) = exporter.get_finished_spans()[-1:]
    assert span.attributes["tiered_router.cost_usd"] == record["cost_usd"]
    assert span.attributes["tiered_router.baseline_cost_usd"] == record["baseline_cost_usd"]
    (entry,) = [r for r in caplog.records if r.name == "my.money"]
    assert f"cost_usd={record['cost_usd']} " in entry.getMessage()


def test_sink_config_errors_name_the_key():
    from langchain_tiered_router.core.config import RouterConfig
    from langchain_tiered_router.core.errors import ConfigError

    config = {"tiers": [{"name": "a", "model_id": "x", "price": {"input_per_mtok": 1, "output_per_mtok": 1}}],
              "telemetry": {"sinks": [{"kind": "logging", "level": "LOUD"}]}}
    with pytest.raises(ConfigError, match=r"telemetry\.sinks\[0\]\.level"):  # refused with the config itself
        RouterConfig.from_dict(config)
    config["telemetry"]["sinks"][0]["level"] = "INFO"
    sinks = RouterConfig.from_dict(config).telemetry.sinks
    sinks[0].level = "LOUD"  # set in code, past validation: the sink builder still names the key
    with pytest.raises(ConfigError, match=r"telemetry\.sinks\[0\]\.level"):
        build_sinks(sinks)
    # a key of another kind of sink is refused, not ignored (a DSN as a sqlite path made a local file)
    for sink, said in (({"kind": "sqlite", "path": "postgresql://tr@db:5432/app"}, "path is a PostgreSQL DSN"),
                       ({"kind": "postgres", "dsn": "postgresql://tr@db/app", "path": "x.db"},
                        "path is read by the sqlite and jsonl sinks, not by postgres"),
                       ({"kind": "sqlite", "dsn": "postgresql://tr@db/app"}, "dsn is read by the postgres sink"),
                       ({"kind": "jsonl", "path": "r.jsonl", "durable": True},
                        "durable and journal_dir are read by the sqlite and postgres sinks, not by jsonl")):
        config["telemetry"]["sinks"] = [sink]
        with pytest.raises(ConfigError, match=rf"telemetry\.sinks\[0\]: {said}"):
            RouterConfig.from_dict(config)


def test_routers_built_per_call_share_one_writer_per_destination_and_flush_all_reaches_it(priced_config, tmp_path):
    """A router built for each call (what LangChain's configurable fields do with a
    config field) and let go at once: ``flush_all`` still reaches its records (it walked
    only the recorders still referenced: 0 of 5 rows), and the process keeps one writer
    per destination, not a thread per router."""
    import gc
    import threading

    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.telemetry import flush_all

    path = tmp_path / "per-call.jsonl"
    priced_config["telemetry"] = {"sinks": [{"kind": "jsonl", "path": str(path)}]}
    for i in range(20):
        build_router(priced_config).route(RouteRequest(text="1", request_id=f"call-{i}"), _backend())
    gc.collect()
    assert flush_all(10)
    assert sorted(json.loads(line)["request_id"] for line in path.read_text().splitlines()) == \
        sorted(f"call-{i}" for i in range(20))
    writers = [t for t in threading.enumerate() if t.name == f"tiered-router-writer:JSONL file {path.resolve()}"]
    assert len(writers) == 1


def test_otel_an_answer_from_a_response_cache_is_no_model_call(make_router, priced_config):
    """A cache hit got a ``chat`` span with the cached reply's tokens: summed over chat
    spans, tokens no model spent. It is an event on the request span now."""
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import TierAnswer
    from langchain_tiered_router.core.pricing import Usage

    router, exporter, memory = _otel(make_router, priced_config)
    cached = TierAnswer("ok", Usage(10, 5), "test.cheap-v1", cache_hit=True)
    router.route(RouteRequest(text="q", request_id="cached"), ScriptedBackend({"*": cached}))
    span, calls = _request_span(exporter, "cached")
    assert calls == [] and [e.name for e in span.events] == ["tiered_router.cache_hit"]


def test_a_sink_path_that_can_never_be_written_is_refused_when_the_router_is_built(priced_config, tmp_path):
    """Under a regular file, or a file that is not SQLite: before, the router was built and
    served, and every record went to the error log after the writer's retries, never to
    the file. A database only missing its folders is made, as before."""
    from langchain_tiered_router.core import ConfigError
    from langchain_tiered_router.core.build import build_router

    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder\n")
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("meeting notes\n" * 200)
    for sink, says in (({"kind": "sqlite", "path": str(plain / "t.db")}, "cannot keep the database"),
                       ({"kind": "sqlite", "path": str(not_sqlite)}, "file is not a database"),
                       ({"kind": "jsonl", "path": str(plain / "t.jsonl")}, "cannot append to")):
        priced_config["telemetry"]["sinks"] = [sink]
        with pytest.raises(ConfigError, match=says) as info:
            build_router(priced_config)
        assert info.value.path == "telemetry.sinks[0].path"
    assert not_sqlite.read_text().startswith("meeting notes")  # left as it was
    priced_config["telemetry"]["sinks"] = [{"kind": "sqlite", "path": str(tmp_path / "new" / "dir" / "t.db")},
                                           {"kind": "jsonl", "path": str(tmp_path / "new" / "r.jsonl")}]
    build_router(priced_config)
    assert (tmp_path / "new" / "dir" / "t.db").exists() and (tmp_path / "new" / "r.jsonl").exists()



def test_a_sqlite_and_a_jsonl_sink_on_one_file_is_a_config_error(priced_config, tmp_path):
    """Lines appended to a database (or a database made of a JSONL file): the JSONL lines
    went missing in silence. Two sinks of one kind on one file share one writer, as before."""
    from langchain_tiered_router.core import ConfigError, RouterConfig

    path = str(tmp_path / "t.db")
    priced_config["telemetry"]["sinks"] = [{"kind": "sqlite", "path": path}, {"kind": "jsonl", "path": path}]
    with pytest.raises(ConfigError, match=r"also telemetry\.sinks\[0\]'s file, a sqlite sink's") as info:
        RouterConfig.from_dict(priced_config)
    assert info.value.path == "telemetry.sinks[1].path"
    priced_config["telemetry"]["sinks"] = [{"kind": "sqlite", "path": path}, {"kind": "sqlite", "path": path}]
    RouterConfig.from_dict(priced_config)
