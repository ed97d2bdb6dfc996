"""The emulator's Bedrock control plane for batch jobs, through a real boto3 ``bedrock`` client."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from langchain_tiered_router.emulator import BedrockEmulator, FaultSpecError

NOVA = "amazon.nova-micro-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
ROLE = "arn:aws:iam::123456789012:role/batch"
SCRIPT = {"models": {NOVA: {"rules": [{"match": "weather", "answer": "Sunny."}], "default": "Nova here."},
                     HAIKU: {"default": "Claude here."}}}


def _records(n: int, family: str = "nova", start: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        text = f"weather {i}" if i % 2 else f"hello {i}"
        if family == "anthropic":
            body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
                    "messages": [{"role": "user", "content": text}]}
        else:
            body = {"messages": [{"role": "user", "content": [{"text": text}]}]}
        out.append({"recordId": f"R{i:010d}", "modelInput": body})
    return out


def _put(s3: Any, bucket: str, key: str, rows: list[dict[str, Any]]) -> str:
    name = bucket[len("s3://"):].split("/")[0]
    s3.put_object(Bucket=name, Key=key, Body="\n".join(json.dumps(r) for r in rows).encode())
    return f"s3://{name}/{key}"


def _create(client: Any, name: str, input_uri: str, output_uri: str, model: str = NOVA, **extra: Any) -> str:
    return client.create_model_invocation_job(
        jobName=name, roleArn=ROLE, modelId=model, inputDataConfig={"s3InputDataConfig": {"s3Uri": input_uri}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": output_uri}}, **extra)["jobArn"]


def _wait(client: Any, arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        job = client.get_model_invocation_job(jobIdentifier=arn)
        if job["status"] in ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"):
            return job
        assert time.monotonic() < deadline, job["status"]
        time.sleep(0.02)


def _output(s3: Any, output_uri: str, arn: str, name: str) -> tuple[list[dict], dict]:
    bucket, _, prefix = output_uri[len("s3://"):].partition("/")
    folder = f"{prefix}{arn.rsplit('/', 1)[-1]}/"
    lines = s3.get_object(Bucket=bucket, Key=f"{folder}{name}.out")["Body"].read().decode().splitlines()
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{folder}manifest.json.out")["Body"].read())
    return [json.loads(line) for line in lines], manifest


@pytest.fixture
def emu(s3_url: str):
    with BedrockEmulator(SCRIPT, s3_endpoint_url=s3_url, job_step_s=0.01) as emulator:
        yield emulator


def test_a_job_moves_through_bedrocks_states_and_writes_bedrocks_output(emu, s3, bucket):
    client = emu.bedrock_client()
    input_uri = _put(s3, bucket, "runs/in/part-1.jsonl", _records(120))
    output_uri = bucket.replace("/runs", "/runs/out/")
    arn = _create(client, "nightly-1", input_uri, output_uri, timeoutDurationInHours=24)
    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/")
    job = _wait(client, arn)
    assert emu.jobs.get(arn).history == ["Submitted", "Validating", "Scheduled", "InProgress", "Completed"]
    assert (job["status"], job["totalRecordCount"], job["successRecordCount"], job["errorRecordCount"]) == (
        "Completed", 120, 120, 0)
    assert job["jobName"] == "nightly-1" and job["endTime"] >= job["submitTime"] and "jobExpirationTime" in job
    lines, manifest = _output(s3, output_uri, arn, "part-1.jsonl")
    assert sorted(line["recordId"] for line in lines) == [f"R{i:010d}" for i in range(120)]
    assert [line["recordId"] for line in lines] != sorted(line["recordId"] for line in lines)  # order not kept
    by_id = {line["recordId"]: line for line in lines}
    assert by_id["R0000000001"]["modelOutput"]["output"]["message"]["content"] == [{"text": "Sunny."}]
    assert by_id["R0000000002"]["modelOutput"]["output"]["message"]["content"] == [{"text": "Nova here."}]
    assert by_id["R0000000002"]["modelInput"] == _records(3)[2]["modelInput"]
    assert manifest == {"totalRecordCount": 120, "processedRecordCount": 120, "successRecordCount": 120,
                        "errorRecordCount": 0, "inputTokenCount": sum(x["modelOutput"]["usage"]["inputTokens"]
                                                                      for x in lines),
                        "outputTokenCount": sum(x["modelOutput"]["usage"]["outputTokens"] for x in lines)}


def test_a_folder_of_inputs_converse_records_and_bad_records(emu, s3, bucket):
    client = emu.bedrock_client()
    _put(s3, bucket, "runs/in/a.jsonl", _records(60, "anthropic"))
    bad = _records(60, "anthropic", start=60)
    bad[0]["modelInput"] = {"messages": []}  # no anthropic_version: Bedrock answers this record with a 400
    folder = _put(s3, bucket, "runs/in/b.jsonl", bad).rsplit("/", 1)[0] + "/"
    output_uri = folder.replace("/in/", "/out/")
    arn = _create(client, "folder", folder, output_uri, model=HAIKU)
    job = _wait(client, arn)
    assert (job["status"], job["totalRecordCount"], job["errorRecordCount"]) == ("Completed", 120, 1)
    a, _ = _output(s3, output_uri, arn, "a.jsonl")
    b, manifest = _output(s3, output_uri, arn, "b.jsonl")
    assert len(a) == len(b) == 60 and manifest["errorRecordCount"] == 1
    assert a[0]["modelOutput"]["content"] == [{"type": "text", "text": "Claude here."}]
    error = next(line for line in b if "error" in line)
    assert error["recordId"] == "R0000000060" and error["error"]["errorCode"] == 400 and "modelOutput" not in error
    converse = _create(client, "converse", _put(s3, bucket, "runs/c.jsonl", _records(100)), output_uri,
                       modelInvocationType="Converse")
    assert _wait(client, converse)["modelInvocationType"] == "Converse"


def test_validation_fails_jobs_bedrock_would_refuse(emu, s3, bucket):
    client = emu.bedrock_client()
    small = _create(client, "small", _put(s3, bucket, "runs/small.jsonl", _records(99)), bucket + "/out/")
    job = _wait(client, small)
    assert job["status"] == "Failed" and "less than the minimum number of records per batch inference job (100)" \
        in job["message"]
    missing = _wait(client, _create(client, "missing", bucket + "/nothing/", bucket + "/out/"))
    assert missing["status"] == "Failed" and "No .jsonl input files" in missing["message"]
    with pytest.raises(client.exceptions.ValidationException, match="roleArn"):
        client.create_model_invocation_job(
            jobName="x", roleArn="not-a-role", modelId=NOVA,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": bucket}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": bucket}})


def test_idempotent_create_list_and_stop(emu, s3, bucket):
    client = emu.bedrock_client()
    uri = _put(s3, bucket, "runs/in.jsonl", _records(100))
    emu.jobs.hold()
    first = _create(client, "same-1", uri, bucket + "/out/", clientRequestToken="tok1")
    assert _create(client, "same-1", uri, bucket + "/out/", clientRequestToken="tok1") == first
    second = _create(client, "other-2", uri, bucket + "/out/")
    pages = list(client.get_paginator("list_model_invocation_jobs").paginate(PaginationConfig={"PageSize": 1}))
    assert [p["invocationJobSummaries"][0]["jobArn"] for p in pages] == [second, first]  # newest first
    named = client.list_model_invocation_jobs(nameContains="same")["invocationJobSummaries"]
    assert [j["jobArn"] for j in named] == [first]
    client.stop_model_invocation_job(jobIdentifier=first)
    assert client.get_model_invocation_job(jobIdentifier=first)["status"] in ("Stopping", "Stopped")
    assert _wait(client, first)["status"] == "Stopped"
    stopped = client.list_model_invocation_jobs(statusEquals="Stopped")["invocationJobSummaries"]
    assert [j["jobArn"] for j in stopped] == [first]
    with pytest.raises(client.exceptions.ConflictException):
        client.stop_model_invocation_job(jobIdentifier=first)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_model_invocation_job(jobIdentifier="abcdefabcdef")
    emu.jobs.release()
    assert _wait(client, second)["status"] == "Completed"
    assert [r.operation for r in emu.requests if r.operation.endswith("ModelInvocationJob")].count(
        "CreateModelInvocationJob") == 3


def test_job_faults(emu, s3, bucket):
    client = emu.bedrock_client()
    uri = _put(s3, bucket, "runs/in.jsonl", _records(100))
    emu.inject("job_failed", model_id=NOVA, message="boom")
    emu.inject("job_partial", model_id=NOVA, unprocessed_every=10)
    emu.inject("record_error", model_id=NOVA, every=25, code=503)
    failed, partial, errors = (_wait(client, _create(client, f"f{i}", uri, bucket + "/out/")) for i in range(3))
    assert (failed["status"], failed["message"]) == ("Failed", "boom")
    assert (partial["status"], partial["processedRecordCount"]) == ("PartiallyCompleted", 90)
    assert (errors["status"], errors["errorRecordCount"], errors["successRecordCount"]) == ("Completed", 4, 96)
    client_runtime = emu.client()
    client_runtime.converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    with pytest.raises(FaultSpecError):
        emu.inject("job_partial", unprocessed_every=0)
