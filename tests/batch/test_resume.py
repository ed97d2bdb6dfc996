"""A runner killed with SIGKILL mid-run is resumed: no job created twice, no record counted twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from langchain_tiered_router.cli import app
from langchain_tiered_router.emulator import BedrockEmulator

from .workload import CHEAP, FRONTIER, MID, call_cost, read_jsonl, router_config, script, write_config, write_workload

REPO = Path(__file__).resolve().parents[2]


def _state(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _signals_as_a_terminal_gives_them() -> None:
    """A child started from a shell's background job inherits SIGINT ignored (a CI runner
    may start the tests so): the runner gets Ctrl-C as a user at a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _killed_once(config: Path, records: Path, bucket: str, out: Path, state: Path, ready, what: str) -> dict:
    """``tiered-router batch run`` in a process of its own, sent SIGKILL once its state
    file shows ``ready``; the state it was killed at."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "langchain_tiered_router.cli", "batch", "run", "--config", str(config),
         "--input", str(records), "--bucket", bucket, "--out", str(out), "--state", str(state)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=_signals_as_a_terminal_gives_them)
    try:
        before = _wait_for(proc, state, ready, what)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    return before


def _wait_for(proc: subprocess.Popen, path: Path, ready, what: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        state = _state(path)
        if state and ready(state):
            return state
        if proc.poll() is not None:
            raise AssertionError(f"the runner exited ({proc.returncode}) before {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_killed_runner_resumes_without_resubmitting_or_double_counting(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path)
    state_path, out = tmp_path / "run.state.json", tmp_path / "out.jsonl"
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        emu.jobs.hold(MID)  # the mid job runs until released: the runner dies while it waits
        config = write_config(tmp_path / "router.yaml", router_config(emu.url, s3_url, tmp_path))
        before = _killed_once(config, records, bucket, out, state_path,
                              lambda s: any(j["tier"] == "mid" and j["status"] == "submitted" for j in s["jobs"]),
                              "the mid job was submitted")
        # killed mid-run: the cheap wave is judged and recorded, the mid job runs, nothing is written out
        done = [r for r in before["records"] if r["status"] == "done"]
        assert len(done) == 375 and all(r["recorded"] for r in done) and not out.exists()
        assert len(read_jsonl(tmp_path / "telemetry.jsonl")) == 375
        mid_job = next(j for j in before["jobs"] if j["tier"] == "mid")
        assert emu.jobs.get(mid_job["arn"]).status == "InProgress"
        # what status says meanwhile: the finished records' cost, and apart, the cheap answers
        # already billed for the 125 records still climbing (they were in no figure)
        status = CliRunner().invoke(app, ["batch", "status", "--state", str(state_path), "--json"])
        assert status.exit_code == 0, status.output
        midway = json.loads(status.stdout)
        assert midway["pending"] == 125 and Decimal(midway["cost_usd"]) == 375 * call_cost("cheap")
        assert Decimal(midway["in_progress_cost_usd"]) == 125 * call_cost("cheap")
        text = CliRunner().invoke(app, ["batch", "status", "--state", str(state_path)]).output
        assert "billed so far for the 125 records in progress: $" in text

        emu.jobs.release(MID)
        resumed = CliRunner().invoke(app, ["batch", "resume", "--state", str(state_path), "--json"])
        assert resumed.exit_code == 0, resumed.output
        creates = [r.body["jobName"] for r in emu.requests if r.operation == "CreateModelInvocationJob"]
        jobs = emu.jobs.list(ascending=True)

    summary = json.loads(resumed.stdout)
    assert len(creates) == len(set(creates)) == len(jobs) == 4  # 3 cheap + 1 mid: none created twice
    assert summary["jobs_by_tier"] == {"cheap": 3, "mid": 1} and summary["finished"]
    assert summary["served_by_tier"] == {"cheap": 375, "mid": 100, "frontier": 25}
    assert Decimal(summary["cost_usd"]) == Decimal("0.19475")  # as if never interrupted
    results = read_jsonl(out)
    assert [r["id"] for r in results] == [f"doc-{i:03d}" for i in range(1, 501)]
    lines = read_jsonl(tmp_path / "telemetry.jsonl")  # append-only: a record written twice would show
    assert len(lines) == 500 and len({line["request_id"] for line in lines}) == 500
    with sqlite3.connect(tmp_path / "telemetry.db") as db:
        assert db.execute("SELECT count(*) FROM routing_records").fetchone()[0] == 500
    assert sum(Decimal(r["cost_usd"]) for r in results) == Decimal("0.19475")


def test_a_runner_killed_during_on_demand_calls_makes_only_those_in_flight_again(tmp_path, s3_url, bucket):
    """The 25 records below the frontier's job minimum go on-demand (8 at a time, 2 s
    each). A runner killed after some came back resumes with their saved answers: it calls
    only the records it has no answer for (all 25 again, before)."""
    records, replay = write_workload(tmp_path)
    state_path, out = tmp_path / "run.state.json", tmp_path / "out.jsonl"
    slow = script(replay)
    slow["models"][FRONTIER]["latency_s"] = 2.0  # four rounds of 8: the kill lands well before the last
    with BedrockEmulator(slow, s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        config = write_config(tmp_path / "router.yaml", router_config(emu.url, s3_url, tmp_path))
        _killed_once(config, records, bucket, out, state_path,
                     lambda s: s["on_demand"].get("frontier", 0) >= 8, "the first 8 on-demand answers were saved")
        answered = _state(state_path)["on_demand"]["frontier"]  # as saved when the kill landed
        assert 8 <= answered < 25
        made = len([r for r in emu.requests if r.model_id == FRONTIER])
        resumed = CliRunner().invoke(app, ["batch", "resume", "--state", str(state_path), "--json"])
        assert resumed.exit_code == 0, resumed.output
        calls = [r for r in emu.requests if r.model_id == FRONTIER]

    summary = json.loads(resumed.stdout)
    assert summary["served_by_tier"] == {"cheap": 375, "mid": 100, "frontier": 25}
    assert summary["on_demand_by_tier"] == {"frontier": 25}
    assert len(calls) - made == 25 - answered  # the resumed runner called only the records without an answer
    # made twice: those in flight at the kill, and answers back since the last save (a save
    # waits until the last took at most a tenth of the time: on a loaded machine, a round)
    assert made - answered <= 8 + 8
    assert Decimal(summary["cost_usd"]) == Decimal("0.19475")
    lines = read_jsonl(tmp_path / "telemetry.jsonl")
    assert len({line["request_id"] for line in lines}) == 500


def test_a_runner_killed_while_a_self_grade_judges_a_job_grades_again_only_what_was_not_saved(tmp_path, s3_url,
                                                                                              bucket):
    """A job's records are judged one by one as the job ends; a self-grade gate makes a
    model call for each (0.1 s here). The state was saved only once the whole job was
    judged, so a runner killed halfway made every grader call of the job again."""
    records, replay = write_workload(tmp_path, n=120)  # one cheap job of 120 records
    slow = script(replay)
    slow["models"][CHEAP]["rules"] = [{"match": "strict grader", "answer": "8"}]
    slow["models"][CHEAP]["latency_s"] = 0.1  # the live grader calls, not the job's records
    state_path, out = tmp_path / "run.state.json", tmp_path / "out.jsonl"
    with BedrockEmulator(slow, s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        config = router_config(emu.url, s3_url, tmp_path)
        config["gates"] = [{"kind": "self_grade", "grader_tier": "cheap", "threshold": 7}]
        config = write_config(tmp_path / "router.yaml", config)

        def graded() -> int:
            return sum(r.operation == "InvokeModel" for r in emu.requests)

        _killed_once(config, records, bucket, out, state_path, lambda _: graded() >= 60, "60 grader calls")
        resumed = CliRunner().invoke(app, ["batch", "resume", "--state", str(state_path), "--json"])
        assert resumed.exit_code == 0, resumed.output
        calls = graded()
    assert json.loads(resumed.stdout)["served_by_tier"] == {"cheap": 120}
    # graded twice: those judged since the last save (one at least every INGEST_SAVE_MIN_S
    # = 1 s, ten calls here; more on a loaded machine), not the 60 graded before the kill
    assert calls - 120 <= 30, calls


def test_run_again_on_a_finished_state_changes_nothing_and_another_input_is_refused(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path, n=120)
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        config = write_config(tmp_path / "router.yaml", router_config(emu.url, s3_url, tmp_path))
        args = ["batch", "run", "--config", str(config), "--input", str(records), "--bucket", bucket,
                "--out", str(tmp_path / "out.jsonl")]
        first = CliRunner().invoke(app, args + ["--json"])
        again = CliRunner().invoke(app, args + ["--json"])
        assert first.exit_code == again.exit_code == 0, again.output
        assert json.loads(first.stdout)["run_id"] == json.loads(again.stdout)["run_id"]
        assert len([r for r in emu.requests if r.operation == "CreateModelInvocationJob"]) == 1
        other = tmp_path / "other.jsonl"
        other.write_text(records.read_text().replace("Q001", "Q999"))
        refused = CliRunner().invoke(app, ["batch", "run", "--config", str(config), "--input", str(other),
                                           "--bucket", bucket, "--out", str(tmp_path / "out.jsonl")])
    assert refused.exit_code == 2 and "another input or router config" in refused.stderr
    assert len(read_jsonl(tmp_path / "telemetry.jsonl")) == 120


def test_one_process_per_run_and_a_resume_from_elsewhere_writes_where_the_run_began(tmp_path, s3_url, bucket,
                                                                                    monkeypatch):
    """A second process on a run that is going refuses in one line (it would make every
    on-demand call again and write every telemetry record twice), and a run begun with
    relative paths, resumed from another folder, writes its results and telemetry where
    it began (they were written relative to the folder it was resumed from)."""
    from langchain_tiered_router.batch import run_batch
    from langchain_tiered_router.batch.runner import BatchRunner

    began, elsewhere = tmp_path / "began", tmp_path / "elsewhere"
    began.mkdir()
    elsewhere.mkdir()
    records, replay = write_workload(began, n=120)
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        data = router_config(emu.url, s3_url, Path("."))  # telemetry.db and telemetry.jsonl, relative
        monkeypatch.chdir(began)
        first = BatchRunner.start(data, "records.jsonl", "out.jsonl", bucket=bucket)  # the run is held
        refused = CliRunner().invoke(app, ["batch", "resume", "--state", str(began / "out.jsonl.state.json")])
        assert refused.exit_code == 2 and "is being run by another process" in refused.stderr
        try:
            run_batch(data, "records.jsonl", "out.jsonl", bucket=bucket)
            raise AssertionError("a second runner on the same run was let in")
        except Exception as exc:  # noqa: BLE001
            assert "is being run by another process" in str(exc)
        first.close()  # the first process lets go without running
        monkeypatch.chdir(elsewhere)
        resumed = CliRunner().invoke(app, ["batch", "resume", "--state", str(began / "out.jsonl.state.json")])
        assert resumed.exit_code == 0, resumed.output
    assert len(read_jsonl(began / "out.jsonl")) == 120 and not (elsewhere / "out.jsonl").exists()
    with sqlite3.connect(began / "telemetry.db") as db:
        assert db.execute("SELECT count(DISTINCT request_id) FROM routing_records").fetchone()[0] == 120
    assert not (elsewhere / "telemetry.db").exists()


def test_a_run_stopped_while_its_records_are_started_resumes_with_the_rest(tmp_path, s3_url, bucket, monkeypatch):
    """An LLM classifier makes one call per record before any job: those calls run a few
    at a time and the state is saved as they go, so a run stopped meanwhile (Ctrl-C
    here, on the 50th record) resumes with the records not yet started instead of paying
    every classifier call again (it kept nothing)."""
    from langchain_tiered_router.batch import resume_batch, run_batch
    from langchain_tiered_router.batch import runner as batch_runner
    from langchain_tiered_router.batch.cascade import Cascade

    monkeypatch.setattr(batch_runner, "START_SAVE_S", 0.0)
    records, replay = write_workload(tmp_path, n=120)
    started, start = [], Cascade.start

    def stopped_at_the_50th(self, record, request_id, now):
        started.append(record.id)
        if len(started) == 50:
            raise KeyboardInterrupt
        return start(self, record, request_id, now)

    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        data = router_config(emu.url, s3_url, tmp_path)
        data["policy"] = {"kind": "classifier", "classifier": {"kind": "llm"}, "max_escalations": 2}
        monkeypatch.setattr(Cascade, "start", stopped_at_the_50th)
        try:
            run_batch(data, records, tmp_path / "out.jsonl", bucket=bucket)
            raise AssertionError("not stopped")
        except KeyboardInterrupt:
            pass
        monkeypatch.setattr(Cascade, "start", start)
        summary = resume_batch(tmp_path / "out.jsonl.state.json")
        asked = [r for r in emu.requests if "Decide which model tier" in json.dumps(r.body)]
    assert (summary.served, summary.failed) == (120, 0)
    assert 120 <= len(asked) <= 120 + 32  # at most the calls in flight when it stopped, made again


def test_a_runner_stopped_by_a_signal_says_how_to_finish_the_run(tmp_path, s3_url, bucket):
    """Ctrl-C or SIGTERM while jobs run: the runner says the run is saved, how to resume
    it, and that its jobs go on at Bedrock (it exited with nothing on stderr)."""
    from .workload import CHEAP

    records, replay = write_workload(tmp_path, n=120)
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        emu.jobs.hold(CHEAP)
        config = write_config(tmp_path / "router.yaml", router_config(emu.url, s3_url, tmp_path))
        for sig in (signal.SIGINT, signal.SIGTERM):
            state_path = tmp_path / f"{sig.name}.state.json"
            proc = subprocess.Popen(
                [sys.executable, "-m", "langchain_tiered_router.cli", "batch", "run", "--config", str(config),
                 "--input", str(records), "--bucket", bucket, "--out", str(tmp_path / f"{sig.name}.jsonl"),
                 "--state", str(state_path)],
                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, preexec_fn=_signals_as_a_terminal_gives_them)
            try:
                _wait_for(proc, state_path, lambda s: any(j["status"] == "submitted" for j in s["jobs"]),
                          "a job was submitted")
                proc.send_signal(sig)
                _, stderr = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
            assert proc.returncode != 0
            assert f"batch resume --state {state_path}" in stderr and "batch stop" in stderr, stderr
        emu.jobs.release(CHEAP)
