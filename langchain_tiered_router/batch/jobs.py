"""Bedrock model invocation jobs through the real boto3 ``bedrock`` (control plane) client.

``CreateModelInvocationJob`` carries a ``clientRequestToken`` derived from the job's
name, and a runner that lost its state between creating a job and saving its ARN
finds it again by name (``ListModelInvocationJobs``), so a job is never submitted
twice. Job states are Bedrock's: Submitted, Validating, Scheduled, InProgress,
Completed, PartiallyCompleted, Failed, Stopping, Stopped, Expired.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["JobControl", "JobInfo", "TERMINAL", "RETRYABLE_CREATE_ERRORS", "token_for"]

TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
RETRYABLE_CREATE_ERRORS = frozenset({"ThrottlingException", "ServiceQuotaExceededException",
                                     "InternalServerException", "ServiceUnavailableException"})


def token_for(name: str) -> str:
    """A stable idempotency token for one job name (alphanumeric, as the API asks)."""
    return hashlib.sha256(name.encode()).hexdigest()[:64]


@dataclass(frozen=True)
class JobInfo:
    arn: str
    status: str
    message: str | None = None
    total: int | None = None
    errors: int | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class JobControl:
    """Create, find, describe and stop jobs."""

    def __init__(self, client: Any):
        self.client = client

    def create(self, *, name: str, model_id: str, role_arn: str, input_uri: str, output_uri: str,
               invocation_type: str = "InvokeModel", timeout_hours: int | None = None) -> str:
        request: dict[str, Any] = {
            "jobName": name, "roleArn": role_arn, "modelId": model_id, "clientRequestToken": token_for(name),
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output_uri}},
        }
        if invocation_type != "InvokeModel":
            request["modelInvocationType"] = invocation_type
        if timeout_hours is not None:
            request["timeoutDurationInHours"] = timeout_hours
        return str(self.client.create_model_invocation_job(**request)["jobArn"])

    def find(self, name: str) -> str | None:
        """The ARN of the job named exactly ``name``, if one was created."""
        for page in self.client.get_paginator("list_model_invocation_jobs").paginate(nameContains=name):
            for summary in page.get("invocationJobSummaries", []):
                if summary.get("jobName") == name:
                    return str(summary["jobArn"])
        return None

    def describe(self, arn: str) -> JobInfo:
        job = self.client.get_model_invocation_job(jobIdentifier=arn)
        return JobInfo(arn, str(job.get("status")), job.get("message"), job.get("totalRecordCount"),
                       job.get("errorRecordCount"))

    def stop(self, arn: str) -> None:
        self.client.stop_model_invocation_job(jobIdentifier=arn)
