"""``tiered-router demo``: runs offline, and its report agrees with the rows it wrote."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.cli import app
from langchain_tiered_router.demo.gates import check_gsm8k, check_task
from langchain_tiered_router.demo.synth import generate
from langchain_tiered_router.demo.workload import Item, Outcome, bundled_workload_path, load_items, write_items

runner = CliRunner()


def _db_numbers(db: Path) -> dict:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT request_id, tier, cost_usd, baseline_cost_usd, escalated FROM routing_records "
                            "ORDER BY ts").fetchall()
        labels = dict((r[0], (r[1], r[2])) for r in conn.execute(
            "SELECT request_id, served_score, baseline_score FROM labels"))
    actual = sum(Decimal(r[2]) for r in rows)
    baseline = sum(Decimal(r[3]) for r in rows)
    return {"rows": rows, "labels": labels, "savings_pct": float((1 - actual / baseline) * 100),
            "parity": sum(v[0] for v in labels.values()) / sum(v[1] for v in labels.values()),
            "escalation_rate": sum(r[4] for r in rows) / len(rows)}


def _run(args: list[str]):
    result = runner.invoke(app, ["demo", *args])
    assert result.exit_code == 0, result.output
    return result


def test_the_bundled_workload_is_what_the_generator_writes(tmp_path):
    fresh = write_items(generate(), tmp_path / "w.jsonl")
    assert fresh.read_text() == bundled_workload_path().read_text()
    items = load_items(bundled_workload_path())
    assert len(items) == 300 and {i.kind for i in items} == {"extraction", "classification", "short_answer",
                                                             "multi_step"}
    assert len({i.prompt for i in items}) == 300  # replay looks answers up by prompt


def test_demo_report_is_consistent_with_the_db(tmp_path):
    db = tmp_path / "demo.db"
    out = json.loads(_run(["--limit", "40", "--db", str(db), "--json"]).stdout)
    got = _db_numbers(db)
    assert out["requests"] == len(got["rows"]) == len(got["labels"]) == 40
    assert out["savings_pct"] == pytest.approx(got["savings_pct"], abs=1e-3)
    assert out["parity"]["source"] == "labels" and out["parity"]["value"] == pytest.approx(got["parity"])
    assert out["escalation_rate"] == pytest.approx(got["escalation_rate"])
    assert out["parity"]["low"] <= out["parity"]["value"] <= out["parity"]["high"]
    assert out["via"] == "TieredChatBedrock" and out["failures"] == []
    # each label is the recorded score of the tier that served, against the frontier's
    items = load_items(bundled_workload_path())[:40]
    for (rid, tier, *_), item in zip(got["rows"], items):
        assert got["labels"][rid] == (item.outcomes[tier].score, item.outcomes["frontier"].score)
    assert 0 < out["savings_pct"] < 100 and 0 < out["escalation_rate"] < 1
    assert out["headline"].startswith(f"{out['savings_pct']:.1f} % cheaper at {out['parity']['value'] * 100:.1f} %")


def test_demo_prints_the_rich_report(tmp_path):
    text = " ".join(_run(["--limit", "12", "--db", str(tmp_path / "d.db")]).stdout.split())
    assert "% cheaper at" in text and "% quality parity" in text and "scripted answers" in text
    assert "per tier" in text and "tiered-router report --db" in text


def test_demo_replays_routellm_gsm8k(shared_data, tmp_path):
    db = tmp_path / "g.db"
    csv = shared_data / "routellm" / "gsm8k" / "gsm8k_responses.csv"
    out = json.loads(_run(["--replay", str(csv), "--limit", "30", "--db", str(db), "--json"]).stdout)
    got = _db_numbers(db)
    assert out["requests"] == 30 and {t["tier"] for t in out["tiers"]} <= {"cheap", "frontier"}
    assert out["parity"]["value"] == pytest.approx(got["parity"])
    assert out["savings_pct"] == pytest.approx(got["savings_pct"], abs=1e-3)
    items = load_items(csv)[:30]
    for (rid, tier, *_), item in zip(got["rows"], items):
        passed = check_gsm8k(item.prompt, item.outcomes["cheap"].response)[0]
        assert tier == ("cheap" if passed else "frontier")


def test_routellm_reader_leaves_out_contaminated_prompts(shared_data):
    csv = shared_data / "routellm" / "gsm8k" / "gsm8k_responses.csv"
    kept = load_items(csv)
    assert len(kept) == 1307  # 1,319 rows less the 12 listed prompts, as in ../shared/data/README.md
    frontier = sum(i.outcomes["frontier"].score for i in kept) / len(kept)
    cheap = sum(i.outcomes["cheap"].score for i in kept) / len(kept)
    assert (round(cheap * 100, 1), round(frontier * 100, 1)) == (63.7, 85.8)


def test_demo_replays_a_recorded_outcomes_file(tmp_path):
    good = '{"name": "A", "city": "B", "age": 3}'
    items = [
        Item("1", "Extract the person's name, city and age from the text as JSON. Text: A, 3, B.",
             {"cheap": Outcome(good, 1.0), "mid": Outcome(good, 1.0), "frontier": Outcome(good, 1.0)}),
        Item("2", "Extract the person's name, city and age from the text as JSON. Text: A was 3 in B.",
             {"cheap": Outcome("{name: A}", 0.0), "mid": Outcome(good, 1.0), "frontier": Outcome(good, 1.0)}),
        Item("3", "What is 2 + 2? Answer with the number only.",
             {"cheap": Outcome("I don't know", 0.0), "mid": Outcome("about 4", 0.0), "frontier": Outcome("4", 1.0)}),
    ]
    path = write_items(items, tmp_path / "rec.jsonl")
    db = tmp_path / "r.db"
    out = json.loads(_run(["--replay", str(path), "--db", str(db), "--json"]).stdout)
    assert [r[1] for r in _db_numbers(db)["rows"]] == ["cheap", "mid", "frontier"]
    assert out["parity"]["value"] == 1.0 and out["escalation_rate"] == pytest.approx(2 / 3)


def _one_line(result) -> str:
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiered-router: error: "), result.output
    return lines[0]


def test_demo_bad_input_is_one_line(tmp_path):
    assert "no such file" in _one_line(runner.invoke(app, ["demo", "--replay", str(tmp_path / "none.csv")]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    assert "bad.jsonl:1" in _one_line(runner.invoke(app, ["demo", "--replay", str(bad)]))
    csv = tmp_path / "bad.csv"
    csv.write_text("prompt,other\nx,y\n")
    assert "not a RouteLLM responses CSV (no column 'mistralai/Mixtral-8x7B-Instruct-v0.1')" in _one_line(
        runner.invoke(app, ["demo", "--replay", str(csv)]))
    cfg = tmp_path / "router.yaml"
    cfg.write_text("tiers: [}\n")
    assert "not valid YAML" in _one_line(runner.invoke(app, ["demo", "--config", str(cfg)]))
    cfg.write_text("tiers:\n  - {name: x, model_id: y, price: {input_per_mtok: 1, output_per_mtok: 1}}\n")
    assert "not in the router config" in _one_line(runner.invoke(app, ["demo", "--config", str(cfg),
                                                                       "--db", str(tmp_path / "x.db")]))


def test_live_without_credentials_fails_with_one_line(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert "--live needs AWS credentials" in _one_line(runner.invoke(app, ["demo", "--live"]))


def test_live_says_it_serves_the_models_own_answers(monkeypatch, tmp_path):
    """Real Bedrock, as boto3 sees it (its endpoint moved to an emulator that answers as no
    script of the workload does): the run said it served the workload's scripted answers."""
    import yaml

    from langchain_tiered_router.emulator import BedrockEmulator

    ids = ["amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"]
    script = tmp_path / "bedrock.yaml"
    script.write_text(yaml.safe_dump({"models": {i: {"default": f"a live answer from {i}"} for i in ids}}))
    for name, value in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    with BedrockEmulator(script) as bedrock:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.url)
        result = runner.invoke(app, ["demo", "--live", "--limit", "3", "--db", str(tmp_path / "live.db")])
        asked = {i: len(bedrock.calls_for(i)) for i in ids}
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "against real Amazon Bedrock, serving the models' own answers, in" in text
    assert "scripted" not in text and "not real model outputs" not in text
    assert asked[ids[0]] >= 3  # every request went to Bedrock, cheapest tier first


@pytest.mark.parametrize("question, answer, passed", [
    ("Extract ... as JSON with keys name, city, age", '{"name": "A", "city": "B", "age": 3}', True),
    ("Extract ... as JSON with keys name, city, age", '{"name": "A", "city": "B", "age": "3"}', False),
    ("Extract ... as JSON with keys name, city, age", "{name: A}", False),
    ("Classify the sentiment ...", "Negative.", True),
    ("Classify the sentiment ...", "mostly negative", False),
    ("What is 2 + 2? Answer with the number only.", "4", True),
    ("What is 2 + 2? Answer with the number only.", "It is 4", False),
    ("... finish with a line 'Answer: <number>'.", "2 + 2 = 4\nAnswer: 4", True),
    ("... finish with a line 'Answer: <number>'.", "2 + 2 = 4, so 4.", False),
])
def test_check_task(question, answer, passed):
    assert check_task(question, answer)[0] is passed


@pytest.mark.parametrize("answer, passed", [
    ("9 * 2 = <<9*2=18>>18\n#### 18", True),
    ("9 * 2 = <<9*2=19>>19\n#### 19", False),           # arithmetic slip
    ("<<5/2=2.5>>2.5 bolts, so 3 in total\n#### 3", False),  # answer not the last computed value
    ("<<5/2=2.5>>2.5\n#### 2.5", False),                # not a whole number
    ("she makes 18 dollars\n#### 18", False),           # no checkable working
    ("<<9*2=18>>18 dollars", False),                    # no final answer
])
def test_check_gsm8k(answer, passed):
    assert check_gsm8k("q", answer)[0] is passed
