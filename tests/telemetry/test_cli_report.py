"""``tiered-router report``: numbers match the DB, drift exits 3, bad input is one line and exit 2."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.cli import app
from langchain_tiered_router.cli.report import parse_since
from langchain_tiered_router.analysis.report import Label, write_labels
from langchain_tiered_router.core.telemetry import Recorder, SqliteSink
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

from .conftest import answer

runner = CliRunner()


@pytest.fixture
def db(make_router, priced_config, tmp_path) -> Path:
    path = tmp_path / "t.db"
    sink = SqliteSink(path)
    router = make_router(priced_config, observers=[Recorder([sink])])
    backend = ScriptedBackend({"cheap": lambda r: answer("ok" if int(r.text) % 4 else "no", 100, 50),
                               "mid": answer("ok", 100, 60), "frontier": answer("ok", 100, 70)})
    for i in range(40):
        router.route(RouteRequest(text=str(i), request_id=f"r{i:02d}"), backend)
    sink.close()
    return path


def _one_line_failure(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiered-router: error: ")
    return lines[0]


def test_json_report_matches_the_rows_in_the_db(db):
    result = runner.invoke(app, ["report", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT cost_usd, baseline_cost_usd, escalated, tier FROM routing_records").fetchall()
    actual = sum(Decimal(r[0]) for r in rows)
    baseline = sum(Decimal(r[1]) for r in rows)
    assert out["requests"] == len(rows) == 40
    assert Decimal(out["actual_cost_usd"]) == actual and Decimal(out["baseline_cost_usd"]) == baseline
    assert out["savings_pct"] == pytest.approx(float((1 - actual / baseline) * 100), abs=1e-4)
    assert out["escalation_rate"] == sum(r[2] for r in rows) / 40 == 0.25
    assert {t["tier"]: t["served"] for t in out["tiers"]} == {"cheap": 30, "mid": 10}
    assert out["parity"] is None and out["drift"] is None


def test_rich_report_states_savings_and_parity_together(db):
    write_labels(db, [Label(f"r{i:02d}", 1.0 if i % 8 else 0.0, 1.0) for i in range(40)])
    result = runner.invoke(app, ["report", "--db", str(db)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "% cheaper at 87.5 % quality parity" in text and "bootstrap" in text
    assert "escalation rate: 25.0 %" in text


def test_plot_writes_a_png(db, tmp_path):
    png = tmp_path / "report.png"
    result = runner.invoke(app, ["report", "--db", str(db), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drift_alarm_exits_3_and_a_quiet_window_exits_0(make_router, priced_config, tmp_path, db):
    assert runner.invoke(app, ["report", "--db", str(db), "--drift-window", "20"]).exit_code == 0
    path = tmp_path / "drift.db"
    sink = SqliteSink(path)
    router = make_router(priced_config, observers=[Recorder([sink])])
    backend = ScriptedBackend({"cheap": lambda r: answer("ok" if r.text == "easy" else "no", 10, 10),
                               "mid": answer("ok", 10, 10)})
    for i in range(300):
        router.route(RouteRequest(text="easy" if i < 200 or i % 2 else "hard"), backend)
    sink.close()
    result = runner.invoke(app, ["report", "--db", str(path), "--drift-window", "100", "--json"])
    assert result.exit_code == 3
    drift = json.loads(result.stdout)["drift"]
    assert drift["alarm"] and {c["metric"] for c in drift["checks"] if c["alarm"]} >= {"escalation_rate", "tier_mix"}


def test_since_filters_records(db):
    out = json.loads(runner.invoke(app, ["report", "--db", str(db), "--json", "--since", "1h"]).stdout)
    assert out["requests"] == 40
    result = runner.invoke(app, ["report", "--db", str(db), "--since", "2999-01-01"])
    assert "no routing records" in _one_line_failure(result)
    assert parse_since("2026-11-28T00:00:00") == 1795824000.0
    assert parse_since("2h", now=10_000.0) == 2800.0


@pytest.mark.parametrize("make_bad, message", [
    (lambda p: p / "missing.db", "no telemetry store"),
    (lambda p: (p / "junk.db").write_text("{not a record}\n") and p / "junk.db", "junk.db:1: not JSON"),
    (lambda p: p, "is a directory"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, make_bad, message):
    assert message in _one_line_failure(runner.invoke(app, ["report", "--db", str(make_bad(tmp_path))]))


def test_a_sqlite_file_without_records_and_bad_options(tmp_path, db):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    assert "without a routing_records table" in _one_line_failure(runner.invoke(app, ["report", "--db", str(other)]))
    assert "bad --since" in _one_line_failure(runner.invoke(app, ["report", "--db", str(db), "--since", "lately"]))
    assert "bad drift window" in _one_line_failure(
        runner.invoke(app, ["report", "--db", str(db), "--drift-window", "often"]))
    assert "the folder" in _one_line_failure(  # checked before the records are read
        runner.invoke(app, ["report", "--db", str(db), "--plot", str(tmp_path / "no" / "dir" / "x.png")]))


def test_the_report_reads_slim_records_with_the_same_numbers_in_a_fraction_of_the_memory(db):
    """The report keeps only what it reads of each record (``ReportRecord``): a store of
    millions of requests fits in memory, and every number is the one full records give."""
    import tracemalloc

    from langchain_tiered_router.analysis.report import check_drift, summarize
    from langchain_tiered_router.analysis.report.store import read_store

    write_labels(db, [Label(f"r{i:02d}", 1.0 if i % 5 else 0.0, 1.0) for i in range(0, 40, 2)])

    def held(slim: bool):
        tracemalloc.start()
        try:
            contents = read_store(db, slim=slim)
            return contents, tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    (full, full_bytes), (slim, slim_bytes) = held(False), held(True)
    assert [r.request_id for r in slim.records] == [r.request_id for r in full.records]
    assert summarize(slim.records, slim.labels).to_dict() == summarize(full.records, full.labels).to_dict()
    assert check_drift(slim.records, "10").to_dict() == check_drift(full.records, "10").to_dict()
    assert slim_bytes < full_bytes / 4, (slim_bytes, full_bytes)
