"""``tiered-router collect`` against the emulator over HTTP: what it writes, what it costs,
how it resumes, how it stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import yaml
from typer.testing import CliRunner

from langchain_tiered_router.analysis.eval.data import load_outcomes
from langchain_tiered_router.cli import app
from langchain_tiered_router.core.config import load_config
from langchain_tiered_router.core.pricing import Usage
from langchain_tiered_router.emulator import BedrockEmulator

from .conftest import CHEAP_ID, FRONTIER_ID, REPO, WALKTHROUGH, read_jsonl, write_prompts, write_script

_CONFIG = load_config(WALKTHROUGH)
PRICES = {t.name: _CONFIG.price_of(t) for t in _CONFIG.tiers}


def collect(*args: str):
    return CliRunner().invoke(app, ["collect", "--config", str(WALKTHROUGH), *args])


def tokens(text: str) -> int:
    return max(1, -(-len(text) // 4))  # the emulator counts ceil(characters / 4)


def test_collect_asks_every_tier_grades_against_gold_and_writes_real_counts(gsm8k, emulator, tmp_path):
    rows = gsm8k[:40]
    prompts, out = write_prompts(rows, tmp_path / "prompts.jsonl"), tmp_path / "outcomes.jsonl"
    emulator.clear_requests()
    result = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "40 prompts from" in text and "40 to ask" in text
    assert "grading: 40 against their gold answer (numeric), 0 against frontier's answer" in text
    # the estimate comes before anything is sent
    assert text.index("estimated cost: $") < text.index("asking through")
    assert "for 80 answers (cheap 40, frontier 40" in text and "at most $" in text  # both tiers set max_tokens
    assert f"wrote {out} (40 prompts)" in text and f"next: tiered-router estimate --data {out}" in text
    assert len(emulator.calls_for(CHEAP_ID)) == 40 and len(emulator.calls_for(FRONTIER_ID)) == 40

    records = {r["id"]: r for r in read_jsonl(out)}
    assert len(records) == 40
    spent = Decimal(0)
    for row in rows:
        record = records[f"gsm8k-{row.n}"]
        assert record["prompt"] == row.prompt and record["gold"] == row.gold
        assert record["grading"] == {"reference": "gold", "comparator": "numeric"}
        for tier, answer, correct in (("cheap", row.cheap, row.cheap_correct),
                                      ("frontier", row.frontier, row.frontier_correct)):
            outcome = record["outcomes"][tier]
            assert outcome["response"] == answer
            assert outcome["correct"] is correct  # the numeric comparator agrees with RouteLLM's grades
            assert (outcome["input_tokens"], outcome["output_tokens"]) == (tokens(row.prompt), tokens(answer))
            cost = PRICES[tier].cost(Usage(outcome["input_tokens"], outcome["output_tokens"]))
            assert Decimal(outcome["cost_usd"]) == cost
            spent += cost
    assert f"${float(spent):,.4f} in all" in text
    # eval, calibrate and estimate read it as real counts
    items = load_outcomes(out, ["cheap", "frontier"])
    assert len(items) == 40 and not any(o.estimated_tokens for i in items for o in i.outcomes.values())


def test_a_rerun_asks_only_what_is_missing_and_keeps_one_line_per_prompt(gsm8k, emulator, tmp_path):
    prompts, out = write_prompts(gsm8k[:30], tmp_path / "prompts.jsonl"), tmp_path / "outcomes.jsonl"
    first = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url, "--tiers", "frontier")
    assert first.exit_code == 0, first.output
    assert all(set(r["outcomes"]) == {"frontier"} for r in read_jsonl(out))
    emulator.clear_requests()
    second = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url)
    assert second.exit_code == 0, second.output
    assert "30 to ask (30 of them have some tiers already)" in second.output
    assert len(emulator.calls_for(CHEAP_ID)) == 30 and emulator.calls_for(FRONTIER_ID) == []
    records = read_jsonl(out)
    assert len(records) == 30 and len({r["id"] for r in records}) == 30
    assert all(set(r["outcomes"]) == {"cheap", "frontier"} for r in records)
    assert not (tmp_path / "outcomes.jsonl.pending").exists()
    emulator.clear_requests()
    third = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url)
    assert third.exit_code == 0 and "nothing to ask" in third.output and emulator.requests == []


def test_a_prompt_holding_a_lone_surrogate_is_written_and_read_back_exactly(gsm8k, emulator, tmp_path):
    """Valid JSON (``"\\ud800"``) that no UTF-8 can hold: it was asked and paid for, then the
    write failed, and every rerun paid for it again. Written escaped, read back as it was."""
    prompts, out = tmp_path / "prompts.jsonl", tmp_path / "outcomes.jsonl"
    rows = [{"id": "odd", "prompt": "what is 2 + 2? \ud800", "gold": "4"}, {"id": "plain", "prompt": "caf\u00e9: 3 + 4?",
                                                                          "gold": "7"}]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    first = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url)
    assert first.exit_code == 0, first.output
    records = {r["id"]: r for r in read_jsonl(out)}
    assert records["odd"]["prompt"] == rows[0]["prompt"] and set(records["odd"]["outcomes"]) == {"cheap", "frontier"}
    assert any(line.startswith('{"id": "plain"') and "café" in line  # the other lines keep their text as it is
               for line in out.read_text(encoding="utf-8").splitlines())
    emulator.clear_requests()
    again = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url)
    assert again.exit_code == 0 and "nothing to ask" in again.output and emulator.requests == []


def test_max_usd_stops_cleanly_and_a_rerun_finishes_without_asking_twice(gsm8k, emulator, tmp_path):
    prompts, out = write_prompts(gsm8k[:30], tmp_path / "prompts.jsonl"), tmp_path / "outcomes.jsonl"
    emulator.clear_requests()
    capped = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url,
                     "--max-usd", "0.03", "--concurrency", "2")
    assert capped.exit_code == 3, capped.output
    assert "stopped at --max-usd $0.0300" in capped.output and "prompts not started" in capped.output
    done = read_jsonl(out)
    spent = sum(Decimal(o["cost_usd"]) for r in done for o in r["outcomes"].values())
    assert 0 < len(done) < 30 and spent <= Decimal("0.03")
    assert load_outcomes(out, ["cheap", "frontier"])  # what is there is usable as it is
    rest = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url)
    assert rest.exit_code == 0, rest.output
    assert f"{len(done)} already complete" in rest.output
    assert len(emulator.calls_for(CHEAP_ID)) == 30 and len(emulator.calls_for(FRONTIER_ID)) == 30
    assert len(read_jsonl(out)) == 30


def test_max_usd_with_prompts_in_flight_stops_where_one_at_a_time_stops(gsm8k, emulator, tmp_path):
    """Estimates at max_tokens (never below the real cost): the run may start a prompt only
    when what was spent plus the prompts in flight leaves room for it. It stopped for good the
    first time the reservations of 4 prompts in flight filled the cap (3 prompts of the 12 that
    one at a time collects), though their real cost was a fraction of it."""
    prompts = write_prompts(gsm8k[:30], tmp_path / "prompts.jsonl")
    collected = {}
    for concurrency in ("1", "4"):
        out = tmp_path / f"c{concurrency}.jsonl"
        run = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emulator.url,
                      "--max-usd", "0.05", "--assume-output-tokens", "1024", "--concurrency", concurrency)
        assert run.exit_code == 3, run.output
        done = read_jsonl(out)
        spent = sum(Decimal(o["cost_usd"]) for r in done for o in r["outcomes"].values())
        assert spent <= Decimal("0.05")
        assert f"spent ${float(spent):,.4f}; {30 - len(done)} prompts not started" in run.output
        # the cap is per run: the same command goes on, a higher cap is not needed
        assert "run the same command again to go on" in run.output and "higher --max-usd" not in run.output
        collected[concurrency] = len(done)
    assert 5 < collected["1"] < 30
    assert collected["4"] == collected["1"]


def test_a_killed_run_loses_only_prompts_in_flight(gsm8k, tmp_path):
    rows = gsm8k[:24]
    prompts, out = write_prompts(rows, tmp_path / "prompts.jsonl"), tmp_path / "outcomes.jsonl"
    script = write_script(rows, tmp_path)
    with BedrockEmulator(script) as emu:
        emu.inject("slow", times=None, seconds=0.15)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "langchain_tiered_router.cli", "collect", "--config",
                                 str(WALKTHROUGH), "--prompts", str(prompts), "--out", str(out), "--endpoint-url",
                                 emu.url, "--concurrency", "2"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count("\n") >= 4:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        written = out.read_bytes()
        complete = written.count(b"\n")
        assert 4 <= complete < 24
        with open(out, "ab") as fh:  # as if the kill had landed in the middle of a write
            fh.write(b'{"id": "gsm8k-99", "outcomes": {"chea')
        emu.clear_faults()
        emu.clear_requests()
        result = collect("--prompts", str(prompts), "--out", str(out), "--endpoint-url", emu.url)
        assert result.exit_code == 0, result.output
        assert "cut off an incomplete last line" in result.output
        assert f"{complete} already complete" in result.output
        # only what was not written is asked again: the in-flight prompts and the rest
        assert len(emu.calls_for(CHEAP_ID)) == 24 - complete
        assert len(emu.calls_for(FRONTIER_ID)) == 24 - complete
    records = read_jsonl(out)
    assert sorted(r["id"] for r in records) == sorted(f"gsm8k-{r.n}" for r in rows)
    assert out.read_bytes().startswith(written)  # what was written before the kill is kept as it was


def test_prompts_without_gold_are_judged_against_the_top_tier_and_the_judge_is_priced(tmp_path):
    script = {"models": {
        CHEAP_ID: {"rules": [{"match": "apples", "answer": "7"}, {"match": "pears", "answer": "4"}]},
        FRONTIER_ID: {"rules": [{"match": "Reference answer:\n<(data-[0-9a-f]+)>\n7\n</\\1>\nCandidate answer:\n<\\1>\n7\n</\\1>",
                                 "answer": "SCORE: 9"},
                                {"match": "Reply with one line: SCORE", "answer": "SCORE: 2"},
                                {"match": "apples|pears", "answer": "7"}]}}}
    (tmp_path / "emu.yaml").write_text(yaml.safe_dump(script))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "How many apples?"}) + "\n"
                       + json.dumps({"id": "p", "messages": [{"role": "system", "content": "Be short."},
                                                             {"role": "user", "content": "How many pears?"}]}) + "\n")
    out = tmp_path / "outcomes.jsonl"
    result = collect("--prompts", str(prompts), "--out", str(out), "--emulator-script", str(tmp_path / "emu.yaml"))
    assert result.exit_code == 0, result.output
    assert "0 against their gold answer (numeric), 2 against frontier's answer by llm_judge" in result.output
    assert "and 2 judge calls" in result.output and "the local Bedrock emulator" in result.output
    records = {r["id"]: r for r in read_jsonl(out)}
    assert records["a"]["outcomes"]["cheap"]["correct"] is True and records["p"]["outcomes"]["cheap"]["correct"] is False
    assert all(r["outcomes"]["frontier"]["correct"] is True for r in records.values())  # the reference
    assert records["p"]["system"] == "Be short." and records["p"]["prompt"] == "How many pears?"
    grading = records["a"]["grading"]
    assert grading["reference"] == "frontier" and grading["judge_tier"] == "frontier" and grading["judge_calls"] == 1
    assert Decimal(grading["judge_cost_usd"]) == PRICES["frontier"].cost(
        Usage(grading["judge_input_tokens"], grading["judge_output_tokens"]))
    total = sum(Decimal(r["grading"]["judge_cost_usd"]) for r in records.values())
    assert f"2 judge calls (${float(total):,.4f})" in result.output


def test_dry_run_prints_the_plan_and_sends_nothing(gsm8k, emulator, tmp_path):
    prompts = write_prompts(gsm8k[:10], tmp_path / "prompts.jsonl")
    emulator.clear_requests()
    result = collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), "--endpoint-url", emulator.url,
                     "--dry-run", "--assume-output-tokens", "100")
    assert result.exit_code == 0 and "dry run: nothing sent" in result.output
    assert "100 output tokens assumed per answer" in result.output
    assert emulator.requests == [] and not (tmp_path / "o.jsonl").exists()


def test_assumed_output_tokens_are_capped_at_max_tokens_so_the_estimate_stays_under_its_bound(gsm8k, tmp_path):
    """Both tiers answer at most 1024 tokens (max_tokens): assuming 2000 made the estimate
    ($0.6 here) larger than the "at most" bound printed beside it."""
    rows = gsm8k[:10]
    prompts = write_prompts(rows, tmp_path / "prompts.jsonl")
    result = collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), "--endpoint-url",
                     "http://127.0.0.1:9", "--dry-run", "--assume-output-tokens", "2000")
    assert result.exit_code == 0, result.output
    expected = sum(PRICES[t].cost(Usage(tokens(row.prompt), 1024)) for row in rows for t in ("cheap", "frontier"))
    # gold answers: no judge calls, so the estimate is every answer at max_tokens, the bound itself
    assert f"estimated cost: ${float(expected):,.4f} for 20 answers" in result.output
    assert f"at most ${float(expected):,.4f} if every answer reaches" in result.output
    assert ("2000 output tokens assumed per answer, or the tier's max_tokens when lower (cheap 1024, frontier 1024)"
            in result.output)


@pytest.mark.parametrize("lines, args, message", [
    ([{"id": "a", "prompt": "x"}, {"id": "b"}], [], "prompts.jsonl:2: needs 'prompt'"),
    ([{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}], [], "prompts.jsonl:2: id 'a' repeats"),
    ([{"messages": [{"role": "assistant", "content": "hi"}]}], [], "must end on a user message"),
    ([{"prompt": "x"}], ["--tiers", "huge"], "unknown tier 'huge'"),
    ([{"prompt": "x"}], ["--compare", "fuzzy"], "unknown comparator 'fuzzy'"),
    ([{"prompt": "x"}], ["--no-where"], "say where the answers come from: --live"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, lines, args, message):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    where = [] if "--no-where" in args else ["--endpoint-url", "http://127.0.0.1:9"]
    args = [a for a in args if a != "--no-where"]
    result = collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), *where, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_an_unreachable_endpoint_fails_each_prompt_and_writes_nothing(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "x", "gold": "1"}) + "\n")
    result = collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"), "--endpoint-url",
                     "http://127.0.0.1:9")
    assert result.exit_code == 4, result.output
    assert "1 prompts failed" in result.output and "a: [cheap / " in result.output
    assert (tmp_path / "o.jsonl").read_text() == ""


def test_collect_without_boto3_says_which_extra_in_one_line(tmp_path, monkeypatch):
    """``collect`` needs boto3, which the ``ml``/``plot`` extras do not bring: it was a
    ``ModuleNotFoundError`` traceback and exit 1."""
    monkeypatch.setitem(sys.modules, "boto3", None)  # as on a machine without it: importing it fails
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "x"}) + "\n")
    result = collect("--prompts", str(prompts), "--out", str(tmp_path / "o.jsonl"),
                     "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "tiered-router: error: calling Bedrock needs boto3: pip install 'langchain-tiered-router[batch]' "
        "(or [langchain], which brings it too)"]
