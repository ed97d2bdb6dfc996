"""The ``estimate --plot`` figure: read without the README.

Left, per tier below the baseline: the share of requests it answers as well as the
baseline, with its 95 % interval. Right: savings against sending everything to the
baseline, for the ceiling (oracle), a perfect classifier after its cost, a perfect
cascade and the random mix, each bar labelled with its number.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

__all__ = ["plot_prize"]


def _short(cost: Any) -> str:
    if cost.kind == "free":
        return "trained: $0 at run time"
    if cost.kind == "llm":
        return f"LLM: one call each, ${cost.per_request_usd:.2g}/request"
    return f"${cost.per_request_usd:.2g}/request, given"


def plot_prize(prize: Any, path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'langchain-tiered-router[plot]'") from None
    lower = [t for t in prize.tiers if t.tier != prize.baseline]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
    names = [t.tier for t in lower]
    shares = [100 * t.share for t in lower]
    errors = [[100 * (t.share - t.low) for t in lower], [100 * (t.high - t.share) for t in lower]]
    left.barh(names, shares, xerr=errors, color="#4c72b0", capsize=4, height=0.5)
    for y, t in enumerate(lower):
        left.text(min(100 * t.high + 2, 88), y, f"{100 * t.share:.1f} %", va="center", fontsize=9)
    left.set_xlim(0, 100)
    left.invert_yaxis()
    left.set_xlabel(f"% of requests answered as well as\nthe baseline, {prize.baseline}")
    left.set_title("Which tier already does the job? (95 % interval)", fontsize=10)

    bars = [("ceiling: perfect routing, one call", prize.oracle_savings, "#2ca02c"),
            (f"perfect classifier after its cost\n({_short(prize.classifier)})", prize.classifier_savings, "#55a868"),
            ("perfect cascade (pays every call)", prize.cascade_savings, "#8fbc8f")]
    bars += [(f"random mix at parity {100 * p:.0f} %", s, "#999999") for p, s in prize.random_savings.items()]
    labels = [b[0] for b in bars]
    values = [0.0 if abs(b[1]) < 5e-4 else 100 * b[1] for b in bars]  # no "-0.0 %"
    right.barh(labels, values, color=[b[2] for b in bars])
    right.errorbar([100 * prize.oracle_savings], [0], xerr=[[100 * (prize.oracle_savings - prize.oracle_low)],
                                                            [100 * (prize.oracle_high - prize.oracle_savings)]],
                   fmt="none", ecolor="black", capsize=4)
    for y, v in enumerate(values):
        end = max(v, 100 * prize.oracle_high if y == 0 else v, 0)
        right.text(end + 1.5, y, f"{v:.1f} %", va="center", fontsize=9)
    right.set_xlim(min(0, min(values) - 5), 100)
    right.invert_yaxis()
    right.axvline(0, color="black", lw=0.6)
    right.set_xlabel(f"% cheaper than sending every request\nto the baseline, {prize.baseline}")
    right.set_title("What routing could save at most", fontsize=10)
    title = (f"The prize on {prize.n:,} requests, ladder {' -> '.join(t.tier for t in prize.tiers)}, "
             f"baseline {prize.baseline}")
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
