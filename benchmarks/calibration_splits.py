"""Does the calibration keep its promise, and what does its margin cost? Repeated random splits.

    python benchmarks/calibration_splits.py [--splits 10] [--datasets gsm8k,mmlu,...]
        [--bound clt|wsr] [--delta 0.05] [--no-bonferroni] [--policy auto|split|...]
        [--out benchmarks/results/calibration_splits]

For every data set and ladder: ``--splits`` random 50/50 splits (seeded); ``auto`` is
calibrated on one half and measured on the other. Reported per data set: how often the
test parity fell below the target and below target - 0.01, the held-out savings, the
best savings any operating point of the chosen strategy reached on the test half at the
target ("curve", which needs the test labels to pick), and the margin's price (curve -
held out). Features are read once per data set and shared by its splits; everything
learned (regularisation, heads, threshold) is fitted on each split's calibration half.
``--policy`` calibrates another policy than ``auto`` (``split`` reads no features).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from datasets import HERE, all_datasets
from langchain_tiered_router.analysis.eval.calibration import calibrate
from langchain_tiered_router.analysis.eval.harness import evaluate
from langchain_tiered_router.analysis.eval.training import TrainingData
from langchain_tiered_router.core.features import FeatureSpec


def run(names: set[str] | None, splits: int, target: float, bound: str, delta: float, bonferroni: bool,
        policy: str = "auto") -> dict:
    out = {"target_parity": target, "bound": bound, "delta": delta, "bonferroni": bonferroni, "splits": splits,
           "policy": policy, "datasets": {}}
    learns = policy not in ("split", "none")
    spec = FeatureSpec()
    for ds in all_datasets(only=names):
        items, ladder = ds.load(), ds.ladder
        has_answers = all(i.outcomes[t].response for i in items for t in ladder.names[:-1])
        data = TrainingData.build(items, ladder.names, spec, with_answers=has_answers) if learns else None
        rows = []
        for seed in range(splits):
            started = time.perf_counter()
            order = np.random.default_rng(seed).permutation(len(items))
            cal_idx, test_idx = np.sort(order[: len(items) // 2]), np.sort(order[len(items) // 2:])
            cal = calibrate([items[i] for i in cal_idx], ladder, target, policy=policy, bound=bound, delta=delta,
                            spec=spec, data=data.subset(cal_idx) if data else None, bonferroni=bonferroni)
            result = evaluate(cal, [items[i] for i in test_idx], ladder,
                              data=data.subset(test_idx) if data else None)
            chosen = result["candidates"][result["policy"]]
            curve = chosen.get("curve_savings_at_target")
            rows.append({"seed": seed, "policy": result["policy"], "parity": result["parity"],
                         "savings": result["savings"], "curve_savings": curve if curve is not None else 0.0,
                         "random_savings": result["random_savings"], "oracle_savings": result["oracle_savings"],
                         "headroom_recovered": result["headroom_recovered"], "seconds": time.perf_counter() - started})
            print(f"{ds.name:16s} split {seed}: {result['policy']:10s} savings {result['savings']:.3f} "
                  f"parity {result['parity']:.3f} curve {rows[-1]['curve_savings']:.3f}", flush=True)
        parities = [r["parity"] for r in rows]
        savings = [r["savings"] for r in rows]
        curves = [r["curve_savings"] for r in rows]
        recovered = [r["headroom_recovered"] for r in rows if r["headroom_recovered"] is not None]
        out["datasets"][ds.name] = {
            "n": len(items), "n_calibration": len(items) // 2, "runs": rows,
            "below_target": sum(p < target for p in parities) / splits,
            "below_target_minus_0.01": sum(p < target - 0.01 for p in parities) / splits,
            "parity_min": min(parities), "parity_mean": statistics.mean(parities),
            "savings_mean": statistics.mean(savings), "savings_min": min(savings),
            "curve_savings_mean": statistics.mean(curves),
            "margin_cost_mean": statistics.mean(c - s for c, s in zip(curves, savings)),
            "headroom_recovered_mean": statistics.mean(recovered) if recovered else None,
            "oracle_savings_mean": statistics.mean(r["oracle_savings"] for r in rows),
            "random_savings_at_target_mean": None,
            "chosen": {p: sum(r["policy"] == p for r in rows) for p in sorted({r["policy"] for r in rows})},
        }
    return out


def markdown(results: dict) -> str:
    t = results["target_parity"]
    pct = lambda v: "-" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    lines = [f"policy {results.get('policy', 'auto')}, target parity {t:.2f}, bound {results['bound']}, "
             f"delta {results['delta']}, "
             f"Bonferroni {'on' if results['bonferroni'] else 'off'}, {results['splits']} random 50/50 splits per set",
             "",
             f"| data | n (calibration) | test parity < {t:.2f} | < {t - 0.01:.2f} | parity min / mean | "
             "held-out savings mean (min) | curve at target (mean) | margin cost | headroom recovered | chosen |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, d in results["datasets"].items():
        chosen = ", ".join(f"{k} {v}" for k, v in d["chosen"].items())
        lines.append(f"| {name} | {d['n_calibration']} | {pct(d['below_target'])} | {pct(d['below_target_minus_0.01'])} | "
                     f"{pct(d['parity_min'])} / {pct(d['parity_mean'])} | {pct(d['savings_mean'])} "
                     f"({pct(d['savings_min'])}) | {pct(d['curve_savings_mean'])} | {pct(d['margin_cost_mean'])} | "
                     f"{pct(d['headroom_recovered_mean'])} | {chosen} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--datasets", default=None, help="comma list (default: all)")
    parser.add_argument("--target-parity", type=float, default=0.95)
    parser.add_argument("--bound", default="auto", choices=("auto", "clt", "wsr"))
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--no-bonferroni", action="store_true")
    parser.add_argument("--policy", default="auto", help="the policy calibrated on each split (default: auto)")
    parser.add_argument("--out", type=Path, default=None,
                        help="writes OUT.json and OUT.md (default: results/calibration_splits, and "
                             "results/calibration_splits_<policy> for another policy than auto)")
    args = parser.parse_args()
    if args.out is None:  # another policy's splits never overwrite auto's
        args.out = HERE / "results" / ("calibration_splits" if args.policy == "auto"
                                       else f"calibration_splits_{args.policy}")
    names = set(args.datasets.split(",")) if args.datasets else None
    results = run(names, args.splits, args.target_parity, args.bound, args.delta, not args.no_bonferroni,
                  args.policy)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=float))
    table = markdown(results)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
