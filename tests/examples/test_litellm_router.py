"""The plain-litellm.Router example, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_litellm_router_example_escalates_and_records(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "examples" / "litellm_router.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=180, check=True)
    summary = json.loads(out.stdout)
    assert summary["answer"] == {"total": 12.5, "currency": "EUR"} and summary["tier"] == "mid"
    assert summary["attempts"] == [["cheap", "gate_failed"], ["mid", "served"]]
    (row,) = [json.loads(line) for line in (tmp_path / "litellm_router_telemetry.jsonl").read_text().splitlines()]
    assert row["integration"] == "litellm" and row["cost_usd"] == summary["cost_usd"]
    assert Decimal(summary["cost_usd"]) < Decimal(summary["baseline_cost_usd"])
    assert "Failed to fetch" not in out.stderr  # no network: LiteLLM's bundled cost map only
