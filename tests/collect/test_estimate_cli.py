"""``tiered-router estimate``: every number checked against one worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from langchain_tiered_router.cli import app
from langchain_tiered_router.core.classifiers import LLMClassifier

# USD per million tokens; every item is 1,000 tokens in and 500 out, so one call costs
# cheap 0.002, mid 0.01, frontier 0.04.
CONFIG = {"tiers": [{"name": "cheap", "model_id": "t.cheap", "price": {"input_per_mtok": 1, "output_per_mtok": 2}},
                    {"name": "mid", "model_id": "t.mid", "price": {"input_per_mtok": 5, "output_per_mtok": 10}},
                    {"name": "frontier", "model_id": "t.frontier",
                     "price": {"input_per_mtok": 20, "output_per_mtok": 40}}],
          "telemetry": {"sinks": []}}
COST = {"cheap": 0.002, "mid": 0.01, "frontier": 0.04}
# (cheap, mid, frontier) correct, and how many items have that pattern
PATTERNS = [((1, 1, 1), 5), ((0, 1, 1), 2), ((0, 0, 1), 2), ((0, 0, 0), 1)]


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "router.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    data = tmp_path / "outcomes.jsonl"
    lines, n = [], 0
    for scores, count in PATTERNS:
        for _ in range(count):
            lines.append(json.dumps({"id": f"q{n}", "prompt": f"question {n}", "outcomes": {
                tier: {"correct": bool(s), "response": "r", "input_tokens": 1000, "output_tokens": 500}
                for tier, s in zip(("cheap", "mid", "frontier"), scores)}}))
            n += 1
    data.write_text("\n".join(lines) + "\n")
    return config, data


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def run(*args: str):
    return CliRunner().invoke(app, ["estimate", *args], env={"COLUMNS": "250"})  # table rows on one line


def test_estimate_json_holds_the_numbers_worked_out_by_hand(files):
    config, data = files
    result = run("--data", str(data), "--config", str(config), "--json", "--classifier", "0.001")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    base = 10 * COST["frontier"]
    assert out["n"] == 10 and out["baseline"] == "frontier"
    assert out["baseline_cost_usd"] == pytest.approx(base) and out["baseline_quality"] == pytest.approx(0.9)
    cheap, mid, frontier = out["tiers"]
    assert (cheap["as_good_as_baseline"], mid["as_good_as_baseline"], frontier["as_good_as_baseline"]) == (6, 8, 10)
    assert (cheap["share_low"], cheap["share_high"]) == pytest.approx(wilson(6, 10))
    assert (mid["share_low"], mid["share_high"]) == pytest.approx(wilson(8, 10))
    assert cheap["quality"] == pytest.approx(0.5) and cheap["cost_vs_baseline"] == pytest.approx(0.05)
    # serve cheap where it is as good (6), the baseline elsewhere (4)
    assert cheap["two_tier_savings"] == pytest.approx(1 - (6 * 0.002 + 4 * 0.04) / base)
    assert mid["two_tier_savings"] == pytest.approx(1 - (8 * 0.01 + 2 * 0.04) / base)
    assert frontier["two_tier_savings"] is None
    # the oracle: 6 on cheap, 2 on mid, 2 on frontier, one call each
    oracle = 6 * 0.002 + 2 * 0.01 + 2 * 0.04
    assert out["oracle"]["savings"] == pytest.approx(1 - oracle / base)
    assert out["oracle"]["parity"] == pytest.approx(1.0)
    assert out["oracle"]["tier_share"] == pytest.approx({"cheap": 0.6, "mid": 0.2, "frontier": 0.2})
    assert out["oracle"]["low"] <= out["oracle"]["savings"] <= out["oracle"]["high"]
    # a perfect classifier paying $0.001 per request
    assert out["perfect_classifier"]["kind"] == "fixed"
    assert out["perfect_classifier"]["classifier_cost_usd"] == pytest.approx(0.01)
    assert out["perfect_classifier"]["savings"] == pytest.approx(1 - (oracle + 0.01) / base)
    # a perfect cascade pays cheap for all, mid for the 4 above cheap, frontier for the last 2
    assert out["perfect_cascade"]["savings"] == pytest.approx(1 - (10 * 0.002 + 4 * 0.01 + 2 * 0.04) / base)
    # the random mix: nothing at parity 1; at 0.95, 77.5 % frontier and 22.5 % mid
    assert out["random_mix"]["1.00"] == pytest.approx(0.0)
    assert out["random_mix"]["0.95"] == pytest.approx(1 - (0.225 * 0.1 + 0.775 * 0.4) / base)
    assert out["tokens"] == "token counts from the data"


def test_llm_classifier_cost_is_one_cheap_call_per_request(files):
    config, data = files
    out = json.loads(run("--data", str(data), "--config", str(config), "--json", "--classifier", "llm").output)
    template = LLMClassifier().prompt
    expected = sum((math.ceil(len(template.format(tiers="cheap, mid, frontier", request=f"question {n}")) / 4) * 1
                    + 3 * 2) / 1e6 for n in range(10))
    assert out["perfect_classifier"]["classifier_cost_usd"] == pytest.approx(expected)
    assert "one call to cheap per request" in out["perfect_classifier"]["assumption"]
    free = json.loads(run("--data", str(data), "--config", str(config), "--json").output)
    assert free["perfect_classifier"]["savings"] == pytest.approx(free["oracle"]["savings"])
    assert "$0 per request at run time" in free["perfect_classifier"]["assumption"]


def test_estimate_text_and_plot(files, tmp_path):
    config, data = files
    plot = tmp_path / "prize.png"
    result = run("--data", str(data), "--config", str(config), "--plot", str(plot))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "The prize on 10 requests: ladder cheap -> mid -> frontier, baseline frontier" in text
    assert "60.0 % (31.3 % - 83.2 %), 6 requests" in text
    assert "one-call oracle for this ladder at these prices" in text and "72.0 % cheaper" in text
    assert "a perfect classifier after its own cost: 72.0 % cheaper (assumed: a trained classifier" in text
    assert "a perfect cascade" in text and "65.0 % cheaper" in text
    assert f"wrote the plot to {plot}" in text and plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["--classifier", "cheapish"], "classifier cost must be free, llm or USD per request"),
    (["--classifier", "-1"], "cannot be negative"),
    (["--plot", "/no/such/folder/p.png"], "the folder /no/such/folder does not exist"),
])
def test_estimate_bad_input_is_one_line(files, args, message):
    config, data = files
    result = run("--data", str(data), "--config", str(config), *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_estimate_needs_every_tier_per_request(files, tmp_path):
    config, _ = files
    data = tmp_path / "partial.jsonl"
    data.write_text(json.dumps({"id": "x", "prompt": "p", "outcomes": {"cheap": {"correct": True},
                                                                        "frontier": {"correct": True}}}) + "\n")
    result = run("--data", str(data), "--config", str(config))
    assert result.exit_code == 2 and "item 'x' has no outcome for tier 'mid'" in result.output


def test_the_perfect_cascade_stops_at_the_first_good_tier_in_ladder_order(tmp_path):
    """Both tiers right on both requests; cheap writes 10 and then 2,000 tokens, frontier
    50 (100 in each): the oracle serves the second request from frontier (cheaper there),
    but a cascade stops at cheap, whatever it cost. It was priced along the oracle's
    pick: cheap, then frontier too, "23.7 % MORE expensive" for 26.3 % cheaper."""
    config = tmp_path / "router.yaml"
    config.write_text(yaml.safe_dump({"tiers": [
        {"name": "cheap", "model_id": "t.cheap", "price": {"input_per_mtok": 1, "output_per_mtok": 1}},
        {"name": "frontier", "model_id": "t.frontier", "price": {"input_per_mtok": 10, "output_per_mtok": 10}}],
        "telemetry": {"sinks": []}}))
    data = tmp_path / "outcomes.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}", "outcomes": {
        "cheap": {"correct": True, "response": "r", "input_tokens": 100, "output_tokens": out},
        "frontier": {"correct": True, "response": "r", "input_tokens": 100, "output_tokens": 50}}}) + "\n"
        for i, out in enumerate((10, 2000))))
    result = run("--data", str(data), "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    cascade, base = (110 + 2100) * 1e-6, 2 * 150 * 10e-6
    assert out["perfect_cascade"]["savings"] == pytest.approx(1 - cascade / base)  # 26.3 %
    assert out["oracle"]["savings"] == pytest.approx(1 - (110e-6 + 1500e-6) / base)


def test_cache_tokens_recorded_in_outcomes_are_priced_at_the_cache_rates(tmp_path):
    """``collect`` records ``cache_read_tokens``/``cache_write_tokens``; ``eval``,
    ``estimate`` and ``calibrate`` priced input and output only."""
    config = tmp_path / "router.yaml"
    config.write_text(yaml.safe_dump({"tiers": [
        {"name": "cheap", "model_id": "t.cheap", "price": {"input_per_mtok": 1, "output_per_mtok": 2,
                                                           "cache_read_per_mtok": 0.1, "cache_write_per_mtok": 1.25}},
        {"name": "frontier", "model_id": "t.frontier", "price": {"input_per_mtok": 10, "output_per_mtok": 20,
                                                                 "cache_read_per_mtok": 1,
                                                                 "cache_write_per_mtok": 12.5}}],
        "telemetry": {"sinks": []}}))
    data = tmp_path / "outcomes.jsonl"
    usage = {"input_tokens": 1000, "output_tokens": 100, "cache_read_tokens": 4000, "cache_write_tokens": 200}
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}", "outcomes": {
        "cheap": {"correct": i % 2 == 0, "response": "r", **usage},
        "frontier": {"correct": True, "response": "r", **usage}}}) + "\n" for i in range(4)))
    out = json.loads(run("--data", str(data), "--config", str(config), "--json").output)
    frontier = (1000 * 10 + 100 * 20 + 4000 * 1 + 200 * 12.5) / 1e6
    cheap = (1000 * 1 + 100 * 2 + 4000 * 0.1 + 200 * 1.25) / 1e6
    assert out["baseline_cost_usd"] == pytest.approx(4 * frontier)
    assert out["tiers"][0]["cost_vs_baseline"] == pytest.approx(cheap / frontier)
    # writes to an hour-long cache (a cache point's ttl: 1h) pay their own rate: 2x the input
    # rate where the config says so (they were priced at the five-minute write rate)
    text = yaml.safe_load(config.read_text())
    for tier, rate in zip(text["tiers"], (2, 20)):
        tier["price"]["cache_write_1h_per_mtok"] = rate
    config.write_text(yaml.safe_dump(text))
    data.write_text(data.read_text().replace('"cache_write_tokens": 200', '"cache_write_tokens": 200, '
                                                                         '"cache_write_1h_tokens": 150'))
    out = json.loads(run("--data", str(data), "--config", str(config), "--json").output)
    frontier = (1000 * 10 + 100 * 20 + 4000 * 1 + 50 * 12.5 + 150 * 20) / 1e6
    assert out["baseline_cost_usd"] == pytest.approx(4 * frontier)


def test_routellm_answers_without_text_are_said_to_be_costed_at_one_token(shared_data):
    """RouteLLM's MMLU folder keeps no answer text: each answer is costed at one output
    token, and the output says so, as for a JSONL outcome with neither text nor tokens."""
    config = Path(__file__).resolve().parents[2] / "examples" / "eval" / "routellm_router.yaml"
    result = CliRunner().invoke(app, ["estimate", "--config", str(config), "--data",
                                      str(shared_data / "routellm" / "mmlu"), "--format", "routellm", "--json"])
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert any("have neither a response nor output_tokens: each is costed at one output token" in n for n in notes)
    gsm8k = CliRunner().invoke(app, ["estimate", "--config", str(config), "--data",
                                     str(shared_data / "routellm" / "gsm8k" / "gsm8k_responses.csv"), "--format",
                                     "routellm", "--json"])
    assert gsm8k.exit_code == 0 and json.loads(gsm8k.stdout)["notes"] == []  # answers there: priced on their text
