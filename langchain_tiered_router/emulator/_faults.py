"""Faults to inject into the next calls, and the book that hands them out.

=====================  ==================================================================
kind                   what the client sees
=====================  ==================================================================
throttle               HTTP 429 ``ThrottlingException``
server_error           HTTP 500 ``InternalServerException``
service_unavailable    HTTP 503 ``ServiceUnavailableException``
model_not_ready        HTTP 429 ``ModelNotReadyException``
model_timeout          HTTP 408 ``ModelTimeoutException``
model_error            HTTP 424 ``ModelErrorException`` (the model failed while processing)
context_window         HTTP 400 ``ValidationException`` "Input is too long for requested model."
access_denied          HTTP 403 ``AccessDeniedException`` (a model not enabled for the account)
guardrail              HTTP 200: a guardrail's answer in the model's place, as Bedrock
                       gives a request its guardrail blocks: the blocked ``message``
                       (default Bedrock's), ``stopReason: guardrail_intervened``, no output
                       tokens
slow                   the normal reply, after ``seconds`` (default 2.0): a read timeout
hold                   the normal reply, once ``calls`` (default 2) calls are held by this
                       fault, or after ``seconds`` (default 30): proves calls are in flight
                       together
malformed              HTTP 200 whose body is not valid JSON (``mode="invalid_json"``),
                       lacks the output (``mode="missing_output"``), holds bytes that
                       are not UTF-8 in its text (``mode="invalid_utf8"``) or gives each
                       tool call's input as a JSON string, not an object
                       (``mode="tool_input_string"``, Converse); on a stream, a
                       frame with a bad checksum (or, ``invalid_utf8``, a text delta that
                       is not UTF-8, checksums right)
stream_cut             streams only: the connection closes after ``after_events``
                       (default 2) events, before ``messageStop``
stream_error           streams only: an ``exception`` frame (``exception``, default
                       ``modelStreamErrorException``) after ``after_events`` (default 1);
                       ``exception`` must be a member of the stream's union (any other is
                       refused here); ``modelTimeoutException``, a member of
                       InvokeModelWithResponseStream's only, leaves ConverseStream calls alone
stream_stall           streams only: the stream pauses ``seconds`` (default 5.0) after
                       ``after_events`` (default 2) events, then goes on: a client can
                       leave, or time out, mid-stream
job_failed             batch jobs only: the job ends ``Failed`` with ``message``, no output
job_partial            batch jobs only: the job ends ``PartiallyCompleted``; every
                       ``unprocessed_every``-th record (default 4) is left out of the output
record_error           batch jobs only: the job completes, but every ``every``-th record
                       (default 5) carries an ``error`` object (``code``, default 500)
=====================  ==================================================================

Any fault may take ``probability`` (0 < p <= 1): each matching call takes it with that
chance, drawn from a seeded generator (``times=None, probability=0.01``: one call in a
hundred fails, at random). Error kinds take an optional ``message``; ``throttle`` also ``retry_after`` (seconds, sent
as a ``Retry-After`` header). A fault with ``model_id=None`` hits any model;
``times=None`` keeps it until ``clear``. A batch-job fault is taken once per job (not per
record) and never by a runtime call; runtime faults never touch batch jobs.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, get_args

from ._errors import FaultSpecError
from ._wire_errors import STREAM_EXCEPTIONS, stream_member_name

__all__ = ["Fault", "FaultBook", "FaultKind", "ERROR_CODES", "JOB_ONLY"]

FaultKind = Literal["throttle", "server_error", "service_unavailable", "model_not_ready", "model_timeout",
                    "model_error", "context_window", "access_denied", "guardrail",
                    "slow", "hold", "malformed", "stream_cut", "stream_error", "stream_stall",
                    "job_failed", "job_partial", "record_error"]

ERROR_CODES: dict[str, str] = {
    "throttle": "ThrottlingException",
    "server_error": "InternalServerException",
    "service_unavailable": "ServiceUnavailableException",
    "model_not_ready": "ModelNotReadyException",
    "model_timeout": "ModelTimeoutException",
    "model_error": "ModelErrorException",
    "context_window": "ValidationException",
    "access_denied": "AccessDeniedException",
}

_PARAMS: dict[str, dict[str, Any]] = {
    **{kind: {"message": None} for kind in ERROR_CODES},
    "throttle": {"message": None, "retry_after": None},
    "guardrail": {"message": "Sorry, the model cannot answer this question."},
    "slow": {"seconds": 2.0},
    "hold": {"calls": 2, "seconds": 30.0},
    "malformed": {"mode": "invalid_json"},
    "stream_cut": {"after_events": 2},
    "stream_error": {"after_events": 1, "exception": "modelStreamErrorException", "message": None},
    "stream_stall": {"after_events": 2, "seconds": 5.0},
    "job_failed": {"message": None},
    "job_partial": {"unprocessed_every": 4},
    "record_error": {"every": 5, "code": 500, "message": None},
}
_STREAM_ONLY = {"stream_cut", "stream_error", "stream_stall"}
JOB_ONLY = frozenset({"job_failed", "job_partial", "record_error"})


@dataclass(frozen=True)
class Fault:
    """One injected fault; ``params`` holds its settings with defaults filled in."""

    kind: FaultKind
    model_id: str | None = None
    times: int | None = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    probability: float = 1.0

    @classmethod
    def make(cls, kind: str, model_id: str | None = None, times: int | None = 1, *, probability: float = 1.0,
             **params: Any) -> "Fault":
        """A checked fault: unknown kinds or parameters raise ``FaultSpecError``."""
        if not 0 < probability <= 1:
            raise FaultSpecError("probability must be in (0, 1]")
        if kind not in get_args(FaultKind):
            raise FaultSpecError(f"unknown fault {kind!r}; known: {', '.join(get_args(FaultKind))}")
        unknown = set(params) - set(_PARAMS[kind])
        if unknown:
            raise FaultSpecError(f"fault {kind!r} takes no parameter {sorted(unknown)}; "
                                 f"it takes {sorted(_PARAMS[kind])}")
        if times is not None and times < 1:
            raise FaultSpecError("times must be at least 1 (or None for every call)")
        if kind == "malformed" and params.get("mode", "invalid_json") not in ("invalid_json", "missing_output",
                                                                              "invalid_utf8", "tool_input_string"):
            raise FaultSpecError("malformed mode is 'invalid_json', 'missing_output', 'invalid_utf8' or "
                                 "'tool_input_string'")
        if kind == "stream_error":
            params = {**params, "exception": _stream_member(str(params.get("exception", "modelStreamErrorException")))}
        for key in ("unprocessed_every", "every"):
            if key in params and (not isinstance(params[key], int) or params[key] < 1):
                raise FaultSpecError(f"{key} must be a whole number of at least 1")
        return cls(kind, model_id, times, {**_PARAMS[kind], **params}, probability)  # type: ignore[arg-type]

    def applies_to(self, streaming: bool, model_ids: tuple[str, ...], job: bool = False,
                   operation: str | None = None) -> bool:
        if (self.kind in JOB_ONLY) != job:
            return False
        if self.kind in _STREAM_ONLY and not streaming:
            return False
        if (self.kind == "stream_error" and operation in STREAM_EXCEPTIONS
                and self.params["exception"] not in STREAM_EXCEPTIONS[operation]):
            return False  # an exception this operation's stream cannot carry
        return self.model_id is None or self.model_id in model_ids


def _stream_member(name: str) -> str:
    """``name`` as a stream union member (``ThrottlingException`` -> ``throttlingException``),
    refused unless some stream can carry it: botocore reads any other with an empty error code."""
    member = stream_member_name(name)
    if not any(member in members for members in STREAM_EXCEPTIONS.values()):
        allowed = "; ".join(f"{operation}: {', '.join(members)}" for operation, members in STREAM_EXCEPTIONS.items())
        raise FaultSpecError(f"stream_error exception {name!r} is not an exception member of any stream; "
                             f"allowed ({allowed})")
    return member


class FaultBook:
    """Pending faults, consumed in the order they were injected; thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._pending: list[list[Any]] = []  # [fault, remaining or None]
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.taken: dict[str, int] = {}  # faults handed out, by kind

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append([fault, fault.times])

    def take(self, streaming: bool, *model_ids: str, job: bool = False, operation: str | None = None) -> Fault | None:
        """The first pending fault for this call (or, with ``job``, this batch job), counting one use."""
        with self._lock:
            for entry in self._pending:
                fault, remaining = entry
                if fault.applies_to(streaming, model_ids, job, operation):
                    if fault.probability < 1 and self._rng.random() >= fault.probability:
                        continue
                    self.taken[fault.kind] = self.taken.get(fault.kind, 0) + 1
                    if remaining is not None:
                        entry[1] = remaining - 1
                        if entry[1] <= 0:
                            self._pending.remove(entry)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [entry[0] for entry in self._pending]
