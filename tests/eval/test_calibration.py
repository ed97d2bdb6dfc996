"""Calibration keeps its promise on unseen data, and the trained files route live traffic."""

from __future__ import annotations

import random

import numpy as np
import pytest
from typer.testing import CliRunner

from langchain_tiered_router.cli import app
from langchain_tiered_router.core import RouteRequest, Router
from langchain_tiered_router.core.config import load_config
from langchain_tiered_router.analysis.eval.data import EvalItem, Outcome, split_by_hash
from langchain_tiered_router.analysis.eval.harness import calibrate, evaluate_router
from langchain_tiered_router.core.learned import load_router_model
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.tiers import Ladder

from .test_data_and_cli import ROUTER

TOPICS_HARD = ["integral", "theorem", "proof", "eigenvalue", "derivative"]
TOPICS_EASY = ["capital", "colour", "weekday", "spelling", "animal"]


def synthetic(n: int, seed: int) -> list[EvalItem]:
    """Known answer: cheap is right on easy topics (95 %) and wrong on hard ones (90 %);
    its wrong answers say 'maybe' more often."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        hard = rng.random() < 0.4
        topic = rng.choice(TOPICS_HARD if hard else TOPICS_EASY)
        cheap_right = rng.random() < (0.1 if hard else 0.95)
        answer = f"the answer is {i % 97}" + ("" if cheap_right or rng.random() < 0.3 else " maybe, not sure")
        prompt = f"question {i} about the {topic} of item {rng.randint(0, 10_000)}"
        items.append(EvalItem(str(i), prompt, {
            "cheap": Outcome(float(cheap_right), answer, 40, 10),
            "frontier": Outcome(float(rng.random() < 0.97), "frontier answer", 40, 30)}))
    return items


@pytest.mark.parametrize("policy", ["classifier", "verifier"])
def test_calibrated_parity_holds_on_unseen_data(policy):
    config = load_config(ROUTER)
    ladder = Ladder.from_config(config)
    cal, test = split_by_hash(synthetic(1600, seed=1), 0.5)
    target = 0.95
    calibration = calibrate(policy, cal, ladder, "cheap", "frontier", target)
    assert calibration.met and calibration.cal_parity_lower_bound >= target
    result = evaluate_router(calibration, test, ladder, "cheap", "frontier")
    assert result["parity"] >= target
    assert result["savings"] > result["random_savings"] + 0.1  # it learned the topics, not luck
    assert result["apgr"] > 0.7


def test_calibrate_cli_writes_files_that_route_live_traffic(tmp_path):
    import json

    data = tmp_path / "cal.jsonl"
    data.write_text("\n".join(json.dumps({"id": it.id, "prompt": it.prompt, "outcomes": {
        t: {"correct": bool(o.score), "response": o.response, "input_tokens": o.input_tokens,
            "output_tokens": o.output_tokens} for t, o in it.outcomes.items()}}) for it in synthetic(800, seed=2)))
    out = tmp_path / "router.npz"
    result = CliRunner().invoke(app, ["calibrate", "--config", str(ROUTER), "--data", str(data), "--policy", "blend",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    classifier_path, verifier_path = tmp_path / "router.classifier.npz", tmp_path / "router.verifier.npz"
    classifier, verifier = load_router_model(classifier_path), load_router_model(verifier_path)
    assert (classifier.kind, verifier.kind) == ("classifier", "verifier")
    assert classifier.meta["target_parity"] == 0.95
    hard = "question 1 about the eigenvalue of item 3"
    easy = "question 2 about the capital of item 5"
    assert classifier.scorer.score(hard) > classifier.scorer.score(easy)

    config = load_config(ROUTER).model_dump(mode="json", by_alias=True)
    config["policy"] = {"kind": "cascade", "classifier": {"kind": "trained", "path": str(classifier_path)}}
    config["tiers"][0]["gates"] = [{"kind": "verifier", "path": str(verifier_path)}]
    router = Router.from_config(config, telemetry=False)
    backend = ScriptedBackend({"cheap": lambda req: "the answer is 3 maybe, not sure" if "animal" in req.text
                               else "the answer is 4", "frontier": "frontier answer"})
    assert router.route(RouteRequest(easy), backend).tier == "cheap"
    doubtful = router.route(RouteRequest("question 3 about the animal of item 9"), backend)
    assert [a.tier for a in doubtful.attempts] in (["cheap", "frontier"], ["frontier"])
    if len(doubtful.attempts) == 2:
        assert doubtful.attempts[0].verdict.reason.startswith("P(right)")
    started = router.route(RouteRequest(hard), backend)
    assert started.start_reason.startswith("trained: p(needs stronger tier)=")


def test_a_model_file_round_trips(tmp_path):
    from langchain_tiered_router.core.learned import RouterModel, save_router_model, train_scorer

    scorer = train_scorer(["hard proof", "easy capital"] * 10, [1, 0] * 10)
    path = save_router_model(RouterModel("classifier", scorer, 0.5, "cheap", "frontier", {"n": 20}), tmp_path / "m")
    loaded = load_router_model(path)
    assert loaded.threshold == 0.5 and loaded.meta == {"n": 20}
    assert np.allclose(loaded.scorer.weights, scorer.weights, atol=1e-6)
    assert loaded.choose_tier("hard proof", ["cheap", "frontier"])[0] == "frontier"
    assert loaded.choose_tier("easy capital", ["cheap", "frontier"])[0] == "cheap"
