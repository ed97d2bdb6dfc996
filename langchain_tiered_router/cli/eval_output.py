"""How ``tiered-router eval`` shows its result: a table a reader understands without the
README, the headline, the honesty line (headroom recovered), and a self-explaining plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["print_result", "plot_result", "public", "pct"]

_LABELS = {"random_savings": "random mix at the same parity", "oracle_savings": "oracle (one call, perfect)",
           "apgr": "APGR (area under PGR curve)", "cpt50": "baseline share to recover 50 % of the gap",
           "cpt80": "baseline share to recover 80 % of the gap",
           "curve_savings_at_target": "best point of any strategy on the test data at the target "
                                      "(picked with test labels: not a promise)"}


def pct(value: float | None) -> str:
    return "-" if value is None else f"{round(100 * value, 1) + 0.0:.1f} %"  # + 0.0: never "-0.0 %"


def _savings_phrase(savings: float) -> str:
    from ..analysis.report.summary import savings_phrase

    return savings_phrase(savings)


def public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def print_result(result: dict[str, Any], *, stderr: bool = False) -> None:
    from .outputs import console as wide_console
    from rich.table import Table

    console = wide_console(stderr=stderr)
    table = Table(title=f"{result['policy']} on {result['n']} test requests")
    table.add_column("measure")
    table.add_column("value", justify="right")
    ci = result["parity_ci"]
    rows = [("savings against the baseline tier", _savings_phrase(result["savings"])),
            ("quality parity (95 % CI)", f"{pct(result['parity'])} ({pct(ci['low'])} - {pct(ci['high'])})"),
            ("quality / baseline quality", f"{pct(result['quality'])} / {pct(result['baseline_quality'])}")]
    for key in ("random_savings", "oracle_savings", "curve_savings_at_target", "cpt50", "cpt80"):
        if result.get(key) is not None:
            rows.append((_LABELS[key], pct(result[key])))
    if result.get("apgr") is not None:
        rows.append((_LABELS["apgr"], f"{result['apgr']:.3f}"))
    rows.append(("served by tier", ", ".join(f"{k} {pct(v)}" for k, v in result["tier_share"].items())))
    if result.get("calls_share"):
        rows.append(("requests calling each tier", ", ".join(f"{k} {pct(v)}" for k, v in result["calls_share"].items())))
    if result.get("param") is not None and result["policy"] != "baseline":
        what = "share along the split path" if result["policy"] == "split" else "lambda or threshold"
        rows.append((f"operating point ({what})", f"{result['param']:.4g}"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    candidates = result.get("candidates") or {}
    if len(candidates) > 1:
        cand = Table(title="strategies tried: calibration (cross-fitted) and test")
        cand.add_column("strategy", no_wrap=True)
        for col in ("delta", "points kept", "cal savings", "bound", "cal parity", "test savings", "test parity"):
            cand.add_column(col, justify="right")
        for name, c in candidates.items():
            cal = c.get("calibration", {})
            cand.add_row(("* " if name == result["policy"] else "  ") + name,
                         f"{c['delta']:.3g}" if c.get("delta") and name != "baseline" else "-",
                         f"{c.get('certified_points', 0)}/{c.get('points', 0)}", pct(cal.get("savings")),
                         pct(cal.get("savings_lower_bound_all_points", cal.get("savings_lower_bound")))
                         if "savings" in cal else "-",
                         pct(cal.get("parity")), pct(c.get("savings")), pct(c.get("parity")))
        cand.caption = ("* chosen; delta: the strategy's share of the promise's delta (the most to the one the "
                        "predictions expected to save most); bound: lower bound of the calibration savings, "
                        "over all the points kept at once (a strategy ships only above 0)")
        console.print(cand)
    for note in (result.get("calibration") or {}).get("notes", []):
        console.print(f"note: {note}")
    console.print(f"{_savings_phrase(result['savings'])} at {pct(result['parity'])} quality parity "
                  f"(95 % CI {pct(ci['low'])} - {pct(ci['high'])}, {ci['method']})")
    recovered = result.get("headroom_recovered")
    oracle = "the one-call oracle (each request on the cheapest tier that scores as well as the baseline)"
    if recovered is None:
        below = result["oracle_savings"] < result["random_savings"]
        console.print(f"headroom: {oracle} saves {'less than' if below else 'less than a point more than'} a random "
                      f"mix of tiers at this parity ({pct(result['oracle_savings'])} vs "
                      f"{pct(result['random_savings'])}); it keeps every "
                      "request's own score, so at a parity below 100 % it is no ceiling: compare the router with "
                      "the random mix")
    else:
        beyond = (" (more than the oracle, which keeps every request's own score: at a parity below 100 % it is no "
                  "ceiling)" if recovered > 1 else "")
        console.print(f"headroom: {oracle} would save {pct(result['oracle_savings'])}, a random mix at this parity "
                      f"{pct(result['random_savings'])}; this router recovered {pct(recovered)} of the "
                      f"difference{beyond}")
    guarantee = (result.get("calibration") or {}).get("guarantee")
    if guarantee:
        console.print(f"promise: {guarantee}")
    if result.get("token_estimate"):
        console.print(f"tokens: {result['token_estimate']}")


def plot_result(result: dict[str, Any], path: Path) -> Path:
    """Parity against cost for every operating point of the chosen strategy, with the
    random mix, the oracle, the target and the calibrated point, labelled in the figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'langchain-tiered-router[plot]'") from None
    from ..analysis.eval.metrics import oracle_point, random_savings_at, target_text

    table, curves = result["_table"], result.get("_curves") or {}
    if not curves:
        raise ValueError(f"--plot draws each strategy's operating points; {result['policy']} has none")
    base_cost, base_q = table.c_base.sum(), table.q_base.mean()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        pts = sorted(curve, key=lambda p: p.cost)
        ax.plot([p.cost / base_cost for p in pts], [p.quality / base_q for p in pts], ".-", ms=2, lw=1,
                label=f"{name}: every operating point (test data)")
    low = float(table.q.mean(axis=0).min() / base_q)
    parities = [low + (1 - low) * i / 60 for i in range(61)]
    ax.plot([1 - random_savings_at(table, p) for p in parities], parities, "--", color="grey",
            label="random mix of tiers")
    oracle = oracle_point(table)
    ax.scatter([oracle.cost / base_cost], [oracle.quality / base_q], marker="*", s=160, color="gold",
               edgecolor="black", zorder=5, label="oracle (one call, perfect)")
    ax.scatter([1 - result["savings"]], [result["parity"]], color="red", zorder=6,
               label=f"calibrated: {_savings_phrase(result['savings'])} at {pct(result['parity'])} parity")
    target = result["target_parity"]
    ax.axhline(target, color="black", lw=0.8, ls=":", label=f"target parity {target_text(target)}")
    ax.annotate(f"target parity {target_text(target)}", (0.01, target), xycoords=("axes fraction", "data"),
                xytext=(0, 3), textcoords="offset points", fontsize=8)
    ax.axvline(1.0, color="black", lw=0.5)
    right = max(1.05, ax.get_xlim()[1])
    ax.axvspan(1.0, right, color="grey", alpha=0.12, lw=0)
    ax.set_xlim(0, right)
    ax.annotate("baseline tier alone: x = 1\n(right of it costs more)", (1.0, 0.98),
                xycoords=("data", "axes fraction"), xytext=(-4, 0), textcoords="offset points",
                ha="right", va="top", fontsize=7, color="dimgrey")
    ax.set_xlabel("cost relative to sending every request to the baseline tier (> 1: costs more)")
    ax.set_ylabel("quality parity (quality / baseline quality)")
    chose = ("auto chose " if result.get("candidates") and len(result["candidates"]) > 2 else "") + result["policy"]
    ax.set_title(f"Routing on {result['n']} held-out requests: {chose}, calibrated for parity >= "
                 f"{target_text(target)}\n"
                 "each line: a router's operating points, from all-cheap (left) to all-baseline (x = 1)",
                 fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
