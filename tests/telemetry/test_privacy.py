"""With ``store_text`` off, no answer text leaves the request: not in gate reasons, nor in
SQLite, JSONL, OTel spans, the logging sink, ``response_metadata`` or the
``LadderExhaustedError`` text; reasons name the path and the rule, and are bounded.

A user's chain on the emulator (``TieredChatBedrock``), real sinks, the files read back.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import BaseModel, field_validator

from langchain_tiered_router.core import LadderExhaustedError
from langchain_tiered_router.core.telemetry.recorder import flush_all
from langchain_tiered_router.core.telemetry.otel import OTelSink
from langchain_tiered_router.core.telemetry.recorder import Recorder
from langchain_tiered_router.emulator import BedrockEmulator
from langchain_tiered_router.langchain import TieredChatBedrock

pytestmark = pytest.mark.enable_socket

SECRET = "ANSWERSECRET91bc"
CHEAP, MID, FRONTIER = "amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"
ANSWERS = {
    "number": '{"total": "%s"}' % SECRET,
    "key": '{"total": 1, "%s": 2}' % SECRET,
    "huge": '{"total": "%s%s"}' % (SECRET, "x" * 200_000),
}
SCRIPT = {"models": {model: {"rules": [
    {"match": "SCORE:$", "answer": f"{SECRET} is wrong, 2"},  # the self-grade's grader quotes the answer
    *({"match": f"case-{case}", "answer": text} for case, text in ANSWERS.items()),
]} for model in (CHEAP, MID, FRONTIER)}}

NUMBER_SCHEMA = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}


class Invoice(BaseModel):
    total: str

    @field_validator("total")
    @classmethod
    def _digits(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError(f"total {value!r} is not digits")
        return value


def quoting_rule(question: str, answer: str):
    return False, f"the answer {answer!r} is no good"


def raising_rule(question: str, answer: str):
    return float(json.loads(answer)["total"]) > 0  # ValueError: could not convert string to float: 'ANSWER...'


GATES = {
    "schema-value": ("number", [{"kind": "json_schema", "schema": NUMBER_SCHEMA}]),
    "schema-key": ("key", [{"kind": "json_schema", "schema": {"type": "object", "additionalProperties": False,
                                                                "properties": {"total": {"type": "number"}}}}]),
    "schema-huge": ("huge", [{"kind": "json_schema", "schema": NUMBER_SCHEMA}]),
    "pydantic-validator": ("number", [{"kind": "pydantic", "model": f"{__name__}:Invoice"}]),
    "rule-reason": ("number", [{"kind": "rule", "function": f"{__name__}:quoting_rule"}]),
    "rule-raises": ("number", [{"kind": "rule", "function": f"{__name__}:raising_rule"}]),
    "self-grade": ("number", [{"kind": "self_grade"}]),
    "any-of-them": ("number", [{"kind": "any", "gates": [
        {"kind": "json_schema", "schema": NUMBER_SCHEMA}, {"kind": "rule", "function": f"{__name__}:quoting_rule"}]}]),
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(SCRIPT) as emu:
        yield emu


@pytest.fixture
def spans():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def model(emulator: BedrockEmulator, tmp_path: Path, gates: list, *, store_text: bool, on_exhausted: str,
          provider: Any) -> TieredChatBedrock:
    config = {
        "tiers": [{"name": "cheap", "model_id": CHEAP}, {"name": "mid", "model_id": MID},
                  {"name": "frontier", "model_id": FRONTIER}],
        "endpoint_url": emulator.url, "retry": {"max_retries": 0}, "gates": gates, "on_exhausted": on_exhausted,
        "telemetry": {"store_text": store_text, "sinks": [
            {"kind": "sqlite", "path": str(tmp_path / "t.db"), "flush_interval_s": 0.05},
            {"kind": "jsonl", "path": str(tmp_path / "t.jsonl")},
            {"kind": "logging", "logger": "privacy-test", "level": "INFO"}]},
    }
    llm = TieredChatBedrock.from_config(config)
    llm.router.add_observer(Recorder([OTelSink(tracer_provider=provider)], store_text=store_text))
    return llm


def everything_recorded(tmp_path: Path, exporter: Any, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    flush_all()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        sqlite_text = json.dumps(conn.execute("SELECT * FROM routing_records").fetchall(), default=str)
    span_text = json.dumps([{"name": s.name, "attributes": dict(s.attributes or {}),
                             "status": s.status.description} for s in exporter.get_finished_spans()], default=str)
    # the logging sink's lines, and the library's own log (a gate that raised is logged with its traceback)
    log_text = json.dumps([{"message": r.getMessage(), "record": getattr(r, "routing_record", None),
                            "exc": r.exc_text} for r in caplog.records], default=str)
    return {"sqlite": sqlite_text, "jsonl": (tmp_path / "t.jsonl").read_text(), "otel": span_text,
            "logging": log_text}


@pytest.mark.parametrize("case", list(GATES))
def test_no_answer_text_anywhere_without_store_text(emulator, tmp_path, spans, caplog, case):
    answer, gates = GATES[case]
    provider, exporter = spans
    caplog.set_level(logging.INFO, logger="privacy-test")
    served = model(emulator, tmp_path, gates, store_text=False, on_exhausted="flag", provider=provider).invoke(
        f"case-{answer}: extract the invoice total")
    assert SECRET in served.content  # the caller gets the answer: it is only telemetry that must not
    routing = served.response_metadata["routing"]
    assert routing["flagged"] and [a["outcome"] for a in routing["attempts"]] == ["gate_failed"] * 3
    with pytest.raises(LadderExhaustedError) as info:
        model(emulator, tmp_path, gates, store_text=False, on_exhausted="raise", provider=provider).invoke(
            f"case-{answer}: extract the invoice total")
    exception_text = "\n".join([str(info.value), *map(str, info.value.exceptions)])
    places = {**everything_recorded(tmp_path, exporter, caplog),
              "response_metadata": json.dumps(served.response_metadata, default=str), "exception": exception_text}
    for place, text in places.items():
        assert SECRET not in text, f"the answer leaked into {place}"
    reasons = [a["gate_reason"] for a in routing["attempts"]]
    assert all(reason and len(reason) <= 300 for reason in reasons)
    if case == "schema-value":  # the path and the rule, from the schema alone
        assert reasons[0] == 'schema violation at total: expected type "number"'
    if case == "schema-key":  # the answer's own key is not named either
        assert reasons[0] == "schema violation at (root): has properties the schema does not allow " \
                             "(additionalProperties: false)"
    if case == "rule-raises":
        assert reasons[0] == "gate raised ValueError" and routing["gate_errors"] == 3
    assert len(info.value.message) < 2_000


def test_with_store_text_the_detail_is_recorded_bounded(emulator, tmp_path, spans, caplog):
    provider, exporter = spans
    llm = model(emulator, tmp_path, GATES["schema-huge"][1], store_text=True, on_exhausted="flag", provider=provider)
    served = llm.invoke("case-huge: extract the invoice total")
    flush_all()
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    reason = rows[-1]["attempts"][0]["gate_reason"]
    assert reason.startswith(f"schema violation at total: '{SECRET}xxx") and len(reason) <= 2_000
    assert SECRET in rows[-1]["answer_text"]
    # what the caller's metadata and the exception carry stays the reason without the value
    assert SECRET not in json.dumps(served.response_metadata["routing"]["attempts"])
