"""Measure a calibrated router on test items it never saw, with the fixed metric.

The shipped model (each request judged by the fold heads fitted without its fold) predicts on the test items; each strategy
replays its calibrated operating point there. Beside the headline ("X % cheaper at Y %
parity") the result says how much of the oracle's headroom over a random mix the router
recovered, so a user sees at once whether routing works on their data.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Callable, Sequence

import numpy as np

from ...core.config import RouterConfig
from ...core.tiers import Ladder
from .calibration import Calibration, Candidate, ladder_table
from .data import EvalItem
from .metrics import (LadderTable, apgr, best_savings_at, bootstrap_parity_ci, cpt, curve_auc, headroom_recovered,
                      oracle_point, point_of, random_savings_at, summarize_run)
from .replay import ReplayBackend
from .strategies import RecordedSignals
from .training import Predictions, TrainingData, predict

__all__ = ["evaluate", "evaluate_config", "reference_points"]

CI_METHOD = "paired percentile bootstrap over test items, 2,000 resamples"


def reference_points(table: LadderTable, parity: float, target: float) -> dict[str, Any]:
    """The random mix (at ``parity`` and at ``target``) and the one-call oracle."""
    oracle = oracle_point(table)
    return {"random_savings": random_savings_at(table, parity),
            "random_savings_at_target": random_savings_at(table, target),
            "oracle_savings": oracle.savings(table), "oracle_parity": oracle.parity(table)}


def _shares(table: LadderTable, served: np.ndarray) -> dict[str, float]:
    return {name: float(np.mean(served == k)) for k, name in enumerate(table.names)}


def _test_predictions(cal: Calibration, items: Sequence[EvalItem], ladder: Ladder,
                      progress: Callable[[str, float], None], data: TrainingData | None) -> Predictions | None:
    if not cal.heads.quality:
        return None
    cascade = bool(cal.heads.stay)
    if data is not None and data.spec == cal.spec and (data.has_answers or not cascade):
        return predict(cal.heads, data, np.arange(len(items)), ladder, cal.cost_scale)
    total = len(items) * (1 + (2 * len(ladder) - 3 if cascade else 0))
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if done[0] % 50 == 0:
            progress(f"reading features of {len(items)} test requests", 0.9 * done[0] / max(1, total))

    data = TrainingData.build(items, ladder.names, cal.spec, with_answers=cascade, progress=tick)
    return predict(cal.heads, data, np.arange(len(items)), ladder, cal.cost_scale)


def _candidate_result(cand: Candidate, preds, table: LadderTable, signals, target: float,
                      curves: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"strategy": cand.name, "certified_points": cand.certified,
                           "points": int(len(cand.params)), "param": cand.param, "delta": cand.delta,
                           "expected_savings": cand.expected_savings,
                           "calibration": {**cand.cal, "savings_lower_bound": cand.savings_lb,
                                           "savings_lower_bound_all_points": cand.savings_lb_all}}
    # every operating point on the test data, certified or not: the curve a perfect
    # calibration could pick from (RouteLLM's way of reporting)
    curve = [point_of(table, *cand.strategy.simulate(preds, table, signals, p)) for p in cand.params] if curves else []
    out["curve_savings_at_target"] = best_savings_at(table, curve, target) if curves else None
    out["_curve"] = curve
    if cand.chosen is not None:
        served, cost = cand.strategy.simulate(preds, table, signals, cand.params[cand.chosen])
        out.update(summarize_run(table, served, cost))
        out["tier_share"] = _shares(table, served)
    return out


def evaluate(cal: Calibration, items: Sequence[EvalItem], ladder: Ladder, *, seed: int = 0,
             data: TrainingData | None = None, curves: bool = True,
             progress: Callable[[str, float], None] = lambda msg, frac: None) -> dict[str, Any]:
    """Every candidate on the test items, the chosen one as the headline (``data``: the
    test items' features, when already read). ``curves=False`` skips replaying every
    operating point (the curve figures come back None): two thirds of the time on a
    large test set, for callers that want the calibrated point only."""
    table = ladder_table(items, ladder)
    signals = RecordedSignals.read(items, ladder.names)
    started = time.perf_counter()
    preds = _test_predictions(cal, items, ladder, progress, data)
    featurise_ms = (time.perf_counter() - started) * 1000 / max(1, len(items))
    progress("replaying the operating points", 0.95)
    results = {cand.name: _candidate_result(cand, preds, table, signals, cal.target_parity, curves)
               for cand in cal.candidates}
    chosen = results[cal.chosen.name]
    served, cost = cal.chosen.strategy.simulate(preds, table, signals, cal.chosen.params[cal.chosen.chosen or 0])
    served_q = table.served_quality(served)
    lo, hi = bootstrap_parity_ci(served_q, table.q_base, seed=seed)
    refs = reference_points(table, chosen["parity"], cal.target_parity)
    curve = chosen.get("_curve") if len(chosen.get("_curve") or []) > 1 else []
    notes = list(cal.notes)
    if cal.chosen.strategy.needs_answers:
        silent = [t for t in ladder.names[:-1] if not all(i.outcomes[t].response for i in items)]
        if silent:
            notes.append(f"{cal.chosen.name} reads the answers of the tiers it may escalate from, and the test data "
                         f"lacks answer text for {', '.join(silent)}: it judged empty answers there, and its figures "
                         "here are not what it does on real traffic")
    out: dict[str, Any] = {
        "n": table.n, "policy": cal.chosen.name, "param": cal.chosen.param,
        "savings": chosen["savings"], "parity": chosen["parity"], "quality": chosen["quality"],
        "baseline_quality": chosen["baseline_quality"], "tier_share": chosen["tier_share"],
        "calls_share": {name: float(np.mean(_called(cal, preds, table, signals, k))) for k, name in enumerate(table.names)},
        **refs,
        "headroom_recovered": headroom_recovered(chosen["savings"], refs["random_savings"], refs["oracle_savings"]),
        "curve_savings_at_target": max((v["curve_savings_at_target"] for v in results.values()
                                        if v.get("curve_savings_at_target") is not None), default=None),
        "apgr": apgr(table, curve) if curve else None, "cpt50": cpt(table, curve, 0.5) if curve else None,
        "cpt80": cpt(table, curve, 0.8) if curve else None, "auc": curve_auc(table, curve) if curve else None,
        "parity_ci": {"low": lo, "high": hi, "level": 0.95, "method": CI_METHOD},
        "target_parity": cal.target_parity,
        "calibration": {"guarantee": cal.guarantee(), "bound": cal.bound, "delta": cal.delta,
                        "strategies_tried": cal.tested, "regularisation_c": cal.c, "notes": notes,
                        "chosen": {**cal.chosen.cal, "savings_lower_bound": cal.chosen.savings_lb,
                                   "savings_lower_bound_all_points": cal.chosen.savings_lb_all}},
        "candidates": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in results.items()},
        "featurise_ms_mean": featurise_ms,
        "cost_usd": chosen["cost_usd"], "baseline_cost_usd": chosen["baseline_cost_usd"],
        "_curve": curve, "_table": table,
        "_curves": {k: v["_curve"] for k, v in results.items() if len(v.get("_curve") or []) > 1},
    }
    return out


def _called(cal: Calibration, preds, table: LadderTable, signals, k: int) -> np.ndarray:
    """Which requests called tier ``k`` (a cascade calls every tier it climbs through)."""
    cand = cal.chosen
    served, _ = cand.strategy.simulate(preds, table, signals, cand.params[cand.chosen or 0])
    name = cand.name
    if name == "consistency":
        return (served >= k) if k >= 2 else np.ones(table.n, bool)
    if name in ("cascade", "confidence"):
        return served >= k
    if name == "blend":
        start = np.argmax(preds.quality - (cand.param or 0.0) * preds.cost, axis=1)
        return (start <= k) & (served >= k)
    return served == k


def evaluate_config(config: RouterConfig, items: Sequence[EvalItem]) -> dict[str, Any]:
    """The router config as written (policy, gates, classifier, trained model), run
    through the real engine on recorded answers: the served tier's recorded score is the
    quality, every call's recorded tokens the cost."""
    from ...core.build import build_router
    from ...core.types import RouteRequest

    router = build_router(config, telemetry=False)
    table = ladder_table(items, router.ladder)  # refuses data the headline cannot be measured on
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
        base_costs.append(float(base.cost(b.usage) or Decimal(0)))
    sq, bq = np.array(served_q), np.array(base_q)
    lo, hi = bootstrap_parity_ci(sq, bq)
    share = {t: served.count(t) / len(served) for t in router.ladder.names}
    savings = float(1 - sum(costs) / sum(base_costs))
    parity = float(sq.mean() / bq.mean())
    refs = reference_points(table, parity, parity)
    return {"n": len(items), "policy": f"config:{router.policy.name}", "param": None,
            "savings": savings, "quality": float(sq.mean()), "baseline_quality": float(bq.mean()),
            "parity": parity, "tier_share": share, "served": served,
            "random_savings": refs["random_savings"], "oracle_savings": refs["oracle_savings"],
            "oracle_parity": refs["oracle_parity"],
            "headroom_recovered": headroom_recovered(savings, refs["random_savings"], refs["oracle_savings"]),
            "parity_ci": {"low": lo, "high": hi, "level": 0.95, "method": CI_METHOD},
            "cost_usd": sum(costs), "baseline_cost_usd": sum(base_costs)}
