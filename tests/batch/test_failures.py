"""Jobs that fail, jobs that partly fail, records that fail, jobs stopped, and ``on_exhausted``."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.batch import BatchExhaustedError, run_batch
from langchain_tiered_router.batch.state import RunState
from langchain_tiered_router.cli import app
from langchain_tiered_router.core.errors import GateFailed, LadderExhaustedError
from langchain_tiered_router.emulator import BedrockEmulator

from .workload import CHEAP, FRONTIER, MID, call_cost, read_jsonl, router_config, script, write_config, write_workload

ROUTED = Decimal("0.19475")  # the undisturbed run: see test_run.test_costs_at_batch_prices_checked_by_hand


@pytest.fixture
def workload(tmp_path: Path) -> tuple[Path, Path]:
    return write_workload(tmp_path)


def _emulator(replay: Path, s3_url: str) -> BedrockEmulator:
    return BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01)


def _results(tmp_path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}


def _telemetry_rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "telemetry.db") as db:
        return db.execute("SELECT count(DISTINCT request_id) FROM routing_records").fetchone()[0]


def test_a_failed_job_is_resubmitted_and_not_billed(tmp_path, workload, s3_url, bucket):
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        emu.inject("job_failed", model_id=CHEAP, times=1, message="Internal error (injected)")
        summary = run_batch(router_config(emu.url, s3_url, tmp_path), records, tmp_path / "out.jsonl", bucket=bucket)
        jobs = emu.jobs.list(ascending=True)
    assert [(j.model_id, j.status) for j in jobs] == [
        (CHEAP, "Failed"), (CHEAP, "Completed"), (CHEAP, "Completed"), (CHEAP, "Completed"), (MID, "Completed")]
    assert jobs[0].message == "Internal error (injected)" and jobs[3].result.total == 167  # the resubmission
    assert summary.jobs_by_tier == {"cheap": 4, "mid": 1} and summary.job_states == {"Failed": 1, "Completed": 4}
    assert (summary.served, summary.failed) == (500, 0)
    assert summary.cost_usd == ROUTED  # the failed job processed nothing, so billed nothing
    results = _results(tmp_path)
    first = results["doc-001"]["attempts"][0]
    assert (first["retries"], first["outcome"], first["mode"]) == (1, "served", "batch")
    assert results["doc-168"]["attempts"][0]["retries"] == 0  # in the second job, never failed
    assert _telemetry_rows(tmp_path) == 500


def test_a_completed_jobs_output_that_cannot_be_read_stops_the_run_not_pays_again(tmp_path, workload, s3_url,
                                                                                   bucket):
    """Credentials that may write the jobs' inputs but not list their outputs: a completed
    job's records are not "unprocessed" (resubmitted, paid again, ended failed at $0): the
    run stops with the error, saved, and resumes once the output can be read."""
    from botocore.exceptions import ClientError

    from langchain_tiered_router.batch import BatchClients, BatchJobError
    from langchain_tiered_router.batch.settings import resolve_settings
    from langchain_tiered_router.core.config import load_config

    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        config = load_config(router_config(emu.url, s3_url, tmp_path))
        denied = BatchClients.from_config(config, resolve_settings(config, bucket=bucket))

        def deny(**_):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "ListObjectsV2")

        denied.s3.meta.events.register("before-call.s3.ListObjectsV2", deny)
        with pytest.raises(BatchJobError, match="cannot read the job's output .*AccessDenied.*batch resume"):
            run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket, clients=denied)
        assert [j.model_id for j in emu.jobs.list(ascending=True)] == [CHEAP] * 3  # the first tier's jobs only
        summary = run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)  # the output readable again
        assert [j.model_id for j in emu.jobs.list(ascending=True)] == [CHEAP] * 3 + [MID]  # none paid twice
    assert (summary.served, summary.failed, summary.cost_usd) == (500, 0, ROUTED)
    assert _telemetry_rows(tmp_path) == 500


def test_a_job_that_keeps_failing_escalates_its_records(tmp_path, workload, s3_url, bucket):
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        emu.inject("job_failed", model_id=MID, times=None)
        config = router_config(emu.url, s3_url, tmp_path, max_resubmits=1)
        summary = run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)
    # mid's job failed, was resubmitted once, failed again: its 125 records count a transport
    # error and go up (retry.on_exhausted: escalate), enough of them for a frontier job.
    assert summary.jobs_by_tier == {"cheap": 3, "mid": 2, "frontier": 1}
    assert summary.served_by_tier == {"cheap": 375, "frontier": 125}
    assert summary.cost_usd == 500 * call_cost("cheap") + 125 * call_cost("frontier")
    row = _results(tmp_path)["doc-004"]
    assert [(a["tier"], a["outcome"]) for a in row["attempts"]] == [
        ("cheap", "gate_failed"), ("mid", "transport_error"), ("frontier", "served")]
    assert row["attempts"][1]["retries"] == 1 and "without this record" in row["attempts"][1]["error"]
    lines = {r["request_id"]: r for r in read_jsonl(tmp_path / "telemetry.jsonl")}
    record = lines[row["request_id"]]
    assert record["attempts"][1]["error_kind"] == "job_failed" and record["transport_escalations"] == 1


def test_a_partly_completed_job_resends_what_it_left_out(tmp_path, workload, s3_url, bucket):
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        emu.inject("job_partial", model_id=CHEAP, times=1, unprocessed_every=4)
        summary = run_batch(router_config(emu.url, s3_url, tmp_path), records, tmp_path / "out.jsonl", bucket=bucket)
        jobs = emu.jobs.list(ascending=True)
    # The first cheap job (records 1-167) left out every 4th: 41 records, too few for a job,
    # so they went on-demand, at the on-demand price.
    assert jobs[0].status == "PartiallyCompleted" and jobs[0].result.processed == 126
    assert summary.on_demand_by_tier == {"cheap": 41, "frontier": 25}
    assert summary.jobs_by_tier == {"cheap": 3, "mid": 1}
    expected = (459 * call_cost("cheap") + 41 * call_cost("cheap", "on_demand") + 125 * call_cost("mid")
                + 25 * call_cost("frontier", "on_demand"))
    assert summary.cost_usd == expected
    row = _results(tmp_path)["doc-004"]
    assert [(a["tier"], a["mode"], a["retries"]) for a in row["attempts"]] == [
        ("cheap", "on_demand", 1), ("mid", "batch", 0)]
    assert (summary.served, _telemetry_rows(tmp_path)) == (500, 500)


def test_failed_records_are_retried_or_end_with_their_error(tmp_path, workload, s3_url, bucket):
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        emu.inject("record_error", model_id=CHEAP, times=1, every=5, code=400, message="Malformed input request")
        emu.inject("record_error", model_id=CHEAP, times=1, every=5, code=429, message="Too many tokens")
        summary = run_batch(router_config(emu.url, s3_url, tmp_path), records, tmp_path / "out.jsonl", bucket=bucket)
    results = _results(tmp_path)
    refused = results["doc-005"]  # 5th record of the first job: a 400 ends it, as a refused call ends a route
    assert (refused["status"], refused["tier"]) == ("failed", None)
    assert refused["error"] == "400: Malformed input request"
    throttled = results["doc-172"]  # 5th record of the second job: retried once (retry.max_retries: 1)
    assert throttled["status"] == "served" and throttled["attempts"][0]["retries"] == 1
    assert throttled["attempts"][0]["mode"] == "on_demand"
    assert (summary.failed, summary.served) == (33, 467)
    assert summary.on_demand_by_tier["cheap"] == 33
    with sqlite3.connect(tmp_path / "telemetry.db") as db:
        unserved = db.execute("SELECT count(*) FROM routing_records WHERE tier IS NULL AND error LIKE '400:%'"
                              ).fetchone()[0]
    assert unserved == 33 and _telemetry_rows(tmp_path) == 500  # no record lost from telemetry


def test_a_stopped_job_ends_its_records(tmp_path, workload, s3_url, bucket):
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        emu.jobs.hold(CHEAP)
        config = router_config(emu.url, s3_url, tmp_path)
        done: dict = {}
        worker = threading.Thread(target=lambda: done.update(
            summary=run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)))
        worker.start()
        deadline = time.monotonic() + 60
        while len([j for j in emu.jobs.list() if j.status == "InProgress"]) < 3:
            assert time.monotonic() < deadline and worker.is_alive()
            time.sleep(0.02)
        first = emu.jobs.list(ascending=True)[0]
        emu.bedrock_client().stop_model_invocation_job(jobIdentifier=first.arn)
        emu.jobs.release(CHEAP)
        worker.join(60)
    summary = done["summary"]
    assert summary.job_states.get("Stopped") == 1 and summary.failed == 167
    row = _results(tmp_path)["doc-001"]
    assert row["status"] == "failed" and "Stopped" in row["error"]
    assert summary.served == 333 and _telemetry_rows(tmp_path) == 500


def _submitted_jobs(state: Path) -> int:
    """Jobs the run's state file records as submitted (the file is replaced atomically)."""
    if not state.exists():
        return 0
    return sum(1 for job in RunState.load(state).jobs if job.status == "submitted" and job.arn)


def test_batch_stop_stops_a_runs_jobs(tmp_path, workload, s3_url, bucket):
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        emu.jobs.hold(CHEAP)
        config = router_config(emu.url, s3_url, tmp_path)
        done: dict = {}
        worker = threading.Thread(target=lambda: done.update(
            summary=run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)))
        worker.start()
        state = tmp_path / "out.jsonl.state.json"
        deadline = time.monotonic() + 60
        # what `batch stop` reads: the three jobs recorded in the state file (Bedrock lists a
        # job before the runner has written it down)
        while _submitted_jobs(state) < 3:
            assert time.monotonic() < deadline and worker.is_alive()
            time.sleep(0.02)
        stopped = CliRunner().invoke(app, ["batch", "stop", "--state", str(state)])
        worker.join(60)
        stops = [r for r in emu.requests if r.operation == "StopModelInvocationJob"]
    assert stopped.exit_code == 0 and stopped.stdout.startswith("stopped 3 job(s)"), stopped.output
    assert len(stops) == 3
    summary = done["summary"]
    assert summary.job_states == {"Stopped": 3} and (summary.failed, summary.served) == (500, 0)
    assert _telemetry_rows(tmp_path) == 500


def test_on_exhausted_flag_serves_the_strongest_answer_marked(tmp_path, workload, s3_url, bucket):
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        config = router_config(emu.url, s3_url, tmp_path)
        config["policy"]["max_escalations"] = 1  # cheap -> mid only
        summary = run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)
    row = _results(tmp_path)["doc-020"]
    assert (row["status"], row["tier"], row["answer"], row["flagged"]) == ("flagged", "mid", "I don't know", True)
    assert (summary.flagged, summary.served) == (25, 500)


def test_a_flagged_answer_names_the_failed_job_that_ended_its_ladder(tmp_path, workload, s3_url, bucket):
    """The frontier's job fails: its records are served mid's gate-failed answer, flagged,
    and the reason says the frontier failed, as a live route's does (it said no tier
    passed the gates, as if the frontier had answered)."""
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        emu.inject("job_failed", model_id=FRONTIER, times=None)
        config = router_config(emu.url, s3_url, tmp_path, min_records_per_job=10, max_resubmits=0)
        summary = run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)
    assert summary.jobs_by_tier.get("frontier") == 1 and (summary.flagged, summary.failed) == (25, 0)
    row = _results(tmp_path)["doc-020"]
    assert (row["status"], row["tier"]) == ("flagged", "mid")
    assert [a["outcome"] for a in row["attempts"]] == ["gate_failed", "gate_failed", "transport_error"]
    assert re.fullmatch(r"no tier passed the gates; serving mid's answer \(.+; then tier frontier failed: job "
                        r"\S+ ended without this record: .+\)", row["flag_reason"]), row["flag_reason"]


def test_on_exhausted_raise_raises_after_writing_everything(tmp_path, workload, s3_url, bucket):
    records, replay = workload
    with _emulator(replay, s3_url) as emu:
        config = router_config(emu.url, s3_url, tmp_path)
        config["policy"]["max_escalations"] = 1
        config["on_exhausted"] = "raise"
        with pytest.raises(BatchExhaustedError) as caught:
            run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)
        assert len(caught.value.exceptions) == 25
        one = caught.value.exceptions[0]
        assert isinstance(one, LadderExhaustedError) and [type(e) for e in one.exceptions] == [GateFailed, GateFailed]
        assert caught.value.run.failed == 25
        row = _results(tmp_path)["doc-020"]
        assert (row["status"], row["exhausted"], row["answer"]) == ("failed", True, None)
        assert _telemetry_rows(tmp_path) == 500
        # the CLI says so in one line and exits 4; the run is finished, so it is not routed again
        cli = CliRunner().invoke(app, ["batch", "run", "--config", str(write_config(tmp_path / "r.yaml", config)),
                                       "--input", str(records), "--bucket", bucket, "--out",
                                       str(tmp_path / "out.jsonl")])
    assert cli.exit_code == 4 and "25 of 500 records found no acceptable answer" in cli.stderr
    # and names the first of them, as a run with failed records does
    assert re.search(r"; first failure: record doc-\d+: \S.*\(\d+ of the 25 failed records share this reason",
                     cli.stderr), cli.stderr


def test_an_on_demand_record_is_judged_as_a_live_request_is(tmp_path, s3_url, bucket):
    """What a live route does, batch does on its on-demand path: a malformed reply is
    retried on its tier (not a quality step: with ``max_escalations: 0`` it is still
    served); a guardrail's answer is served after one call, not gated up the ladder; and a
    throttled call is made as often as ``retry.max_retries`` says (botocore no longer
    retried beneath: 6 calls for one retry)."""
    records, replay = write_workload(tmp_path, n=1)  # below the job minimum: on-demand
    data = router_config("", s3_url, tmp_path)
    data["policy"]["max_escalations"] = 0
    with _emulator(replay, s3_url) as emu:
        data["endpoint_url"] = emu.url
        emu.inject("malformed", model_id=CHEAP, times=1, mode="missing_output")
        run_batch(data, records, tmp_path / "out.jsonl", bucket=bucket)
        assert len(emu.calls_for(CHEAP)) == 2
        (result,) = read_jsonl(tmp_path / "out.jsonl")
        assert (result["status"], result["tier"]) == ("served", "cheap")
        assert [(a["tier"], a["outcome"], a["retries"]) for a in result["attempts"]] == [("cheap", "served", 1)]

        emu.inject("guardrail", model_id=None, times=None)
        run_batch(data, records, tmp_path / "guarded.jsonl", bucket=bucket)
        (result,) = read_jsonl(tmp_path / "guarded.jsonl")
        assert result["answer"] == "Sorry, the model cannot answer this question."
        assert [(a["tier"], a["outcome"]) for a in result["attempts"]] == [("cheap", "served")]
        emu.clear_faults()

        emu.inject("throttle", model_id=CHEAP, times=None)
        calls = len(emu.calls_for(CHEAP))
        run_batch(data, records, tmp_path / "throttled.jsonl", bucket=bucket)
        assert len(emu.calls_for(CHEAP)) - calls == 2  # 1 + retry.max_retries, as live
        emu.clear_faults()


def test_a_tier_whose_jobs_bedrock_refuses_is_passed_over_as_live(tmp_path, workload, s3_url, bucket):
    """Bedrock refuses to create a job for a tier's model (an id it does not know, a model
    not enabled here: ``retry.escalate_on: model_unavailable``): its records escalate past
    it, as a live call so refused does, instead of the run stopping at that job on every
    resume; nothing was called, so nothing is billed for that tier."""
    records, replay = workload
    strict = script(replay)
    strict["strict"] = True
    with BedrockEmulator(strict, s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        data = router_config(emu.url, s3_url, tmp_path)
        data["tiers"][1]["model_id"] = "amazon.nova-lite-v1:0"  # not one this account has (strict emulator)
        summary = run_batch(data, records, tmp_path / "out.jsonl", bucket=bucket)
        assert "amazon.nova-lite-v1:0" not in {j.model_id for j in emu.jobs.list(ascending=True)}
    assert (summary.served, summary.failed) == (500, 0)
    passed_over = [r for r in _results(tmp_path).values() if any(a["tier"] == "mid" for a in r["attempts"])]
    assert passed_over and all(r["tier"] == "frontier" for r in passed_over)
    assert all("model identifier is invalid" in a["error"] and a["cost_usd"] == "0"
               for r in passed_over for a in r["attempts"] if a["tier"] == "mid")
    assert _telemetry_rows(tmp_path) == 500


def test_a_run_begun_on_a_bucket_that_does_not_exist_takes_the_right_one(tmp_path, s3_url, bucket):
    """The first job could not be written (no such bucket): run again with the right
    ``--bucket`` and the run, none of whose jobs Bedrock has, moves there (the state kept
    the first bucket for good, and every rerun failed the same way)."""
    from langchain_tiered_router.batch import BatchJobError

    records, replay = write_workload(tmp_path, n=120)
    with _emulator(replay, s3_url) as emu:
        data = router_config(emu.url, s3_url, tmp_path)
        with pytest.raises(BatchJobError, match="NoSuchBucket"):
            run_batch(data, records, tmp_path / "out.jsonl", bucket="s3://no-such-bucket-here/runs")
        with pytest.raises(Exception, match="writes its results to .*out.jsonl, not .*elsewhere.jsonl"):
            run_batch(data, records, tmp_path / "elsewhere.jsonl", bucket=bucket,
                      state_path=tmp_path / "out.jsonl.state.json")  # another --out for that run: said, not ignored
        summary = run_batch(data, records, tmp_path / "out.jsonl", bucket=bucket)
        (job,) = emu.jobs.list()
    assert (summary.served, summary.failed) == (120, 0)
    assert job.input_uri.startswith(f"{bucket.rstrip('/')}/") and "no-such-bucket" not in job.input_uri
