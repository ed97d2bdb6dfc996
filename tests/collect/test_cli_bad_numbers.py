"""``collect`` and ``estimate`` on bad numbers and bad input lines: a one-line exit 2
before any work, the files left as they were; and the numbers ``estimate`` prints are
ones a random mix of tiers really reaches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from langchain_tiered_router.analysis.eval.calibration import ladder_table
from langchain_tiered_router.analysis.eval.data import load_outcomes
from langchain_tiered_router.analysis.eval.metrics import random_savings_at
from langchain_tiered_router.cli import app
from langchain_tiered_router.core.config import load_config
from langchain_tiered_router.core.tiers import Ladder

from .conftest import WALKTHROUGH

NOWHERE = ["--endpoint-url", "http://127.0.0.1:9"]  # nothing listens: a run that got this far would fail there


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def read_jsonl_lf(path: Path) -> list[dict]:
    """A JSONL file's records, cut at line feeds only (``splitlines`` also cuts at U+2028)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiered-router: error: "), result.output
    return lines[0]


def collect(*args: str):
    return invoke("collect", "--config", str(WALKTHROUGH), *args)


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "What is 2 + 2?", "gold": "4"}) + "\n")
    return path


# --- collect --max-usd -----------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "NaN", "sNaN", "inf", "-inf", "Infinity", "1e999"])
def test_collect_refuses_a_cap_that_is_not_a_finite_number(tmp_path, prompts, value):
    out = tmp_path / "out.jsonl"
    line = one_line(collect("--prompts", str(prompts), "--out", str(out), "--max-usd", value, *NOWHERE))
    assert f"--max-usd takes a finite number of US dollars, got {value!r}" in line
    assert not out.exists()


def test_collect_still_takes_a_plain_cap(tmp_path, prompts):
    result = collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), "--max-usd", "0.5", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "--max-usd $0.5000" in result.stdout


# --- collect: bytes that are not UTF-8 -------------------------------------------------

def test_a_prompts_file_that_is_not_utf8_names_its_line_and_byte(tmp_path):
    prompts = tmp_path / "latin1.jsonl"
    prompts.write_bytes(b'{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": "caf\xe9"}\n')
    out = tmp_path / "out.jsonl"
    line = one_line(collect("--prompts", str(prompts), "--out", str(out), *NOWHERE))
    assert line == f"tiered-router: error: {prompts}:2: not UTF-8 (byte 0xe9); save the file as UTF-8"
    assert not out.exists()


def test_a_prompts_file_with_a_byte_order_mark_is_read(tmp_path):
    prompts = tmp_path / "bom.jsonl"
    prompts.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": "y\xe9"}\n')
    # the mark is not counted as a line or a byte of the first line
    assert f"{prompts}:2: not UTF-8 (byte 0xe9)" in one_line(
        collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), *NOWHERE))
    prompts.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a", "prompt": "x"}\n')
    result = collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), "--dry-run")
    assert result.exit_code == 0 and "1 prompts from" in result.stdout, result.output


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_an_output_to_resume_that_is_not_utf8_is_refused_untouched(tmp_path, prompts, dry_run):
    out = tmp_path / "out.jsonl"
    good = json.dumps({"id": "z", "prompt": "p", "outcomes": {}})
    # a bad byte on line 2, and a torn last line that a good file would have cut off
    data = (good + "\n" + good.replace('"p"', '"caf\xe9"').replace('"z"', '"y"') + "\n").encode("latin-1") + b'{"id"'
    out.write_bytes(data)
    line = one_line(collect("--prompts", str(prompts), "--out", str(out), *NOWHERE, *dry_run))
    assert line == f"tiered-router: error: {out}:2: not UTF-8 (byte 0xe9); save the file as UTF-8"
    assert out.read_bytes() == data and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "prompts.jsonl"]


def test_a_line_separator_inside_a_prompt_survives_a_resume(tmp_path, emulator):
    """A U+2028 read raw from the prompts does not end a line, and the outcomes file
    escapes it (another service's reader may split lines with ``str.splitlines``)."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "one\u2028two\x85three", "gold": "4"},
                                  ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    first = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url)
    assert first.exit_code == 0, first.output
    written = out.read_text(encoding="utf-8")
    assert "\u2028" not in written and "\\u2028" in written and written.count("\n") == 1
    again = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url)
    assert again.exit_code == 0, again.output
    assert "1 already complete" in again.stdout and "nothing to ask" in again.stdout
    assert [r["prompt"] for r in read_jsonl_lf(out)] == ["one\u2028two\x85three"]


# --- collect: a line with both 'prompt' and 'messages' ---------------------------------

def test_a_line_whose_prompt_and_messages_disagree_is_refused(tmp_path):
    prompts = tmp_path / "both.jsonl"
    prompts.write_text(json.dumps({"id": "ok", "prompt": "fine"}) + "\n" + json.dumps(
        {"id": "a", "prompt": "x", "messages": [{"role": "user", "content": "hi"}]}) + "\n")
    out = tmp_path / "out.jsonl"
    line = one_line(collect("--prompts", str(prompts), "--out", str(out), *NOWHERE))
    assert f"{prompts}:2: both 'prompt' and 'messages', and the prompt is not the last user message" in line
    assert not out.exists()


def test_a_line_collect_wrote_can_be_asked_again(tmp_path):
    """collect writes both, the prompt being the last user message: that is not ambiguous."""
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                    {"role": "user", "content": [{"text": "Sum 2 and 2."}]}]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "c", "prompt": "Sum 2 and 2.", "messages": conversation,
                                   "outcomes": {}}) + "\n")
    result = collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "1 prompts from" in result.stdout and "1 to ask" in result.stdout


# --- estimate --classifier and --target-parity -----------------------------------------

CONFIG = {"tiers": [{"name": "cheap", "model_id": "t.cheap", "price": {"input_per_mtok": 1, "output_per_mtok": 2}},
                    {"name": "frontier", "model_id": "t.frontier",
                     "price": {"input_per_mtok": 20, "output_per_mtok": 40}}],
          "telemetry": {"sinks": []}}


def _data(tmp_path: Path, cheap_correct: list[bool], frontier_correct: list[bool]) -> tuple[Path, Path]:
    config = tmp_path / "router.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    data = tmp_path / "outcomes.jsonl"
    rng = np.random.default_rng(1)  # uneven token counts: sums in another order differ in the last bit
    with open(data, "w", encoding="utf-8") as fh:
        for n, (c, f) in enumerate(zip(cheap_correct, frontier_correct)):
            tokens = {"input_tokens": int(rng.integers(50, 3000)), "output_tokens": int(rng.integers(10, 900))}
            fh.write(json.dumps({"id": f"q{n}", "prompt": f"question {n}", "outcomes": {
                "cheap": {"correct": c, "response": "r", **tokens},
                "frontier": {"correct": f, "response": "r", **tokens}}}) + "\n")
    return config, data


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "Infinity", "1e999"])
def test_estimate_refuses_a_classifier_cost_that_is_not_finite_before_reading_the_data(tmp_path, value):
    line = one_line(invoke("estimate", "--data", str(tmp_path / "none.jsonl"), "--config", str(tmp_path / "none"),
                           "--classifier", value))
    assert f"--classifier: classifier cost must be free, llm or a finite USD amount per request, got {value!r}" \
        in line


def test_a_parity_no_random_mix_reaches_is_said_not_faked(tmp_path):
    """The frontier is the best tier: no blend reaches 150 % of its quality. The old line
    said "0.0 % cheaper at parity 150.0 %", the all-baseline mix, whose parity is 100 %."""
    config, data = _data(tmp_path, [True] * 30 + [False] * 30, [True] * 50 + [False] * 10)
    args = ["estimate", "--data", str(data), "--config", str(config), "--target-parity", "1.5"]
    text = invoke(*args)
    assert text.exit_code == 0, text.output
    line = next(li for li in text.stdout.splitlines() if li.startswith("a random mix of tiers"))
    assert line == ("a random mix of tiers, for comparison: 0.0 % cheaper at parity 100.0 %; no mix reaches parity "
                    "150.0 % (the most: 100.0 %, the best tier alone)")
    out = json.loads(invoke(*args, "--json").stdout)
    assert out["random_mix"] == {"1.50": None, "1.00": 0.0} and out["random_mix_max_parity"] == 1.0


def test_a_parity_above_1_that_a_cheaper_tier_reaches_is_priced(tmp_path):
    # cheap beats the frontier here: 1.2 x the frontier's 50 % is 60 %, cheap has 80 %
    config, data = _data(tmp_path, [True] * 48 + [False] * 12, [True] * 30 + [False] * 30)
    out = json.loads(invoke("estimate", "--data", str(data), "--config", str(config), "--target-parity", "1.2",
                            "--json").stdout)
    assert out["random_mix_max_parity"] == pytest.approx(1.6)
    table = ladder_table(load_outcomes(data), Ladder.from_config(load_config(config)))
    assert out["random_mix"]["1.20"] == pytest.approx(random_savings_at(table, 1.2)) and out["random_mix"]["1.20"] > 0


def test_savings_of_exactly_nothing_are_0_not_float_noise(tmp_path):
    config, data = _data(tmp_path, [False] * 60, [True] * 60)  # the cheap tier never as good: every saving is 0
    table = ladder_table(load_outcomes(data), Ladder.from_config(load_config(config)))
    assert random_savings_at(table, 1.0) == 0.0  # the same sum in another order: noise, made 0 where it is made
    out = json.loads(invoke("estimate", "--data", str(data), "--config", str(config), "--json").stdout)
    assert out["random_mix"]["1.00"] == 0.0 and out["oracle"]["savings"] == 0.0
    assert out["oracle"]["low"] == 0.0 and out["oracle"]["high"] == 0.0
    assert out["tiers"][0]["two_tier_savings"] == 0.0
