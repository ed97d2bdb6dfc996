"""Evaluate a router on labelled data: train and calibrate on one part, test on another.

``calibrate`` picks the threshold on out-of-fold scores of the calibration data so
that a one-sided 95 % bootstrap lower bound of parity meets the target: the promise is
made on a pessimistic estimate, so it holds on unseen data with margin. ``evaluate``
then measures the final model on the test data with the fixed metric.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Sequence

import numpy as np

from ...core.config import RouterConfig
from ...core.pricing import Usage
from ...core.tiers import Ladder
from .data import EvalItem
from .metrics import (TierTable, apgr, bootstrap_counts, bootstrap_parity_ci, cpt, curve_auc, oracle_point,
                      parity_lower_bounds, random_savings_at, score_curve)
from .routers import ROUTERS, Choices, LearnedRouter
from .replay import ReplayBackend

__all__ = ["tier_table", "Calibration", "calibrate", "evaluate_router", "evaluate_config", "CALIBRATION_METHOD"]

CALIBRATION_METHOD = ("threshold chosen on 5-fold out-of-fold scores of the calibration data (the final model "
                      "averages the 5 fold models, so its scores share their scale) so that a one-sided 95 % paired-bootstrap lower bound of parity (1,000 resamples), widened by "
                      "sqrt(2) for the noise of the unseen sample, meets the target")


def tier_table(items: Sequence[EvalItem], ladder: Ladder, cheap: str, strong: str) -> TierTable:
    """Scores and per-request costs (priced as ``Decimal``, held as float) of two tiers."""
    def cost(tier: str, item: EvalItem) -> float:
        o = item.outcomes[tier]
        value = ladder[tier].cost(Usage(o.input_tokens, o.output_tokens))
        if value is None:
            raise ValueError(f"tier {tier!r} has no price; set price: in the router config")
        return float(value)

    return TierTable(np.array([i.outcomes[cheap].score for i in items]),
                     np.array([i.outcomes[strong].score for i in items]),
                     np.array([cost(cheap, i) for i in items]), np.array([cost(strong, i) for i in items]))


def _sweep(choices: Choices, scores: np.ndarray):
    order = np.argsort(-scores, kind="stable")
    cost = choices.cost0.sum() + np.concatenate([[0.0], np.cumsum((choices.cost1 - choices.cost0)[order])])
    return order, cost


@dataclass
class Calibration:
    router: LearnedRouter
    threshold: float
    cal_parity_lower_bound: float
    cal_savings: float
    target_parity: float
    met: bool
    method: str = CALIBRATION_METHOD


def calibrate(router_name: str, items: Sequence[EvalItem], ladder: Ladder, cheap: str, strong: str,
              target_parity: float, *, resamples: int = 1000, seed: int = 0,
              progress: Callable[[str], None] = lambda _: None) -> Calibration:
    router = ROUTERS[router_name](cheap, strong)
    if router.needs_answers and any(not i.outcomes[cheap].response for i in items):
        raise ValueError(f"the {router_name} router needs the cheap tier's answer text, which this data lacks")
    table = tier_table(items, ladder, cheap, strong)
    progress("cross-validating")
    oof = router.cv_scores(items)
    choices = router.choices(items, table, out_of_fold=True)
    order, cost = _sweep(choices, oof)
    counts = bootstrap_counts(len(items), resamples, seed)
    lower = parity_lower_bounds(choices.q0, choices.q1, table.q_strong, order, counts)
    sorted_scores = oof[order]
    # a threshold can only fall between two different scores: tied items go together
    cut = np.concatenate([[True], sorted_scores[:-1] > sorted_scores[1:], [True]])
    ok = np.flatnonzero((lower >= target_parity) & cut)
    met = ok.size > 0
    k = int(ok[np.argmin(cost[ok])]) if met else len(items)
    if k == 0:
        threshold = float(sorted_scores[0]) + 1e-9 if len(items) else 1.0
    elif k >= len(items):
        threshold = -1.0  # everything to the strong tier
    else:
        threshold = float((sorted_scores[k - 1] + sorted_scores[k]) / 2)
    progress("averaging the fold models into the final one")
    router.average_folds()
    return Calibration(router, threshold, float(lower[k]), float(1 - cost[k] / table.c_strong.sum()),
                       target_parity, met)


def evaluate_router(cal: Calibration, items: Sequence[EvalItem], ladder: Ladder, cheap: str, strong: str,
                    *, seed: int = 0) -> dict[str, Any]:
    """The fixed metric of a calibrated router on test items."""
    router = cal.router
    table = tier_table(items, ladder, cheap, strong)
    started = time.perf_counter()
    scores = router.scores(items)
    decide_ms = (time.perf_counter() - started) * 1000 / max(1, len(items))
    choices = router.choices(items, table)
    strong_mask = scores > cal.threshold
    served_q = np.where(strong_mask, choices.q1, choices.q0)
    cost = np.where(strong_mask, choices.cost1, choices.cost0)
    base_q = table.q_strong
    quality, baseline_quality = float(served_q.mean()), float(base_q.mean())
    parity = quality / baseline_quality
    savings = float(1 - cost.sum() / table.c_strong.sum())
    lo, hi = bootstrap_parity_ci(served_q, base_q, seed=seed)
    curve_scores = scores
    _, curve = score_curve(table, curve_scores, cascade=router.cascade)
    oracle = oracle_point(table)
    paid_cheap = router.pays_cheap(items, strong_mask)
    return {
        "n": len(items),
        "policy": router.name,
        "threshold": cal.threshold,
        "savings": savings,
        "parity": parity,
        "quality": quality,
        "baseline_quality": baseline_quality,
        "tier_share": {cheap: float(1 - strong_mask.mean()), strong: float(strong_mask.mean())},
        "escalation_rate": float(strong_mask.mean()) if router.cascade else 0.0,
        "cheap_calls_share": float(np.mean(paid_cheap)),
        "random_savings": random_savings_at(table, parity),
        "oracle_savings": oracle.savings(table),
        "oracle_parity": oracle.parity(table),
        "apgr": apgr(table, curve),
        "cpt50": cpt(table, curve, 0.5),
        "cpt80": cpt(table, curve, 0.8),
        "auc": curve_auc(table, curve),
        # read off the test curve, as RouteLLM reports its numbers: not a held-out promise
        "curve_savings_at_target": _best_savings_at(table, curve, cal.target_parity),
        "parity_ci": {"low": lo, "high": hi, "level": 0.95,
                      "method": "paired percentile bootstrap over test items, 2,000 resamples"},
        "target_parity": cal.target_parity,
        "calibration": {"method": cal.method, "met": cal.met, "parity_lower_bound": cal.cal_parity_lower_bound,
                        "savings": cal.cal_savings},
        "decision_ms_mean": decide_ms,
        "cost_usd": float(cost.sum()),
        "baseline_cost_usd": float(table.c_strong.sum()),
        "_curve": curve,
        "_table": table,
    }


def _best_savings_at(table: TierTable, curve, target: float) -> float | None:
    ok = [p.savings(table) for p in curve.points if p.parity(table) >= target]
    return float(max(ok)) if ok else None


def evaluate_config(config: RouterConfig, items: Sequence[EvalItem]) -> dict[str, Any]:
    """The router config as written (policy, gates, classifier), run through the real
    engine on recorded answers: the served tier's recorded score is the quality."""
    from ...core.build import build_router
    from ...core.types import RouteRequest

    router = build_router(config, telemetry=False)
    backend = ReplayBackend()
    base = router.ladder.baseline
    served_q, base_q, costs, base_costs, served = [], [], [], [], []
    for item in items:
        result = router.route(RouteRequest(item.prompt, payload=item, request_id=item.id), backend)
        served.append(result.tier)
        served_q.append(item.outcomes[result.tier].score)
        b = item.outcomes[base.name]
        base_q.append(b.score)
        costs.append(float(result.cost_usd or Decimal(0)))
        base_costs.append(float(base.cost(Usage(b.input_tokens, b.output_tokens)) or Decimal(0)))
    sq, bq = np.array(served_q), np.array(base_q)
    lo, hi = bootstrap_parity_ci(sq, bq)
    share = {t: served.count(t) / len(served) for t in router.ladder.names}
    return {"n": len(items), "policy": f"config:{router.policy.name}", "threshold": None,
            "savings": float(1 - sum(costs) / sum(base_costs)), "quality": float(sq.mean()),
            "baseline_quality": float(bq.mean()), "parity": float(sq.mean() / bq.mean()), "tier_share": share,
            "parity_ci": {"low": lo, "high": hi, "level": 0.95,
                          "method": "paired percentile bootstrap over test items, 2,000 resamples"},
            "cost_usd": sum(costs), "baseline_cost_usd": sum(base_costs)}


