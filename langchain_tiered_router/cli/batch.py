"""``tiered-router batch run | resume | status | stop``: route a records file through Bedrock batch jobs.

Exit codes: 0 done, 2 bad input or settings (one line on stderr), 4 some records found
no acceptable answer under ``on_exhausted: raise`` (their results and telemetry are
written).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

from .errors import fail, one_line_errors

__all__ = ["register", "EXHAUSTED_EXIT_CODE"]

EXHAUSTED_EXIT_CODE = 4

batch_app = typer.Typer(help="Bedrock batch inference, routed: one job per tier, gates on every output.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _print(summary: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        for line in summary.lines():
            typer.echo(line)


@contextlib.contextmanager
def _progress(verbose: bool) -> Iterator[None]:
    """With --verbose, the runner's progress (waves, jobs) as log lines on stderr."""
    if not verbose:
        yield
        return
    logger = logging.getLogger("langchain_tiered_router.batch")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _finish(call: Any, as_json: bool, verbose: bool = False) -> None:
    from ..batch import BatchExhaustedError

    with one_line_errors(), _progress(verbose):
        try:
            summary = call()
        except BatchExhaustedError as exc:
            _print(exc.run, as_json)
            raise fail(str(exc.message), code=EXHAUSTED_EXIT_CODE) from None
    _print(summary, as_json)


@batch_app.command("run")
def run(
    config: Path = typer.Option(..., "--config", help="Router YAML: tiers, policy, gates, batch settings."),
    input_path: Path = typer.Option(..., "--input", help="Records, one JSON object a line: prompt or messages."),
    bucket: Optional[str] = typer.Option(None, "--bucket", help="s3://bucket/prefix for job input and output."),
    out: Path = typer.Option(..., "--out", help="Results JSONL, one line per record, in input order."),
    role_arn: Optional[str] = typer.Option(None, "--role-arn", help="IAM role Bedrock assumes to read/write S3."),
    state: Optional[Path] = typer.Option(None, "--state", help="Run state file (default: <out>.state.json)."),
    poll_interval: Optional[float] = typer.Option(None, "--poll-interval", help="Seconds between job polls."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log waves and jobs on stderr as they go."),
) -> None:
    """Route every record through batch jobs (resumes the run if its state file exists)."""
    from ..batch import run_batch

    _finish(lambda: run_batch(config, input_path, out, bucket=bucket, role_arn=role_arn, state_path=state,
                              poll_interval_s=poll_interval), as_json, verbose)


@batch_app.command("resume")
def resume(
    state: Path = typer.Option(..., "--state", help="The state file of the run to finish."),
    config: Optional[Path] = typer.Option(None, "--config", help="Router YAML (default: the one saved in the state)."),
    poll_interval: Optional[float] = typer.Option(None, "--poll-interval", help="Seconds between job polls."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log waves and jobs on stderr as they go."),
) -> None:
    """Finish a run whose runner stopped: its jobs are polled, never created twice."""
    from ..batch import resume_batch

    if not state.exists():
        raise fail(f"no state file at {state}")
    _finish(lambda: resume_batch(state, config=config, poll_interval_s=poll_interval), as_json, verbose)


@batch_app.command("status")
def status(
    state: Path = typer.Option(..., "--state", help="The state file of a run."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Where a run stands, from its state file (no AWS call)."""
    from ..batch import batch_status

    if not state.exists():
        raise fail(f"no state file at {state}")
    with one_line_errors():
        summary = batch_status(state)
    _print(summary, as_json)


@batch_app.command("stop")
def stop(state: Path = typer.Option(..., "--state", help="The state file of a run.")) -> None:
    """Stop a run's running jobs (StopModelInvocationJob); resume then ends their unprocessed records."""
    from ..batch import stop_batch

    if not state.exists():
        raise fail(f"no state file at {state}")
    with one_line_errors():
        names = stop_batch(state)
    typer.echo(f"stopped {len(names)} job(s)" + (f": {', '.join(names)}" if names else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")
