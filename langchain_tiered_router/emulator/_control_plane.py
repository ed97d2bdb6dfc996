"""The Bedrock control plane for batch inference, on the wire boto3's ``bedrock`` client speaks.

Four rest-json operations of botocore's ``bedrock`` service model (2023-04-20):

=================================  ======  =======================================
operation                          method  path
=================================  ======  =======================================
CreateModelInvocationJob           POST    /model-invocation-job
GetModelInvocationJob              GET     /model-invocation-job/{jobIdentifier}
ListModelInvocationJobs            GET     /model-invocation-jobs
StopModelInvocationJob             POST    /model-invocation-job/{jobIdentifier}/stop
=================================  ======  =======================================

``jobIdentifier`` is the job id or its ARN (URL-encoded by botocore). Errors are the
service model's: ValidationException (400), ResourceNotFoundException (404),
ConflictException (400).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any
from urllib.parse import parse_qs, unquote

from ._jobs import JobBook
from ._wire_errors import WireError

__all__ = ["ControlPlane", "CONTROL_PLANE_PREFIX", "operation_of"]

CONTROL_PLANE_PREFIX = "/model-invocation-job"


def operation_of(method: str, path: str) -> tuple[str, str | None]:
    """(operation name, job identifier) for a control-plane request path."""
    parts = [unquote(p) for p in path.split("/") if p]
    if method == "POST" and parts == ["model-invocation-job"]:
        return "CreateModelInvocationJob", None
    if method == "GET" and parts == ["model-invocation-jobs"]:
        return "ListModelInvocationJobs", None
    if method == "GET" and len(parts) == 2 and parts[0] == "model-invocation-job":
        return "GetModelInvocationJob", parts[1]
    if method == "POST" and len(parts) == 3 and parts[0] == "model-invocation-job" and parts[2] == "stop":
        return "StopModelInvocationJob", parts[1]
    raise WireError("UnknownOperationException", f"Unknown operation {method} {path}")


def _timestamp(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WireError.validation(f"{name} is not an ISO 8601 timestamp: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


class ControlPlane:
    """Turns control-plane requests into ``JobBook`` calls and JSON replies."""

    def __init__(self, jobs: JobBook):
        self.jobs = jobs

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[str, dict[str, Any]]:
        """(operation name, response body); raises ``WireError`` for an error reply."""
        path, _, query = raw_path.partition("?")
        operation, identifier = operation_of(method, path)
        if operation == "CreateModelInvocationJob":
            if not isinstance(body, dict):
                raise WireError.validation("The request body must be a JSON object.")
            return operation, {"jobArn": self.jobs.create(body).arn}
        if operation == "GetModelInvocationJob":
            return operation, self.jobs.get(identifier or "").to_wire()
        if operation == "StopModelInvocationJob":
            self.jobs.stop(identifier or "")
            return operation, {}
        return operation, self._list(parse_qs(query))

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str) -> str | None:
            return query.get(name, [None])[0]

        order = one("sortOrder") or "Descending"
        if order not in ("Ascending", "Descending"):
            raise WireError.validation("sortOrder must be Ascending or Descending.")
        jobs = self.jobs.list(status=one("statusEquals"), name_contains=one("nameContains"),
                              after=_timestamp(one("submitTimeAfter"), "submitTimeAfter"),
                              before=_timestamp(one("submitTimeBefore"), "submitTimeBefore"),
                              ascending=order == "Ascending")
        try:
            size = int(one("maxResults") or 1000)
            start = int(base64.urlsafe_b64decode(one("nextToken") or "MA==").decode()) if one("nextToken") else 0
        except ValueError:
            raise WireError.validation("maxResults or nextToken is not valid.") from None
        page = jobs[start:start + size]
        out: dict[str, Any] = {"invocationJobSummaries": [j.to_wire() for j in page]}
        if start + size < len(jobs):
            out["nextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return out
