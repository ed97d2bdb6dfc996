"""``tiered-router report``: savings at parity, per-tier table, drift alarms.

Exit codes: 0 fine, 2 bad input (one line on stderr), 3 a drift alarm fired.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ..core.errors import TelemetryError
from .errors import fail, one_line_errors

__all__ = ["register", "render", "parse_since", "DRIFT_EXIT_CODE"]

DRIFT_EXIT_CODE = 3


def parse_since(text: str, now: float | None = None) -> float:
    """Unix time from ``24h`` / ``7d`` (ago), an ISO date or datetime (UTC if no zone)."""
    from ..analysis.report.drift import parse_duration

    seconds = parse_duration(text)
    if seconds is not None:
        return (time.time() if now is None else now) - seconds
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise TelemetryError(f"bad --since {text!r}: use a duration (24h, 7d) or an ISO date (2026-11-28)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def _is_dsn(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def _shown(db: str) -> str:
    """The store as printed: a DSN without its password."""
    from ..core.redact import redact_secrets

    return redact_secrets(db) if _is_dsn(db) else db


def _money(value: Any) -> str:
    return "unknown" if value is None else f"${float(value):,.4f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def render(summary: Any, drift: Any = None, console: Any = None) -> None:
    """Print a summary (and drift checks) with rich."""
    from .outputs import console as wide_console
    from rich.table import Table

    console = console or wide_console()
    console.print(f"[bold]{summary.headline()}[/bold]")
    console.print(f"requests: {summary.requests} ({summary.priced} priced, {summary.unpriced} with an unknown cost "
                  f"left out of savings)   escalation rate: {_pct(summary.escalation_rate)}   "
                  f"flagged: {summary.flagged}   errors: {summary.errors}")
    console.print(f"cost: {_money(summary.actual_cost_usd)} routed vs {_money(summary.baseline_cost_usd)} if every "
                  f"request had gone to the baseline tier; routing calls {_money(summary.routing_cost_usd)} "
                  f"(included); shadow calls {_money(summary.shadow_cost_usd)} (measurement, not included)")
    for parity in ([summary.parity] if summary.parity else []) + summary.parity_alternatives:
        extra = ""
        if parity.source == "shadow":
            d = parity.detail
            extra = (f"; agreement of lower-tier answers with the baseline {d['agreement'] * 100:.1f} % "
                     f"[{d['agreement_low'] * 100:.1f}, {d['agreement_high'] * 100:.1f}], "
                     f"{d['share_served_below_baseline'] * 100:.1f} % served below the baseline")
        elif parity.source == "labels":
            d = parity.detail
            extra = (f"; served quality {d['served_quality'] * 100:.1f} % vs baseline "
                     f"{d['baseline_quality'] * 100:.1f} % on the same requests")
        lost = parity.detail.get("unanswered_counted_as_0")
        if lost:
            extra += f"; {lost} request{'s' if lost != 1 else ''} left without an answer count as quality 0"
        console.print(f"parity ({parity.source}): {parity.value * 100:.1f} % "
                      f"[95 % CI {parity.low * 100:.1f}-{parity.high * 100:.1f}] by {parity.method}, "
                      f"n={parity.n}{extra}")
    if summary.shadow:
        console.print("shadow samples: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.shadow.items())))
    table = Table(title="per tier")
    for column in ("tier", "served", "attempts", "input tok", "output tok", "cost", "gate pass"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for t in summary.tiers:
        table.add_row(t.tier, str(t.served), str(t.attempts), f"{t.input_tokens:,}", f"{t.output_tokens:,}",
                      _money(t.cost_usd), _pct(t.gate_pass_rate))
    console.print(table)
    if drift is not None:
        render_drift(drift, console)


_METRICS = {"escalation_rate": "escalation rate", "gate_failure_rate": "gate failure rate",
            "shadow_parity": "shadow agreement", "tier_mix": "tier mix"}


def _drift_value(value: Any, n: int) -> str:
    """A rate as a percentage, a tier mix as ``cheap 71 %, mid 29 %``, with the count."""
    if value is None:
        return f"- (n={n})"
    if isinstance(value, dict):
        shown = ", ".join(f"{tier} {share * 100:.0f} %" for tier, share in value.items())
        return f"{shown or '-'} (n={n})"
    return f"{float(value) * 100:.1f} % (n={n})"


def render_drift(drift: Any, console: Any) -> None:
    """The drift checks in a table that fits 80 columns: names in words, rates rounded."""
    from rich.table import Table

    table = Table(title=f"drift: the last {drift.window} ({drift.n_recent} requests) against the "
                        f"{drift.n_reference} before", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("before")
    table.add_column("recent")
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    too_few = False
    for c in drift.checks:
        p = "-" if c.p_value is None else f"{c.p_value:.2g}"
        if c.alarm:
            verdict = "[red]ALARM[/red]"
        elif c.p_value is None:
            verdict, too_few = "too few", True
        else:
            verdict = "ok"
        table.add_row(_METRICS.get(c.metric, c.metric), _drift_value(c.reference, c.n_reference),
                      _drift_value(c.recent, c.n_recent), p, verdict)
    tests = "rates: two-proportion z-test; tier mix: chi-square"
    table.caption = (f"{tests}; alarm when p < {drift.alpha:g}"
                     + ("; too few: under 30 observations in a window" if too_few else ""))
    console.print(table)
    if drift.alarm:
        console.print("[red bold]drift alarm:[/red bold] "
                      + ", ".join(_METRICS.get(c.metric, c.metric) for c in drift.checks if c.alarm))


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        db: str = typer.Option("tiered_router.db", "--db",
                               help="SQLite telemetry DB, a JSONL sink file, or postgresql://user@host/db."),
        since: Optional[str] = typer.Option(None, "--since", help="Only records after: 24h, 7d, or an ISO date."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of tables."),
        json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the JSON to FILE."),
        plot: Optional[Path] = typer.Option(
            None, "--plot", help="Write a PNG (cumulative cost with the savings interval, cost per tier); "
                                 ".png is added to a name without a suffix; .svg and .pdf work too."),
        drift_window: Optional[str] = typer.Option(
            None, "--drift-window", help="Compare the last window (1h, 7d, or a count such as 500) with before."),
        alpha: float = typer.Option(0.01, "--alpha", help="Significance level of the drift tests (0 < alpha < 1)."),
    ) -> None:
        """Savings at quality parity, escalation, per-tier use and drift, from recorded telemetry.

        A damaged record (not JSON, a missing field, a cost that is not a finite amount
        of at least $0) is skipped, not guessed at: a warning on stderr counts the
        skipped records and names the first (file and line, or row), and the JSON
        carries the count (records_unreadable) and the warning. When no record can be
        read the report refuses (exit 2). Labels whose scores are not numbers in 0..1
        are skipped the same way (labels_unreadable). A request id on several lines of
        a JSONL file is counted once, from its last line (records_repeated).
        """
        from ..analysis.report import check_drift, summarize
        from ..analysis.report.store import read_store

        from .outputs import checked_outputs, emit_json, said_written

        with one_line_errors():
            if not 0 < alpha < 1:  # NaN fails this too
                raise fail(f"bad --alpha {alpha:g}: give a significance level between 0 and 1, such as 0.01")
            plot = checked_outputs(json_out, plot, {"--db": db})
            start = parse_since(since) if since else None
            contents = read_store(db if _is_dsn(db) else Path(db), since=start, slim=True)
            records, labels = contents.records, contents.labels
            if not records and contents.unreadable.count:
                n = contents.unreadable.count
                raise fail(f"no readable routing record in {contents.source}: {n} unreadable record"
                           f"{'s' if n > 1 else ''}; the first: {contents.unreadable.first}")
            if not records:
                raise fail(f"no routing records in {_shown(db)}" + (f" since {since}" if since else ""))
            warnings = contents.warnings()
            for line in warnings:
                print(f"tiered-router: warning: {line}", file=sys.stderr)
            summary = summarize(records, labels)
            drift = check_drift(records, drift_window, alpha=alpha) if drift_window else None
            if plot is not None:
                from ..analysis.report.plot import plot_report

                plot = plot_report(records, summary, plot)
            out = summary.to_dict()
            out.update(records_unreadable=contents.unreadable.count, labels_unreadable=contents.bad_labels.count,
                       records_repeated=contents.repeated.count, warnings=warnings)
            out["drift"] = drift.to_dict() if drift else None
            if not as_json:
                render(summary, drift)
            emit_json(out, as_json=as_json, json_out=json_out)
        if plot is not None:
            said_written("the plot", plot, stdout_is_json=as_json)
        if drift is not None and drift.alarm:
            raise typer.Exit(DRIFT_EXIT_CODE)
