"""A PNG of the report: cumulative cost against the baseline, and cost per tier.

matplotlib is optional (``pip install 'langchain-tiered-router[plot]'``) and is
imported only here, with the non-interactive Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...core.errors import TelemetryError
from ...core.telemetry.record import RoutingRecord
from .summary import Summary

__all__ = ["plot_report", "png_path", "PLOT_FORMATS"]


# What matplotlib's Agg backend writes with no extra software (pgf needs LaTeX).
PLOT_FORMATS = (".png", ".svg", ".svgz", ".pdf", ".eps", ".ps", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def png_path(path: str | Path) -> Path:
    """The file a plot is written to: matplotlib adds ``.png`` to a name without a suffix.

    A suffix matplotlib cannot write is a ``ValueError`` here, before any work, not
    after a whole report has been printed."""
    path = Path(path)
    if not path.suffix:
        return path.with_name(path.name + ".png")
    if path.suffix.lower() not in PLOT_FORMATS:
        raise ValueError(f"--plot {path}: cannot write a {path.suffix} image; use .png, .svg or .pdf "
                         f"(or {', '.join(f for f in PLOT_FORMATS if f not in ('.png', '.svg', '.pdf'))})")
    return path


def plot_report(records: Sequence[RoutingRecord], summary: Summary, path: str | Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TelemetryError("--plot needs matplotlib: pip install 'langchain-tiered-router[plot]'") from None
    priced = [r for r in records if r.cost_usd is not None and r.baseline_cost_usd is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    actual = baseline = shadow = 0.0
    xs, ys_actual, ys_base, ys_shadow = [], [], [], []
    for i, r in enumerate(priced, start=1):
        actual += float(r.cost_usd)  # type: ignore[arg-type]
        baseline += float(r.baseline_cost_usd)  # type: ignore[arg-type]
        shadow += float(r.shadow_cost_usd or 0)
        xs.append(i)
        ys_actual.append(actual)
        ys_base.append(baseline)
        ys_shadow.append(actual + shadow)
    # each request's own baseline: a store can hold ladders with different ones
    baselines = ", ".join(sorted({str(r.baseline_tier) for r in priced})) or "?"
    left.plot(xs, ys_base, label=f"baseline ({baselines}) on every request")
    left.plot(xs, ys_actual, label="routed (all attempts and routing calls)")
    if shadow > 0:
        left.plot(xs, ys_shadow, ls="--", color="tab:green",
                  label=f"routed + shadow calls (measuring parity: ${shadow:,.4f})")
    left.set_xlabel("requests, in time order")
    left.set_ylabel("cumulative cost (USD)")
    left.set_title(_title(summary), fontsize=9)
    left.legend(fontsize=8, loc="upper left")
    names = [t.tier for t in summary.tiers]
    costs = [float(t.cost_usd) if t.cost_usd is not None else 0.0 for t in summary.tiers]
    served = [t.served for t in summary.tiers]
    bars = right.bar(names, costs, color="tab:blue")
    for bar, n in zip(bars, served):
        right.annotate(f"{n} served", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                       va="bottom", fontsize=8)
    right.set_ylabel("cost of attempts (USD)")
    right.set_title("cost per tier (every attempt, served or escalated)", fontsize=9)
    fig.tight_layout()
    out = png_path(path)
    try:
        fig.savefig(out, dpi=110)
    except OSError as exc:
        raise TelemetryError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return out


_SOURCES = {"labels": "from recorded labels", "shadow": "from shadow samples"}


def _title(summary: Summary) -> str:
    """Savings, parity and its interval, on two lines so they fit above one panel."""
    from .summary import savings_phrase

    if summary.savings_pct is None:
        return summary.savings_unknown()
    first = f"{savings_phrase(summary.savings_pct)} than the baseline on {summary.priced:,} requests"
    p = summary.parity
    if p is None:
        return first + "\nquality parity not measured"
    return (first + f"\nquality parity {p.value * 100:.1f} % (95 % CI {p.low * 100:.1f}-{p.high * 100:.1f} %, "
            f"{_SOURCES.get(p.source, p.source)}, n={p.n})")
