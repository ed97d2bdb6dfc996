"""Routing quality on every recorded data set and ladder, every strategy and auto, with peers.

    python benchmarks/routing_bench.py [--datasets gsm8k,...] [--ablation] [--out benchmarks/results/routing]

Each data set is split 50/50 by sha256 of the prompt. ``auto`` is calibrated on the
first half (target parity 0.95, the strategies sharing delta by weighted Bonferroni) and measured on
the second; each strategy's own row is its certified point inside that same run.
"Held out" is the calibrated operating point on the test half (the promise); "curve" is
the best operating point of that strategy on the test half at the target (what
RouteLLM-style papers report; it picks the threshold with the test labels). Peers in the
same run: the random mix of tiers and the one-call oracle (metric definitions in
analysis/eval/metrics.py), LiteLLM's complexity router (its score calibrated by the same
procedure, and at its own default tiers), RouteLLM's published numbers, and on GSM8K the
demo's hand-written arithmetic gate through the real engine. The policies that are not auto's
candidates (``consistency``: two cheap tiers agree or the top one answers; ``split``: a
fixed traffic split) are calibrated and measured alone. ``--ablation`` reruns auto
with each feature family alone, to show which signals help on which data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from unittest.mock import MagicMock

import numpy as np

from datasets import HERE, REPO, all_datasets
from langchain_tiered_router.analysis.eval.calibration import calibrate, ladder_table
from langchain_tiered_router.analysis.eval.data import split_by_hash
from langchain_tiered_router.analysis.eval.harness import evaluate, evaluate_config, reference_points
from langchain_tiered_router.analysis.eval.metrics import bootstrap_parity_ci, summarize_run
from langchain_tiered_router.analysis.eval.strategies import ScoreStrategy
from langchain_tiered_router.analysis.eval.training import TrainingData
from langchain_tiered_router.core.config import load_config
from langchain_tiered_router.core.features import FeatureSpec

# Policies that are not among auto's candidates, run alone so the table has every policy.
ALONE = ("consistency", "split")
SPECS = {"all": FeatureSpec(), "tokens": FeatureSpec(embedding=False, signals=False),
         "embedding": FeatureSpec(tokens=False, signals=False), "signals": FeatureSpec(tokens=False, embedding=False)}


def litellm_complexity():
    """LiteLLM's rule-based complexity router, run locally as its own eval builds it."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

    return ComplexityRouter(model_name="bench", ctx=MagicMock())


def decision_times(model, ladder, prompts, chars: int) -> tuple[float, float, float, float]:
    """Median and p95 ms of the run-time start decision on prompts cut or padded to
    ``chars``: wall time, then the CPU time of the thread (what the decision costs,
    whatever else the machine runs: on a busy one, wall p95 is the scheduler's)."""
    wall, cpu = [], []
    for prompt in prompts[:300]:
        text = (prompt * (chars // max(1, len(prompt)) + 1))[:chars]
        started, started_cpu = time.perf_counter(), time.thread_time()
        model.choose_start(text, ladder)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    wall.sort()
    cpu.sort()
    p95 = int(0.95 * (len(wall) - 1))
    return statistics.median(wall), wall[p95], statistics.median(cpu), cpu[p95]


def _row(result: dict, name: str) -> dict:
    c = result["candidates"].get(name, {})
    return {"savings": c.get("savings"), "parity": c.get("parity"), "curve": c.get("curve_savings_at_target"),
            "certified": c.get("certified_points"), "points": c.get("points"), "tier_share": c.get("tier_share")}


def run_dataset(ds, spec_names: list[str], target: float, lite) -> dict:
    items, ladder = ds.load(), ds.ladder
    cal, test = split_by_hash(items, 0.5)
    has_answers = all(i.outcomes[t].response for i in items for t in ladder.names[:-1])
    table = ladder_table(test, ladder)
    out: dict = {"n_calibration": len(cal), "n_test": len(test), "tiers": ladder.names,
                 "tier_quality": dict(zip(ladder.names, table.q.mean(axis=0).tolist())),
                 "tier_cost_share": dict(zip(ladder.names, (table.c.sum(axis=0) / table.c_base.sum()).tolist())),
                 "published": ds.published, **reference_points(table, target, target), "features": {}}
    for spec_name in spec_names:
        spec = SPECS[spec_name]
        started = time.perf_counter()
        cal_data = TrainingData.build(cal, ladder.names, spec, with_answers=has_answers)
        test_data = TrainingData.build(test, ladder.names, spec, with_answers=has_answers)
        calibration = calibrate(cal, ladder, target, spec=spec, data=cal_data)
        result = evaluate(calibration, test, ladder, data=test_data)
        entry = {"chosen": result["policy"], "savings": result["savings"], "parity": result["parity"],
                 "parity_ci": result["parity_ci"], "random_savings": result["random_savings"],
                 "headroom_recovered": result["headroom_recovered"], "tier_share": result["tier_share"],
                 "calls_share": result["calls_share"], "curve": result["curve_savings_at_target"],
                 "strategies": {n: _row(result, n) for n in result["candidates"] if n != "baseline"},
                 "notes": calibration.notes, "guarantee": calibration.guarantee(),
                 "seconds": time.perf_counter() - started}
        if spec_name == "all" and calibration.model.quality:
            calibration.model.warm(ladder)  # as policy: {kind: auto} loads it: every member ready
            entry["decision_ms_1k"] = decision_times(calibration.model, ladder, [i.prompt for i in test], 1000)
            entry["decision_ms_100k"] = decision_times(calibration.model, ladder, [i.prompt for i in test], 100_000)
        out["features"][spec_name] = entry
        print(f"{ds.name:16s} {spec_name:9s} auto -> {result['policy']:10s} savings {result['savings']:.3f} "
              f"parity {result['parity']:.3f} headroom {result['headroom_recovered']} ({entry['seconds']:.0f}s)",
              flush=True)
    out["alone"] = {}
    for policy in ALONE:  # the policies auto does not try, each calibrated on its own
        calibration = calibrate(cal, ladder, target, policy=policy)
        if not any(c.name == policy for c in calibration.candidates):
            out["alone"][policy] = {"note": "; ".join(calibration.notes) or "not supported by this data"}
            continue
        result = evaluate(calibration, test, ladder)
        out["alone"][policy] = {**_row(result, policy), "chosen": result["policy"], "shipped_savings": result["savings"],
                                "shipped_parity": result["parity"]}
    if ladder.baseline.index == len(ladder) - 1 and len(ladder) == 2:
        cal_scores = np.array([lite.classify(i.prompt)[1] for i in cal])
        test_scores = np.array([lite.classify(i.prompt)[1] for i in test])
        calibration = calibrate(cal, ladder, target, policy="none",
                                extra=[ScoreStrategy(len(ladder) - 1, "litellm_complexity", cal_scores)])
        cand = next(c for c in calibration.candidates if c.name == "litellm_complexity")
        cand.strategy = ScoreStrategy(len(ladder) - 1, "litellm_complexity", test_scores)
        calibration.chosen = cand if cand.chosen is not None and cand.savings_lb_all > 0 else calibration.chosen
        result = evaluate(calibration, test, ladder)
        out["litellm_complexity"] = _row(result, "litellm_complexity")
        to_strong = np.array([str(lite.classify(i.prompt)[0]).split(".")[-1].upper() in ("COMPLEX", "REASONING")
                              for i in test])
        served = np.where(to_strong, table.base, 0)
        run = summarize_run(table, served, table.c[np.arange(table.n), served])
        out["litellm_complexity_default_tiers"] = {"savings": run["savings"], "parity": run["parity"]}
    if ds.name == "gsm8k":  # the demo's hand-written arithmetic gate, through the real engine
        gate = evaluate_config(load_config(REPO / "langchain_tiered_router" / "data" / "demo" / "replay_router.yaml"), test)
        out["rule_gate_check_gsm8k"] = {"savings": gate["savings"], "parity": gate["parity"]}
    return out


def markdown(results: dict) -> str:
    t = results["target_parity"]
    pct = lambda v: "-" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    held = lambda r: "-" if r.get("savings") is None else f"{pct(r['savings'])} @ {pct(r['parity'])}"  # noqa: E731
    lines = [f"| data | router | held out: savings @ parity | curve: savings at parity {t:.2f} | "
             "headroom recovered | served by tier |", "|---|---|---|---|---|---|"]
    for name, d in results["datasets"].items():
        auto = d["features"]["all"]
        shares = ", ".join(f"{k} {pct(v)}" for k, v in auto["tier_share"].items())
        lines.append(f"| {name} | **auto -> {auto['chosen']}** | **{held(auto)}** | {pct(auto['curve'])} | "
                     f"{pct(auto['headroom_recovered'])} | {shares} |")
        for sname, s in auto["strategies"].items():
            lines.append(f"| {name} | {sname} | {held(s)} | {pct(s['curve'])} | | |")
        for policy, r in d.get("alone", {}).items():
            if "note" in r:
                lines.append(f"| {name} | `--policy {policy}` alone | - ({r['note']}) | - | | |")
            else:  # its certified point (a losing or uncertified one ships the baseline: 0 %)
                lines.append(f"| {name} | `--policy {policy}` alone | {held(r)} | {pct(r['curve'])} | | |")
        if "litellm_complexity" in d:
            lines.append(f"| {name} | LiteLLM complexity (calibrated) | {held(d['litellm_complexity'])} | "
                         f"{pct(d['litellm_complexity']['curve'])} | | |")
            lines.append(f"| {name} | LiteLLM complexity (its default tiers) | "
                         f"{held(d['litellm_complexity_default_tiers'])} | - | | |")
        if "rule_gate_check_gsm8k" in d:
            lines.append(f"| {name} | demo arithmetic gate (engine) | {held(d['rule_gate_check_gsm8k'])} | - | | |")
        lines.append(f"| {name} | random mix of tiers | {pct(d['random_savings_at_target'])} @ {pct(t)} | "
                     f"{pct(d['random_savings_at_target'])} | 0 % | |")
        lines.append(f"| {name} | oracle (one call) | {pct(d['oracle_savings'])} @ {pct(d['oracle_parity'])} | - | 100 % | |")
        if d["published"] is not None:
            lines.append(f"| {name} | RouteLLM (published, curve) | - | {pct(d['published'])} | | |")
    return "\n".join(lines) + "\n"


def ablation_markdown(results: dict) -> str:
    pct = lambda v: "-" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    specs = list(next(iter(results["datasets"].values()))["features"])
    lines = ["| data | " + " | ".join(f"{s}: held out (curve)" for s in specs) + " |",
             "|---|" + "---|" * len(specs)]
    for name, d in results["datasets"].items():
        cells = [f"{pct(d['features'][s]['savings'])} ({pct(d['features'][s]['curve'])})" for s in specs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def timing_markdown(results: dict) -> str:
    rows = ["| data | start decision ms, 1k-char prompt: wall median / p95 (CPU median / p95) | 100k-char prompt: "
            "wall median / p95 (CPU median / p95) |", "|---|---|---|"]
    for name, d in results["datasets"].items():
        e = d["features"]["all"]
        if "decision_ms_1k" in e:
            a, b = e["decision_ms_1k"], e["decision_ms_100k"]
            rows.append(f"| {name} | {a[0]:.3f} / {a[1]:.3f} ({a[2]:.3f} / {a[3]:.3f}) | "
                        f"{b[0]:.3f} / {b[1]:.3f} ({b[2]:.3f} / {b[3]:.3f}) |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=None, help="comma list (default: all)")
    parser.add_argument("--target-parity", type=float, default=0.95)
    parser.add_argument("--ablation", action="store_true", help="also run each feature family alone")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "routing", help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    names = set(args.datasets.split(",")) if args.datasets else None
    lite = litellm_complexity()
    specs = list(SPECS) if args.ablation else ["all"]
    results = {"target_parity": args.target_parity, "datasets": {}}
    for ds in all_datasets(only=names):
        results["datasets"][ds.name] = run_dataset(ds, specs, args.target_parity, lite)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=float))
    text = markdown(results) + "\n" + timing_markdown(results)
    if args.ablation:
        text += "\n" + ablation_markdown(results)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
