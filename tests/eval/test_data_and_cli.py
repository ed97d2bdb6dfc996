"""The eval data formats, their one-line errors, and the eval / calibrate CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.cli import app
from langchain_tiered_router.analysis.eval.data import EvalDataError, load_outcomes, load_routellm, split_by_hash

REPO = Path(__file__).resolve().parents[2]
ROUTER = REPO / "examples" / "eval" / "routellm_router.yaml"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"id": "a", "prompt": "2+2?", "outcomes": {"cheap": {"correct": True, "response": "4"},
                                                   "frontier": {"score": 1.0, "input_tokens": 5, "output_tokens": 2}}}


def test_recorded_outcomes_and_token_estimates(tmp_path):
    items = load_outcomes(write_jsonl(tmp_path / "d.jsonl", [GOOD]), ["cheap", "frontier"])
    cheap, frontier = items[0].outcomes["cheap"], items[0].outcomes["frontier"]
    assert (cheap.score, cheap.input_tokens, cheap.output_tokens, cheap.estimated_tokens) == (1.0, 1, 1, True)
    assert (frontier.input_tokens, frontier.output_tokens, frontier.estimated_tokens) == (5, 2, False)


@pytest.mark.parametrize("line, message", [
    ("{not json", "d.jsonl:2: not valid JSON"),
    (json.dumps({**GOOD, "outcomes": {"huge": {"correct": True}}}), "d.jsonl:2: unknown tier 'huge'"),
    (json.dumps({**GOOD, "outcomes": {"cheap": {"response": "x"}}}), "d.jsonl:2: outcome 'cheap' has neither"),
    (json.dumps({"outcomes": {}}), "d.jsonl:2: missing 'prompt'"),
])
def test_bad_lines_name_their_line(tmp_path, line, message):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, line])
    with pytest.raises(EvalDataError) as info:
        load_outcomes(path, ["cheap", "frontier"])
    assert message in str(info.value)


def test_cli_reports_a_missing_outcome_in_one_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, {"id": "b", "prompt": "x", "outcomes": {"cheap": {"correct": 1 == 1}}}])
    result = CliRunner().invoke(app, ["eval", "--config", str(ROUTER), "--data", str(path), "--split", "0.5"])
    assert result.exit_code == 2
    assert "item 'b' has no outcome for tier 'frontier'" in result.output
    assert "Traceback" not in result.output


def test_routellm_reader_drops_contaminated_prompts(shared_data):
    items = load_routellm(shared_data / "routellm" / "gsm8k" / "gsm8k_responses.csv")
    assert len(items) == 1307  # 1,319 less the 12 contaminated, as the data README says
    assert abs(sum(i.outcomes["cheap"].score for i in items) / len(items) - 0.637) < 0.001
    cal, test = split_by_hash(items, 0.5)
    assert len(cal) + len(test) == 1307 and split_by_hash(items, 0.5)[0] == cal


@pytest.fixture(scope="module")
def gsm8k_slice(tmp_path_factory, shared_data) -> Path:
    source = shared_data / "routellm" / "gsm8k" / "gsm8k_responses.csv"
    target = tmp_path_factory.mktemp("slice") / "gsm8k_slice.csv"
    csv.field_size_limit(10_000_000)
    with open(source, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with open(target, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows[:401])
    return target


def test_eval_cli_on_a_gsm8k_slice_writes_every_field(gsm8k_slice, tmp_path):
    out, plot = tmp_path / "out.json", tmp_path / "pareto.png"
    result = CliRunner().invoke(app, ["eval", "--config", str(ROUTER), "--data", str(gsm8k_slice), "--format",
                                      "routellm", "--split", "0.5", "--policy", "verifier", "--target-parity",
                                      "0.95", "--json-out", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for key in ("n", "policy", "param", "savings", "parity", "quality", "baseline_quality", "tier_share",
                "random_savings", "oracle_savings", "headroom_recovered", "curve_savings_at_target", "parity_ci",
                "token_estimate", "calibration", "candidates"):
        assert key in data, key
    assert data["policy"] in ("cascade", "baseline") and 150 < data["n"] < 250
    assert set(data["candidates"]) == {"baseline", "cascade"}
    assert data["candidates"]["cascade"]["curve_savings_at_target"] is not None
    assert data["savings"] >= 0
    assert data["parity"] == pytest.approx(data["quality"] / data["baseline_quality"])
    assert data["parity_ci"]["low"] <= data["parity"] <= data["parity_ci"]["high"]
    assert sum(data["tier_share"].values()) == pytest.approx(1.0)
    assert "ceil(characters / 4)" in data["token_estimate"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert "cheaper at" in result.output and "headroom:" in result.output and "promise:" in result.output
    assert f"wrote the JSON to {out}" in result.stdout and f"wrote the plot to {plot}" in result.stdout
    assert "tokens: token counts missing from the data were estimated as ceil(characters / 4)" in \
        " ".join(result.stdout.split())


def test_eval_cli_needs_separate_calibration_data(gsm8k_slice):
    result = CliRunner().invoke(app, ["eval", "--config", str(ROUTER), "--data", str(gsm8k_slice), "--format",
                                      "routellm"])
    assert result.exit_code == 2 and "--calibrate-on FILE or --split" in result.output


def test_confidence_policy_calibrates_a_threshold_on_the_answers_own_doubt(tmp_path):
    def rows(start, n):
        return [{"id": str(i), "prompt": f"q{i}", "outcomes": {
            "cheap": {"correct": i % 2 == 0, "response": "42. Confidence: 0.9" if i % 2 == 0 else "41. Confidence: 0.2",
                      "input_tokens": 100, "output_tokens": 10},
            "frontier": {"correct": True, "response": "42", "input_tokens": 100, "output_tokens": 10}}}
            for i in range(start, start + n)]
    cal, test = write_jsonl(tmp_path / "cal.jsonl", rows(0, 40)), write_jsonl(tmp_path / "test.jsonl", rows(40, 10))
    out = tmp_path / "out.json"
    args = ["eval", "--config", str(ROUTER), "--data", str(test), "--calibrate-on", str(cal), "--policy", "confidence",
            "--bound", "clt"]
    result = CliRunner().invoke(app, args + ["--json", str(out)])  # the older spelling of --json-out FILE
    assert result.exit_code == 0, result.output
    assert "--json FILE is now --json-out FILE" in result.stderr and f"wrote the JSON to {out}" in result.stdout
    data = json.loads(out.read_text())
    printed = CliRunner().invoke(app, args + ["--json"])  # --json alone: the document on stdout, tables on stderr
    assert printed.exit_code == 0, printed.output
    again = json.loads(printed.stdout)
    timing = {"featurise_ms_mean"}  # measured each run
    assert {k: v for k, v in again.items() if k not in timing} == {k: v for k, v in data.items() if k not in timing}
    assert "quality parity" in printed.stderr
    # the five doubtful cheap answers escalate (paying both tiers); the five confident ones are served cheap
    assert data["policy"] == "confidence" and data["param"] == 0.9 and data["parity"] == 1.0
    assert data["tier_share"] == {"cheap": 0.5, "frontier": 0.5}
    cheap_cost, frontier_cost = 100 * 0.45e-6 + 10 * 0.7e-6, 100 * 10e-6 + 10 * 30e-6
    assert data["savings"] == pytest.approx(1 - (10 * cheap_cost + 5 * frontier_cost) / (10 * frontier_cost))


def test_mt_bench_items_are_graded_per_question_and_turn(shared_data):
    items = load_routellm(shared_data / "routellm" / "mt_bench")
    assert len(items) == 144  # 80 questions less 8 contaminated, two turns each
    assert all(0.1 <= o.score <= 1.0 for i in items for o in i.outcomes.values())
    second = next(i for i in items if i.id.endswith(":2"))
    first = next(i for i in items if i.id == second.id[:-1] + "1")
    assert second.prompt.startswith(first.prompt) and len(second.prompt) > len(first.prompt)
