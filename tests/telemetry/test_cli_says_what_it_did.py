"""The CLI as a newcomer meets it: it names the files it wrote, refuses bad paths before
the work, keeps usage errors to one line, and prints words and rounded numbers."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_tiered_router import __version__
from langchain_tiered_router.cli import app
from langchain_tiered_router.core.telemetry import Recorder, SqliteSink
from langchain_tiered_router.core.telemetry.sinks import MemorySink
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

from .conftest import answer

runner = CliRunner()


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tiered-router: error: ") and "╭" not in lines[0]
    return lines[0]


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM routing_records").fetchone()[0]


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"tiered-router {__version__}"


@pytest.mark.parametrize("args, message", [
    (["demo", "--limit", "-5"], "Invalid value for '--limit'"),
    (["demo", "--bogus"], "No such option: --bogus"),
    (["report", "--drift-window"], "requires an argument"),
])
def test_usage_errors_are_one_line(args, message):
    line = _one_line_error(runner.invoke(app, args))
    assert message in line and f"(see: tiered-router {args[0]} --help)" in line


def test_demo_refuses_a_db_in_a_missing_folder_and_creates_nothing(tmp_path):
    db = tmp_path / "no" / "such" / "x.db"
    line = _one_line_error(runner.invoke(app, ["demo", "--limit", "3", "--db", str(db)]))
    assert "the folder" in line and "does not exist" in line
    assert not (tmp_path / "no").exists()


def test_demo_starts_afresh_unless_asked_to_append(tmp_path):
    db = tmp_path / "d.db"
    first = runner.invoke(app, ["demo", "--limit", "4", "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert "emptied" not in first.stdout and _rows(db) == 4
    again = runner.invoke(app, ["demo", "--limit", "4", "--db", str(db)])
    assert again.exit_code == 0, again.output
    assert f"emptied the earlier {db} first" in again.stdout and _rows(db) == 4
    appended = runner.invoke(app, ["demo", "--limit", "4", "--db", str(db), "--append"])
    assert appended.exit_code == 0, appended.output
    assert "--append" in appended.stdout and _rows(db) == 8
    # the report the demo prints counts this run only; the DB holds both
    assert "requests: 4 " in " ".join(appended.stdout.split())


def test_demo_never_replaces_a_file_it_did_not_write(tmp_path):
    other = tmp_path / "production.db"
    sqlite3.connect(other).execute("CREATE TABLE routing_records (x)").connection.close()
    before = other.read_bytes()
    line = _one_line_error(runner.invoke(app, ["demo", "--limit", "3", "--db", str(other)]))
    assert "was not written by the demo" in line and other.read_bytes() == before


def test_demo_json_on_stdout_and_to_a_file(tmp_path):
    db, out = tmp_path / "d.db", tmp_path / "demo.json"
    result = runner.invoke(app, ["demo", "--limit", "5", "--db", str(db), "--json", "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads(out.read_text()) and printed["requests"] == 5
    assert f"wrote the JSON to {out}" in result.stderr  # stdout stays JSON
    human = runner.invoke(app, ["demo", "--limit", "5", "--db", str(db), "--json-out", str(out)])
    assert human.exit_code == 0 and f"wrote the JSON to {out}" in human.stdout
    assert "% quality parity" in " ".join(human.stdout.split())


@pytest.fixture
def telemetry(make_router, priced_config, tmp_path):
    """40 requests; every fourth one escalates from cheap to mid."""
    def make(name: str = "t.db", cheap=lambda r: answer("ok" if int(r.text) % 4 else "no", 100, 50),
             mid=answer("ok", 100, 60), edit=None) -> Path:
        path = tmp_path / name
        memory = MemorySink()
        router = make_router(priced_config, observers=[Recorder([memory])])
        backend = ScriptedBackend({"cheap": cheap, "mid": mid, "frontier": answer("ok", 100, 70)})
        for i in range(40):
            router.route(RouteRequest(text=str(i), request_id=f"r{i:02d}"), backend)
        sink = SqliteSink(path)
        for record in memory.records:
            sink.write(edit(record) if edit else record)
        sink.close()
        return path

    return make


def test_report_names_the_png_it_wrote_and_the_json_file(telemetry, tmp_path):
    db = telemetry()
    stem, out = tmp_path / "costs", tmp_path / "r.json"
    result = runner.invoke(app, ["report", "--db", str(db), "--plot", str(stem), "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    png = tmp_path / "costs.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and not stem.exists()
    assert f"wrote the plot to {png}" in result.stdout and f"wrote the JSON to {out}" in result.stdout
    assert json.loads(out.read_text())["requests"] == 40


@pytest.mark.parametrize("args", [["--json"], []])
def test_report_into_a_pipe_whose_reader_left_ends_quietly(telemetry, args):
    """``tiered-router report --json | head``: a reader that leaves early is no error of
    the report's: no error line, exit 1 (as Python and rich's console exit there)."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader left before anything was written
    proc = subprocess.run([sys.executable, "-m", "langchain_tiered_router.cli", "report", "--db", str(telemetry()),
                           *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write)
    assert (proc.returncode, proc.stderr) == (1, "")


def test_report_refuses_a_folder_before_reading(telemetry, tmp_path):
    (tmp_path / "out.json").mkdir()
    line = _one_line_error(runner.invoke(app, ["report", "--db", str(telemetry()), "--json-out",
                                               str(tmp_path / "out.json")]))
    assert "is a directory" in line
    # a folder given to --plot is refused as given, not written beside it as FOLDER.png
    (tmp_path / "plots").mkdir()
    line = _one_line_error(runner.invoke(app, ["report", "--db", str(telemetry()), "--plot", str(tmp_path / "plots")]))
    assert "is a directory" in line and not (tmp_path / "plots.png").exists()


def test_drift_table_fits_80_columns_in_words(telemetry):
    result = runner.invoke(app, ["report", "--db", str(telemetry()), "--drift-window", "10"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("drift:"))
    table = "\n".join(lines[start:])
    assert max(len(line) for line in lines[start:]) <= 80
    assert "…" not in table and "{" not in table and "_rate" not in table
    for words in ("escalation rate", "gate failure rate", "shadow agreement", "tier mix", "too few"):
        assert words in table, words
    # rates rounded to a tenth of a percent, the tier mix as shares
    assert re.search(r"escalation rate\s+│\s+\d+\.\d % \(n=30\)", table)
    assert re.search(r"cheap \d+ %, mid \d+ %", table)


def test_negative_savings_read_more_expensive(telemetry):
    # every request goes cheap -> mid -> frontier: routing pays three tiers where the baseline pays one
    db = telemetry(cheap=answer("no", 100, 50), mid=answer("no", 100, 60))
    result = runner.invoke(app, ["report", "--db", str(db), "--json"])
    out = json.loads(result.stdout)
    assert out["savings_pct"] < 0
    assert out["headline"].startswith(f"{-out['savings_pct']:.1f} % more expensive")
    human = " ".join(runner.invoke(app, ["report", "--db", str(db)]).stdout.split())
    assert "% more expensive" in human and "-" + f"{-out['savings_pct']:.1f} % cheaper" not in human


def test_shadow_advice_only_when_sampling_is_off(telemetry):
    off = " ".join(runner.invoke(app, ["report", "--db", str(telemetry("off.db"))]).stdout.split())
    assert "enable telemetry.shadow" in off

    def sampled_but_failed(record):
        return dataclasses.replace(record, shadow_status="failed") if record.tier == "cheap" else record

    on = " ".join(runner.invoke(app, ["report", "--db", str(telemetry("on.db", edit=sampled_but_failed))]).stdout
                  .split())
    assert "enable telemetry.shadow" not in on
    assert "quality parity not measured yet (no shadow sample scored: failed 30)" in on


def test_calibrate_refuses_outputs_before_training(tmp_path):
    config = Path(__file__).resolve().parents[2] / "examples" / "eval" / "routellm_router.yaml"
    data = tmp_path / "d.jsonl"
    data.write_text("")  # never read: the output is checked first
    (tmp_path / "adir").mkdir()
    for out, message in ((tmp_path / "adir", "--out"), (tmp_path / "none" / "m.npz", "does not exist")):
        result = runner.invoke(app, ["calibrate", "--config", str(config), "--data", str(data), "--out", str(out)])
        line = _one_line_error(result)
        assert message in line and "calibrated on" not in result.stdout
    assert "is a directory" in _one_line_error(runner.invoke(
        app, ["calibrate", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "adir")]))
