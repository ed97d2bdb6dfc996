"""The traffic split: a calibrated mix of tiers for data where no signal tells requests apart.

Replayed by the harness and served by the engine through one rule (``core.split``),
and certified like every strategy, so its promise is checked here on fresh draws."""

from __future__ import annotations

import random

import numpy as np
import pytest
from typer.testing import CliRunner

from langchain_tiered_router.analysis.eval.calibration import calibrate, ladder_table
from langchain_tiered_router.analysis.eval.data import EvalItem, Outcome, split_by_hash
from langchain_tiered_router.analysis.eval.harness import evaluate, evaluate_config
from langchain_tiered_router.analysis.eval.metrics import random_savings_at
from langchain_tiered_router.analysis.eval.strategies import RecordedSignals, SplitStrategy
from langchain_tiered_router.cli import app
from langchain_tiered_router.core import RouteRequest
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.config import load_config
from langchain_tiered_router.core.model_file import load_routing_model
from langchain_tiered_router.core.split import split_shares, split_step, split_unit
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.tiers import Ladder

from .test_calibration import write_outcomes
from .test_data_and_cli import ROUTER

THREE = {"tiers": [{"name": "small", "model_id": "amazon.nova-micro-v1:0"},
                   {"name": "medium", "model_id": "amazon.nova-lite-v1:0"},
                   {"name": "large", "model_id": "amazon.nova-pro-v1:0"}], "telemetry": {"sinks": []}}
WORDS = "apple river stone cloud lamp violin tiger paper window garden honey marble".split()


def signal_free(n: int, seed: int, right: dict[str, float]) -> list[EvalItem]:
    """Each tier right with its own probability, independently of the prompt and of the
    other tiers: nothing a router reads says which requests the cheap tier gets right."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        prompt = f"item {seed}-{i}: " + " ".join(rng.choice(WORDS) for _ in range(8))
        items.append(EvalItem(str(i), prompt, {tier: Outcome(float(rng.random() < p), f"{tier} says {i % 7}", 60, 20)
                                               for tier, p in right.items()}))
    return items


def test_the_rule_serves_each_share_of_requests_and_the_same_prompt_the_same_tier():
    texts = [f"request {i} " + "x" * (i % 13) for i in range(20_000)]
    units = np.array([split_unit(t) for t in texts])
    assert units.min() >= 0 and units.max() < 1 and abs(units.mean() - 0.5) < 0.01
    assert split_unit("same prompt") == split_unit("same prompt") != split_unit("same prompt.")
    for at, want in ((0.0, [1, 0, 0]), (0.3, [0.7, 0.3, 0]), (1.0, [0, 1, 0]), (1.6, [0, 0.4, 0.6]), (2.0, [0, 0, 1])):
        steps = np.array([split_step(at, u, 3) for u in units])
        got = [float(np.mean(steps == s)) for s in range(3)]
        assert got == pytest.approx(want, abs=0.012), at
        assert list(split_shares(["large", "medium", "small"], at).values()) == pytest.approx(want)
    # moving the point only moves requests one way: none goes back to a dearer tier
    before = np.array([split_step(0.5, u, 3) for u in units])
    after = np.array([split_step(0.8, u, 3) for u in units])
    assert np.all(after >= before)


def test_the_split_keeps_the_promise_where_nothing_tells_requests_apart():
    ladder = Ladder.from_config(load_config(ROUTER))
    right = {"cheap": 0.80, "frontier": 0.90}
    cal = signal_free(1500, 1, right)
    calibration = calibrate(cal, ladder, 0.95, policy="split")
    assert calibration.chosen.name == "split" and calibration.model.strategy == "split"
    assert calibration.model.split_path == ["frontier", "cheap"]
    fresh = signal_free(20_000, 2, right)
    result = evaluate(calibration, fresh, ladder, curves=False)
    table = ladder_table(fresh, ladder)
    # about the random mix's savings at the target, less the margin the promise costs
    assert result["parity"] >= 0.95 - 0.01
    assert 0.5 * random_savings_at(table, 0.95) < result["savings"] <= random_savings_at(table, 0.94)
    share = result["tier_share"]["cheap"]
    assert share == pytest.approx(calibration.model.split_at, abs=0.02)


def test_the_split_promise_holds_in_at_least_95_percent_of_calibrations():
    # 20 calibration sets of 400, each point's true parity measured on 20,000 fresh requests
    ladder = Ladder.from_config(load_config(ROUTER))
    right = {"cheap": 0.75, "frontier": 0.92}
    truth = signal_free(20_000, 999, right)
    parities, shares = [], []
    for draw in range(20):
        calibration = calibrate(signal_free(400, draw, right), ladder, 0.95, policy="split")
        result = evaluate(calibration, truth, ladder, curves=False)
        parities.append(result["parity"])
        shares.append(result["tier_share"]["cheap"])
    assert sum(p < 0.95 - 0.004 for p in parities) <= 3, parities  # P(4+ of 20 | 5 % each) = 1.6 %
    assert np.mean(shares) > 0.05, shares  # and it does route: a promise kept by never routing proves nothing


def test_a_three_tier_split_walks_down_through_the_middle_tier():
    ladder = Ladder.from_config(load_config(THREE))
    items = signal_free(3000, 5, {"small": 0.88, "medium": 0.93, "large": 0.95})
    strategy = SplitStrategy.down_from_baseline(2, ladder_table(items, ladder))
    assert strategy.path.tolist() == [2, 1, 0]
    calibration = calibrate(items, ladder, 0.95, policy="split")
    result = evaluate(calibration, signal_free(6000, 6, {"small": 0.88, "medium": 0.93, "large": 0.95}), ladder)
    assert result["tier_share"]["medium"] > 0.3  # the middle tier takes traffic
    assert result["savings"] > 0 and result["parity"] >= 0.94
    # the split's own tiers only: a dearer tier below the baseline is never on the path
    pricey = ladder_table(items, ladder)
    pricey.c[:, 1] = pricey.c[:, 2] * 1.5
    assert SplitStrategy.down_from_baseline(2, pricey).path.tolist() == [2, 0]


def test_a_calibrated_split_is_served_by_the_engine_request_by_request_as_the_harness_replayed_it(tmp_path):
    right = {"cheap": 0.86, "frontier": 0.93}
    cal, test = split_by_hash(signal_free(2400, 8, right), 0.5)
    out = tmp_path / "router_model.npz"
    result = CliRunner().invoke(app, ["calibrate", "--config", str(ROUTER), "--data",
                                      str(write_outcomes(tmp_path / "cal.jsonl", cal)), "--out", str(out),
                                      "--policy", "split"])
    assert result.exit_code == 0, result.output
    model = load_routing_model(out)
    assert model.strategy == "split" and model.split_path == ["frontier", "cheap"] and 0 < model.split_at <= 1

    config = load_config(ROUTER).model_dump(mode="json", by_alias=True)
    config["policy"] = {"kind": "auto", "path": str(out)}
    config = load_config(config)
    ladder = Ladder.from_config(config)
    simulated = evaluate(calibrate(cal, ladder, 0.95, policy="split"), test, ladder)
    through_engine = evaluate_config(config, test)
    assert through_engine["savings"] == pytest.approx(simulated["savings"], abs=1e-9)
    assert through_engine["parity"] == pytest.approx(simulated["parity"], abs=1e-9)
    signals = RecordedSignals.read(test, ladder.names)
    expected = np.where(signals.unit < model.split_at, "cheap", "frontier").tolist()
    assert through_engine["served"] == expected  # request by request, not only on average

    router = build_router(config, telemetry=False)
    backend = ScriptedBackend({"*": "an answer"})
    first = router.route(RouteRequest(test[0].prompt), backend)
    again = router.route(RouteRequest(test[0].prompt), backend)
    assert first.tier == again.tier == expected[0] and first.policy == "auto:split"
    assert "traffic split (frontier" in first.start_reason and "by a hash of the prompt" in first.start_reason
