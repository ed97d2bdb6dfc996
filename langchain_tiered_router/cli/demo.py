"""``tiered-router demo``: route a workload offline through the emulator and report.

Default: the bundled workload (300 requests whose per-tier answers are scripted,
not real model outputs) on the bundled three-tier cascade. ``--replay FILE`` serves
recorded real answers instead: a RouteLLM responses CSV (two tiers, the replay
router config) or a recorded-outcomes JSONL. ``--live`` sends the prompts to real
Bedrock (needs AWS credentials). ``--batch`` sends them as Bedrock batch jobs instead,
offline: the emulator's batch control plane and moto's S3 server.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Optional

import typer

from .demo_db import DEFAULT_DB, claim_db, mark_db, prepare_db, start_afresh
from .errors import fail, one_line_errors
from .outputs import emit_json

__all__ = ["register"]

def _check_credentials() -> None:
    from ..core.optional import import_boto3

    boto3 = import_boto3()
    if boto3.Session().get_credentials() is None:
        raise fail("--live needs AWS credentials (none found in the environment, config files or instance role)")


def _batch_demo(items, base, db: Path, source: Path, replayed: bool, as_json: bool, json_out, console,
                earlier: str | None) -> None:
    from ..demo.batch import run_batch_demo
    from .report import render

    claim_db(db)
    run = run_batch_demo(items, base, db=db)
    mark_db(db)
    out = run.summary.to_dict()
    out.update({"via": "batch", "db": str(run.db), "source": str(source), "batch": run.batch.to_dict()})
    if as_json:
        emit_json(out, as_json=True, json_out=json_out)
        return
    answers = ("recorded real model answers" if replayed
               else "scripted answers (the bundled workload: not real model outputs)")
    console.print(f"routed {len(items)} records from {source.name} as Bedrock batch jobs (the local emulator's "
                  f"control plane, S3 on a local moto server), serving {answers}, in {run.seconds:.1f} s; "
                  f"telemetry in {db}")
    if earlier:
        console.print(earlier, soft_wrap=True)
    for line in run.batch.lines():
        console.print(line)
    render(run.summary, console=console)
    console.print(f"again, from the DB: tiered-router report --db {db}", soft_wrap=True)
    if json_out is not None:
        emit_json(out, as_json=False, json_out=json_out)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Route only the first N requests."),
        db: Path = typer.Option(DEFAULT_DB, "--db",
                                help="SQLite telemetry DB to write, started afresh each run (see --append)."),
        append: bool = typer.Option(False, "--append", help="Add this run's records to an existing --db."),
        replay: Optional[Path] = typer.Option(
            None, "--replay", help="Serve recorded answers: a RouteLLM responses CSV or a recorded-outcomes JSONL."),
        config: Optional[Path] = typer.Option(None, "--config", help="Router YAML (default: the bundled one)."),
        live: bool = typer.Option(False, "--live", help="Use real Amazon Bedrock instead of the emulator."),
        batch: bool = typer.Option(False, "--batch", help="Route as Bedrock batch jobs (emulator + moto S3)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
        json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the report as JSON to FILE."),
    ) -> None:
        """Offline demo: emulated Bedrock, cascade with gates, SQLite telemetry, savings-at-parity report."""
        from .outputs import console as wide_console
        from rich.markup import escape
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        from .outputs import check_distinct, check_writable

        from ..core.config import RouterConfig
        from ..demo.runner import bundled_config_path, replay_config_path, run_demo
        from ..demo.workload import bundled_workload_path, load_items
        from .report import render

        if live and batch:
            raise fail("--batch runs offline; against real Bedrock use tiered-router batch run")
        console = wide_console(stderr=as_json)
        with one_line_errors():
            if live:
                _check_credentials()
            if not batch:  # routed through TieredChatBedrock: without its extra, said before the db is touched
                importlib.import_module("langchain_tiered_router.langchain")
            check_writable(json_out, "--json-out")
            check_distinct({"--json-out": json_out}, {"--db": db, "--replay": replay})
            earlier = prepare_db(db, append)
            source = replay or bundled_workload_path()
            items = load_items(source)
            if limit is not None:
                items = items[:limit]
            if config is not None:
                config_path = config
            elif replay is not None and replay.suffix.lower() == ".csv":
                config_path = replay_config_path()
            elif batch:
                from ..demo.batch import batch_config_path

                config_path = batch_config_path()
            else:
                config_path = bundled_config_path()
            base = RouterConfig.from_yaml(config_path)
            if batch:
                from ..demo.batch import check_batch_demo

                check_batch_demo(items, base)
            start_afresh(db, append)  # every input read: only now the earlier run's rows go
            if batch:
                _batch_demo(items, base, db, source, replay is not None, as_json, json_out, console, earlier)
                return
            # the first seconds go to starting the emulator and building the router: the spinner
            # and the description say so before the first request is counted
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
                task = progress.add_task("starting the emulator and the router", total=len(items))

                def advanced(n: int) -> None:
                    progress.update(task, completed=n, description="routing")

                claim_db(db)
                run = run_demo(items, base, db=db, live=live, on_progress=advanced)
            mark_db(db)
        out = run.summary.to_dict()
        out.update({"via": run.via, "db": str(run.db), "source": str(source), "failures": run.failures})
        if as_json:
            emit_json(out, as_json=True, json_out=json_out)
        else:
            where = "real Amazon Bedrock" if live else "the local Bedrock emulator"
            # --live asks the models themselves: neither the workload's script nor a replay answers
            answers = ("the models' own answers" if live else "recorded real model answers" if replay else
                       "scripted answers (the bundled workload: not real model outputs)")
            if replay is not None and replay.suffix.lower() == ".csv":
                answers += " (prompts RouteLLM lists as contaminated left out)"
            console.print(f"routed {len(items)} requests from {source.name} through {run.via} against {where}, "
                          f"serving {answers}, in {run.seconds:.1f} s; telemetry in {db}")
            if earlier:
                console.print(earlier, soft_wrap=True)
            render(run.summary, console=console)
            for failure in run.failures[:5]:
                console.print(f"[yellow]failed:[/yellow] {escape(failure)}")  # "[tier / model]" is no style
            console.print(f"again, from the DB: tiered-router report --db {db}", soft_wrap=True)
            if json_out is not None:
                emit_json(out, as_json=False, json_out=json_out)
        if len(run.failures) == len(items):
            raise fail(f"every request failed; the first: {run.failures[0]}")
