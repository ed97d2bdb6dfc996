"""The README's quickstart runs as a user runs it: a script, a fresh process."""

from __future__ import annotations

import json
from decimal import Decimal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_escalates_to_valid_json_and_records_telemetry(tmp_path):
    kept = tmp_path / "kept" / "telemetry.jsonl"
    out = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py"), str(kept)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=True)
    summary = json.loads(out.stdout)
    assert summary["telemetry"]["path"] == str(kept)
    assert summary["answer"] == {"total": 12.5, "currency": "EUR"}
    assert summary["tier"] == "frontier" and summary["easy_tier"] == "cheap"
    assert [(tier, passed) for tier, passed, _ in summary["attempts"]] == [
        ("cheap", False), ("mid", False), ("frontier", True)]
    assert summary["attempts"][1][2] == 'schema violation at total: expected type "number"'
    rows = [json.loads(line) for line in kept.read_text().splitlines()]
    assert [r["tier"] for r in rows] == ["frontier", "cheap"]
    assert all(r["integration"] == "langchain" for r in rows)
    assert rows[0]["cost_usd"] == summary["cost_usd"]  # money: one decimal string everywhere
    assert Decimal(summary["easy_cost_usd"]) < Decimal(summary["easy_baseline_cost_usd"]) / 20


def test_quickstart_leaves_nothing_behind(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=True)
    summary = json.loads(out.stdout)
    assert summary["telemetry"] == {"path": None, "tiers": ["frontier", "cheap"],
                                    "cost_usd": [summary["cost_usd"], summary["easy_cost_usd"]]}
    assert list(tmp_path.iterdir()) == []  # the telemetry went to a temporary folder, removed after
