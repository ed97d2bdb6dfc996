"""The hook in a real LiteLLM proxy process, its Bedrock tiers answered by the emulator.

One proxy per module serves three tiered models, each with its own router YAML:
``tiered`` (a JSON cascade, flagged when exhausted, tier requests for ops-team only),
``tiered-fast`` (a keyword classifier, no gate: streams pass straight through),
``tiered-strict`` (the JSON cascade, raising when exhausted, forbidden asks ignored).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from decimal import Decimal
from typing import Any, Iterator

import httpx
import openai
import pytest

from langchain_tiered_router.core import lookup_price
from langchain_tiered_router.core.pricing import Usage

from ._proc import litellm_proxy
from .conftest import CHEAP, FRONTIER, INVOICE_SCHEMA, MID, complete_jsonl, proxy_config, router_yaml

pytestmark = pytest.mark.proxy

JSON_GATE = [{"kind": "json_schema", "schema": INVOICE_SCHEMA}]


@pytest.fixture(scope="module", params=["provider", "one_pass"])
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          emulator) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("proxy")
    jsonl, db = work / "telemetry.jsonl", work / "telemetry.db"
    sinks = [{"kind": "jsonl", "path": str(jsonl)}, {"kind": "sqlite", "path": str(db), "flush_interval_s": 0.05}]
    cascade = router_yaml(work / "cascade.yaml", gates=JSON_GATE, on_exhausted="flag",
                          access={"allow_tier_request": ["team:ops-team"], "on_forbidden": "reject"},
                          telemetry={"sinks": sinks})
    fast = router_yaml(work / "fast.yaml",
                       policy={"kind": "classifier", "classifier": {
                           "kind": "rules", "rules": [{"tier": "frontier", "keywords": ["refactor"]}],
                           "default_tier": "cheap"}},
                       access={"allow_tier_request": ["*"]}, telemetry={"sinks": sinks[:1]})
    strict = router_yaml(work / "strict.yaml", gates=JSON_GATE, on_exhausted="raise",
                         access={"allow_tier_request": [], "on_forbidden": "ignore"},
                         telemetry={"sinks": sinks[:1]})
    deadline = router_yaml(work / "deadline.yaml", transport={"deadline_s": 60}, telemetry={"sinks": sinks[:1]})
    broken = router_yaml(work / "broken.yaml", policy={"kind": "cascde"})  # an operator's typo
    timed = router_yaml(work / "timed.yaml", transport={"timeout_s": 1}, telemetry={"sinks": sinks[:1]})
    checked = router_yaml(work / "checked.yaml", telemetry={"sinks": sinks[:1]})  # its circuits: one test's own
    shared = router_yaml(work / "shared.yaml", telemetry={"sinks": sinks[:1]})  # its circuits: one test's own
    # its circuits and its records: one test's own
    ended = router_yaml(work / "ended.yaml", telemetry={"sinks": [{"kind": "jsonl", "path": str(work / "ended.jsonl")}]})
    # a gate on the cheap tier only: an escalated stream's served tier streams straight through
    first_gated = router_yaml(work / "first_gated.yaml",
                              tiers=[{"name": "cheap", "model_id": CHEAP, "gates": JSON_GATE},
                                     {"name": "mid", "model_id": MID}, {"name": "frontier", "model_id": FRONTIER}],
                              telemetry={"sinks": sinks[:1]})
    faulty = router_yaml(work / "faulty.yaml", telemetry={"sinks": sinks[:1]})  # its circuits: one test's own
    # an operator's loop: a tier that is itself a tiered model
    looped = router_yaml(work / "looped.yaml", tiers=[{"name": "cheap", "model_id": CHEAP},
                                                      {"name": "tiered", "model_id": MID}])
    config = proxy_config(emulator.url, {"tiered": cascade, "tiered-fast": fast, "tiered-strict": strict,
                                         "tiered-deadline": deadline, "tiered-broken": broken,
                                         "tiered-timed": timed, "tiered-checked": checked, "tiered-looped": looped,
                                         "tiered-shared": shared, "tiered-ended": ended,
                                         "tiered-first-gated": first_gated, "tiered-faulty": faulty},
                          callbacks=("tests.litellm.payload_logger.instance",), one_pass=None if request.param == "one_pass" else False,
                          master_key="sk-ops", custom_auth="tests.litellm.proxy_auth.user_api_key_auth")
    payloads = work / "payloads.jsonl"
    with litellm_proxy(config, work, env={"TIERED_TEST_PAYLOADS": str(payloads)}) as proxy:
        print(f"\nLiteLLM proxy started in {proxy['start_s']:.1f}s")
        yield {**proxy, "jsonl": jsonl, "db": db, "work": work, "payloads": payloads, "mode": request.param}


@pytest.fixture(scope="module")
def ops(setup) -> openai.OpenAI:
    return openai.OpenAI(base_url=setup["url"], api_key="sk-ops", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def app(setup) -> openai.OpenAI:
    return openai.OpenAI(base_url=setup["url"], api_key="sk-app", max_retries=0, timeout=60)


def ask(client: openai.OpenAI, text: str, model: str = "tiered", **kwargs: Any):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs)
    return raw.parse(), raw.headers


def test_cascade_escalates_past_invalid_json(setup, ops, emulator, rows_for):
    emulator.clear_requests()
    response, headers = ask(ops, "extract the invoice total")
    assert json.loads(response.choices[0].message.content) == {"total": 12}
    assert headers["x-tiered-router-tier"] == "mid"
    assert headers["x-tiered-router-escalated"] == "true"
    assert headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:served"
    assert headers["x-litellm-model-group"] == "tiered"  # the model called (one-pass: not the first tier's group)
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]
    routing = response.model_extra["tiered_router"]
    assert routing["tier"] == "mid" and routing["quality_escalations"] == 1
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert row["integration"] == "litellm" and row["tier"] == "mid" and row["start_tier"] == "cheap"
    # one-pass: the proxy's own call was the cheap attempt, the mid attempt the router's call
    assert row["metadata"].get("proxy_path") == ("one_pass" if setup["mode"] == "one_pass" else None)
    assert [a["outcome"] for a in row["attempts"]] == ["gate_failed", "served"]
    # Every attempt is priced from the token counts the emulator reported, at the cost map's rates.
    cheap_usage, mid_usage = (Usage(a["input_tokens"], a["output_tokens"]) for a in row["attempts"])
    assert cheap_usage.input_tokens > 0 and mid_usage.output_tokens > 0
    cost = lookup_price(CHEAP).cost(cheap_usage) + lookup_price(MID).cost(mid_usage)
    assert Decimal(row["cost_usd"]) == cost
    assert Decimal(row["baseline_cost_usd"]) == lookup_price(FRONTIER).cost(mid_usage)
    assert Decimal(row["savings_usd"]) == Decimal(row["baseline_cost_usd"]) - cost
    assert headers["x-tiered-router-cost-usd"] == row["cost_usd"]


@pytest.mark.parametrize("stream", ["false", "true", 1, 0])
def test_a_stream_flag_that_is_not_a_bool_is_routed_as_the_proxy_answers_it(setup, ops, emulator, rows_for, stream):
    """The proxy streams only for ``stream: true``; any other value is answered whole, and
    routed so (``"false"`` was routed as a stream nobody read: the client got the cheap
    tier's answer unjudged, and the route waited 15 minutes)."""
    emulator.clear_requests()
    reply = httpx.post(f"{setup['url']}/v1/chat/completions", headers={"Authorization": "Bearer sk-ops"}, timeout=60,
                       json={"model": "tiered", "stream": stream,
                             "messages": [{"role": "user", "content": "extract the invoice total"}]})
    assert reply.status_code == 200, reply.text
    assert json.loads(reply.json()["choices"][0]["message"]["content"]) == {"total": 12}
    assert reply.headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:served"
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]
    assert rows_for(setup["jsonl"], reply.headers["x-tiered-router-request-id"])["tier"] == "mid"


def _payloads(setup, request_id: str, expected: int = 1) -> list[dict[str, Any]]:
    """LiteLLM's standard logging payloads of the call that served routed request ``request_id``."""
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [p for p in complete_jsonl(setup["payloads"])
                 if ((p.get("spend_logs_metadata") or {}).get("tiered_router") or {}).get("request_id") == request_id]
        if len(found) >= expected:
            break
        time.sleep(0.05)
    return found


def _same_money(logged: Any, exact: str) -> bool:
    """LiteLLM's cost is a float; the record's a decimal string."""
    return Decimal(str(logged)) == Decimal(exact).quantize(Decimal(str(logged)))


def _tier_call_events(setup, request_id: str) -> list[dict[str, Any]]:
    return [p for p in complete_jsonl(setup["payloads"]) if (p.get("tier_call") or {}).get("request_id") == request_id]


def _first_tier_call(client: openai.OpenAI) -> Any:
    """The headers of a plain call of the first tier's group."""
    return client.chat.completions.with_raw_response.create(
        model="cheap", messages=[{"role": "user", "content": "hello"}]).headers


def test_routing_fields_reach_litellm_logging_and_spend(setup, ops):
    response, headers = ask(ops, "extract the invoice total")
    (payload,) = _payloads(setup, headers["x-tiered-router-request-id"])
    routing = payload["spend_logs_metadata"]["tiered_router"]
    assert payload["model_group"] == "tiered"
    assert routing["tier"] == "mid" and routing["escalated"] is True
    assert [a["tier"] for a in routing["attempts"]] == ["cheap", "mid"]
    # LiteLLM bills the routed request at its whole cost: the gate-failed attempt included.
    assert _same_money(payload["response_cost"], routing["cost_usd"])


def test_litellm_logs_the_routed_cost_once_with_every_attempts_tokens_on_the_caller(setup, ops, rows_for):
    """One logged event per request, on the calling key and team: the routed cost (the
    gate-failed attempt included), every attempt's tokens, LiteLLM's routing_decision; the
    tier calls themselves are not logged again."""
    response, headers = ask(ops, "extract the invoice total")
    request_id = headers["x-tiered-router-request-id"]
    (payload,) = _payloads(setup, request_id)
    routing = payload["spend_logs_metadata"]["tiered_router"]
    assert routing["metadata"].get("proxy_path") == ("one_pass" if setup["mode"] == "one_pass" else None)
    assert (payload["event"], payload["key_alias"], payload["team_id"]) == ("success", "ops-key", "ops-team")
    assert _same_money(payload["response_cost"], routing["cost_usd"])
    assert _same_money(headers["x-litellm-response-cost"], routing["cost_usd"])
    # LiteLLM's log (and spend log) names the model that served, never the first tier's that did not
    assert CHEAP not in payload["model"] and (MID in payload["model"] or payload["model"] == "tiered_router/tiered")
    if setup["mode"] == "one_pass":  # LiteLLM's headers name the deployment that served, not the first call's
        assert MID in payload["model"]
        assert MID in headers["x-litellm-model-name"] and CHEAP not in headers["x-litellm-model-name"]
        assert headers["x-litellm-model-id"] != _first_tier_call(ops)["x-litellm-model-id"]
        streamed = ops.chat.completions.with_raw_response.create(
            model="tiered", stream=True, messages=[{"role": "user", "content": "extract the invoice total"}])
        list(streamed.parse())
        assert streamed.headers["x-tiered-router-tier"] == "mid"
        # the gate judged mid's whole answer before the first chunk: the route's cost is known
        assert Decimal(streamed.headers["x-litellm-response-cost-original"]) == pytest.approx(
            Decimal(rows_for(setup["jsonl"], streamed.headers["x-tiered-router-request-id"])["cost_usd"]))
        assert MID in streamed.headers["x-litellm-model-name"]
        assert streamed.headers["x-litellm-model-id"] == headers["x-litellm-model-id"]
    attempts = routing["attempts"]
    # LiteLLM's cost breakdown (its headers, the spend log's): every attempt's tokens at its tier's price
    prices = {a["model_id"]: lookup_price(a["model_id"]) for a in attempts}
    spent_in = sum(a["input_tokens"] * prices[a["model_id"]].input_per_mtok for a in attempts) / 10 ** 6
    spent_out = sum(a["output_tokens"] * prices[a["model_id"]].output_per_mtok for a in attempts) / 10 ** 6
    assert spent_in + spent_out == Decimal(routing["cost_usd"])
    for logged, exact in ((headers["x-litellm-response-cost-input"], spent_in),
                          (headers["x-litellm-response-cost-output"], spent_out),
                          (payload["cost_breakdown"]["input_cost"], spent_in),
                          (payload["cost_breakdown"]["output_cost"], spent_out)):
        assert Decimal(str(logged)) == pytest.approx(exact, rel=1e-9), (logged, exact)
    assert Decimal(headers["x-litellm-response-cost-original"]) == pytest.approx(Decimal(routing["cost_usd"]))
    assert payload["prompt_tokens"] == sum(a["input_tokens"] for a in attempts) > attempts[-1]["input_tokens"]
    assert payload["completion_tokens"] == sum(a["output_tokens"] for a in attempts)
    assert response.usage.completion_tokens == payload["completion_tokens"]
    # the detail objects OpenAI clients read, as a deployment's usage has them (the emulator's models do not reason)
    assert response.usage.completion_tokens_details.reasoning_tokens == 0
    assert response.usage.completion_tokens_details.text_tokens == response.usage.completion_tokens
    assert response.usage.prompt_tokens_details.text_tokens == response.usage.prompt_tokens
    assert payload["routing_decision"] == {"router_model_name": "tiered", "escalated": True, "tier": "mid",
                                           "tier_label": "mid", "routed_model": MID,
                                           "signals": ["cheap:gate_failed", "mid:served"]}
    time.sleep(0.5)  # a second event, or a tier call's, would be written by now
    assert len(_payloads(setup, request_id)) == 1 and _tier_call_events(setup, request_id) == []


def test_an_escalated_stream_sends_no_cost_header_before_its_cost_is_known(setup, ops, rows_for):
    """One-pass, a stream whose served tier streams straight through sends its headers
    before that stream ends: LiteLLM sent the cost breakdown of its own call, the first
    tier's (about 30 times low in an outside run), as the response's. No cost header now;
    the routed cost is in the record and the spend log."""
    if setup["mode"] != "one_pass":
        pytest.skip("the provider's path streams through LiteLLM's own stream wrapper")
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered-first-gated", stream=True, messages=[{"role": "user", "content": "extract the invoice total"}])
    list(raw.parse())
    assert raw.headers["x-tiered-router-escalated"] == "true"
    sent = {h: v for h, v in raw.headers.items() if h.startswith("x-litellm-response-cost")}
    row = rows_for(setup["jsonl"], raw.headers["x-tiered-router-request-id"])
    assert [a["tier"] for a in row["attempts"]] == ["cheap", "mid"] and Decimal(row["cost_usd"]) > 0
    assert sent == {}, sent


def test_an_exhausted_ladder_still_charges_the_caller(setup, ops):
    """502, and LiteLLM's failure log carries the three attempts' cost and tokens on the
    calling key and team: finalized, so its spend tracking bills it like a served request."""
    with pytest.raises(openai.APIStatusError) as info:
        ask(ops, "an impossible invoice", model="tiered-strict")
    assert info.value.status_code == 502
    request_id = re.search(r'request_id\\*"\s*:\s*\\*"([0-9a-f]{32})', json.dumps(info.value.body)).group(1)
    (payload,) = _payloads(setup, request_id)
    routing = payload["spend_logs_metadata"]["tiered_router"]
    assert payload["event"] == "failure" and routing["tier"] is None and len(routing["attempts"]) == 3
    assert payload["model"] == "tiered_router/tiered-strict"  # no tier served it: not the first tier's model
    assert (payload["key_alias"], payload["team_id"], payload["user_id"]) == ("ops-key", "ops-team", "ops-user")
    assert payload["cost_finalized"] is True and Decimal(routing["cost_usd"]) > 0
    assert _same_money(payload["response_cost"], routing["cost_usd"])
    assert payload["prompt_tokens"] == sum(a["input_tokens"] for a in routing["attempts"])
    assert payload["routing_decision"]["signals"] == ["cheap:gate_failed", "mid:gate_failed", "frontier:gate_failed"]
    parts = payload["cost_breakdown"]
    assert parts["input_cost"] > 0 and parts["output_cost"] > 0
    assert Decimal(str(parts["input_cost"] + parts["output_cost"])) == pytest.approx(Decimal(routing["cost_usd"]))


def test_a_streamed_request_whose_ladder_is_exhausted_is_an_error_billed_to_the_caller(setup, ops):
    """A gated stream that no tier passes, under ``on_exhausted: raise``: nothing reaches
    the client but the 502, and LiteLLM's failure log bills the three attempts to the
    calling key and team, as for a request that is not streamed."""
    with pytest.raises(openai.APIStatusError) as info:
        list(ops.chat.completions.create(model="tiered-strict", stream=True,
                                         messages=[{"role": "user", "content": "an impossible streamed invoice"}]))
    assert info.value.status_code == 502 and "ladder_exhausted" in str(info.value)
    request_id = re.search(r'request_id\\*"\s*:\s*\\*"([0-9a-f]{32})', str(info.value)).group(1)
    (payload,) = _payloads(setup, request_id)
    routing = payload["spend_logs_metadata"]["tiered_router"]
    assert payload["event"] == "failure" and routing["tier"] is None and len(routing["attempts"]) == 3
    assert payload["model"] == "tiered_router/tiered-strict"
    assert (payload["key_alias"], payload["team_id"]) == ("ops-key", "ops-team")
    assert _same_money(payload["response_cost"], routing["cost_usd"]) and Decimal(routing["cost_usd"]) > 0
    time.sleep(0.5)
    assert len(_payloads(setup, request_id)) == 1


def test_a_client_that_leaves_mid_stream_is_recorded_and_billed(setup, ops, emulator, rows_for):
    """The client closes a live stream after its first chunk, while the tier's stream
    stalls: the route records the attempt as interrupted after output reached the client,
    and what LiteLLM logs of the request carries that attempt's cost, on the caller."""
    emulator.clear_requests()
    emulator.inject("stream_stall", model_id=FRONTIER, after_events=2, seconds=3.0)
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered-fast", stream=True, messages=[{"role": "user", "content": "refactor it, then I leave"}])
    request_id = raw.headers["x-tiered-router-request-id"]
    stream = raw.parse()
    first = next(iter(stream))
    assert first.choices[0].delta.content == "frontier answer"
    stream.close()
    row = rows_for(setup["jsonl"], request_id)
    (attempt,) = row["attempts"]
    assert row["tier"] is None and re.search("closed by the consumer|Cancelled", row["error"])  # uvicorn cancels
    assert attempt["tier"] == "frontier" and attempt["emitted"] is True and Decimal(attempt["cost_usd"]) > 0
    (payload,) = _payloads(setup, request_id)
    assert payload["key_alias"] == "ops-key" and _same_money(payload["response_cost"], row["cost_usd"])


def test_sqlite_sink_gets_the_same_row(setup, ops):
    _, headers = ask(ops, "another invoice please")
    request_id = headers["x-tiered-router-request-id"]
    deadline = time.monotonic() + 10
    row = None
    while row is None and time.monotonic() < deadline:
        if setup["db"].exists():
            with sqlite3.connect(setup["db"]) as conn:
                conn.row_factory = sqlite3.Row
                try:
                    row = conn.execute("SELECT * FROM routing_records WHERE request_id = ?", (request_id,)).fetchone()
                except sqlite3.OperationalError:
                    row = None
        time.sleep(0.1)
    assert row is not None, "no SQLite row"
    assert row["tier"] == "mid" and row["integration"] == "litellm"
    assert Decimal(str(row["baseline_cost_usd"])) > Decimal(str(row["cost_usd"]))


def test_flagged_when_no_tier_passes(setup, ops, rows_for):
    response, headers = ask(ops, "an impossible invoice")
    assert headers["x-tiered-router-flagged"] == "true"
    assert headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:gate_failed,frontier:gate_failed"
    assert response.choices[0].message.content == "still no idea"  # the last answer, served flagged
    routing = response.model_extra["tiered_router"]
    assert routing["flagged"] is True and "no tier passed" in routing["flag_reason"]
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert row["flagged"] is True and row["tier"] == "frontier" and len(row["attempts"]) == 3


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}


def test_a_tool_call_is_judged_against_its_tool_not_the_text_gate(setup, ops, emulator, rows_for):
    emulator.clear_requests()
    response, headers = ask(ops, "Use get_weather for the weather in Paris", tools=[WEATHER_TOOL])
    (call,) = response.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"]
    # the JSON gate of this model judges text answers; the tool turn passes on cheap, unflagged
    assert headers["x-tiered-router-attempts"] == "cheap:served" and headers["x-tiered-router-flagged"] == "false"
    assert [r.model_id for r in emulator.requests] == [CHEAP]
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    (attempt,) = row["attempts"]
    assert (attempt["turn"], attempt["gate"], attempt["gate_reason"]) == ("tool_call", "tool_args", "1 tool call valid")


def test_a_streamed_tool_call_reaches_the_client_whole(setup, ops, emulator, rows_for):
    emulator.clear_requests()
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered", stream=True, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Use get_weather for the weather in Paris, streamed"}])
    chunks = list(raw.parse())
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert calls[0].function.name == "get_weather"
    assert json.loads("".join(t.function.arguments or "" for t in calls))["city"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    row = rows_for(setup["jsonl"], raw.headers["x-tiered-router-request-id"])
    (attempt,) = row["attempts"]
    assert (attempt["turn"], attempt["outcome"]) == ("tool_call", "served")


def test_exhausted_ladder_is_an_error_response_under_raise(setup, emulator):
    """A 502 the SDKs do not retry: with their default two retries, the client pays the
    ladder once (three tier calls), not three times."""
    client = openai.OpenAI(base_url=setup["url"], api_key="sk-ops", timeout=60)  # the SDK's default retries
    emulator.clear_requests()
    with pytest.raises(openai.APIStatusError) as info:
        ask(client, "an impossible invoice", model="tiered-strict")
    assert info.value.status_code == 502
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID, FRONTIER]
    body = json.dumps(info.value.body)
    assert "ladder_exhausted" in body and "frontier" in body and "gate_failed" in body
    headers = info.value.response.headers
    assert headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:gate_failed,frontier:gate_failed"
    assert headers["x-tiered-router-cost-usd"] == str(Decimal(headers["x-litellm-response-cost"]))
    # the SDKs retry a 5xx twice by default, each retry paying the ladder again: not this one
    assert headers["x-should-retry"] == "false"


def test_a_ladder_that_ends_on_an_upstream_error_answers_with_that_errors_status(setup, ops, emulator):
    """The status is the one a plain deployment gives the error that ended the ladder, so
    clients treat it as they would there: every tier throttled is a 429 (an SDK backs off
    and tries again), a prompt over the context window a 400 (nobody retries it). On the
    provider's path the body names the ladder and what ended it; one-pass, LiteLLM's
    router failed the first call over to the tiers above and answers with its own error."""
    for fault, status, ended_on in (("throttle", 429, "throttled"), ("context_window", 400, "context_window")):
        emulator.clear_requests()
        emulator.inject(fault, times=None, **({"retry_after": 2} if fault == "throttle" else {}))
        try:
            with pytest.raises(openai.APIStatusError) as info:
                ask(ops, f"say hi despite {fault}", model="tiered-ended")
        finally:
            emulator.clear_faults()
        assert info.value.status_code == status, (fault, info.value)
        headers = info.value.response.headers
        assert "x-should-retry" not in headers
        # the route's headers, on LiteLLM's own error too (one-pass: the first call's, after its fallbacks)
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-tiered-router-request-id"])
        assert headers["x-tiered-router-attempts"].startswith("cheap:"), dict(headers)
        if fault == "throttle":
            assert {r.model_id for r in emulator.requests} == {CHEAP, MID, FRONTIER}  # every tier was tried
        if setup["mode"] == "provider":  # one-pass, LiteLLM's own 429 (as a plain deployment's)
            assert headers.get("retry-after") == ("2" if fault == "throttle" else None)  # Bedrock's, passed on
            body = json.dumps(info.value.body)
            assert "ladder_exhausted" in body and f'\\"ended_on\\": \\"{ended_on}\\"' in body, body


def test_classifier_stream_goes_straight_through(setup, ops, emulator, rows_for):
    emulator.clear_requests()
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered-fast", messages=[{"role": "user", "content": "please refactor this"}], stream=True)
    assert raw.headers["x-tiered-router-tier"] == "frontier"
    assert raw.headers["x-tiered-router-streamed-through"] == "true"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "frontier answer"
    assert not any(c.usage for c in chunks)  # the client did not ask for the usage chunk
    assert [(r.operation, r.model_id) for r in emulator.requests] == [("ConverseStream", FRONTIER)]
    row = rows_for(setup["jsonl"], raw.headers["x-tiered-router-request-id"])
    assert row["tier"] == "frontier" and row["start_reason"].startswith("rules[0]")
    assert row["output_tokens"] > 0
    assert Decimal(row["cost_usd"]) == Decimal(row["baseline_cost_usd"]) > 0  # frontier is the baseline
    # The routed call is logged on the tiered model, carrying the whole routing record and
    # its cost; the tier's own streamed call is not logged a second time.
    (payload,) = _payloads(setup, raw.headers["x-tiered-router-request-id"])
    assert payload["model_group"] == "tiered-fast"
    routing = payload["spend_logs_metadata"]["tiered_router"]
    assert routing["tier"] == "frontier" and routing["cost_usd"] == row["cost_usd"]
    assert routing["attempts"][0]["emitted"] is True
    # LiteLLM cannot price a tiered_router stream; the provider hands it the routed cost
    assert _same_money(payload["response_cost"], row["cost_usd"]) and payload["key_alias"] == "ops-key"


def test_gated_stream_is_buffered_then_replayed(setup, ops, emulator, rows_for):
    """A gated stream reaches the client once its answer passed: here cheap's fails the
    JSON gate and mid's is replayed. LiteLLM logs one event, on the caller, with the
    routed cost and every attempt's tokens. One-pass, cheap's attempt is the proxy's own
    streamed call; on the provider's path each attempt is a plain call."""
    emulator.clear_requests()
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered", messages=[{"role": "user", "content": "stream the invoice total"}], stream=True,
        stream_options={"include_usage": True})
    assert raw.headers["x-tiered-router-tier"] == "mid"
    assert raw.headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:served"
    assert raw.headers["x-litellm-model-group"] == "tiered"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == {"total": 12}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    one_pass = setup["mode"] == "one_pass"
    assert [r.operation for r in emulator.requests] == ["ConverseStream" if one_pass else "Converse", "Converse"]
    assert [c.usage for c in chunks[:-1]] == [None] * (len(chunks) - 1)  # the routed usage comes last, once
    assert {c.id for c in chunks} == {chunks[0].id} and {c.model for c in chunks} == {"tiered"}  # one stream
    row = rows_for(setup["jsonl"], raw.headers["x-tiered-router-request-id"])
    assert row["metadata"].get("proxy_path") == ("one_pass" if one_pass else None)
    assert chunks[-1].usage.prompt_tokens == row["input_tokens"] > row["attempts"][-1]["input_tokens"]
    assert chunks[-1].usage.completion_tokens == row["output_tokens"] > row["attempts"][-1]["output_tokens"]
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 0
    assert chunks[-1].usage.completion_tokens_details.text_tokens == row["output_tokens"]
    (payload,) = _payloads(setup, row["request_id"])
    assert (payload["event"], payload["key_alias"], payload["team_id"]) == ("success", "ops-key", "ops-team")
    assert payload["model_group"] == "tiered" and _same_money(payload["response_cost"], row["cost_usd"])
    assert (payload["prompt_tokens"], payload["completion_tokens"]) == (row["input_tokens"], row["output_tokens"])
    assert payload["routing_decision"]["signals"] == ["cheap:gate_failed", "mid:served"]
    time.sleep(0.5)  # a second event, or a tier call's, would be written by now
    assert len(_payloads(setup, row["request_id"])) == 1 and _tier_call_events(setup, row["request_id"]) == []


def test_a_gated_stream_that_passes_on_its_first_tier(setup, ops, emulator, rows_for):
    """The common case: the first tier's streamed answer passes its gate. One-pass, that
    is the proxy's one call, and the client gets its chunks with no usage it did not ask for."""
    emulator.clear_requests()
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered", messages=[{"role": "user", "content": "stream one invoice total"}], stream=True,
        extra_headers={"x-tiered-router-tier": "mid"})  # ops-team may start a request on mid
    chunks = list(raw.parse())
    assert raw.headers["x-tiered-router-attempts"] == "mid:served"
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)) == {"total": 12}
    assert not any(c.usage for c in chunks)
    one_pass = setup["mode"] == "one_pass"
    assert [r.operation for r in emulator.requests] == ["ConverseStream" if one_pass else "Converse"]
    row = rows_for(setup["jsonl"], raw.headers["x-tiered-router-request-id"])
    (payload,) = _payloads(setup, row["request_id"])
    assert _same_money(payload["response_cost"], row["cost_usd"]) and Decimal(row["cost_usd"]) > 0
    assert (payload["prompt_tokens"], payload["completion_tokens"]) == (row["input_tokens"], row["output_tokens"])


def test_throttled_tier_is_retried_then_escalated(setup, ops, emulator, rows_for):
    if setup["mode"] == "one_pass":
        pytest.skip("one-pass: the proxy's own call of the first tier answers the client (next test)")
    emulator.clear_requests()
    emulator.inject("throttle", model_id=CHEAP, times=2)  # max_retries 1: two throttles exhaust cheap
    response, headers = ask(ops, "say hello", model="tiered-fast")
    assert response.choices[0].message.content == "mid answer"
    assert headers["x-tiered-router-attempts"] == "cheap:transport_error,mid:served"
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert row["transport_escalations"] == 1 and row["quality_escalations"] == 0
    assert row["attempts"][0]["retried_on"] == ["throttled"] and row["attempts"][0]["error_kind"] == "throttled"
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP, MID]


def test_a_model_error_on_a_tier_escalates_on_both_paths(setup, ops, emulator, rows_for):
    """Bedrock's ``ModelErrorException`` (HTTP 424: the model failed on this request)
    reaches LiteLLM as a ``BadRequestError`` with status 424. It is the tier's failure,
    not the caller's: the route goes on to mid (on one-pass, LiteLLM's fallback does),
    and the caller is not handed a 400."""
    emulator.clear_requests()
    emulator.inject("model_error", model_id=CHEAP, times=None)
    try:
        response, headers = ask(ops, "say hello past a model error", model="tiered-faulty")
    finally:
        emulator.clear_faults()
    assert response.choices[0].message.content and headers["x-tiered-router-tier"] == "mid"
    assert headers["x-tiered-router-attempts"] == "cheap:transport_error,mid:served"
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert row["transport_escalations"] == 1 and row["quality_escalations"] == 0
    assert row["attempts"][0]["error_kind"] == ("failed_over" if setup["mode"] == "one_pass" else "server_error")
    assert [r.model_id for r in emulator.requests][-1] == MID


def test_one_pass_a_throttled_first_tier_is_retried_then_failed_over_by_litellm(setup, ops, emulator, rows_for):
    """One-pass: the first attempt is the proxy's own call, retried by LiteLLM's router as
    the router YAML says (max_retries 1), with the tiers above as its fallbacks. A cheap
    tier that stays throttled is passed over to mid, which serves: the record holds both
    attempts and the caller pays the routed cost once. When every tier stays throttled,
    the proxy's error is what the client gets; the route records every tier LiteLLM's
    fallbacks called, and calls nothing more."""
    if setup["mode"] != "one_pass":
        pytest.skip("the provider's path retries and escalates (test above)")
    emulator.clear_requests()
    emulator.inject("throttle", model_id=CHEAP, times=1)
    response, headers = ask(ops, "say hello once throttled", model="tiered-fast")
    assert headers["x-tiered-router-attempts"] == "cheap:served"
    once = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert once["metadata"]["proxy_path"] == "one_pass"
    assert once["attempts"][0]["retries"] == 1  # LiteLLM's retry, counted as the engine counts its own
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP]
    emulator.inject("throttle", model_id=CHEAP, times=1)  # the same, streamed
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered-fast", stream=True, messages=[{"role": "user", "content": "stream hello once throttled"}])
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    once = rows_for(setup["jsonl"], raw.headers["x-tiered-router-request-id"])
    assert once["metadata"]["proxy_path"] == "one_pass" and once["attempts"][0]["outcome"] == "served"
    assert once["attempts"][0]["retries"] == 1

    emulator.clear_requests()
    emulator.inject("throttle", model_id=CHEAP, times=2)
    response, headers = ask(ops, "say hello throttled twice", model="tiered-fast")
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP, MID]
    assert response.choices[0].message.content and headers["x-tiered-router-tier"] == "mid"
    assert response.model == "tiered-fast"  # LiteLLM's fallback is the route's escalation: the model called
    emulator.inject("throttle", model_id=CHEAP, times=2)  # another router's circuit: tiered-fast's is near its limit
    streamed = list(ops.chat.completions.create(model="tiered-checked", stream=True,
                                                messages=[{"role": "user", "content": "stream hello throttled"}]))
    assert {c.model for c in streamed} == {"tiered-checked"} and len({c.id for c in streamed}) == 1
    assert headers["x-tiered-router-attempts"] == "cheap:transport_error,mid:served"
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert [(a["tier"], a["outcome"], a["error_kind"]) for a in row["attempts"]] == [
        ("cheap", "transport_error", "failed_over"), ("mid", "served", None)]
    assert row["transport_escalations"] == 1 and row["metadata"]["proxy_path"] == "one_pass"
    assert float(headers["x-litellm-response-cost"]) == pytest.approx(float(row["cost_usd"]))
    # LiteLLM logs the request once, from the fallback call's own copy of its metadata:
    # on the model the client called, with the routing (not on group mid without it)
    (payload,) = _payloads(setup, headers["x-tiered-router-request-id"])
    assert payload["event"] == "success" and payload["model_group"] == "tiered-fast"
    assert payload["routing_decision"]["signals"] == ["cheap:transport_error", "mid:served"]
    assert _same_money(payload["response_cost"], row["cost_usd"])

    emulator.clear_requests()
    for model_id in (CHEAP, MID, FRONTIER):
        emulator.inject("throttle", model_id=model_id, times=2)
    with pytest.raises(openai.RateLimitError):
        ask(ops, "say hello throttled everywhere", model="tiered-fast")
    time.sleep(0.5)
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP, MID, MID, FRONTIER, FRONTIER]
    rows = complete_jsonl(setup["jsonl"])
    row = next(r for r in reversed(rows) if r["attempts"][0]["outcome"] == "transport_error")
    assert row["metadata"]["proxy_path"] == "one_pass" and row["tier"] is None
    # every tier LiteLLM's fallbacks called (the record held cheap's attempt alone)
    assert [(a["tier"], a["outcome"], a["error_kind"]) for a in row["attempts"]] == [
        ("cheap", "transport_error", "failed_over"), ("mid", "transport_error", "failed_over"),
        ("frontier", "transport_error", "throttled")]
    assert row["transport_escalations"] == 2 and "reached the caller" in row["error"]


BAD_REQUESTS = [
    ({"messages": [{"role": "user", "content": 123}]}, "bad_request", "messages[0].content must be text"),
    ({"messages": []}, "bad_request", "'messages' must be a non-empty list"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "bad_request", "messages[0].role must be one of"),
    ({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema",
                                                                           "json_schema": {"name": "x"}}},
     "bad_response_format", "needs json_schema.schema"),
    ({"messages": [{"role": "user", "content": "hi"}], "response_format": "json"}, "bad_response_format",
     "response_format must be an object"),
]


@pytest.mark.parametrize("body, code, message", BAD_REQUESTS, ids=["content-int", "no-messages", "role", "schema",
                                                                   "format-str"])
def test_a_request_no_tier_can_answer_is_a_400_before_any_call(setup, ops, emulator, body, code, message):
    """Sent on, a malformed request fails on every tier (one-pass: after LiteLLM's retries and
    fallbacks, seconds later) and counts against the tiers' circuits, so a few of them would
    move everyone's traffic up the ladder. It is the client's 400, and nothing is called."""
    emulator.clear_requests()
    for _ in range(4):  # more than the circuit's failure threshold
        reply = httpx.post(f"{setup['url']}/v1/chat/completions", json={"model": "tiered-checked", **body},
                           headers={"Authorization": "Bearer sk-ops"}, timeout=60)
        if setup["mode"] == "provider" and "Tiered_router" not in reply.text:
            continue  # LiteLLM's own request handling refused it before the provider, as for any model
        assert reply.status_code == 400, reply.text
        detail = reply.json()["error"]["message"]  # the router's JSON, on the provider's path in LiteLLM's words
        assert f'"error": "{code}"' in detail and message in detail
    assert emulator.requests == []
    response, headers = ask(ops, "say hello after bad requests", model="tiered-checked")
    assert headers["x-tiered-router-attempts"] == "cheap:served"  # the circuit stayed closed


def test_one_callers_own_errors_do_not_open_the_circuits_every_caller_shares(setup, ops, emulator, rows_for):
    """One-pass, LiteLLM's router falls back on a client's error too (a parameter the first
    tier's model does not take: ``reasoning_effort`` on Nova Micro) and on a timeout the
    caller shortened (``x-litellm-timeout``). Those failures are the caller's: counted
    against the circuits every caller of the router YAML shares, a few such requests sent
    everyone's traffic up the ladder. A throttled tier still counts (the fleet tests)."""
    if setup["mode"] != "one_pass":
        pytest.skip("the provider's path calls each tier itself")
    for i in range(4):  # more than the circuit's failure threshold
        reply = httpx.post(f"{setup['url']}/v1/chat/completions", timeout=60,
                           json={"model": "tiered-shared", "reasoning_effort": "low",
                                 "messages": [{"role": "user", "content": f"think hard {i}"}]},
                           headers={"Authorization": "Bearer sk-ops"})
        assert reply.headers["x-tiered-router-attempts"].startswith("cheap:transport_error"), reply.text
    emulator.inject("slow", model_id=CHEAP, times=None, seconds=2.0)
    try:
        for i in range(4):
            reply = httpx.post(f"{setup['url']}/v1/chat/completions", timeout=60,
                               json={"model": "tiered-shared", "messages": [{"role": "user", "content": f"quick {i}"}]},
                               headers={"Authorization": "Bearer sk-ops", "x-litellm-timeout": "0.5"})
            row = rows_for(setup["jsonl"], reply.headers["x-tiered-router-request-id"])
            assert row["attempts"][0]["error_kind"] == "failed_over", row["attempts"]
    finally:
        emulator.clear_faults()
    response, headers = ask(ops, "say hello after them", model="tiered-shared")
    assert headers["x-tiered-router-attempts"] == "cheap:served"  # the circuit stayed closed


def test_embeddings_on_a_tiered_model_are_a_400_saying_so(setup):
    reply = httpx.post(f"{setup['url']}/v1/embeddings", json={"model": "tiered", "input": "hello"},
                       headers={"Authorization": "Bearer sk-ops"}, timeout=60)
    assert reply.status_code == 400 and "a tiered model routes chat completions, not embeddings" in reply.text


def test_a_clients_own_fallbacks_never_pass_for_a_tiers_answer(setup, ops, emulator, rows_for):
    """A client that sends its own ``fallbacks`` for a tiered model is routed on the
    provider's path: one-pass, a fallback model answering the proxy's call of the first
    tier was recorded and billed as that tier (frontier's answer at cheap's price). The
    record names every model called, the served one last, and bills what they cost."""
    emulator.clear_requests()
    emulator.inject("throttle", model_id=CHEAP, times=2)  # cheap stays throttled past its retry
    response, headers = ask(ops, "extract the invoice total", extra_body={"fallbacks": ["frontier"]})
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert row["metadata"].get("proxy_path") is None  # the provider's path, in both modes
    called = [r.model_id for r in emulator.requests]
    assert called == [CHEAP, CHEAP, MID]
    assert [(a["tier"], a["outcome"]) for a in row["attempts"]] == [("cheap", "transport_error"), ("mid", "served")]
    assert headers["x-tiered-router-tier"] == "mid" and json.loads(response.choices[0].message.content) == {"total": 12}
    mid = row["attempts"][1]
    assert Decimal(row["cost_usd"]) == lookup_price(MID).cost(Usage(mid["input_tokens"], mid["output_tokens"]))


def test_a_router_with_a_request_deadline_routes_on_the_providers_path(setup, ops, rows_for):
    """LiteLLM's retries and fallbacks of a one-pass call know no request deadline: a
    router YAML with ``transport.deadline_s`` routes every request on the provider's path."""
    response, headers = ask(ops, "say hello", model="tiered-deadline")
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert row["metadata"].get("proxy_path") is None and row["tier"] == "cheap"


def test_a_tier_call_past_its_timeout_is_retried_once_and_the_answer_carries_the_routing(
        setup, ops, emulator, rows_for):
    """A first tier slower than its ``timeout_s`` once: the call is given up and made
    again, once. One-pass, the engine used to time the proxy's own call as well: it gave
    up on it while LiteLLM was still retrying, called the tier a third time, and the
    answer the client got carried no routing (no headers, no record field)."""
    emulator.clear_requests()
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=3)
    response, headers = ask(ops, "say hello slowly", model="tiered-timed")
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP]
    assert headers["x-tiered-router-tier"] == "cheap" and response.model_extra["tiered_router"]["tier"] == "cheap"
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert [(a["tier"], a["outcome"]) for a in row["attempts"]] == [("cheap", "served")]


def test_the_clients_timeout_limits_each_tier_call_on_both_paths(setup, ops, emulator, rows_for):
    """``timeout`` in the request (LiteLLM hands it to a provider apart from the other
    parameters): a tier call past it is given up and made again, as a direct call's is,
    instead of waiting for the slow reply."""
    emulator.clear_requests()
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=4)
    response, headers = ask(ops, "say hello slowly", model="tiered-fast", extra_body={"timeout": 1.5})
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP]  # the slow call was given up
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert row["tier"] == "cheap"


def test_a_broken_router_yaml_is_a_500_that_names_it_and_other_models_still_route(setup, ops, emulator):
    """An operator's broken router YAML: that model answers 500 with the file's error (not
    a LiteLLM bug report), calls no tier, and the proxy's other tiered models route."""
    emulator.clear_requests()
    with pytest.raises(openai.InternalServerError) as info:
        ask(ops, "say hello", model="tiered-broken")
    body = json.dumps(info.value.body)
    assert "router_misconfigured" in body and "policy.kind" in body and "tiered-broken" in body
    assert '\\"config_file\\": \\"broken.yaml\\"' in body, body  # LiteLLM redacts paths, not the name
    assert emulator.requests == []
    response, headers = ask(ops, "say hello", model="tiered-fast")
    assert headers["x-tiered-router-tier"] == "cheap"


def test_a_ladder_the_proxys_models_break_is_named_in_the_log_at_start(setup):
    """A tier that is itself a tiered model is found once the proxy has made its model
    list, not by the first request (this module's tests may not have sent one yet)."""
    deadline, text = time.monotonic() + 30, ""
    while time.monotonic() < deadline:
        text = setup["log"].read_text(errors="replace")
        found = [line for line in text.splitlines() if "checked at start" in line]
        if found:
            break
        time.sleep(0.2)
    (line,) = found
    assert "looped.yaml cannot route on this proxy's models" in line
    assert "tier 'tiered' is a tiered model (tiered_router/...)" in line


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_tier_that_is_itself_a_tiered_model_is_a_500_not_a_loop(setup, ops, emulator, stream):
    """Each call of such a tier would route again, without end (before: the proxy stopped
    answering, busy redacting ever longer nested errors)."""
    emulator.clear_requests()
    with pytest.raises(openai.InternalServerError) as info:
        response = ops.chat.completions.create(model="tiered-looped", stream=stream,
                                               messages=[{"role": "user", "content": "say hello"}])
        if stream:
            list(response)
    body = json.dumps(info.value.body)
    assert "router_misconfigured" in body and "is a tiered model" in body and "tiers[1].name" in body
    assert emulator.requests == []
    response, headers = ask(ops, "say hello", model="tiered-fast")
    assert headers["x-tiered-router-tier"] == "cheap"


def test_bedrock_parameters_and_drop_params_reach_every_tier_as_on_a_direct_call(setup, ops, emulator, rows_for):
    """A client's Bedrock fields (a guardrail, request metadata) go with every attempt, the
    escalations too, as the proxy sends them to a deployment called directly; so does
    ``drop_params`` (before: the escalation failed on ``seed``, which Bedrock does not take)."""
    extra = {"guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"},
             "requestMetadata": {"team": "a"}, "seed": 7, "drop_params": True}
    emulator.clear_requests()
    ask(ops, "say hello", model="cheap", extra_body=extra)
    direct = emulator.requests[-1].body
    assert direct["guardrailConfig"] == extra["guardrailConfig"] and direct["requestMetadata"] == {"team": "a"}
    emulator.clear_requests()
    response, headers = ask(ops, "extract the invoice total", extra_body=extra)
    assert headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:served"
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]
    for sent in emulator.requests:
        assert sent.body["guardrailConfig"] == extra["guardrailConfig"]
        assert sent.body["requestMetadata"] == {"team": "a"}
        assert "seed" not in json.dumps(sent.body)


def test_forbidden_tier_request_is_refused(setup, app, emulator):
    emulator.clear_requests()
    with pytest.raises(openai.PermissionDeniedError) as info:
        ask(app, "extract the invoice total", extra_headers={"x-tiered-router-tier": "frontier"})
    assert "tier_not_allowed" in json.dumps(info.value.body) and "app" in json.dumps(info.value.body)
    assert emulator.requests == []  # refused before any model was called


def test_allowed_team_may_ask_for_a_tier(setup, ops, emulator):
    emulator.clear_requests()
    response, headers = ask(ops, "extract the invoice total", extra_headers={"x-tiered-router-tier": "frontier"})
    assert headers["x-tiered-router-tier"] == "frontier" and headers["x-tiered-router-escalated"] == "false"
    assert response.model_extra["tiered_router"]["start_reason"] == "requested by the caller"
    assert [r.model_id for r in emulator.requests] == [FRONTIER]


def test_forbidden_tier_request_is_ignored_when_configured(setup, app, rows_for):
    response, headers = ask(app, "extract the invoice total", model="tiered-strict",
                            extra_body={"metadata": {"tier": "frontier"}})
    assert headers["x-tiered-router-start-tier"] == "cheap" and headers["x-tiered-router-tier"] == "mid"
    assert response.model_extra["tiered_router"]["metadata"]["ignored_tier_request"] == "frontier"
    row = rows_for(setup["jsonl"], headers["x-tiered-router-request-id"])
    assert row["metadata"]["ignored_tier_request"] == "frontier" and row["metadata"]["key_alias"] == "app-key"


def test_session_stays_on_its_tier(setup, ops, emulator):
    session = {"x-session-id": "chat-42"}
    _, first = ask(ops, "extract the invoice total", extra_headers=session)
    assert first["x-tiered-router-tier"] == "mid"
    emulator.clear_requests()
    _, second = ask(ops, "and the invoice date?", extra_headers=session)
    assert second["x-tiered-router-start-tier"] == "mid"
    assert [r.model_id for r in emulator.requests] == [MID]  # cheap skipped: pinned


def test_plain_models_are_untouched(setup, ops):
    response, headers = ask(ops, "say hello", model="cheap")
    assert response.choices[0].message.content == "hi from cheap"
    assert "x-tiered-router-tier" not in headers


def test_cut_stream_is_recorded_as_a_transport_error(setup, ops, emulator):
    emulator.inject("stream_cut", model_id=FRONTIER, times=1, after_events=2)
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered-fast", messages=[{"role": "user", "content": "refactor it again"}], stream=True)
    request_id = raw.headers["x-tiered-router-request-id"]
    with pytest.raises(Exception):
        list(raw.parse())
    deadline = time.monotonic() + 10
    row = None
    while row is None and time.monotonic() < deadline:
        rows = complete_jsonl(setup["jsonl"])
        row = next((r for r in rows if r["request_id"] == request_id), None)
        time.sleep(0.05)
    assert row is not None and row["tier"] is None
    assert row["attempts"][0]["outcome"] == "transport_error" and row["error"]
    assert row["attempts"][0]["error_kind"] == "stream_cut"
    # output had reached the client: no retry, and the tokens sent are priced (estimated)
    cut = row["attempts"][0]
    assert cut["emitted"] and cut["usage_estimated"] and Decimal(cut["cost_usd"]) > 0 and len(row["attempts"]) == 1


# One conversation, two integrations: the keyword is in an earlier turn only, or in the
# question asked now. Both read what the core's request_text decides, so both agree.
CONVERSATIONS = [
    ([{"role": "system", "content": "You are a careful engineer."},
      {"role": "user", "content": "please refactor this module"},
      {"role": "assistant", "content": "Done: three functions split out."},
      {"role": "user", "content": "thanks! and which date is it?"}], "cheap"),
    ([{"role": "system", "content": "You are a careful engineer."},
      {"role": "user", "content": "hello"},
      {"role": "assistant", "content": "hi"},
      {"role": "user", "content": "now refactor the tests too"}], "frontier"),
]


def _langchain_messages(messages):
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


@pytest.mark.parametrize("messages, expected", CONVERSATIONS, ids=["keyword-earlier", "keyword-now"])
def test_one_conversation_gets_the_same_tier_through_langchain_and_the_proxy(setup, ops, emulator, messages,
                                                                             expected):
    from langchain_tiered_router.core import RouterConfig
    from langchain_tiered_router.langchain import TieredChatBedrock

    config = RouterConfig.from_yaml(setup["work"] / "fast.yaml").model_copy(update={"endpoint_url": emulator.url})
    llm = TieredChatBedrock(config=config, telemetry=False)
    invoked = llm.invoke(_langchain_messages(messages)).response_metadata["routing"]["tier"]
    streamed = [c for c in llm.stream(_langchain_messages(messages)) if "routing" in c.response_metadata]
    raw = ops.chat.completions.with_raw_response.create(model="tiered-fast", messages=messages)
    proxied = raw.headers["x-tiered-router-tier"]
    proxied_stream = ops.chat.completions.with_raw_response.create(model="tiered-fast", messages=messages,
                                                                   stream=True)
    list(proxied_stream.parse())
    assert invoked == streamed[0].response_metadata["routing"]["tier"] == proxied == expected
    assert proxied_stream.headers["x-tiered-router-tier"] == expected
    assert raw.parse().model_extra["tiered_router"]["tier"] == expected


def test_a_stream_escalates_before_its_first_chunk_unseen(setup, ops, emulator, rows_for):
    """The streamed path has the engine's retries and escalation: the client sees mid's
    stream only, and the one record holds cheap's throttled tries."""
    emulator.clear_requests()
    emulator.inject("throttle", model_id=CHEAP, times=2)  # max_retries 1: two throttles exhaust cheap
    raw = ops.chat.completions.with_raw_response.create(
        model="tiered-fast", messages=[{"role": "user", "content": "say hello"}], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "mid answer"
    assert raw.headers["x-tiered-router-tier"] == "mid" and raw.headers["x-tiered-router-escalated"] == "true"
    assert [(r.operation, r.model_id) for r in emulator.requests] == [
        ("ConverseStream", CHEAP), ("ConverseStream", CHEAP), ("ConverseStream", MID)]
    row = rows_for(setup["jsonl"], raw.headers["x-tiered-router-request-id"])
    # one-pass: LiteLLM's router retried the proxy's own call, then fell back to mid
    first = ("cheap", "transport_error", [], "failed_over") if setup["mode"] == "one_pass" else \
        ("cheap", "transport_error", ["throttled"], "throttled")
    assert [(a["tier"], a["outcome"], a["retried_on"], a["error_kind"]) for a in row["attempts"]] == [
        first, ("mid", "served", [], None)]
    assert row["transport_escalations"] == 1 and Decimal(row["cost_usd"]) > 0
    (payload,) = _payloads(setup, row["request_id"])
    assert _same_money(payload["response_cost"], row["cost_usd"]) and payload["key_alias"] == "ops-key"


def test_a_passed_through_stream_on_throttled_tiers_retries_escalates_and_writes_one_record(setup, ops, emulator,
                                                                                            rows_for):
    """Every tier throttled on a stream that would pass straight through: each tier is
    retried, then escalated, and the request still writes its one record. On the
    provider's path the client gets a 429 naming every attempt; one-pass, the proxy's own
    call (retried, then failed over to the tiers above by LiteLLM's router) answers the
    client with its 429, and the route records every tier those fallbacks called (it
    recorded the first alone)."""
    emulator.clear_requests()
    emulator.inject("throttle", times=None)
    sent_at = time.time()
    with pytest.raises(openai.APIStatusError) as info:
        ops.chat.completions.create(model="tiered-fast", messages=[{"role": "user", "content": "say hi"}],
                                    stream=True)
    one_pass = setup["mode"] == "one_pass"
    assert info.value.status_code == 429  # a plain deployment's throttle, whatever the path
    assert one_pass or "ladder_exhausted" in str(info.value)
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP, MID, MID, FRONTIER, FRONTIER]
    emulator.clear_faults()
    deadline = time.monotonic() + 10
    while True:
        rows = complete_jsonl(setup["jsonl"])
        failed = [r for r in rows if r["tier"] is None and r["ts"] >= sent_at - 1 and (
            r["metadata"].get("proxy_path") == "one_pass" and "reached the caller" in (r["error"] or "")
            if one_pass else
            len(r["attempts"]) == 3 and all(a["retried_on"] == ["throttled"] for a in r["attempts"]))]
        if failed or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    (row,) = failed
    assert [(a["tier"], a["outcome"]) for a in row["attempts"]] == [
        ("cheap", "transport_error"), ("mid", "transport_error"), ("frontier", "transport_error")]
