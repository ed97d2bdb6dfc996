"""Routing quality on RouteLLM's recorded GSM8K, MMLU and MT-Bench outcomes, every router in one run.

    python benchmarks/routellm_bench.py [--data ../shared/data/routellm] [--target-parity 0.95]

Each dataset is split 50/50 by sha256 of the prompt; every learned router (and the
LiteLLM complexity-router heuristic, whose score is calibrated the same way) is trained
and calibrated on the first half only and measured on the second with the project's
metric (core/eval/metrics.py). Writes benchmarks/results/routellm.json and .md.
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

from langchain_tiered_router.core.config import load_config
from langchain_tiered_router.analysis.eval.data import load_routellm, split_by_hash
from langchain_tiered_router.analysis.eval.harness import calibrate, evaluate_config, evaluate_router, tier_table
from langchain_tiered_router.analysis.eval.metrics import (bootstrap_parity_ci, oracle_point,
                                                       random_savings_at)
from langchain_tiered_router.analysis.eval.routers import LearnedRouter
from langchain_tiered_router.core.tiers import Ladder

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# RouteLLM paper / project page: cost reduction at 95 % of GPT-4's performance ("over 85 %" on MT-Bench)
PUBLISHED = {"gsm8k": 0.35, "mmlu": 0.45, "mt_bench": 0.85}


class LiteLLMComplexity(LearnedRouter):
    """LiteLLM's rule-based complexity router (run locally): its score, thresholded."""

    name = "litellm_complexity"

    def __init__(self, cheap, strong):
        super().__init__(cheap, strong)
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

        self.router = ComplexityRouter(model_name="bench", ctx=MagicMock())  # as LiteLLM's own eval builds it

    def fit(self, items):
        return self

    def scores(self, items):
        return np.array([self.router.classify(i.prompt)[1] for i in items])

    def tiers(self, items):
        return [self.router.classify(i.prompt)[0] for i in items]

    def cv_scores(self, items, k=5):
        return self.scores(items)  # nothing is trained

    def average_folds(self):
        return self

    def to_models(self, threshold, meta):
        raise NotImplementedError


def decision_times(router: LearnedRouter, items, repeat: int = 1) -> tuple[float, float]:
    times = []
    for item in items[:300]:
        started = time.perf_counter()
        router.scores([item])
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def run(data_dir: Path, target: float) -> dict:
    config = load_config(REPO / "examples" / "eval" / "routellm_router.yaml")
    ladder = Ladder.from_config(config)
    cheap, strong = ladder.cheapest.name, ladder.baseline.name
    out: dict = {"target_parity": target, "datasets": {}}
    from langchain_tiered_router.analysis.eval import routers as R

    R.ROUTERS["litellm_complexity"] = LiteLLMComplexity
    for name, path, routers in (("gsm8k", data_dir / "gsm8k" / "gsm8k_responses.csv",
                                 ["classifier", "verifier", "blend", "litellm_complexity"]),
                                ("mmlu", data_dir / "mmlu", ["classifier", "litellm_complexity"]),
                                ("mt_bench", data_dir / "mt_bench", ["classifier", "verifier", "litellm_complexity"])):
        items = load_routellm(path, cheap_tier=cheap, frontier_tier=strong)
        cal, test = split_by_hash(items, 0.5)
        table = tier_table(test, ladder, cheap, strong)
        oracle = oracle_point(table)
        rows = {}
        for router_name in routers:
            started = time.perf_counter()
            calibration = calibrate(router_name, cal, ladder, cheap, strong, target)
            result = evaluate_router(calibration, test, ladder, cheap, strong)
            median, p95 = decision_times(calibration.router, test)
            rows[router_name] = {k: v for k, v in result.items() if not k.startswith("_")}
            rows[router_name].update(decision_ms_median=median, decision_ms_p95=p95,
                                     wall_s=time.perf_counter() - started)
            print(f"{name:6s} {router_name:20s} savings {result['savings']:.3f} parity {result['parity']:.3f} "
                  f"curve@{target} {result['curve_savings_at_target']}")
        if name == "gsm8k":  # the demo's hand-written verifier gate, through the real engine
            gate_config = load_config(REPO / "langchain_tiered_router" / "data" / "demo" / "replay_router.yaml")
            result = evaluate_config(gate_config, test)
            result["random_savings"] = random_savings_at(table, result["parity"])
            rows["rule_gate_check_gsm8k"] = result
            print(f"{name:6s} rule gate            savings {result['savings']:.3f} parity {result['parity']:.3f}")
        # LiteLLM's heuristic at its own default tiers: SIMPLE/MEDIUM -> cheap, COMPLEX/REASONING -> frontier
        lite = LiteLLMComplexity(cheap, strong)
        to_strong = np.array([str(t).split(".")[-1].upper() in ("COMPLEX", "REASONING") for t in lite.tiers(test)])
        served = np.where(to_strong, table.q_strong, table.q_cheap)
        cost = np.where(to_strong, table.c_strong, table.c_cheap)
        lo, hi = bootstrap_parity_ci(served, table.q_strong)
        rows["litellm_complexity_default_tiers"] = {
            "savings": float(1 - cost.sum() / table.c_strong.sum()), "parity": float(served.mean() / table.q_strong.mean()),
            "parity_ci": {"low": lo, "high": hi}, "tier_share": {strong: float(to_strong.mean())},
            "random_savings": random_savings_at(table, float(served.mean() / table.q_strong.mean()))}
        out["datasets"][name] = {
            "n_calibration": len(cal), "n_test": len(test),
            "cheap_quality": float(table.q_cheap.mean()), "frontier_quality": float(table.q_strong.mean()),
            "random_savings_at_target": random_savings_at(table, target),
            "oracle": {"savings": oracle.savings(table), "parity": oracle.parity(table)},
            "routellm_published_savings_at_95": PUBLISHED[name],
            "routers": rows,
        }
    return out


def markdown(results: dict) -> str:
    t = results["target_parity"]
    lines = [f"| data | router | held-out: savings @ parity (95 % CI) | random mix at that parity "
             f"| test curve: savings at parity {t:.2f} | APGR | CPT(50 %) | CPT(80 %) | decision ms (median / p95) |",
             "|---|---|---|---|---|---|---|---|---|"]
    pct = lambda v: "-" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    for name, ds in results["datasets"].items():
        for router, r in ds["routers"].items():
            ci = r.get("parity_ci", {})
            held = f"{pct(r['savings'])} @ {pct(r['parity'])}"
            if ci:
                held += f" ({pct(ci['low'])}-{pct(ci['high'])})"
            times = (f"{r['decision_ms_median']:.3f} / {r['decision_ms_p95']:.3f}"
                     if "decision_ms_median" in r else "-")
            rnd = pct(r.get("random_savings"))
            lines.append(f"| {name} | {router} | {held} | {rnd} | {pct(r.get('curve_savings_at_target'))} | "
                         f"{r['apgr']:.3f} | {pct(r.get('cpt50'))} | {pct(r.get('cpt80'))} | {times} |"
                         if "apgr" in r else f"| {name} | {router} | {held} | {rnd} | - | - | - | - | {times} |")
        lines.append(f"| {name} | random mix | {pct(ds['random_savings_at_target'])} @ {pct(t)} | - | "
                     f"{pct(ds['random_savings_at_target'])} | 0.500 | 50.0 % | 80.0 % | - |")
        lines.append(f"| {name} | oracle | {pct(ds['oracle']['savings'])} @ {pct(ds['oracle']['parity'])} | - | - | - | "
                     "- | - | - |")
        lines.append(f"| {name} | RouteLLM (published) | - | - | {pct(ds['routellm_published_savings_at_95'])} | - | "
                     "- | - | - |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "routellm")
    parser.add_argument("--target-parity", type=float, default=0.95)
    args = parser.parse_args()
    results = run(args.data, args.target_parity)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "routellm.json").write_text(json.dumps(results, indent=2, default=float))
    table = markdown(results)
    (HERE / "results" / "routellm.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
