"""What ``tiered-router batch run`` tells a user about its outcome: exit codes, the first
failure's reason, output paths checked before any job, records files that are not UTF-8.

Each test runs the CLI against moto's S3 server and the Bedrock emulator, as a user would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.batch import run_batch
from langchain_tiered_router.cli import app
from langchain_tiered_router.emulator import BedrockEmulator

from .workload import CHEAP, read_jsonl, router_config, script, write_config, write_workload

runner = CliRunner()


def _emulator(replay: Path, s3_url: str) -> BedrockEmulator:
    return BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01)


def _run(config: Path, records: Path, bucket: str, out: Path, *extra: str):
    return runner.invoke(app, ["batch", "run", "--config", str(config), "--input", str(records),
                               "--bucket", bucket, "--out", str(out), *extra])


def _error_line(result, code: int) -> str:
    assert result.exit_code == code and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiered-router: error: "), result.output
    return lines[0].removeprefix("tiered-router: error: ")


def _objects(s3, bucket: str) -> int:
    return s3.list_objects_v2(Bucket=bucket.removeprefix("s3://").split("/")[0]).get("KeyCount", 0)


# -- D9: failed records are a non-zero exit, and the summary says why ------------------------------

def test_a_run_whose_every_record_failed_exits_4_and_names_the_reason(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path, n=300)  # two jobs a wave: reasons that differ by job name only
    with _emulator(replay, s3_url) as emu:
        emu.inject("job_failed", times=None, message="scripted failure")
        config = write_config(tmp_path / "router.yaml", router_config(emu.url, s3_url, tmp_path))
        result = _run(config, records, bucket, tmp_path / "out.jsonl")
        as_json = _run(config, records, bucket, tmp_path / "out.jsonl", "--json")  # the finished run, again
    error = _error_line(result, 4)
    assert error.startswith("300 of 300 records failed; first failure: record doc-001: job tr-")
    assert "ended without this record: scripted failure" in error
    assert "(300 of the 300 failed records share this reason; every reason is in" in error
    stdout = result.stdout.splitlines()
    assert stdout[0].endswith("served 0 (0 flagged), failed 300")
    assert stdout[1].startswith("first failure: record doc-001: job tr-") and "scripted failure" in stdout[1]
    results = read_jsonl(tmp_path / "out.jsonl")
    assert len(results) == 300 and {r["status"] for r in results} == {"failed"}

    assert as_json.exit_code == 4, as_json.output
    first = json.loads(as_json.stdout)["first_failure"]
    assert first["id"] == "doc-001" and first["shared_by"] == 300 and first["error"].endswith("scripted failure")

    status = runner.invoke(app, ["batch", "status", "--state", str(tmp_path / "out.jsonl.state.json")])
    assert status.exit_code == 0 and "first failure: record doc-001" in status.stdout, status.output


def test_some_failed_records_exit_4_and_count_the_records_sharing_the_first_reason(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path, n=300)  # cheap: two jobs of 150
    with _emulator(replay, s3_url) as emu:
        emu.inject("record_error", model_id=CHEAP, times=1, every=5, code=400, message="Malformed input request")
        emu.inject("record_error", model_id=CHEAP, times=1, every=10, code=400, message="Input is too long")
        config = write_config(tmp_path / "router.yaml", router_config(emu.url, s3_url, tmp_path))
        result = _run(config, records, bucket, tmp_path / "out.jsonl", "--json")
    assert result.exit_code == 4, result.output
    summary = json.loads(result.stdout)  # stdout stays JSON; the reason goes to stderr too
    # the 15 over cheap's context window escalate (retry.escalate_on), as live; the 30 refused end failed
    assert (summary["served"], summary["failed"]) == (270, 30)
    assert summary["first_failure"] == {"id": "doc-005", "error": "400: Malformed input request", "shared_by": 30}
    assert _error_line(result, 4).startswith(
        "30 of 300 records failed; first failure: record doc-005: 400: Malformed input request "
        "(30 of the 30 failed records share this reason;")
    too_long = [r for r in read_jsonl(tmp_path / "out.jsonl")
                if "Input is too long" in (r["attempts"][0]["error"] or "")]
    assert len(too_long) == 15 and {r["status"] for r in too_long} == {"served"}
    assert all(r["attempts"][1]["tier"] == "mid" for r in too_long)  # then gated as any other


def test_a_run_with_shadow_sampling_says_its_shadow_calls_are_in_no_figure(tmp_path, s3_url, bucket):
    """The summary's cost left out the on-demand shadow calls without a word, where they can
    cost many times the routed records (each asks the baseline tier again)."""
    records, replay = write_workload(tmp_path, n=12)  # below the job minimum: on-demand calls, quick
    with _emulator(replay, s3_url) as emu:
        settings = router_config(emu.url, s3_url, tmp_path)
        settings["telemetry"]["shadow"] = {"fraction": 1.0, "seed": 1}
        config = write_config(tmp_path / "router.yaml", settings)
        result = _run(config, records, bucket, tmp_path / "out.jsonl")
        as_json = _run(config, records, bucket, tmp_path / "out.jsonl", "--json")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert ("shadow calls (telemetry.shadow.fraction 1: the baseline tier asked again on-demand, to measure "
            "parity) are billed too and in no figure above: `tiered-router report` on the run's telemetry gives "
            "their cost") in text
    assert json.loads(as_json.stdout)["shadow_fraction"] == 1.0
    report = json.loads(runner.invoke(app, ["report", "--db", str(tmp_path / "telemetry.db"), "--json"]).stdout)
    assert float(report["shadow_cost_usd"]) > 0  # what the line points at is there


def test_flagged_answers_count_as_served_and_exit_0(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path, n=120)
    with _emulator(replay, s3_url) as emu:
        data = router_config(emu.url, s3_url, tmp_path)
        data["policy"]["max_escalations"] = 1  # cheap -> mid: mid's "I don't know" is served, flagged
        result = _run(write_config(tmp_path / "router.yaml", data), records, bucket, tmp_path / "out.jsonl")
    assert result.exit_code == 0 and not result.stderr, result.output
    assert "served 120 (6 flagged), failed 0" in result.stdout and "first failure" not in result.stdout


# -- D11: --out is checked before any job is created ------------------------------------------------

@pytest.fixture
def emulated(tmp_path, s3_url):
    """A 150-record workload and an emulator that would serve it all; yields (emulator, config, records)."""
    records, replay = write_workload(tmp_path, n=150)
    with _emulator(replay, s3_url) as emu:
        yield emu, write_config(tmp_path / "router.yaml", router_config(emu.url, s3_url, tmp_path)), records


def _nothing_sent(emu, s3, bucket: str, tmp_path: Path) -> None:
    assert emu.requests == []  # no job created, no call made
    assert _objects(s3, bucket) == 0  # no job input written
    assert not (tmp_path / "telemetry.jsonl").exists() and not list(tmp_path.rglob("*.state.json"))
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_out_that_is_a_folder_is_refused_before_any_job(tmp_path, emulated, s3, bucket):
    emu, config, records = emulated
    folder = tmp_path / "results"
    folder.mkdir()
    error = _error_line(_run(config, records, bucket, folder), 2)
    assert error == f"--out {folder} is a directory; give a file name"
    _nothing_sent(emu, s3, bucket, tmp_path)


def test_an_out_in_a_missing_folder_is_refused_before_any_job(tmp_path, emulated, s3, bucket):
    emu, config, records = emulated
    out = tmp_path / "no-such-folder" / "out.jsonl"
    error = _error_line(_run(config, records, bucket, out), 2)
    assert error == f"--out {out}: the folder {out.parent} does not exist"
    assert not out.parent.exists()
    _nothing_sent(emu, s3, bucket, tmp_path)


def test_a_state_path_that_is_a_folder_is_refused_before_any_job(tmp_path, emulated, s3, bucket):
    emu, config, records = emulated
    error = _error_line(_run(config, records, bucket, tmp_path / "out.jsonl", "--state", str(tmp_path)), 2)
    assert error == f"--state {tmp_path} is a directory; give a file name"
    _nothing_sent(emu, s3, bucket, tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into a read-only folder")
def test_an_out_in_a_read_only_folder_is_refused_before_any_job(tmp_path, emulated, s3, bucket):
    emu, config, records = emulated
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        error = _error_line(_run(config, records, bucket, folder / "out.jsonl"), 2)
    finally:
        folder.chmod(0o755)
    assert error == f"--out {folder / 'out.jsonl'}: the folder {folder} is not writable"
    _nothing_sent(emu, s3, bucket, tmp_path)


def test_resume_checks_the_runs_out_before_polling(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path, n=120)
    out = tmp_path / "out.jsonl"
    with _emulator(replay, s3_url) as emu:
        config = write_config(tmp_path / "router.yaml", router_config(emu.url, s3_url, tmp_path))
        assert _run(config, records, bucket, out).exit_code == 0
        out.unlink()
        out.mkdir()  # the results file's name is now taken by a folder
        emu.clear_requests()
        resumed = runner.invoke(app, ["batch", "resume", "--state", str(tmp_path / "out.jsonl.state.json")])
        assert _error_line(resumed, 2) == f"--out {out} is a directory; give a file name"
        assert emu.requests == []


def test_the_api_names_the_results_file_it_cannot_write_and_leaves_no_temporary_file(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path, n=120)
    out = tmp_path / "out.jsonl"
    out.mkdir()
    with _emulator(replay, s3_url) as emu:
        with pytest.raises(OSError, match=rf"^cannot write the results to {out}: Is a directory$"):
            run_batch(router_config(emu.url, s3_url, tmp_path), records, out, bucket=bucket,
                      state_path=tmp_path / "run.state.json")
    assert not list(tmp_path.glob(".*.tmp"))


# -- D7: a records file that is not UTF-8 names its line ---------------------------------------------

def test_a_records_file_that_is_not_utf8_names_its_line_and_sends_nothing(tmp_path, emulated, s3, bucket):
    emu, config, _ = emulated
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"id": "a", "prompt": "hello"}\n{"id": "b", "prompt": "caf\xe9"}\n')
    error = _error_line(_run(config, latin1, bucket, tmp_path / "out.jsonl"), 2)
    assert error == f"{latin1}:2: not UTF-8 (byte 0xe9); save the file as UTF-8"
    _nothing_sent(emu, s3, bucket, tmp_path)


def test_a_records_file_with_a_byte_order_mark_is_read(tmp_path, emulated, bucket):
    emu, config, records = emulated
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + records.read_bytes())
    result = _run(config, bom, bucket, tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")][:2] == ["doc-001", "doc-002"]
