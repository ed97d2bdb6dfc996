"""The run's state file: every record and every job, saved atomically after each step.

A runner that dies (killed, a crashed machine) is resumed from this file: jobs
already created are polled, not created again; records already answered keep their
answers; records already finished are not counted again. The file is replaced in one
``os.replace`` of a fully written and fsynced temporary file, so a kill leaves either
the old state or the new one, never half of each.

Record status: ``waiting`` (for a job or an on-demand call at ``tier``), ``in_job``
(its job ``job`` is planned or running), ``done``. Job status: ``planned`` (records
assigned, not created yet), ``submitted`` (created; ``arn`` known), ``ingested``
(its output read and judged).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..core.text_lines import json_text
from .errors import BatchStateError

__all__ = ["AttemptState", "AuxState", "RecordState", "JobState", "RunState", "STATE_VERSION"]

STATE_VERSION = 1


def _from(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class AttemptState:
    """One answer (or failure) of one tier for one record."""

    tier: str
    model_id: str
    outcome: str  # served | gate_failed | transport_error | malformed | error
    mode: str  # batch | on_demand | none (refused before any call)
    job: str | None = None
    text: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of the writes, those to an hour-long cache (their own rate)
    cost_usd: str | None = "0"
    gate_passed: bool | None = None
    gate_reason: str | None = None
    gate: str | None = None
    gate_score: float | None = None
    error: str | None = None
    error_kind: str | None = None
    retries: int = 0
    retried_on: list[str] = field(default_factory=list)
    latency_ms: float = 0.0

    @property
    def answered(self) -> bool:
        return self.text is not None


@dataclass
class AuxState:
    """A routing call made on-demand for this record (self-grade, LLM classifier)."""

    purpose: str
    tier: str
    model_id: str
    input_tokens: int
    output_tokens: int
    cost_usd: str | None
    latency_ms: float


@dataclass
class RecordState:
    record_id: str  # the Bedrock recordId, R + 10 digits
    id: str  # the caller's id
    index: int
    messages: list[list[str]]  # [role, text] pairs
    system: str | None
    start_tier: str = ""
    start_reason: str = ""
    tier: str | None = None
    status: str = "waiting"
    job: str | None = None
    since: float = 0.0
    quality_steps: int = 0
    retries: int = 0
    resubmits: int = 0
    retried_on: list[str] = field(default_factory=list)
    attempts: list[AttemptState] = field(default_factory=list)
    aux: list[AuxState] = field(default_factory=list)
    served: int | None = None
    flagged: bool = False
    flag_reason: str | None = None
    error: str | None = None
    finished_at: float | None = None
    recorded: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RecordState":
        record = _from(cls, data)
        record.attempts = [_from(AttemptState, a) for a in data.get("attempts", [])]
        record.aux = [_from(AuxState, a) for a in data.get("aux", [])]
        return record


@dataclass
class JobState:
    name: str
    tier: str
    model_id: str
    wave: int
    records: list[str]  # recordIds, in input order
    input_uri: str
    output_uri: str
    status: str = "planned"
    arn: str | None = None
    bedrock_status: str | None = None
    message: str | None = None
    submitted_at: float | None = None
    ended_at: float | None = None


@dataclass
class RunState:
    run_id: str
    created_at: float
    config_digest: str
    config: dict[str, Any]  # the router config as loaded, so ``resume`` needs no --config
    input_path: str
    input_digest: str
    prefix: str  # s3://bucket/prefix/<run id>/
    out_path: str
    role_arn: str
    version: int = STATE_VERSION
    wave: int = 0
    finished: bool = False
    records: list[RecordState] = field(default_factory=list)
    jobs: list[JobState] = field(default_factory=list)
    on_demand: dict[str, int] = field(default_factory=dict)  # tier -> records served on-demand

    # -- lookups ----------------------------------------------------------------------
    def record(self, record_id: str) -> RecordState:
        try:
            return self._index[record_id]
        except (AttributeError, KeyError):
            self._index = {r.record_id: r for r in self.records}
            return self._index[record_id]

    def job(self, name: str) -> JobState:
        return next(j for j in self.jobs if j.name == name)

    # -- the file ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_index", None)
        return out

    def save(self, path: str | Path) -> None:
        """Write atomically: a temporary file in the same folder, fsynced, then renamed over."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json_text(self.to_dict(), separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        try:
            dir_fd = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: str | Path) -> "RunState":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise BatchStateError(f"cannot read the state file {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise BatchStateError(f"the state file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise BatchStateError(f"{path} is not a batch state file of version {STATE_VERSION}")
        try:
            state = _from(cls, data)
            state.records = [RecordState.from_dict(r) for r in data.get("records", [])]
            state.jobs = [_from(JobState, j) for j in data.get("jobs", [])]
        except (TypeError, KeyError, AttributeError) as exc:
            raise BatchStateError(f"the state file {path} is damaged: {exc!r}") from None
        return state
