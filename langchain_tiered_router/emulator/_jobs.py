"""Batch inference jobs (model invocation jobs): the store, and the clock that moves them.

A job goes Submitted -> Validating -> Scheduled -> InProgress -> Completed (or
PartiallyCompleted, or Failed), one step per tick of a worker thread (``step_s``), as
``GetModelInvocationJob`` shows it on Bedrock. A stop request moves a running job to
Stopping, and at the next tick to Stopped. ``hold()`` keeps jobs InProgress until
``release()`` (per model, or all), so a test can kill a client while its jobs run and
resume it later.

What a job does with its records (read S3, answer, write S3) is the processor's job
(``_job_records.JobProcessor``); this module only keeps time and state.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

from ._wire_errors import WireError

__all__ = ["InvocationJob", "JobResult", "JobBook", "JobProcessorLike", "TERMINAL_STATES"]

TERMINAL_STATES = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
_NEXT = {"Submitted": "Validating", "Validating": "Scheduled", "Scheduled": "InProgress"}

# Patterns from botocore/data/bedrock/2023-04-20/service-2.json.
_NAME = re.compile(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}")
_ROLE = re.compile(r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+")
_S3_URI = re.compile(r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?")
_TOKEN = re.compile(r"[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}")
_ACCOUNT = "123456789012"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class JobResult:
    """How a job ended and what its manifest counts."""

    status: str
    message: str | None = None
    total: int = 0
    processed: int = 0
    success: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class InvocationJob:
    """One model invocation job, as Bedrock describes it."""

    job_id: str
    arn: str
    name: str
    model_id: str
    role_arn: str
    input_uri: str
    output_uri: str
    submit_time: dt.datetime
    token: str | None = None
    input_format: str | None = None
    invocation_type: str | None = None
    timeout_hours: int | None = None
    vpc: dict[str, Any] | None = None
    status: str = "Submitted"
    message: str | None = None
    last_modified: dt.datetime | None = None
    end_time: dt.datetime | None = None
    result: JobResult | None = None
    stop_requested: bool = False
    history: list[str] = field(default_factory=lambda: ["Submitted"])

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    def to_wire(self) -> dict[str, Any]:
        """The ``GetModelInvocationJob`` response (also one ``ListModelInvocationJobs`` summary)."""
        s3_in: dict[str, Any] = {"s3Uri": self.input_uri}
        if self.input_format:
            s3_in["s3InputFormat"] = self.input_format
        out: dict[str, Any] = {
            "jobArn": self.arn, "jobName": self.name, "modelId": self.model_id, "roleArn": self.role_arn,
            "status": self.status, "submitTime": self.submit_time.isoformat(),
            "lastModifiedTime": (self.last_modified or self.submit_time).isoformat(),
            "inputDataConfig": {"s3InputDataConfig": s3_in},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": self.output_uri}},
        }
        if self.token:
            out["clientRequestToken"] = self.token
        if self.message:
            out["message"] = self.message
        if self.end_time is not None:
            out["endTime"] = self.end_time.isoformat()
        if self.invocation_type:
            out["modelInvocationType"] = self.invocation_type
        if self.vpc:
            out["vpcConfig"] = self.vpc
        if self.timeout_hours is not None:
            out["timeoutDurationInHours"] = self.timeout_hours
            out["jobExpirationTime"] = (self.submit_time + dt.timedelta(hours=self.timeout_hours)).isoformat()
        if self.result is not None:
            r = self.result
            out.update({"totalRecordCount": r.total, "processedRecordCount": r.processed,
                        "successRecordCount": r.success, "errorRecordCount": r.errors})
        return out


class JobProcessorLike(Protocol):
    def validate(self, job: InvocationJob) -> str | None:
        """A failure message when the job's input cannot be used, else None."""

    def run(self, job: InvocationJob) -> JobResult:
        """Answer the job's records and write its output."""


def _require(body: dict[str, Any], *path: str) -> Any:
    value: Any = body
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            raise WireError.validation(f"{'.'.join(path)} is required.")
    return value


def _matches(pattern: re.Pattern[str], value: Any, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise WireError.validation(f"1 validation error detected: Value '{value}' at '{what}' failed to satisfy "
                                   f"constraint: Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


class JobBook:
    """Every job of one emulator; thread-safe. ``start`` runs the clock, ``close`` stops it."""

    def __init__(self, processor: JobProcessorLike, *, region: str = "us-east-1", step_s: float = 0.05,
                 check_model: Callable[[str], None] | None = None):
        self.processor = processor
        self.region = region
        self.step_s = step_s
        self._check_model = check_model
        self._jobs: dict[str, InvocationJob] = {}
        self._lock = threading.Lock()
        self._held: set[str | None] = set()  # model ids held; None holds every model
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # the control-plane operations ----------------------------------------------------
    def create(self, body: dict[str, Any]) -> InvocationJob:
        """``CreateModelInvocationJob``; a repeated ``clientRequestToken`` returns the first job."""
        name = _matches(_NAME, _require(body, "jobName"), "jobName")
        role = _matches(_ROLE, _require(body, "roleArn"), "roleArn")
        model_id = str(_require(body, "modelId"))
        s3_in = _require(body, "inputDataConfig", "s3InputDataConfig")
        input_uri = _matches(_S3_URI, _require(s3_in, "s3Uri"), "inputDataConfig.s3InputDataConfig.s3Uri")
        output_uri = _matches(_S3_URI, _require(body, "outputDataConfig", "s3OutputDataConfig", "s3Uri"),
                              "outputDataConfig.s3OutputDataConfig.s3Uri")
        token = body.get("clientRequestToken")
        if token is not None:
            _matches(_TOKEN, token, "clientRequestToken")
        kind = body.get("modelInvocationType")
        if kind is not None and kind not in ("InvokeModel", "Converse"):
            raise WireError.validation(f"modelInvocationType must be InvokeModel or Converse, not {kind!r}.")
        hours = body.get("timeoutDurationInHours")
        if hours is not None and not (isinstance(hours, int) and 24 <= hours <= 168):
            raise WireError.validation("timeoutDurationInHours must be between 24 and 168.")
        if ":prompt-router/" in model_id or ":default-prompt-router/" in model_id:
            raise WireError.validation("Batch inference does not support prompt routers.")
        if self._check_model is not None:
            self._check_model(model_id)
        with self._lock:
            if token is not None:
                for job in self._jobs.values():
                    if job.token == token:
                        return replace(job)
            job_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
            now = _now()
            job = InvocationJob(
                job_id=job_id, arn=f"arn:aws:bedrock:{self.region}:{_ACCOUNT}:model-invocation-job/{job_id}",
                name=name, model_id=model_id, role_arn=role, input_uri=input_uri, output_uri=output_uri,
                submit_time=now, last_modified=now, token=token, input_format=s3_in.get("s3InputFormat"),
                invocation_type=kind, timeout_hours=hours, vpc=body.get("vpcConfig"))
            self._jobs[job_id] = job
            return replace(job)

    def get(self, identifier: str) -> InvocationJob:
        with self._lock:
            return replace(self._find(identifier))

    def list(self, *, status: str | None = None, name_contains: str | None = None,
             after: dt.datetime | None = None, before: dt.datetime | None = None,
             ascending: bool = False) -> list[InvocationJob]:
        with self._lock:
            jobs = [replace(j) for j in self._jobs.values()]
        jobs = [j for j in jobs if (status is None or j.status == status)
                and (name_contains is None or name_contains in j.name)
                and (after is None or j.submit_time > after) and (before is None or j.submit_time < before)]
        return sorted(jobs, key=lambda j: j.submit_time, reverse=not ascending)

    def stop(self, identifier: str) -> None:
        with self._lock:
            job = self._find(identifier)
            if job.terminal:
                raise WireError("ConflictException", f"The job {job.arn} is {job.status} and cannot be stopped.")
            if job.status != "Stopping":
                self._move(job, "Stopping")
            job.stop_requested = True

    def _find(self, identifier: str) -> InvocationJob:
        job_id = identifier.rsplit("/", 1)[-1]
        job = self._jobs.get(job_id)
        if job is None or (identifier.startswith("arn:") and identifier != job.arn):
            raise WireError("ResourceNotFoundException", f"The model invocation job {identifier} was not found.",
                            status=404)
        return job

    # the clock ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="bedrock-emulator-jobs", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def hold(self, model_id: str | None = None) -> None:
        """Keep jobs (of ``model_id``, or every job) InProgress until ``release``; jobs not
        yet there still move up to it."""
        with self._lock:
            self._held.add(model_id)

    def release(self, model_id: str | None = None) -> None:
        """Let held jobs finish (``model_id=None`` releases every hold)."""
        with self._lock:
            if model_id is None:
                self._held.clear()
            else:
                self._held.discard(model_id)

    def _is_held(self, job: InvocationJob) -> bool:
        with self._lock:
            return None in self._held or job.model_id in self._held

    def _run(self) -> None:
        while not self._stopping.wait(self.step_s):
            self.tick()

    def tick(self) -> None:
        """Move every unfinished job one step (the worker calls this every ``step_s``)."""
        with self._lock:
            pending = [j for j in self._jobs.values() if not j.terminal]
        for job in pending:
            self._step(job)

    def _step(self, job: InvocationJob) -> None:
        with self._lock:
            if job.status == "Stopping":
                self._finish(job, JobResult("Stopped", "The job was stopped by a user."))
                return
            status = job.status
            if status in _NEXT and status != "Validating":
                self._move(job, _NEXT[status])
                return
        if status == "Validating":
            failure = self.processor.validate(job)
            with self._lock:
                if job.status == "Validating":
                    if failure:
                        self._finish(job, JobResult("Failed", failure))
                    else:
                        self._move(job, "Scheduled")
            return
        if status == "InProgress" and not self._is_held(job):
            result = self.processor.run(job)
            with self._lock:
                if job.status == "InProgress":
                    self._finish(job, result)

    def _move(self, job: InvocationJob, status: str) -> None:
        job.status = status
        job.last_modified = _now()
        job.history.append(status)

    def _finish(self, job: InvocationJob, result: JobResult) -> None:
        self._move(job, result.status)
        job.message = result.message
        job.end_time = job.last_modified
        job.result = result
