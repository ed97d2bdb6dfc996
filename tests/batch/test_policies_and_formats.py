"""A classifier picks start tiers; Converse records; every family's record format; batch prices."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from langchain_tiered_router.batch import run_batch
from langchain_tiered_router.batch.formats import Prompt, model_input, unsent_params
from langchain_tiered_router.batch.on_demand import OnDemandBackend
from langchain_tiered_router.batch.planning import job_name, split_sizes
from langchain_tiered_router.batch.pricing import BatchPricing
from langchain_tiered_router.core.config import RouterConfig
from langchain_tiered_router.core.pricing import lookup_batch_price
from langchain_tiered_router.core.tiers import Ladder, Tier
from langchain_tiered_router.core.types import RouteRequest
from langchain_tiered_router.emulator import BedrockEmulator

from .workload import CHEAP, call_cost, prompt, read_jsonl, router_config, script, write_workload


def test_a_classifier_picks_each_records_start_tier(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path)
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        config = router_config(emu.url, s3_url, tmp_path)
        # three-digit questions (records 100-500) are "long": they start on mid
        config["policy"] = {"kind": "classifier", "max_escalations": 2,
                            "classifier": {"kind": "rules", "rules": [{"tier": "mid", "min_chars": len(prompt(100))}]}}
        summary = run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)
    # cheap: records 1-99, too few for a job (on-demand); 24 of them escalate and join the
    # 401 that start on mid in one wave: 425 records, 3 jobs; 25 reach the frontier, on-demand.
    assert summary.on_demand_by_tier == {"cheap": 99, "frontier": 25}
    assert summary.jobs_by_tier == {"mid": 3}
    results = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert (results["doc-100"]["start_tier"], results["doc-099"]["start_tier"]) == ("mid", "cheap")
    assert summary.cost_usd == (99 * call_cost("cheap", "on_demand") + 425 * call_cost("mid")
                                + 25 * call_cost("frontier", "on_demand"))
    lines = read_jsonl(tmp_path / "telemetry.jsonl")
    record = next(r for r in lines if r["request_id"] == results["doc-100"]["request_id"])
    assert record["policy"] == "classifier" and record["start_reason"].startswith("rules[0]: length")


def test_converse_records(tmp_path, s3_url, bucket, s3):
    records, replay = write_workload(tmp_path, n=120)
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        config = router_config(emu.url, s3_url, tmp_path, invocation_type="Converse")
        summary = run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)
        (job,) = emu.jobs.list()
    assert job.invocation_type == "Converse" and job.result.total == 120
    name, _, key = job.input_uri[len("s3://"):].partition("/")
    first = json.loads(s3.get_object(Bucket=name, Key=key)["Body"].read().decode().splitlines()[0])
    assert first == {"recordId": "R0000000001", "modelInput": {
        "messages": [{"role": "user", "content": [{"text": prompt(1)}]}], "inferenceConfig": {"maxTokens": 1024}}}
    assert summary.served_by_tier == {"cheap": 90, "mid": 24, "frontier": 6}
    assert summary.cost_usd == (120 * call_cost("cheap") + 30 * call_cost("mid", "on_demand")
                                + 6 * call_cost("frontier", "on_demand"))


@pytest.mark.parametrize("model_id, invocation", [
    ("anthropic.claude-3-haiku-20240307-v1:0", "InvokeModel"), ("amazon.nova-micro-v1:0", "InvokeModel"),
    ("meta.llama3-8b-instruct-v1:0", "InvokeModel"), ("mistral.mistral-7b-instruct-v0:2", "InvokeModel"),
    ("amazon.titan-text-express-v1", "InvokeModel"), ("anthropic.claude-3-haiku-20240307-v1:0", "Converse"),
    # a chat completion body (it was the [INST] prompt, and Bedrock's reply was unreadable: no 'outputs')
    ("mistral.mistral-large-2407-v1:0", "InvokeModel"), ("us.mistral.pixtral-large-2502-v1:0", "InvokeModel"),
    ("us.meta.llama4-maverick-17b-instruct-v1:0", "InvokeModel"),  # Llama 4's template, not Llama 3's
])
def test_each_family_record_reads_back_from_the_emulator(model_id, invocation):
    prompt_ = Prompt((("user", "my invoice"), ("assistant", "Which one?"), ("user", "the March one")), "Be brief.")
    with BedrockEmulator({"models": {model_id: {"rules": [{"match": "^the March one$", "answer": "Paid."}]}}}) as emu:
        backend = OnDemandBackend(emu.client(retries={"max_attempts": 0}), invocation)
        # the tier's sampling settings are sent as a live call sends them (they were dropped)
        tier = Tier("t", model_id, None, params={"max_tokens": 64, "top_p": 0.9, "stop_sequences": ["END"]})
        answer = backend.call(tier, RouteRequest(text=prompt_.text, payload=prompt_))
        (request,) = emu.requests
    assert answer.text == "Paid." and answer.usage.input_tokens > 0 and answer.usage.output_tokens == 2
    sent = json.dumps(request.body)
    no_stop = "llama" in model_id or "large" in model_id  # bodies that take no stop sequences
    assert ("0.9" in sent) and (("END" in sent) == (not no_stop))
    assert unsent_params(tier, invocation) == (["stop_sequences"] if no_stop else [])
    if "large" in model_id:
        assert request.body["messages"][0] == {"role": "system", "content": "Be brief."}
    if "llama4" in model_id:
        assert "<|header_start|>user<|header_end|>" in request.body["prompt"] and "start_header_id" not in sent
    if invocation == "InvokeModel":  # the on-demand call sends the very body a batch record carries
        assert (request.operation, request.body) == ("InvokeModel", model_input(tier, prompt_, invocation))
    else:
        assert request.operation == "Converse"


def test_batch_prices_from_the_cost_map_else_a_discount():
    config = RouterConfig.from_dict({"tiers": [
        {"name": "cheap", "model_id": CHEAP},
        {"name": "mistral", "model_id": "mistral.mistral-7b-instruct-v0:2"},
        {"name": "custom", "model_id": "my.custom-v1", "price": {"input_per_mtok": 2, "output_per_mtok": 8}}]})
    pricing = BatchPricing(config, Ladder.from_config(config))
    assert pricing.batch_price("cheap") == lookup_batch_price(CHEAP)
    assert (pricing.batch_price("cheap").input_per_mtok, pricing.batch_price("cheap").output_per_mtok) == (
        Decimal("0.0175"), Decimal("0.07"))  # LiteLLM's input/output_cost_per_token_batches
    mistral = pricing.batch_price("mistral")  # no batch price in the map: 50 % off 0.15 / 0.20
    assert (mistral.input_per_mtok, mistral.output_per_mtok) == (Decimal("0.075"), Decimal("0.1"))
    custom = BatchPricing(config, Ladder.from_config(config), Decimal("0.25")).batch_price("custom")
    assert (custom.input_per_mtok, custom.output_per_mtok) == (Decimal("1.5"), Decimal("6"))
    assert lookup_batch_price("my.custom-v1") is None
    unknown = BatchPricing(RouterConfig.from_dict({"tiers": [
        {"name": "x", "model_id": "x.y-v1", "price": {"input_per_mtok": 1, "output_per_mtok": 1}}]}),
        Ladder([Tier("x", "x.y-v1", None)]))
    assert unknown.batch_price("x") is None


@pytest.mark.parametrize("n, low, high, sizes, left", [
    (500, 100, 200, [167, 167, 166], 0), (125, 100, 200, [125], 0), (99, 100, 200, [], 99),
    (150, 100, 100, [100], 50), (250, 100, 200, [125, 125], 0), (50_001, 100, 50_000, [25_001, 25_000], 0),
])
def test_job_sizes_respect_bedrocks_limits(n, low, high, sizes, left):
    assert split_sizes(n, low, high) == (sizes, left)


def test_job_names_are_names_bedrock_accepts():
    import re

    name = job_name("0123456789ab", "a tier_with spaces and a very long name", 12, 3)
    assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}", name)


def test_a_self_grade_gate_calls_its_grader_on_demand_and_prices_it(tmp_path, s3_url, bucket):
    records, replay = write_workload(tmp_path, n=120)
    emulator_script = script(replay)
    emulator_script["models"][CHEAP]["rules"] = [{"match": "strict grader", "answer": "8"}]
    with BedrockEmulator(emulator_script, s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        config = router_config(emu.url, s3_url, tmp_path)
        config["gates"] = [{"kind": "self_grade", "grader_tier": "cheap", "threshold": 7}]
        summary = run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)
        graded = [r for r in emu.requests if r.operation == "InvokeModel"]
    assert summary.served_by_tier == {"cheap": 120} and len(graded) == 120  # one grader call per answer
    lines = read_jsonl(tmp_path / "telemetry.jsonl")
    aux = [call for line in lines for call in line["aux_calls"]]
    assert len(aux) == 120 and {c["purpose"] for c in aux} == {"self_grade"}
    for call in aux:  # the grader ran live: on-demand prices
        assert Decimal(str(call["cost_usd"])) == call_cost("cheap", "on_demand", call["input_tokens"],
                                                           call["output_tokens"])
    routed = sum(Decimal(line["cost_usd"]) for line in lines)
    assert routed == summary.cost_usd == 120 * call_cost("cheap") + sum(Decimal(str(c["cost_usd"])) for c in aux)


def test_a_record_holding_a_lone_surrogate_is_served_and_its_state_saved(tmp_path, s3_url, bucket):
    """Valid JSON (``"\\ud800"``) no UTF-8 can hold: saving the run's state and results
    raised a bare ``UnicodeEncodeError``; they are written escaped and read back exactly."""
    records, replay = write_workload(tmp_path, n=3)
    odd = "Summarise: \ud800 end"
    with open(records, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "odd", "prompt": odd}) + "\n")
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        summary = run_batch(router_config(emu.url, s3_url, tmp_path), records, tmp_path / "out.jsonl", bucket=bucket)
    results = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert set(results) == {"doc-001", "doc-002", "doc-003", "odd"} and summary.failed == 0
    assert results["odd"]["tier"] is not None


def test_answers_and_prompts_holding_unicode_line_separators_are_read_back(tmp_path, s3_url, bucket):
    """A job's output lines split with ``str.splitlines``: an answer holding U+2028 or
    U+0085 (raw, as valid JSON may carry them) cut its record in two, the job read "0 of
    120 records", was paid for again twice, and every record escalated."""
    records, replay = write_workload(tmp_path, n=120)
    rows = [json.loads(line) for line in replay.read_text().splitlines()]
    with open(replay, "w") as fh:  # cheap answers "<n>\u2028(checked\x85)"
        for row in rows:
            row["outcomes"]["cheap"]["response"] += "\u2028(checked\x85)"
            fh.write(json.dumps(row) + "\n")
    with open(records, "a") as fh:  # and one prompt carries a separator too
        fh.write(json.dumps({"id": "doc-121", "prompt": "Q121: say\u2028hello"}) + "\n")
    with BedrockEmulator(script(replay), s3_endpoint_url=s3_url, job_step_s=0.01) as emu:
        config = router_config(emu.url, s3_url, tmp_path)
        config["gates"] = [{"kind": "regex", "pattern": "^\\d+\u2028\\(checked\x85\\)$"}]
        summary = run_batch(config, records, tmp_path / "out.jsonl", bucket=bucket)
        cheap_jobs = [job for job in emu.jobs.list() if job.model_id == CHEAP]
    assert len(cheap_jobs) == 1 and cheap_jobs[0].result.total == 121  # read once, not paid for again
    assert summary.served_by_tier["cheap"] == 90  # every fourth cheap answer is "about <n>"
    results = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert results["doc-001"]["answer"] == "2\u2028(checked\x85)"
