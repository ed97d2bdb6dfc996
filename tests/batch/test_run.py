"""500 records through a three-tier cascade as Bedrock batch jobs: jobs, answers, costs, telemetry."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.cli import app
from langchain_tiered_router.emulator import BedrockEmulator

from .workload import (CHEAP, FRONTIER, MID, call_cost, read_jsonl, router_config, script, write_config,
                       write_workload)

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory, s3_url):
    """One CLI run of the 500 records; what the emulator saw, the results, the telemetry."""
    import boto3
    from botocore.config import Config

    folder = tmp_path_factory.mktemp("batch500")
    boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket="five-hundred")
    records, replay = write_workload(folder)
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        settings = router_config(emu.url, s3_url, folder)
        for sink in settings["telemetry"]["sinks"]:  # a job's records arrive at once: they must wait, not drop
            sink["queue_size"] = 20
        config = write_config(folder / "router.yaml", settings)
        result = runner.invoke(app, ["batch", "run", "--config", str(config), "--input", str(records),
                                     "--bucket", "s3://five-hundred/nightly", "--out", str(folder / "out.jsonl"),
                                     "--json"])
        assert result.exit_code == 0, result.output
        jobs = emu.jobs.list(ascending=True)
        creates = [r for r in emu.requests if r.operation == "CreateModelInvocationJob"]
        runtime_calls = [r for r in emu.requests if r.operation == "InvokeModel"]
    return {"folder": folder, "summary": json.loads(result.stdout), "jobs": jobs, "creates": creates,
            "runtime_calls": runtime_calls, "results": read_jsonl(folder / "out.jsonl")}


def test_one_wave_per_tier_within_bedrocks_job_limits(run):
    summary = run["summary"]
    assert summary["finished"] and summary["records"] == 500 and summary["pending"] == 0
    # 500 cheap records: 3 jobs (max 200 each, equal sizes); 125 escalate: 1 mid job;
    # 25 escalate again: fewer than Bedrock's minimum of 100, so they go on-demand.
    assert summary["jobs_by_tier"] == {"cheap": 3, "mid": 1}
    assert summary["on_demand_by_tier"] == {"frontier": 25}
    assert [(j.model_id, j.result.total, j.status) for j in run["jobs"]] == [
        (CHEAP, 167, "Completed"), (CHEAP, 167, "Completed"), (CHEAP, 166, "Completed"), (MID, 125, "Completed")]
    assert all(j.history == ["Submitted", "Validating", "Scheduled", "InProgress", "Completed"] for j in run["jobs"])
    assert len(run["creates"]) == 4 and len({c.body["jobName"] for c in run["creates"]}) == 4
    assert [c.model_id for c in run["runtime_calls"]] == [FRONTIER] * 25
    assert summary["served_by_tier"] == {"cheap": 375, "mid": 100, "frontier": 25}
    assert (summary["served"], summary["flagged"], summary["failed"]) == (500, 0, 0)


def test_every_record_is_accounted_for_exactly_once(run):
    results = run["results"]
    assert [r["id"] for r in results] == [f"doc-{i:03d}" for i in range(1, 501)]
    for i, row in enumerate(results, start=1):
        expected = "cheap" if i % 4 else ("mid" if i % 20 else "frontier")
        assert (row["status"], row["tier"], row["answer"]) == ("served", expected, str(2 * i))
        assert [a["tier"] for a in row["attempts"]] == ["cheap", "mid", "frontier"][: ["cheap", "mid", "frontier"]
                                                                                     .index(expected) + 1]
    with sqlite3.connect(run["folder"] / "telemetry.db") as db:
        rows = db.execute("SELECT request_id, integration, tier FROM routing_records").fetchall()
    assert len(rows) == 500 and {r[1] for r in rows} == {"batch"}
    assert {r[0] for r in rows} == {r["request_id"] for r in results}
    lines = read_jsonl(run["folder"] / "telemetry.jsonl")  # an append-only sink shows any double write
    assert len(lines) == 500 and len({line["request_id"] for line in lines}) == 500
    assert Counter(r[2] for r in rows) == {"cheap": 375, "mid": 100, "frontier": 25}


def test_costs_at_batch_prices_checked_by_hand(run):
    # Every call is 1,000 input and 100 output tokens. Batch rates from LiteLLM's cost map:
    # Nova Micro 0.0175 / 0.07, Nova Pro 0.40 / 1.60, Sonnet 4.5 1.50 / 7.50 USD per Mtok;
    # the 25 frontier calls went on-demand: 3 / 15 USD per Mtok.
    cheap, mid = Decimal("0.0000245"), Decimal("0.00056")  # 1000 x 0.0175e-6 + 100 x 0.07e-6; 0.0004 + 0.00016
    frontier_on_demand = Decimal("0.0045")  # 1000 x 3e-6 + 100 x 15e-6
    assert (cheap, mid, frontier_on_demand) == (call_cost("cheap"), call_cost("mid"),
                                                call_cost("frontier", "on_demand"))
    routed = 500 * cheap + 125 * mid + 25 * frontier_on_demand
    assert routed == Decimal("0.19475")
    baseline_batch = 500 * Decimal("0.00225")  # 1000 x 1.5e-6 + 100 x 7.5e-6, every record
    baseline_on_demand = 500 * Decimal("0.0045")
    summary = run["summary"]
    assert Decimal(summary["cost_usd"]) == routed
    assert Decimal(summary["baseline_cost_usd"]) == baseline_batch == Decimal("1.125")
    assert Decimal(summary["baseline_cost_on_demand_usd"]) == baseline_on_demand == Decimal("2.25")
    assert summary["savings_pct"] == pytest.approx(float(1 - routed / baseline_batch) * 100)

    results = {r["id"]: r for r in run["results"]}
    escalated = results["doc-020"]  # cheap fails, mid fails, frontier on-demand
    assert [(a["tier"], a["mode"], Decimal(a["cost_usd"])) for a in escalated["attempts"]] == [
        ("cheap", "batch", cheap), ("mid", "batch", mid), ("frontier", "on_demand", frontier_on_demand)]
    assert Decimal(escalated["cost_usd"]) == cheap + mid + frontier_on_demand
    assert sum(Decimal(r["cost_usd"]) for r in run["results"]) == routed

    records = {r["request_id"]: r for r in read_jsonl(run["folder"] / "telemetry.jsonl")}
    record = records[escalated["request_id"]]
    assert [Decimal(str(a["cost_usd"])) for a in record["attempts"]] == [cheap, mid, frontier_on_demand]
    assert Decimal(record["baseline_cost_usd"]) == Decimal("0.00225")
    assert record["metadata"]["baseline_cost_on_demand_usd"] == "0.0045"
    assert record["metadata"]["attempt_modes"] == "batch,batch,on_demand"
    assert record["integration"] == "batch" and record["policy"] == "cascade"
    assert record["quality_escalations"] == 2 and record["escalated"]


def test_each_record_is_stamped_when_it_finished_not_when_the_run_began(run):
    """Every row had the run's start as its time: a run of hours, or one resumed days
    later, landed whole in the window of its start for ``report --since`` and the drift
    check. A record's time is now when its answer came: the records a later wave served
    are stamped after those the first wave served."""
    import datetime as dt

    lines = {r["request_id"]: r for r in read_jsonl(run["folder"] / "telemetry.jsonl")}
    by_tier: dict[str, list[float]] = {}
    for row in run["results"]:
        record = lines[row["request_id"]]
        finished = dt.datetime.fromisoformat(record["metadata"]["finished_at"]).timestamp()
        assert record["ts"] == pytest.approx(finished, abs=1e-3)
        by_tier.setdefault(record["tier"], []).append(record["ts"])
    assert max(by_tier["cheap"]) < min(by_tier["mid"]) and max(by_tier["mid"]) < min(by_tier["frontier"])


def test_report_reads_the_batch_run(run):
    result = runner.invoke(app, ["report", "--db", str(run["folder"] / "telemetry.db"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["requests"] == 500
    assert Decimal(report["actual_cost_usd"]) == Decimal("0.19475")
    assert Decimal(report["baseline_cost_usd"]) == Decimal("1.125")
    assert report["escalation_rate"] == pytest.approx(125 / 500)
    assert {t["tier"]: t["served"] for t in report["tiers"]} == {"cheap": 375, "mid": 100, "frontier": 25}


def test_status_reads_the_state_file(run):
    result = runner.invoke(app, ["batch", "status", "--state", str(run["folder"] / "out.jsonl.state.json"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["finished"] and status["jobs_by_tier"] == {"cheap": 3, "mid": 1}
    assert status["cost_usd"] == run["summary"]["cost_usd"]
