"""``tiered-router batch run | resume | status | stop``: route a records file through Bedrock batch jobs.

Exit codes of ``run`` and ``resume``: 0 every record served (flagged answers count as
served), 2 bad input or settings, or an output path that cannot be written (one line on
stderr; paths are checked before any job is created), 4 the run finished but some records
have no answer: their calls or jobs failed, or none passed the gates under
``on_exhausted: raise`` (every result and telemetry record is written; the summary and
the line on stderr name the first failure's reason and how many records share it), as
``collect`` exits 4 when answers failed. ``status`` and ``stop`` exit 0, or 2 on bad input.
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
from .outputs import check_distinct, check_writable

__all__ = ["register", "FAILED_EXIT_CODE", "EXHAUSTED_EXIT_CODE"]

FAILED_EXIT_CODE = 4
EXHAUSTED_EXIT_CODE = FAILED_EXIT_CODE  # the older name: unserved under on_exhausted: raise is a failure too

_EXIT_CODES = ("Exit codes: 0 every record served (flagged included); 2 bad input, settings or an --out that "
               "cannot be written (checked before any job); 4 some records failed (results and telemetry "
               "written; the summary names the first failure's reason).")

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


def _finish(call: Any, as_json: bool, verbose: bool = False, state: Path | None = None) -> None:
    from ..batch import BatchExhaustedError

    with one_line_errors(), _progress(verbose):
        try:
            summary = call()
        except BatchExhaustedError as exc:
            _print(exc.run, as_json)
            why = f"; {exc.run.failure_line()}" if exc.run is not None and exc.run.first_failure is not None else ""
            raise fail(f"{exc.message}{why}", code=FAILED_EXIT_CODE) from None
        except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C, or SIGTERM (the telemetry drain's exit)
            if state is not None and (isinstance(exc, KeyboardInterrupt) or exc.code in (130, 143)):
                print(f"stopped; the run is saved: tiered-router batch resume --state {state} finishes it "
                      f"(its jobs at Bedrock go on meanwhile; tiered-router batch stop --state {state} stops "
                      "them)", file=sys.stderr)
            raise
    _print(summary, as_json)
    if summary.failed:
        raise fail(f"{summary.failed} of {summary.records} records failed; {summary.failure_line()}",
                   code=FAILED_EXIT_CODE)


def _check_outputs(out: Path, state: Optional[Path], inputs: dict[str, Path]) -> None:
    """The results file and the state file can be written, and overwrite neither each
    other nor the records or the config: checked before any job is made, not after every
    record is served and paid for."""
    check_writable(out, "--out")
    state_flag = "--state" if state else "the state file"
    state = state or Path(f"{out}.state.json")
    check_writable(state, state_flag)
    check_distinct({"--out": out, state_flag: state}, inputs)


_RUN_HELP = "Route every record through batch jobs (resumes the run if its state file exists)."
_RESUME_HELP = "Finish a run whose runner stopped: its jobs are polled, never created twice."


@batch_app.command("run", help=f"{_RUN_HELP} {_EXIT_CODES}", short_help=_RUN_HELP)
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
    from ..batch import run_batch

    with one_line_errors():
        _check_outputs(out, state, {"--input": input_path, "--config": config})
    _finish(lambda: run_batch(config, input_path, out, bucket=bucket, role_arn=role_arn, state_path=state,
                              poll_interval_s=poll_interval), as_json, verbose, state or Path(f"{out}.state.json"))


@batch_app.command("resume", help=f"{_RESUME_HELP} {_EXIT_CODES}", short_help=_RESUME_HELP)
def resume(
    state: Path = typer.Option(..., "--state", help="The state file of the run to finish."),
    config: Optional[Path] = typer.Option(None, "--config", help="Router YAML (default: the one saved in the state)."),
    poll_interval: Optional[float] = typer.Option(None, "--poll-interval", help="Seconds between job polls."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log waves and jobs on stderr as they go."),
) -> None:
    from ..batch import resume_batch
    from ..batch.state import RunState

    if not state.exists():
        raise fail(f"no state file at {state}")
    with one_line_errors():
        saved = RunState.load(state)
        _check_outputs(Path(saved.out_path), state, {"the run's records": saved.input_path,
                                                     "--config": config})
    _finish(lambda: resume_batch(state, config=config, poll_interval_s=poll_interval), as_json, verbose, state)


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
