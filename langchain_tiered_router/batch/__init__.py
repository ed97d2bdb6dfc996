"""Bedrock batch inference, routed: the cascade where latency is free.

Each record starts where the router's policy says (a classifier, or the cheapest
tier); records go to Bedrock as model invocation jobs, one wave per tier; every
output is judged by the router's own gates, and records that fail go up to the next
tier's wave, until each is served, flagged or failed. Prices are batch prices;
every record is one telemetry record (``integration: batch``)::

    from langchain_tiered_router.batch import run_batch

    summary = run_batch("router.yaml", "records.jsonl", "results.jsonl",
                        bucket="s3://my-bucket/batch", role_arn="arn:aws:iam::123456789012:role/bedrock-batch")

The CLI is ``tiered-router batch run | resume | status | stop``. This package imports boto3
only when a run starts; the core never imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.config import RouterConfig
from ..core.tiers import Ladder
from .errors import (BatchError, BatchExhaustedError, BatchInputError, BatchJobError, BatchSettingsError,
                     BatchStateError)
from .jobs import JobControl
from .pricing import BatchPricing
from .runner import BatchRunner
from .settings import BatchClients, resolve_settings
from .state import RunState
from .summary import BatchSummary, summarize_run
from .telemetry import baseline_costs

__all__ = [
    "run_batch", "resume_batch", "batch_status", "stop_batch", "BatchRunner", "BatchClients", "BatchSummary",
    "BatchError", "BatchExhaustedError", "BatchInputError", "BatchJobError", "BatchSettingsError",
    "BatchStateError",
]


def run_batch(config: Any, input_path: str | Path, out_path: str | Path, *, bucket: str | None = None,
              role_arn: str | None = None, state_path: str | Path | None = None,
              clients: BatchClients | None = None, **overrides: Any) -> BatchSummary:
    """Route every record of ``input_path`` through Bedrock batch jobs; results go to ``out_path``.

    ``config`` is a ``RouterConfig``, a dict or a YAML path; ``bucket``, ``role_arn`` and
    any ``batch:`` setting given here override the config's. The state file
    (default ``<out_path>.state.json``) makes the run resumable: calling this again with
    the same input and config picks the run up where it stopped.
    """
    return BatchRunner.start(config, input_path, out_path, state_path=state_path, bucket=bucket,
                             role_arn=role_arn, clients=clients, **overrides).run()


def resume_batch(state_path: str | Path, *, config: Any = None, clients: BatchClients | None = None,
                 **overrides: Any) -> BatchSummary:
    """Finish the run saved in ``state_path`` (its jobs are polled, never created twice)."""
    return BatchRunner.resume(state_path, config=config, clients=clients, **overrides).run()


def batch_status(state_path: str | Path) -> BatchSummary:
    """Where a run stands, read from its state file alone (no AWS call)."""
    state = RunState.load(state_path)
    config = RouterConfig.from_dict(state.config, source=str(state_path))
    ladder = Ladder.from_config(config)
    pricing = BatchPricing(config, ladder, resolve_settings(config).discount)
    return summarize_run(state, state_path=state_path, ladder_order=ladder.names,
                         baseline=lambda r: baseline_costs(pricing, r))


def stop_batch(state_path: str | Path, *, clients: BatchClients | None = None) -> list[str]:
    """Stop the run's jobs still running (``StopModelInvocationJob``); returns their names.

    The runner (or ``resume_batch``) then ends the records those jobs did not process.
    """
    state = RunState.load(state_path)
    config = RouterConfig.from_dict(state.config, source=str(state_path))
    clients = clients or BatchClients.from_config(config, resolve_settings(config))
    control = JobControl(clients.bedrock)
    stopped = []
    for job in state.jobs:
        if job.status == "submitted" and job.arn and not control.describe(job.arn).terminal:
            control.stop(job.arn)
            stopped.append(job.name)
    return stopped
