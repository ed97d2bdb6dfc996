"""``tiered-router calibrate --from-db``: shadow-sampled records from the real engine become
labels, and the labels are exactly what the records say."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from langchain_tiered_router.analysis.eval.data import EvalItem, Outcome
from langchain_tiered_router.analysis.eval.replay import ReplayBackend
from langchain_tiered_router.cli import app
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.config import RouterConfig, load_config
from langchain_tiered_router.core.model_file import load_routing_model
from langchain_tiered_router.core.telemetry.comparators import final_number
from langchain_tiered_router.core.telemetry.recorder import flush_all
from langchain_tiered_router.analysis.report.store import load_records
from langchain_tiered_router.core.tiers import Ladder
from langchain_tiered_router.core.types import RouteRequest

from .conftest import WALKTHROUGH, Row, read_jsonl


def items_of(rows: list[Row]) -> list[EvalItem]:
    return [EvalItem(f"gsm8k-{r.n}", r.prompt, {
        "cheap": Outcome(float(r.cheap_correct), r.cheap, 100 + r.n, 50 + r.n),
        "frontier": Outcome(float(r.frontier_correct), r.frontier, 100 + r.n, 80 + r.n)}) for r in rows]


def shadow_db(rows: list[Row], db: Path, *, store_text: bool = True, unique_ids: bool = False) -> Path:
    """Route ``rows`` through the engine (cheap first, no gate) with every answer shadowed."""
    data = load_config(WALKTHROUGH).model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["telemetry"] = {"store_text": store_text, "sinks": [{"kind": "sqlite", "path": str(db)}],
                         "shadow": {"fraction": 1.0, "seed": 3, "comparator": {"kind": "numeric"}}}
    router = build_router(RouterConfig.from_dict(data))
    backend = ReplayBackend()
    for n, item in enumerate(items_of(rows)):
        request_id = f"{item.id}-{n}" if unique_ids else item.id
        router.route(RouteRequest(item.prompt, payload=item, request_id=request_id), backend)
    flush_all()
    return db


def calibrate(*args: str):
    return CliRunner().invoke(app, ["calibrate", *args], env={"COLUMNS": "250"})


def test_shadowed_records_become_labels_and_a_model(gsm8k, tmp_path):
    rows = gsm8k[:60]
    db = shadow_db(rows, tmp_path / "telemetry.db")
    out, labels = tmp_path / "model.npz", tmp_path / "labels.jsonl"
    result = calibrate("--config", str(WALKTHROUGH), "--from-db", str(db), "--save-data", str(labels), "--out", str(out),
                       "--features", "signals")  # the labels are the point here, not the learning: keep it quick
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (f"labels from 60 shadow-sampled records of {db} (60 records read); served by cheap 60; "
            "comparator numeric") in text
    assert "scored by the shadow comparator against the baseline tier's shadow answer" in text
    assert "what these labels cannot tell: other tiers on these requests; requests the router escalated" in text
    assert "calibrated on 60 requests" in text and f"wrote {out}" in text
    if "chose baseline" in text:  # 60 labels rarely certify routing: the promise says what holds instead
        assert "promise: every request stays on the baseline tier: parity is 1.00 by construction" in text
    else:
        assert "promise: with probability" in text
    load_routing_model(out).check_ladder(Ladder.from_config(load_config(WALKTHROUGH)))

    by_id = {r["id"]: r for r in read_jsonl(labels)}
    assert len(by_id) == 60
    records = {r.request_id: r for r in load_records(db)[0]}
    for row in rows:
        label = by_id[f"gsm8k-{row.n}"]
        agree = final_number(row.cheap) is not None and final_number(row.cheap) == final_number(row.frontier)
        assert label["prompt"] == row.prompt and label["source"] == "shadow"
        assert label["outcomes"]["cheap"] == {"score": float(agree), "response": row.cheap,
                                              "input_tokens": 100 + row.n, "output_tokens": 50 + row.n}
        assert label["outcomes"]["frontier"] == {"score": 1.0, "response": row.frontier,
                                                 "input_tokens": 100 + row.n, "output_tokens": 80 + row.n}
        record = records[f"gsm8k-{row.n}"]
        assert (record.shadow_input_tokens, record.shadow_output_tokens) == (100 + row.n, 80 + row.n)


def test_records_without_text_or_too_few_or_a_longer_ladder_are_refused(gsm8k, tmp_path):
    no_text = shadow_db(gsm8k[:20], tmp_path / "no_text.db", store_text=False)
    result = calibrate("--config", str(WALKTHROUGH), "--from-db", str(no_text), "--out", str(tmp_path / "m.npz"))
    assert result.exit_code == 2
    assert "20 were shadow-sampled, and left out: 20 stored no text (set telemetry.store_text: true)" in result.output
    few = shadow_db(gsm8k[:20], tmp_path / "few.db")
    result = calibrate("--config", str(WALKTHROUGH), "--from-db", str(few), "--out", str(tmp_path / "m.npz"))
    assert result.exit_code == 2 and "only 20 distinct shadow-labelled requests" in result.output
    # the same 20 requests sent twice more are still 20 pieces of evidence, as calibrated
    repeated = shadow_db(gsm8k[:20] * 3, tmp_path / "repeated.db", unique_ids=True)
    result = calibrate("--config", str(WALKTHROUGH), "--from-db", str(repeated), "--out", str(tmp_path / "m.npz"))
    assert result.exit_code == 2, result.output
    assert "only 20 distinct shadow-labelled requests" in result.output and "(60 records;" in result.output
    three = load_config(WALKTHROUGH).model_dump(mode="json", by_alias=True, exclude_defaults=True)
    three["tiers"].insert(1, {"name": "mid", "model_id": "amazon.nova-pro-v1:0"})
    (tmp_path / "three.yaml").write_text(yaml.safe_dump(three))
    result = calibrate("--config", str(tmp_path / "three.yaml"), "--from-db", str(few), "--out", str(tmp_path / "m.npz"))
    assert result.exit_code == 2 and "this ladder has 3 tiers" in result.output
    assert "tiered-router collect --from-db" in result.output
    both = calibrate("--config", str(WALKTHROUGH), "--from-db", str(few), "--data", str(few), "--out",
                     str(tmp_path / "m.npz"))
    assert both.exit_code == 2 and "not both" in both.output
    assert not (tmp_path / "m.npz").exists()
    # collect cannot ask what was never stored either
    result = CliRunner().invoke(app, ["collect", "--config", str(WALKTHROUGH), "--from-db", str(no_text), "--out",
                                      str(tmp_path / "o.jsonl"), "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert f"no record in {no_text} holds its prompt text (20 records)" in " ".join(result.output.split())


def test_labels_of_another_ladder_are_left_out_and_a_refusal_names_its_real_cause(gsm8k, tmp_path):
    """Records served by another model than the config's tier now calls were labels all the
    same: a calibration of one model's answers, priced as another's, promised as this router's.
    And a store with no usable label was refused with the wrong remedy: tiers renamed in
    the config read as "stored no text", a ``--since`` past every record as "none was
    shadow-sampled"."""
    db = shadow_db(gsm8k[:60], tmp_path / "telemetry.db")
    config = load_config(WALKTHROUGH).model_dump(mode="json", by_alias=True, exclude_defaults=True)
    cheap_model = config["tiers"][0]["model_id"]

    def with_tiers(name: str, **change: str) -> Path:
        data = yaml.safe_load(yaml.safe_dump(config))
        for tier, key in zip(data["tiers"], ("first", "second")):
            tier.update({k: v for k, v in (("name", change.get(f"{key}_name")),
                                           ("model_id", change.get(f"{key}_model"))) if v})
        (tmp_path / name).write_text(yaml.safe_dump(data))
        return tmp_path / name

    def refused(path: Path, *more: str) -> str:
        result = calibrate("--config", str(path), "--from-db", str(db), "--out", str(tmp_path / "m.npz"), *more)
        assert result.exit_code == 2, result.output
        return " ".join(result.output.split())

    other_model = with_tiers("other_model.yaml", first_model="amazon.nova-micro-v1:0")
    assert ("60 were shadow-sampled, and left out: 60 answered by another model than this config's tiers call "
            f"(cheap: {cheap_model} 60)") in refused(other_model)
    renamed = with_tiers("renamed.yaml", first_name="small", second_name="big")
    assert "left out: 60 served on a tier this config does not have (cheap 60)" in refused(renamed)
    assert "stored no text" not in refused(renamed)
    assert "(0 records read since 2099-01-01; --since 2099-01-01 left none: give an earlier time)" in refused(
        WALKTHROUGH, "--since", "2099-01-01")
    assert not (tmp_path / "m.npz").exists()
    # the config's own ladder still reads every record as a label, also where the model that
    # answered is not the tier's id (a prompt-router tier records the model it invoked)
    import json
    import sqlite3

    with sqlite3.connect(db) as conn:
        for rowid, text in conn.execute("SELECT rowid, record FROM routing_records").fetchall():
            record = json.loads(text)
            record["model_id"] = "anthropic.claude-3-haiku-20240307-v1:0"
            conn.execute("UPDATE routing_records SET record = ? WHERE rowid = ?", (json.dumps(record), rowid))
    conn.close()
    result = calibrate("--config", str(WALKTHROUGH), "--from-db", str(db), "--out", str(tmp_path / "m.npz"),
                       "--features", "signals")
    assert result.exit_code == 0 and "left out" not in result.output
    assert "labels from 60 shadow-sampled records" in " ".join(result.output.split())


def test_collect_from_db_skips_a_damaged_row_with_a_warning_as_the_report_does(gsm8k, tmp_path):
    """One damaged row refused the whole DB, which ``report`` reads with a warning."""
    import sqlite3

    db = shadow_db(gsm8k[:10], tmp_path / "t.db")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE routing_records SET record = '{not json' WHERE request_id = 'gsm8k-3'")
        rowid = conn.execute("SELECT rowid FROM routing_records WHERE request_id = 'gsm8k-3'").fetchone()[0]
    conn.close()
    result = CliRunner().invoke(app, ["collect", "--config", str(WALKTHROUGH), "--from-db", str(db), "--out",
                                      str(tmp_path / "o.jsonl"), "--endpoint-url", "http://127.0.0.1:9", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"collect: 9 prompts from {db}; 0 already complete" in result.stdout
    assert "for 18 answers (cheap 9, frontier 9" in result.stdout
    warning = f"skipped 1 unreadable record of 10 read from {db} (left out of every number); the first: {db}: rowid " \
              f"{rowid}, request_id 'gsm8k-3': not JSON"
    assert result.stderr.startswith(f"tiered-router: warning: {warning}")
    report = CliRunner().invoke(app, ["report", "--db", str(db)])
    assert report.exit_code == 0 and f"tiered-router: warning: {warning}" in report.stderr  # the same words
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE routing_records SET record = '{not json'")
    conn.close()
    nothing = CliRunner().invoke(app, ["collect", "--config", str(WALKTHROUGH), "--from-db", str(db), "--out",
                                       str(tmp_path / "o.jsonl"), "--endpoint-url", "http://127.0.0.1:9", "--dry-run"])
    assert nothing.exit_code == 2 and f"no readable routing record in {db}: 10 unreadable" in nothing.stderr
