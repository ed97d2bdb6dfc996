"""The JSONL, logging and OpenTelemetry sinks behind their writer thread: stopping under
load, a handler that raises, log rotation, shadows' context, exit order, SIGTERM."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.config import SinkConfig
from langchain_tiered_router.core.telemetry import build_sinks, flush_all
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

REPO = Path(__file__).resolve().parents[2]


def _backend() -> ScriptedBackend:
    return ScriptedBackend({"*": "ok"})


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_close_while_threads_keep_routing_stops_the_writer_and_accounts_for_every_record(priced_config, tmp_path):
    """A write after close went inline and took the queue, the writer's stop marker with
    it: the writer never stopped and ``close`` waited its whole timeout (60 s at exit)."""
    path = tmp_path / "busy.jsonl"
    priced_config["telemetry"] = {"sinks": [{"kind": "jsonl", "path": str(path)}]}
    router = build_router(priced_config)
    (sink,) = router.observers[0].sinks.sinks
    done, stop = [0] * 4, threading.Event()

    def loop(k: int) -> None:
        while not stop.is_set():
            router.route(RouteRequest(text="q"), _backend())
            done[k] += 1

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    writer = sink._thread
    sink.close(timeout=30)
    stopped = not writer.is_alive()
    stop.set()
    for t in threads:
        t.join()
    assert stopped
    assert len(_lines(path)) + sink.dropped == sum(done)  # written, or dropped and counted: none lost


def test_a_log_handler_that_raises_fails_its_records_and_the_writer_goes_on(priced_config):
    class Refusing(logging.Handler):
        refuse = True

        def emit(self, record: logging.LogRecord) -> None:
            if self.refuse:
                raise OSError("log volume full")
            seen.append(record.routing_record["request_id"])

    seen: list[str] = []
    handler = Refusing()
    logger = logging.getLogger("langchain_tiered_router.telemetry")  # the sink's and the writer's own
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        sinks = build_sinks([SinkConfig(kind="logging", logger="langchain_tiered_router.telemetry")])
        priced_config["telemetry"] = {"sinks": []}
        from langchain_tiered_router.core.telemetry import Recorder

        router = build_router(priced_config, observers=[Recorder(sinks)])
        (sink,) = sinks.sinks  # the process's writer for this logger: count from here
        written, failed = sink.written, sink.failed
        for i in range(5):
            router.route(RouteRequest(text="q", request_id=f"refused-{i}"), _backend())
        assert sink.flush(10)
        handler.refuse = False
        for i in range(5):
            router.route(RouteRequest(text="q", request_id=f"logged-{i}"), _backend())
        assert sink.flush(10) and sink._thread.is_alive()
        assert seen == [f"logged-{i}" for i in range(5)] and (sink.written - written, sink.failed - failed) == (5, 5)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_rotated_or_deleted_jsonl_file_is_started_again_at_its_path(priced_config, tmp_path):
    path, rotated = tmp_path / "r.jsonl", tmp_path / "r.jsonl.1"
    priced_config["telemetry"] = {"sinks": [{"kind": "jsonl", "path": str(path)}]}
    router = build_router(priced_config)

    def route(prefix: str, n: int) -> None:
        for i in range(n):
            router.route(RouteRequest(text="q", request_id=f"{prefix}-{i}"), _backend())
        assert flush_all(10)

    route("before", 3)
    path.rename(rotated)  # logrotate's default
    route("after", 3)
    assert [r["request_id"] for r in _lines(rotated)] == [f"before-{i}" for i in range(3)]
    assert [r["request_id"] for r in _lines(path)] == [f"after-{i}" for i in range(3)]
    path.unlink()
    route("deleted", 2)
    assert [r["request_id"] for r in _lines(path)] == ["deleted-0", "deleted-1"]


def test_a_shadowed_requests_record_is_written_in_the_requests_context(priced_config):
    """Written when its shadow call ends, on the shadow pool's thread: a logging filter
    reading a context variable saw that thread's value, not the request's."""
    request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="none")
    seen: dict[str, str] = {}

    class Noting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen[record.routing_record["request_id"]] = request_var.get()

    handler = Noting()
    logger = logging.getLogger("test.shadow.context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        priced_config["telemetry"] = {"sinks": [{"kind": "logging", "logger": "test.shadow.context"}],
                                      "shadow": {"fraction": 1.0}}
        router = build_router(priced_config)
        backend = ScriptedBackend({"cheap": "ok cheap", "*": "ok"})
        for i in range(10):
            request_var.set(f"r{i}")
            router.route(RouteRequest(text="q", request_id=f"r{i}"), backend)
        assert flush_all(10)
        assert seen == {f"r{i}": f"r{i}" for i in range(10)}
    finally:
        logger.removeHandler(handler)


def test_a_sink_that_never_wrote_is_drained_at_once_on_sigterm(priced_config, tmp_path):
    """Its drain marker waited for a writer thread that was never started (5 s per exit)."""
    (sink,) = build_sinks([SinkConfig(kind="jsonl", path=str(tmp_path / "idle.jsonl"))]).sinks
    assert sink._thread is None and sink.begin_drain().done
    sink._draining = False


def test_spans_of_a_tracer_provider_set_up_after_the_router_are_exported_at_exit(tmp_path):
    """``atexit`` runs last in, first out: OpenTelemetry's shutdown, registered after the
    router's drain, ran before it, and the last spans went to a closed provider (0 of 20)."""
    out = tmp_path / "spans.txt"
    script = f"""
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

class ToFile(SpanExporter):
    def export(self, spans):
        with open({str(out)!r}, "a") as fh:
            for span in spans:
                if span.attributes.get("tiered_router.request_id"):
                    fh.write(span.attributes["tiered_router.request_id"] + "\\n")
        return SpanExportResult.SUCCESS

router = build_router({{"tiers": [{{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"}},
                                 {{"name": "frontier", "model_id": "amazon.nova-pro-v1:0"}}],
                       "telemetry": {{"sinks": [{{"kind": "otel"}}]}}}})
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(ToFile()))
trace.set_tracer_provider(provider)
for i in range(20):
    router.route(RouteRequest(text="q", request_id=f"span-{{i}}"), ScriptedBackend({{"*": "ok"}}))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr
    assert sorted(out.read_text().split()) == sorted(f"span-{i}" for i in range(20))


def test_two_routers_closing_one_shared_sink_stop_its_writer_and_a_new_router_gets_a_live_one(priced_config,
                                                                                           tmp_path):
    """The second close took the queue with the first's stop marker in it: the writer
    never stopped and the first close waited its whole timeout. A router built after the
    shared sink was closed got the closed one (its records written inline)."""
    path = tmp_path / "shared.jsonl"
    (sink,) = build_sinks([SinkConfig(kind="jsonl", path=str(path))]).sinks
    for i in range(300):
        sink.write(_record(priced_config, f"r{i}"))
    writer = sink._thread
    closers = [threading.Thread(target=sink.close, kwargs={"timeout": 30}) for _ in range(2)]
    for t in closers:
        t.start()
    for t in closers:
        t.join()
    assert not writer.is_alive() and len(_lines(path)) == 300
    (again,) = build_sinks([SinkConfig(kind="jsonl", path=str(path))]).sinks
    assert again is not sink and not again.closed


def _record(priced_config, request_id: str):
    from langchain_tiered_router.core.telemetry import record_from_result

    priced_config["telemetry"] = {"sinks": []}
    result = build_router(priced_config).route(RouteRequest(text="q", request_id=request_id), _backend())
    return record_from_result(result)
