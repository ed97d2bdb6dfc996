"""``tiered-router report`` on damaged telemetry: a damaged record is skipped, counted
and named (file and row or line), never a traceback, never NaN in the numbers; the
report refuses (exit 2) only when no record can be read."""

from __future__ import annotations

import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.analysis.report import Label, load_records, write_labels
from langchain_tiered_router.cli import app
from langchain_tiered_router.core.errors import TelemetryError
from langchain_tiered_router.core.telemetry import JsonlSink, Recorder, SqliteSink
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

from .conftest import answer

runner = CliRunner()
N = 40


def _route(make_router, priced_config, sink, ids=None) -> None:
    recorder = Recorder([sink])
    router = make_router(priced_config, observers=[recorder])
    backend = ScriptedBackend({"cheap": lambda r: answer("ok" if int(r.text) % 4 else "no", 100, 50),
                               "mid": answer("ok", 100, 60), "frontier": answer("ok", 100, 70)})
    for i in ids if ids is not None else range(N):
        router.route(RouteRequest(text=str(i), request_id=f"r{i:02d}"), backend)
    recorder.close()


@pytest.fixture
def db(make_router, priced_config, tmp_path) -> Path:
    path = tmp_path / "t.db"
    _route(make_router, priced_config, SqliteSink(path))
    return path


@pytest.fixture
def jsonl(make_router, priced_config, tmp_path) -> Path:
    path = tmp_path / "t.jsonl"
    _route(make_router, priced_config, JsonlSink(path))
    return path


def _strict_json(text: str) -> dict:
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _report(*args: str):
    return runner.invoke(app, ["report", *args])


def _damage(db: Path, request_id: str, record_text: str) -> int:
    """Overwrite one row's record JSON, as a disk or a hand edit would; returns its rowid."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE routing_records SET record = ? WHERE request_id = ?", (record_text, request_id))
        return conn.execute("SELECT rowid FROM routing_records WHERE request_id = ?", (request_id,)).fetchone()[0]


def _record(db: Path, request_id: str) -> dict:
    with sqlite3.connect(db) as conn:
        return json.loads(conn.execute("SELECT record FROM routing_records WHERE request_id = ?",
                                       (request_id,)).fetchone()[0])


def _warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("tiered-router: warning: ")]


def _with(record: dict, **changes) -> str:
    return json.dumps({**record, **changes})


def _without(record: dict, key: str) -> str:
    return json.dumps({k: v for k, v in record.items() if k != key})


@pytest.mark.parametrize("damaged, reason", [
    (lambda r: "{}", "missing 27 of the record's fields (request_id, ts, session_id, policy, ...)"),
    (lambda r: _without(r, "tier"), "missing field tier"),
    (lambda r: "[]", "a JSON array, not a record object"),
    (lambda r: "null", "JSON null, not a record object"),
    (lambda r: '"hello"', "a JSON string, not a record object"),
    (lambda r: "{not json", "not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    (lambda r: _with(r, cost_usd="abc"), "cost_usd is 'abc', not an amount in USD"),
    (lambda r: _with(r, cost_usd="NaN"), "cost_usd is 'NaN', not a finite amount"),
    (lambda r: _with(r, cost_usd="Infinity"), "cost_usd is 'Infinity', not a finite amount"),
    (lambda r: _with(r, cost_usd="-5"), "cost_usd is '-5', below zero"),
    (lambda r: _with(r, baseline_cost_usd="-0.01"), "baseline_cost_usd is '-0.01', below zero"),
    (lambda r: _with(r, attempts=None), "attempts is null, not a list of objects"),
    (lambda r: _with(r, ts="yesterday"), "ts is 'yesterday', not a finite number of seconds"),
    # parity reads a shadow score as a quality: 5 printed "500.0 % quality parity"
    (lambda r: _with(r, shadow_score=5), "shadow_score is 5, outside 0..1: a comparator scores 0..1, or null"),
    (lambda r: _with(r, shadow_score=-0.5), "shadow_score is -0.5, outside 0..1: a comparator scores 0..1, or null"),
])
def test_a_damaged_sqlite_row_is_skipped_counted_and_named(db, tmp_path, damaged, reason):
    intact = tmp_path / "intact.db"
    shutil.copy(db, intact)
    rowid = _damage(db, "r05", damaged(_record(db, "r05")))
    result = _report("--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert _warnings(result) == [
        f"tiered-router: warning: skipped 1 unreadable record of {N} read from {db} (left out of every number); "
        f"the first: {db}: rowid {rowid}, request_id 'r05': {reason}"]
    out = _strict_json(result.stdout)
    assert (out["requests"], out["records_unreadable"], out["labels_unreadable"]) == (N - 1, 1, 0)
    assert out["warnings"] == [_warnings(result)[0].removeprefix("tiered-router: warning: ")]

    # skipping the row gives the numbers of the store without it
    with sqlite3.connect(intact) as conn:
        conn.execute("DELETE FROM routing_records WHERE request_id = 'r05'")
    without = _strict_json(_report("--db", str(intact), "--json").stdout)
    for key in ("requests", "actual_cost_usd", "baseline_cost_usd", "savings_pct", "escalated", "tiers"):
        assert out[key] == without[key], key


def test_nan_infinite_and_negative_costs_never_reach_the_numbers(db):
    for rid, cost in (("r01", "NaN"), ("r02", "Infinity"), ("r03", "-5")):
        _damage(db, rid, _with(_record(db, rid), cost_usd=cost))
    result = _report("--db", str(db))
    assert result.exit_code == 0, result.output
    headline = result.stdout.splitlines()[0]
    assert headline.startswith(f"{_savings_of(db, skip={'r01', 'r02', 'r03'}):.1f} % cheaper")
    assert "nan" not in result.stdout.lower() and "inf " not in result.stdout.lower()
    assert "skipped 3 unreadable records of 40" in _warnings(result)[0]
    out = _strict_json(_report("--db", str(db), "--json").stdout)
    assert out["records_unreadable"] == 3 and out["requests"] == N - 3


def _savings_of(db: Path, skip: set[str]) -> float:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT request_id, cost_usd, baseline_cost_usd FROM routing_records").fetchall()
    actual = sum(Decimal(c) for rid, c, _ in rows if rid not in skip)
    baseline = sum(Decimal(b) for rid, _, b in rows if rid not in skip)
    return float((1 - actual / baseline) * 100)


def test_no_readable_record_is_a_refusal_naming_the_first(db):
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE routing_records SET record = '[]'")
        first = conn.execute("SELECT rowid, request_id FROM routing_records ORDER BY ts, request_id").fetchone()
    result = _report("--db", str(db), "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        f"tiered-router: error: no readable routing record in {db}: {N} unreadable records; the first: "
        f"{db}: rowid {first[0]}, request_id {first[1]!r}: a JSON array, not a record object")


def test_a_label_with_a_null_score_is_skipped_and_counted(db):
    write_labels(db, [Label(f"r{i:02d}", 1.0 if i % 8 else 0.0, 1.0) for i in range(N)])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE labels SET served_score = NULL WHERE request_id = 'r08'")  # a 0.0 gone missing
        conn.execute("UPDATE labels SET baseline_score = 'high' WHERE request_id = 'r09'")
        rowid = conn.execute("SELECT rowid FROM labels WHERE request_id = 'r08'").fetchone()[0]
    result = _report("--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    assert _warnings(result) == [f"tiered-router: warning: skipped 2 unusable labels in {db}; the first: "
                                 f"{db}: labels rowid {rowid}, request_id 'r08': served_score is null, not a number"]
    out = _strict_json(result.stdout)
    assert (out["labels_unreadable"], out["records_unreadable"], out["requests"]) == (2, 0, N)
    assert out["parity"]["n"] == N - 2 and out["parity"]["value"] == (N - 2 - 4) / (N - 2)


def test_library_load_records_stays_strict_and_names_the_row(db):
    rowid = _damage(db, "r07", _with(_record(db, "r07"), cost_usd="abc"))
    with pytest.raises(TelemetryError) as caught:
        load_records(db)
    assert str(caught.value) == f"{db}: rowid {rowid}, request_id 'r07': cost_usd is 'abc', not an amount in USD"


def _replace_line(path: Path, number: int, text: bytes) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number - 1] = text + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("line, reason", [
    (b"[]", "a JSON array, not a record object"),
    (b"null", "JSON null, not a record object"),
    (b'"hello"', "a JSON string, not a record object"),
    (b'{"request_id": "r05", "cost_usd": "abc"}', "missing 25 of the record's fields (ts, session_id, policy, "
                                                   "integration, ...)"),
    (b"\xf1\xf2 not text", "not UTF-8 (byte 0xf1 at column 1)"),
])
def test_a_damaged_jsonl_line_is_skipped_counted_and_named(jsonl, line, reason):
    _replace_line(jsonl, 6, line)
    result = _report("--db", str(jsonl), "--json")
    assert result.exit_code == 0, result.output
    assert _warnings(result) == [
        f"tiered-router: warning: skipped 1 unreadable record of {N} read from {jsonl} (left out of every number); "
        f"the first: {jsonl}:6: {reason}"]
    out = _strict_json(result.stdout)
    assert (out["requests"], out["records_unreadable"]) == (N - 1, 1)


def test_a_jsonl_cost_that_is_not_money_is_named_by_line(jsonl):
    lines = jsonl.read_text().splitlines()
    record = json.loads(lines[2])
    lines[2] = json.dumps({**record, "cost_usd": "abc"})
    jsonl.write_text("\n".join(lines) + "\n")
    result = _report("--db", str(jsonl))
    assert result.exit_code == 0, result.output
    assert _warnings(result)[0].endswith(f"the first: {jsonl}:3: cost_usd is 'abc', not an amount in USD")


def test_a_binary_file_is_refused_with_its_name_and_line(tmp_path):
    blob = tmp_path / "rand.db"
    blob.write_bytes(b"\xf1\x00\x9c binary\n\xff\xfe more\n")
    result = _report("--db", str(blob))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == (f"tiered-router: error: no readable routing record in {blob}: 2 unreadable "
                                     f"records; the first: {blob}:1: not UTF-8 (byte 0xf1 at column 1)")


def test_a_repeated_request_id_is_counted_once_from_its_last_line(make_router, priced_config, jsonl):
    once = _strict_json(_report("--db", str(jsonl), "--json").stdout)
    _route(make_router, priced_config, JsonlSink(jsonl), ids=range(10))  # a re-run appended to the same file
    result = _report("--db", str(jsonl), "--json")
    assert result.exit_code == 0, result.output
    assert _warnings(result) == [
        f"tiered-router: warning: 10 records in {jsonl} repeat an earlier request_id: each request is counted "
        f"once, from its last line; the first: {jsonl}:1: request_id 'r00' again at line {N + 1}"]
    out = _strict_json(result.stdout)
    assert (out["requests"], out["records_repeated"], out["records_unreadable"]) == (N, 10, 0)
    assert out["actual_cost_usd"] == once["actual_cost_usd"]  # same requests, same costs: not counted twice


def test_a_zero_baseline_says_so_instead_of_no_known_cost(db):
    with sqlite3.connect(db) as conn:
        for (rid,) in conn.execute("SELECT request_id FROM routing_records").fetchall():
            conn.execute("UPDATE routing_records SET record = ? WHERE request_id = ?",
                         (_with(_record(db, rid), baseline_cost_usd="0"), rid))
    out = _strict_json(_report("--db", str(db), "--json").stdout)
    assert out["priced_requests"] == N and out["savings_pct"] is None
    assert out["headline"] == f"savings unknown (the baseline cost of the {N} requests with known costs adds up to $0)"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE routing_records SET record = json_set(record, '$.cost_usd', NULL)")
    out = _strict_json(_report("--db", str(db), "--json").stdout)
    assert out["headline"] == "savings unknown (no request with both its cost and its baseline cost known)"


@pytest.mark.parametrize("alpha", ["-1", "0", "nan", "1", "inf"])
def test_alpha_outside_0_1_is_refused(db, alpha):
    result = _report("--db", str(db), "--drift-window", "10", f"--alpha={alpha}")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (f"tiered-router: error: bad --alpha {float(alpha):g}: give a significance "
                                     f"level between 0 and 1, such as 0.01")


def test_a_plot_format_matplotlib_cannot_write_is_refused_before_the_work(tmp_path):
    # the store does not even exist: the plot's name is checked first
    result = _report("--db", str(tmp_path / "missing.db"), "--plot", str(tmp_path / "x.foo"))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().startswith(f"tiered-router: error: --plot {tmp_path / 'x.foo'}: cannot write a "
                                            f".foo image; use .png, .svg or .pdf")


def test_help_says_what_happens_to_damaged_records():
    text = " ".join(runner.invoke(app, ["report", "--help"]).stdout.split())
    assert "damaged record" in text and "skipped" in text and "records_unreadable" in text
    assert "refuses (exit 2)" in text


@pytest.mark.parametrize("command", ["report", "eval"])
def test_a_plot_without_matplotlib_is_refused_before_the_work(tmp_path, monkeypatch, command):
    """``--plot`` on an install without the plot extra: said first, with the install line,
    not after the evaluation ran (the store and data do not even exist here)."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    missing = str(tmp_path / "missing.jsonl")
    args = ["report", "--db", missing] if command == "report" else \
        ["eval", "--config", "examples/eval/routellm_router.yaml", "--data", missing]
    result = runner.invoke(app, [*args, "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == ("tiered-router: error: --plot needs matplotlib: pip install "
                                     "'langchain-tiered-router[plot]'")
