"""``tiered-router demo --batch`` runs offline and agrees with its DB; the batch room's surface."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

import langchain_tiered_router.batch as batch
from langchain_tiered_router.cli import app

REPO = Path(__file__).resolve().parents[2]


def test_demo_batch_reports_what_it_wrote(tmp_path):
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["demo", "--batch", "--limit", "150", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["via"] == "batch" and out["requests"] == 150
    assert out["batch"]["jobs_by_tier"]["cheap"] == 1 and out["batch"]["records"] == 150
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT request_id, tier, cost_usd, baseline_cost_usd, integration FROM routing_records"
                            ).fetchall()
        labels = dict((r[0], (r[1], r[2])) for r in conn.execute(
            "SELECT request_id, served_score, baseline_score FROM labels"))
    assert len(rows) == len(labels) == 150 and {r[4] for r in rows} == {"batch"}
    actual, baseline = sum(Decimal(r[2]) for r in rows), sum(Decimal(r[3]) for r in rows)
    assert Decimal(out["batch"]["cost_usd"]) == actual and Decimal(out["batch"]["baseline_cost_usd"]) == baseline
    assert out["savings_pct"] == round(float((1 - actual / baseline) * 100), 4)
    assert out["parity"]["source"] == "labels"
    assert out["parity"]["value"] == sum(v[0] for v in labels.values()) / sum(v[1] for v in labels.values())
    # the same gates and policy as live: every record is served by the tier that served it
    # when the same 150 requests went through TieredChatBedrock (`tiered-router demo`)
    live_db = tmp_path / "live.db"
    live = CliRunner().invoke(app, ["demo", "--limit", "150", "--db", str(live_db), "--json"])
    assert live.exit_code == 0, live.output
    with sqlite3.connect(live_db) as conn:
        live_tiers = [r[0] for r in conn.execute("SELECT tier FROM routing_records ORDER BY ts")]
    batch_tiers = [tier for _, tier in sorted((r[0], r[1]) for r in rows)]  # request ids end with the recordId
    assert batch_tiers == live_tiers
    assert out["escalation_rate"] == json.loads(live.stdout)["escalation_rate"]


def test_demo_batch_replays_routellm_answers_with_the_bundled_replay_router(shared_data, tmp_path):
    """``--replay <RouteLLM CSV> --batch``: GPT-4 has no InvokeModel batch format, so the
    bundled replay router runs as Converse records; the same tiers serve as live."""
    csv = shared_data / "routellm" / "gsm8k" / "gsm8k_responses.csv"
    runs = {}
    for how in (["--batch"], []):
        db = tmp_path / f"replay{len(runs)}.db"
        result = CliRunner().invoke(app, ["demo", "--replay", str(csv), *how, "--limit", "40", "--db", str(db),
                                          "--json"])
        assert result.exit_code == 0, result.output
        with sqlite3.connect(db) as conn:
            runs[bool(how)] = (json.loads(result.stdout), sorted(conn.execute("SELECT tier FROM routing_records")))
    (batched, batch_tiers), (live, live_tiers) = runs[True], runs[False]
    assert batched["via"] == "batch" and batched["requests"] == 40 and len(batch_tiers) == 40
    # the same answers served (batch prices differ: escalations go on demand at full price)
    assert batch_tiers == live_tiers and batched["parity"]["value"] == live["parity"]["value"]


def test_demo_batch_prints_the_report(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--batch", "--limit", "120", "--db", str(tmp_path / "d.db")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "as Bedrock batch jobs" in text and "jobs by tier: cheap 1" in text
    assert "% cheaper at" in text and "per tier" in text


def test_public_surface_and_no_heavy_imports():
    assert set(batch.__all__) == {
        "run_batch", "resume_batch", "batch_status", "stop_batch", "BatchRunner", "BatchClients", "BatchSummary",
        "BatchError", "BatchExhaustedError", "BatchInputError", "BatchJobError", "BatchSettingsError",
        "BatchStateError"}
    assert all(hasattr(batch, name) for name in batch.__all__)
    from langchain_tiered_router.core.errors import ConfigError, RouterError

    assert issubclass(batch.BatchError, RouterError) and issubclass(batch.BatchSettingsError, ConfigError)
    code = ("import sys, langchain_tiered_router.batch; "
            "print(sorted(m for m in ('boto3', 'botocore', 'moto', 'langchain_core', 'litellm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip() == "[]"
