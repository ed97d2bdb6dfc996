"""What a batch job does with its records: read them from S3, answer, write the output.

Formats, as Bedrock documents them for batch inference:

- input: one or more ``.jsonl`` objects (the job's ``s3Uri`` names one, or a folder of
  them); each line ``{"recordId": "...", "modelInput": {...}}``, where ``modelInput`` is
  the InvokeModel body of the job's model (or a Converse request for
  ``modelInvocationType: Converse``). A record without ``recordId`` gets one.
- output, under ``<output s3Uri>/<job id>/``: ``<input file name>.out`` per input file,
  one line per processed record, ``{"recordId", "modelInput", "modelOutput"}`` or, for a
  record that failed, ``{"recordId", "modelInput", "error": {"errorCode",
  "errorMessage"}}``, in no guaranteed order; and ``manifest.json.out`` with the counts.

Answers come from the same responder as Converse and InvokeModel (script rules,
replayed recordings, defaults). S3 is whatever S3 API ``s3_endpoint_url`` points at
(the tests and the demo start moto's server); the emulator never stores files itself.
"""

from __future__ import annotations

import json
import random
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.text_lines import utf8_lines
from ._answer import Responder
from ._conversation import parse_converse_request
from ._converse_shapes import converse_body
from ._faults import FaultBook
from ._invoke_families import family_for
from ._jobs import InvocationJob, JobResult
from ._routing import base_model_id, body_model_id, route
from ._script import EmulatorScript
from ._wire_errors import WireError

__all__ = ["JobProcessor"]

_ALNUM = string.ascii_uppercase + string.digits


@dataclass
class _InputFile:
    key: str
    lines: list[dict[str, Any]] = field(default_factory=list)


def _split_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


class JobProcessor:
    """Validates and runs jobs against an S3 endpoint, with the emulator's responder."""

    def __init__(self, script: EmulatorScript, responder: Responder, faults: FaultBook, *,
                 s3_endpoint_url: str | None, region: str = "us-east-1", min_records: int = 100,
                 max_records: int = 50_000, s3_client: Callable[[], Any] | None = None):
        self.script = script
        self.responder = responder
        self.faults = faults
        self.s3_endpoint_url = s3_endpoint_url
        self.region = region
        self.min_records = min_records
        self.max_records = max_records
        self._make_client = s3_client
        self._client: Any = None
        self._inputs: dict[str, list[_InputFile]] = {}
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        if self._client is None:
            if self._make_client is not None:
                self._client = self._make_client()
            else:
                import boto3
                from botocore.config import Config

                self._client = boto3.client(
                    "s3", endpoint_url=self.s3_endpoint_url, region_name=self.region,
                    aws_access_key_id="test", aws_secret_access_key="test",
                    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))
        return self._client

    # validation: the Validating step --------------------------------------------------
    def validate(self, job: InvocationJob) -> str | None:
        if self.s3_endpoint_url is None and self._make_client is None:
            return ("The emulator has no S3 endpoint: start it with s3_endpoint_url (for example a moto "
                    "server) to run batch inference jobs.")
        try:
            files = self._read_inputs(job.input_uri)
        except LookupError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - any S3 failure is the job's failure, as on Bedrock
            return f"Unable to access the Amazon S3 input location {job.input_uri}: {type(exc).__name__}: {exc}"
        total = sum(len(f.lines) for f in files)
        if total < self.min_records:
            return (f"The number of records in the input ({total}) is less than the minimum number of records "
                    f"per batch inference job ({self.min_records}).")
        if total > self.max_records:
            return (f"The number of records in the input ({total}) exceeds the maximum number of records "
                    f"per batch inference job ({self.max_records}).")
        with self._lock:
            self._inputs[job.job_id] = files
        return None

    def _read_inputs(self, uri: str) -> list[_InputFile]:
        bucket, key = _split_uri(uri)
        s3 = self._s3()
        if key.endswith(".jsonl"):
            keys = [key]
        else:
            prefix = key.rstrip("/") + "/" if key else ""
            keys = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
        if not keys:
            raise LookupError(f"No .jsonl input files were found at {uri}.")
        files = []
        for k in sorted(keys):
            files.append(_InputFile(k, self._parse_lines(k, s3.get_object(Bucket=bucket, Key=k)["Body"].read())))
        return files

    @staticmethod
    def _parse_lines(key: str, data: bytes) -> list[dict[str, Any]]:
        lines = []
        for number, line in enumerate(utf8_lines(data), start=1):  # "\n" only, as JSONL readers do
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("modelInput"), dict):
                raise LookupError(f"Line {number} of {key} is not a JSON object with a modelInput object.")
            if not record.get("recordId"):
                record["recordId"] = "".join(secrets.choice(_ALNUM) for _ in range(11))
            lines.append(record)
        return lines

    # running: the InProgress step ---------------------------------------------------
    def run(self, job: InvocationJob) -> JobResult:
        with self._lock:
            files = self._inputs.pop(job.job_id, None)
        try:
            if files is None:
                files = self._read_inputs(job.input_uri)
        except Exception as exc:  # noqa: BLE001
            return JobResult("Failed", f"Unable to read the input: {type(exc).__name__}: {exc}")
        fault = self.faults.take(False, job.model_id, base_model_id(job.model_id), job=True)
        total = sum(len(f.lines) for f in files)
        if fault is not None and fault.kind == "job_failed":
            return JobResult("Failed", fault.params.get("message") or "Internal error while processing the job.",
                             total=total)
        result = JobResult("Completed", total=total)
        bucket, out_key = _split_uri(job.output_uri)
        folder = (out_key.rstrip("/") + "/" if out_key else "") + job.job_id + "/"
        rng = random.Random(job.job_id)  # output order is not the input order, as on Bedrock
        index = 0
        for f in files:
            out_lines = []
            for record in f.lines:
                index += 1
                if fault is not None and fault.kind == "job_partial" and index % fault.params["unprocessed_every"] == 0:
                    result.status = "PartiallyCompleted"
                    continue
                line = self._answer(job, record, fault, index, result)
                result.processed += 1
                out_lines.append(json.dumps(line, ensure_ascii=False))
            rng.shuffle(out_lines)
            name = f.key.rsplit("/", 1)[-1]
            body = ("\n".join(out_lines) + "\n") if out_lines else ""
            self._s3().put_object(Bucket=bucket, Key=f"{folder}{name}.out", Body=body.encode("utf-8"))
        if result.status == "PartiallyCompleted":
            result.message = "Not all of the records could be processed before the job ended."
        manifest = {"totalRecordCount": result.total, "processedRecordCount": result.processed,
                    "successRecordCount": result.success, "errorRecordCount": result.errors,
                    "inputTokenCount": result.input_tokens, "outputTokenCount": result.output_tokens}
        self._s3().put_object(Bucket=bucket, Key=f"{folder}manifest.json.out",
                              Body=json.dumps(manifest).encode("utf-8"))
        return result

    def _answer(self, job: InvocationJob, record: dict[str, Any], fault: Any, index: int,
                result: JobResult) -> dict[str, Any]:
        out: dict[str, Any] = {"recordId": record["recordId"], "modelInput": record["modelInput"]}
        if fault is not None and fault.kind == "record_error" and index % fault.params["every"] == 0:
            code = int(fault.params["code"])
            out["error"] = {"errorCode": code,
                            "errorMessage": fault.params.get("message") or "An internal error occurred."}
            result.errors += 1
            return out
        converse = job.invocation_type == "Converse"
        try:
            family = None if converse else family_for(body_model_id(self.script, job.model_id))
            body = record["modelInput"]
            conv = parse_converse_request(body) if family is None else family.parse(body)
            answer = self.responder.answer(conv, route(self.script, job.model_id, conv.last_user_text))
        except WireError as exc:
            out["error"] = {"errorCode": exc.status, "errorMessage": exc.message}
            result.errors += 1
            return out
        latency_ms = 1
        out["modelOutput"] = (converse_body(answer, latency_ms) if family is None
                              else family.render(answer, latency_ms))
        result.success += 1
        result.input_tokens += answer.usage.input_tokens
        result.output_tokens += answer.usage.output_tokens
        return out
