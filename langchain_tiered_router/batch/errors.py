"""Errors of batch inference, under the router's one base.

    RouterError                      (langchain_tiered_router.core.errors)
    └── BatchError                   a batch run cannot go on
        ├── BatchInputError          a records file that cannot be read (carries path and line)
        ├── BatchSettingsError       a missing bucket or role, or a model without a batch format
        │                            (also a ConfigError: carries the key path)
        ├── BatchStateError          a state file that is corrupt or belongs to another run
        ├── BatchJobError            Bedrock refused a job (CreateModelInvocationJob failed)
        └── BatchExhaustedError      ``on_exhausted: raise`` and some records found no
                                     acceptable answer; an ExceptionGroup of their
                                     ``LadderExhaustedError``s, raised after every result
                                     and telemetry record is written
"""

from __future__ import annotations

from typing import Any, Sequence

from ..core.errors import ConfigError, LadderExhaustedError, RouterError

__all__ = ["BatchError", "BatchInputError", "BatchSettingsError", "BatchStateError", "BatchJobError",
           "BatchExhaustedError"]


class BatchError(RouterError):
    """Base of every batch-inference error."""


class BatchInputError(BatchError, ValueError):
    """A records file that cannot be read; ``path`` and ``line`` say where."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None):
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if line is not None else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class BatchSettingsError(ConfigError, BatchError):
    """Batch settings that cannot be used (no bucket, no role ARN, a model with no record format)."""


class BatchStateError(BatchError):
    """A run state file that is corrupt, or that belongs to another input or config."""


class BatchJobError(BatchError):
    """Bedrock refused to create a job; carries the job name and tier."""

    def __init__(self, message: str, *, job: str, tier: str):
        self.job = job
        self.tier = tier
        super().__init__(f"[{tier} / job {job}] {message}")


class BatchExhaustedError(BatchError, ExceptionGroup):
    """Records that ended unserved under ``on_exhausted: raise``; ``run`` is the finished run."""

    def __new__(cls, message: str, exceptions: Sequence[LadderExhaustedError], run: Any = None):
        self = super().__new__(cls, message, list(exceptions))
        self.run = run
        return self

    def __init__(self, message: str, exceptions: Sequence[LadderExhaustedError], run: Any = None):
        super().__init__(message, list(exceptions))
        self.run = run

    def derive(self, excs: Sequence[Exception]) -> "BatchExhaustedError":
        return BatchExhaustedError(self.message, excs, self.run)  # type: ignore[arg-type]
