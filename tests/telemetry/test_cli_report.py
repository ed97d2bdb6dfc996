"""``tiered-router report``: numbers match the DB, drift exits 3, bad input is one line and exit 2."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import sqlite3
import subprocess
import sys
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


def test_a_postgres_dsn_without_psycopg_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    line = _one_line_failure(runner.invoke(app, ["report", "--db", "postgresql://tr@127.0.0.1:1/app"]))
    assert line == ("tiered-router: error: a postgresql:// database needs psycopg 3: "
                    "pip install 'langchain-tiered-router[postgres]'")


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


def _mixed_baselines_db(make_router, priced_config, path: Path, *, frontier_ladder_last: bool) -> Path:
    """40 requests from two ladders on one DB. 20 with baseline frontier, served by cheap
    and shadowed, every shadow disagreeing (score 0); 20 with baseline mid (a ladder of
    cheap and mid), served by mid, their own baseline. Right parity: 20 at the baseline's
    quality + 20 at 0 = 50 %, whichever ladder wrote last."""
    from langchain_tiered_router.core.config import RouterConfig
    from langchain_tiered_router.core.telemetry import build_recorder
    from langchain_tiered_router.core.tiers import Ladder

    shadowed = copy.deepcopy(priced_config)
    shadowed["telemetry"]["shadow"] = {"fraction": 1.0, "seed": 3}
    to_mid = copy.deepcopy(priced_config)
    to_mid["tiers"] = priced_config["tiers"][:2]
    to_mid["baseline"] = "mid"
    backend = ScriptedBackend({"cheap": lambda r: answer("ok 1" if r.text.startswith("f") else "no", 100, 50),
                               "mid": answer("ok 2", 100, 60), "frontier": answer("ok 3", 100, 70)})
    runs = [(to_mid, "m"), (shadowed, "f")]
    for config, prefix in runs if frontier_ladder_last else runs[::-1]:
        parsed = RouterConfig.from_dict(config)
        recorder = build_recorder(parsed, Ladder.from_config(parsed), sinks=[SqliteSink(path)])
        router = make_router(config, observers=[recorder])
        for i in range(20):
            router.route(RouteRequest(text=f"{prefix}{i}", request_id=f"{prefix}{i:02d}"), backend)
        recorder.close()
    return path


@pytest.mark.parametrize("frontier_ladder_last", [True, False])
def test_shadow_parity_judges_each_record_against_its_own_baseline(make_router, priced_config, tmp_path,
                                                                   frontier_ladder_last):
    """It took the newest record's baseline for all: 0.0 % or 50.0 % by which ladder wrote last."""
    db = _mixed_baselines_db(make_router, priced_config, tmp_path / "t.db", frontier_ladder_last=frontier_ladder_last)
    svg = tmp_path / "report.svg"
    result = runner.invoke(app, ["report", "--db", str(db), "--json", "--plot", str(svg)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {t["tier"]: t["served"] for t in out["tiers"]} == {"cheap": 20, "mid": 20}
    parity = out["parity"]
    assert (parity["source"], parity["n"]) == ("shadow", 20)
    assert parity["detail"]["agreement"] == 0.0
    assert parity["detail"]["share_served_below_baseline"] == 0.5
    assert parity["value"] == pytest.approx(0.5)
    assert "at 50.0 % quality parity" in out["headline"]
    assert "baseline (frontier, mid) on every request" in svg.read_text()  # the legend names both


@contextlib.contextmanager
def _read_only(folder: Path):
    """``folder`` refusing new files: chmod for a user; as root, whom chmod does not stop,
    the immutable attribute (chattr +i), or a skip where that is not permitted either."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        undo = ["chattr", "-i", str(folder)]
    else:
        pytest.skip("running as root, where chmod does not stop writes, and chattr +i is not permitted")
    try:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            pytest.skip(f"{folder} still takes new files")
        yield folder
    finally:
        subprocess.run(undo, check=True)


def _checkpointed_copy(db: Path, folder: Path) -> Path:
    """The database file alone, every committed row in it, as a copy kept for audit is."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(db, folder / db.name))


def test_a_wal_db_in_a_read_only_folder_is_read(db, tmp_path):
    """SQLite could not make the -shm beside a WAL database: "unable to open database file"."""
    expected = json.loads(runner.invoke(app, ["report", "--db", str(db), "--json"]).stdout)
    copy = _checkpointed_copy(db, tmp_path / "audit")
    assert copy.read_bytes()[18:20] == b"\x02\x02"  # a WAL database, by its header
    with _read_only(copy.parent):
        result = runner.invoke(app, ["report", "--db", str(copy), "--json"])
        assert sorted(p.name for p in copy.parent.iterdir()) == ["t.db"]
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["requests"] == 40 and out["warnings"] == []
    assert (out["actual_cost_usd"], out["savings_pct"]) == (expected["actual_cost_usd"], expected["savings_pct"])


def test_a_read_only_folder_with_a_wal_left_by_a_writer_says_what_is_not_read(make_router, priced_config, tmp_path):
    """A writer that did not close leaves rows in the -wal; read without a -shm they are
    not seen, and the report says so rather than counting less in silence."""
    backend = ScriptedBackend({"cheap": answer("ok", 100, 50)})
    first = SqliteSink(tmp_path / "t.db")
    make_router(priced_config, observers=[Recorder([first])]).route(RouteRequest(text="0", request_id="r0"), backend)
    first.close()
    folder = _checkpointed_copy(tmp_path / "t.db", tmp_path / "copy").parent
    sink = SqliteSink(tmp_path / "t.db")
    router = make_router(priced_config, observers=[Recorder([sink])])
    for i in range(1, 4):
        router.route(RouteRequest(text=str(i), request_id=f"r{i}"), backend)
    sink.flush()
    shutil.copy(tmp_path / "t.db-wal", folder / "t.db-wal")  # the writer still open: r1-r3 only in its -wal
    sink.close()
    wal_size = (folder / "t.db-wal").stat().st_size
    with _read_only(folder):
        result = runner.invoke(app, ["report", "--db", str(folder / "t.db"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requests"] == 1
    assert result.stderr == (f"tiered-router: warning: read {folder / 't.db'} as it is on disk, its folder taking no "
                             f"-shm file: the {wal_size:,} bytes of t.db-wal (records not yet copied into it) are "
                             "not read\n")
