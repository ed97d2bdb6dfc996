"""``tiered-router estimate``: the prize of routing on your data, before any routing code."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .errors import about, one_line_errors

__all__ = ["register", "print_prize"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _cheaper(value: float) -> str:
    if value > -0.0005:  # what prints as 0.0 % is not "more expensive"
        return f"{_pct(max(value, 0.0))} cheaper"
    return f"{_pct(-value)} MORE expensive"


def print_prize(prize: Any, console: Any = None) -> None:
    from .outputs import console as wide_console
    from rich.table import Table

    console = console or wide_console()
    names = [t.tier for t in prize.tiers]
    console.print(f"[bold]The prize on {prize.n:,} requests[/bold]: ladder {' -> '.join(names)}, baseline "
                  f"{prize.baseline} (every request there: ${prize.baseline_cost_usd:,.4f}, quality "
                  f"{_pct(prize.baseline_quality)})")
    table = Table(title="per tier")
    for column in ("tier", "answers as well as the baseline (95 % Wilson)", "quality", "cost vs baseline",
                   "served where as good, else the baseline"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for t in prize.tiers:
        if t.tier == prize.baseline:
            table.add_row(t.tier, "(the baseline)", _pct(t.quality), _pct(t.cost_vs_baseline), "-")
        else:
            table.add_row(t.tier, f"{_pct(t.share)} ({_pct(t.low)} - {_pct(t.high)}), {t.as_good:,} requests",
                          _pct(t.quality), _pct(t.cost_vs_baseline), _cheaper(t.two_tier_savings or 0.0))
    console.print(table)
    mix = ", ".join(f"{k} {_pct(v)}" for k, v in prize.oracle_share.items())
    console.print(f"one-call oracle for this ladder at these prices (each request on the cheapest tier that answers "
                  f"as well as the baseline): {_cheaper(prize.oracle_savings)} (95 % CI {_pct(prize.oracle_low)} - "
                  f"{_pct(prize.oracle_high)}, bootstrap over requests) at {_pct(prize.oracle_parity)} parity; "
                  f"served by {mix}")
    console.print(f"a perfect classifier after its own cost: {_cheaper(prize.classifier_savings)} "
                  f"(assumed: {prize.classifier.assumption}; ${prize.classifier.total_usd:,.4f} in all)")
    console.print(f"a perfect cascade (in ladder order, a perfect check stops at the first answer as good as the "
                  f"baseline's, every call paid): {_cheaper(prize.cascade_savings)}")
    unreached = ", ".join(_pct(p) for p in prize.random_unreached)
    console.print("a random mix of tiers, for comparison: " + ", ".join(
        f"{_cheaper(s)} at parity {_pct(p)}" for p, s in prize.random_savings.items())
        + (f"; no mix reaches parity {unreached} (the most: {_pct(prize.random_max_parity)}, the best tier "
           "alone)" if unreached else ""))
    console.print("the oracle keeps every request's own score (its parity is 100 % or more); a router held to a "
                  "lower parity may save more than it, and should save more than the random mix at that parity: "
                  "measure it with tiered-router eval, train it with tiered-router calibrate")
    for note in prize.notes:
        console.print(f"note: {note}")
    console.print(f"tokens: {prize.to_dict()['tokens']}")


def estimate_command(
    data: Path = typer.Option(..., "--data", help="Recorded outcomes (JSONL, from collect) or RouteLLM data."),
    config: Path = typer.Option(..., "--config", help="Router YAML (tiers, prices, baseline)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl | routellm"),
    classifier: str = typer.Option("free", "--classifier",
                                   help="The classifier's own cost: free (trained), llm (one call per request to "
                                        "the cheapest tier or policy.classifier.llm_tier), or USD per request."),
    target_parity: float = typer.Option(0.95, "--target-parity", min=0.0, max=1.5,
                                        help="Also show the random mix at this parity."),
    as_json: bool = typer.Option(False, "--json", help="Print the numbers as JSON on stdout."),
    json_out: Optional[Path] = typer.Option(None, "--json-out", help="Write the numbers as JSON to FILE."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG of the prize."),
) -> None:
    """Per tier, the share of requests it answers as well as the baseline, and what routing could save at most."""
    from ..analysis.estimate import classifier_usd, estimate_prize
    from .evaluate import _load
    from .outputs import checked_outputs, emit_json, said_written

    with one_line_errors():
        if classifier not in ("free", "llm"):
            try:
                classifier_usd(classifier)  # a bad amount fails before the data is read
            except ValueError as exc:
                raise ValueError(f"--classifier: {exc}") from None
        plot = checked_outputs(json_out, plot, {"--data": data, "--config": config})
        cfg, ladder, items = _load(config, data, fmt)
        llm_tier = cfg.policy.classifier.llm_tier if cfg.policy.classifier else None
        with about(str(data)):
            prize = estimate_prize(items, ladder, classifier=classifier, llm_tier=llm_tier,
                                   target_parity=target_parity)
        written = None
        if plot is not None:
            from .prize_plot import plot_prize

            written = plot_prize(prize, plot)
        if not as_json:
            print_prize(prize)
        emit_json(prize.to_dict(), as_json=as_json, json_out=json_out)
    if written is not None:
        said_written("the plot", written, stdout_is_json=as_json)


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_command)
