"""``tiered-router collect``: ask every tier your prompts, grade the answers, write recorded outcomes.

Exit codes: 0 done, 2 bad input (one line on stderr), 3 stopped at ``--max-usd`` (what
was collected is written; a rerun goes on), 4 some prompts failed (the rest is written;
a rerun asks the failed ones again).
"""

from __future__ import annotations

import contextlib
import math
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

from .errors import fail, one_line_errors

__all__ = ["register", "CAP_EXIT_CODE", "FAILED_EXIT_CODE"]

CAP_EXIT_CODE = 3
FAILED_EXIT_CODE = 4


def _usd(value: Decimal | float | None) -> str:
    return "unknown" if value is None else f"${float(value):,.4f}"


def _check_where(live: bool, endpoint_url: Optional[str], emulator_script: Optional[Path],
                 config_endpoint: Optional[str]) -> None:
    """Fail before any work when it is unclear where the answers come from."""
    chosen = [name for name, on in (("--live", live), ("--endpoint-url", endpoint_url is not None),
                                    ("--emulator-script", emulator_script is not None)) if on]
    if len(chosen) > 1:
        raise ValueError(f"choose one of {', '.join(chosen)}")
    if not chosen and config_endpoint is None:
        raise ValueError("say where the answers come from: --live (Amazon Bedrock, your AWS credentials), "
                         "--endpoint-url URL (a Bedrock-wire endpoint such as tiered-router emulator) or "
                         "--emulator-script FILE (an emulator started for this run)")
    if emulator_script is not None and not emulator_script.exists():
        raise FileNotFoundError(f"no such emulator script: {emulator_script}")


@contextlib.contextmanager
def _where(live: bool, endpoint_url: Optional[str], emulator_script: Optional[Path],
           config_endpoint: Optional[str]) -> Iterator[tuple[Optional[str], str, bool]]:
    """(endpoint URL or None for Bedrock, a description, sign with placeholder keys?)."""
    from ..core.optional import import_boto3

    _check_where(live, endpoint_url, emulator_script, config_endpoint)
    if live:
        boto3 = import_boto3()
        if boto3.Session().get_credentials() is None:
            raise ValueError("--live needs AWS credentials (none found in the environment, config files or "
                             "instance role)")
        yield None, "Amazon Bedrock (your AWS credentials)", False
        return
    if emulator_script is not None:
        from ..emulator import BedrockEmulator

        with BedrockEmulator(emulator_script) as emulator:
            yield emulator.url, f"the local Bedrock emulator ({emulator_script.name}) at {emulator.url}", True
        return
    url = endpoint_url or config_endpoint
    boto3 = import_boto3()
    yield url, f"the endpoint {url}", boto3.Session().get_credentials() is None


def _tiers(text: Optional[str], names: list[str]) -> list[str]:
    if text is None:
        return list(names)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in names]
    if unknown or not wanted:
        raise ValueError(f"--tiers: unknown tier {unknown[0]!r}; the ladder has {', '.join(names)}" if unknown
                         else "--tiers needs at least one tier name")
    return [t for t in names if t in wanted]


def _read_items(prompts: Optional[Path], from_db: Optional[str], sample: Optional[int]):
    from ..analysis.collect import PromptsError, prompts_from_records, read_prompts, sample_prompts

    if (prompts is None) == (from_db is None):
        raise ValueError("give --prompts FILE or --from-db TELEMETRY_DB (one of them)")
    notes = []
    if prompts is not None:
        items = read_prompts(prompts)
        source = str(prompts)
    else:
        from ..analysis.report.store import read_store

        from ..core.redact import redact_secrets

        shown = redact_secrets(from_db)  # a DSN's password is never printed
        # read as the report reads: a damaged row is skipped with a warning, not the whole DB refused
        contents = read_store(from_db if "://" in from_db else Path(from_db))
        records = contents.records
        if not records and contents.unreadable.count:
            raise PromptsError(f"no readable routing record in {shown}: {contents.unreadable.count} unreadable; "
                               f"the first: {contents.unreadable.first}")
        for line in contents.warnings():
            print(f"tiered-router: warning: {line}", file=sys.stderr)
        found = prompts_from_records(records)
        if not found.items:
            raise PromptsError(f"no record in {shown} holds its prompt text ({len(records)} records): turn on "
                               "telemetry.store_text: true in the router config to collect from traffic")
        items, source = found.items, shown
        if found.without_text:
            notes.append(f"{found.without_text} records without stored text skipped (telemetry.store_text was off)")
        if found.duplicates:
            notes.append(f"{found.duplicates} repeated prompts asked once")
    if sample is not None and sample < len(items):
        notes.append(f"a stable sample of {sample} of {len(items)} (the smallest sha256 of the ids)")
        items = sample_prompts(items, sample)
    return items, source, notes


def collect_command(
    config: Path = typer.Option(..., "--config", help="Router YAML (tiers, prices, comparator)."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="JSONL of prompts or messages, optional gold."),
    from_db: Optional[str] = typer.Option(None, "--from-db", help="A telemetry DB (a file, or postgresql://...) whose records stored their text."),
    out: Path = typer.Option(Path("outcomes.jsonl"), "--out", help="Recorded-outcomes JSONL to write (resumed)."),
    tiers: Optional[str] = typer.Option(None, "--tiers", help="Comma list of tiers to ask (default: all)."),
    live: bool = typer.Option(False, "--live", help="Ask Amazon Bedrock with your AWS credentials."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help="A Bedrock-wire endpoint (an emulator)."),
    emulator_script: Optional[Path] = typer.Option(None, "--emulator-script",
                                                   help="Start a local emulator with this script for the run."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Prompts in flight at once."),
    max_usd: Optional[str] = typer.Option(None, "--max-usd", help="Stop starting prompts at this spend (USD)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the estimate; send nothing."),
    compare: Optional[str] = typer.Option(None, "--compare",
                                          help="Gold comparator: exact | numeric | json_fields | llm_judge "
                                               "(default: telemetry.shadow.comparator in the config)."),
    judge_tier: Optional[str] = typer.Option(None, "--judge-tier", help="Tier that judges (default: the top tier)."),
    assume_output_tokens: int = typer.Option(300, "--assume-output-tokens", min=1,
                                             help="Output tokens per answer assumed by the cost estimate."),
    sample: Optional[int] = typer.Option(None, "--sample", min=1, help="Ask a stable random sample of N prompts."),
) -> None:
    """Ask every tier each prompt (Bedrock or an emulator), grade, and write recorded outcomes."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..analysis.collect import ConverseBackend, OutcomesFile, make_plan, run_plan, runtime_client
    from ..core.config import load_config
    from ..core.tiers import Ladder

    cap = _cap(max_usd)
    with one_line_errors():
        cfg = load_config(config)
        if not dry_run:
            _check_where(live, endpoint_url, emulator_script, cfg.endpoint_url)
        ladder = Ladder.from_config(cfg)
        chosen = _tiers(tiers, ladder.names)
        grader = _grader(cfg, ladder, compare, judge_tier)
        if out.is_dir():
            raise ValueError(f"--out {out} is a directory; give a file name")
        if not out.parent.exists():
            raise ValueError(f"--out {out}: the folder {out.parent} does not exist")
        items, source, notes = _read_items(prompts, from_db, sample)
        store = OutcomesFile(out)
        done = store.peek() if dry_run else store.open()
    try:
        with one_line_errors():
            plan = make_plan(items, done, ladder, chosen, grader, assume_output_tokens)
        if store.repaired:
            print(f"note: cut off an incomplete last line of {out} (a run was stopped while writing it)")
        _print_plan(plan, grader, len(items), source, out, notes, cap)
        if not plan.jobs or dry_run:
            print("dry run: nothing sent" if plan.jobs else f"nothing to ask: every prompt has every tier asked for "
                                                             f"in {out}")
            return
        with one_line_errors(), _where(live, endpoint_url, emulator_script, cfg.endpoint_url) as (url, what, fake):
            print(f"asking through {what}, {concurrency} prompts at a time")
            client = runtime_client(region=cfg.region_name, endpoint_url=url, max_connections=concurrency,
                                    max_attempts=max(3, 1 + cfg.retry.max_retries), placeholder_credentials=fake)
            with Progress(TextColumn("collecting"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[spent]}"), TimeElapsedColumn(), console=Console(stderr=True),
                          transient=True) as bar:
                task = bar.add_task("collect", total=len(plan.jobs), spent="$0")
                result = run_plan(plan, ConverseBackend(client), grader, store, concurrency=concurrency, max_usd=cap,
                                  progress=lambda n, total, spent: bar.update(task, completed=n, spent=_usd(spent)))
    except KeyboardInterrupt:
        store.close()
        print(f"interrupted: what finished is in {out}; run the same command again to go on", flush=True)
        raise typer.Exit(130) from None
    finally:
        store.close()
    _print_result(result, out, len(store.records), cap)
    if result.stopped_at_cap:
        raise typer.Exit(CAP_EXIT_CODE)
    if result.failures:
        raise typer.Exit(FAILED_EXIT_CODE)
    print(f"next: tiered-router estimate --data {out} --config {config}")


def _cap(max_usd: Optional[str]) -> Optional[Decimal]:
    if max_usd is None:
        return None
    try:
        cap = Decimal(max_usd)
    except InvalidOperation:
        raise fail(f"--max-usd takes a number of US dollars, got {max_usd!r}") from None
    # NaN cannot be compared, and an infinite cap (or one past a float, as the progress shows it) is no cap
    if not cap.is_finite() or not math.isfinite(float(cap)):
        raise fail(f"--max-usd takes a finite number of US dollars, got {max_usd!r} (leave it out for no cap)")
    if not cap > 0:
        raise fail("--max-usd must be above 0")
    return cap


def _grader(cfg: Any, ladder: Any, compare: Optional[str], judge_tier: Optional[str]) -> Any:
    """Gold answers by ``--compare`` (default: the shadow comparator of the config), the rest
    by the judge against the top tier's answer."""
    from ..analysis.collect import COMPARATORS, Grader, make_comparator

    comparator = cfg.telemetry.shadow.comparator
    kind = compare or comparator.kind
    if kind not in COMPARATORS:
        raise ValueError(f"--compare: unknown comparator {kind!r}; choose one of {', '.join(COMPARATORS)}")
    judge = ladder[judge_tier or comparator.judge_tier or ladder.top.name]
    return Grader(make_comparator(kind, judge.name, fields=comparator.fields, tolerance=comparator.tolerance),
                  ladder.top.name, judge)


def _print_plan(plan: Any, grader: Any, n_items: int, source: str, out: Path, notes: list[str],
                cap: Optional[Decimal]) -> None:
    partial = sum(1 for job in plan.jobs if job.existing is not None)
    print(f"collect: {n_items} prompts from {source}; {plan.done} already complete in {out}, {len(plan.jobs)} to ask"
          + (f" ({partial} of them have some tiers already)" if partial else ""))
    for note in notes:
        print(f"note: {note}")
    if not plan.jobs:
        return
    print(f"grading: {plan.gold} against their gold answer ({grader.gold_comparator.name}), {len(plan.jobs) - plan.gold} "
          f"against {grader.reference_tier}'s answer by llm_judge (judge: {grader.judge_tier.name}, its calls priced "
          "and recorded)")
    if plan.added_reference:
        print(f"note: {grader.reference_tier} is asked for {plan.added_reference} prompts without a gold answer, "
              "to judge the other tiers against")
    capped = (f", or the tier's max_tokens when lower ({', '.join(f'{t} {n}' for t, n in plan.capped.items())})"
              if plan.capped else "")
    upper = (f"; at most {_usd(plan.upper_usd)} if every answer reaches its tier's max_tokens"
             if plan.upper_usd is not None else "; no upper bound: a tier without max_tokens may answer at any length")
    print(f"estimated cost: {_usd(plan.estimate_usd)} for {plan.calls} answers "
          f"({', '.join(f'{t} {n}' for t, n in plan.by_tier.items())}: {plan.input_tokens:,} input tokens counted as "
          f"ceil(characters / 4), {plan.assume_output_tokens} output tokens assumed per answer{capped}) and "
          f"{plan.judge_calls} judge calls{upper}" + (f"; --max-usd {_usd(cap)}" if cap is not None else ""))


def _print_result(result: Any, out: Path, written: int, cap: Optional[Decimal]) -> None:
    print(f"collected {result.collected} prompts: {result.answers} answers ({_usd(result.answers_usd)}) and "
          f"{result.judge_calls} judge calls ({_usd(result.judge_usd)}), {_usd(result.spent_usd)} in all")
    print(f"wrote {out} ({written} prompts)")
    if result.failures:
        print(f"{len(result.failures)} prompts failed (not written; run the same command again to ask them again):")
        for failure in result.failures[:5]:
            print(f"  {failure}")
    if result.stopped_at_cap:
        # the cap counts this run's spend: the same command goes on, unless one prompt alone is over it
        nxt = result.next_estimate_usd
        advice = (f"the next prompt alone is estimated at {_usd(nxt)}: run again with a --max-usd above that to go on"
                  if nxt is not None and cap is not None and nxt > cap else
                  "--max-usd counts each run's own spend: run the same command again to go on (it asks only "
                  "what is missing)")
        print(f"stopped at --max-usd {_usd(cap)}: spent {_usd(result.spent_usd)}; {result.not_started} prompts not "
              f"started; {advice}")


def register(app: typer.Typer) -> None:
    app.command("collect")(collect_command)
