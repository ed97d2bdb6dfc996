"""A tiered model behind every inference endpoint the proxy serves, not only
``/v1/chat/completions``: OpenAI's text completions and Responses API (through the OpenAI
SDK), and Anthropic's Messages API (its wire format, as Anthropic's SDKs and Claude Code
send it), each plain and streamed. LiteLLM reshapes the routed chat answer for each; every
request must still route, write its one record, and be logged once by LiteLLM at the
routed cost, on the caller, with ``x-litellm-response-cost`` saying the same."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, Iterator

import httpx
import openai
import pytest

from ._proc import litellm_proxy
from .conftest import CHEAP, FRONTIER, INVOICE_SCHEMA, MID, complete_jsonl, proxy_config, router_yaml, settled_jsonl

pytestmark = pytest.mark.proxy

PROMPT = "the invoice total as JSON"  # cheap fails the JSON gate, mid answers {"total": 12}
ANSWER = '{"total": 12}'


@pytest.fixture(scope="module", params=["provider", "one_pass"])
def proxy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, emulator) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("endpoints")
    cascade = router_yaml(work / "cascade.yaml", gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}],
                          telemetry={"sinks": [{"kind": "jsonl", "path": str(work / "records.jsonl")}]})
    ungated = router_yaml(work / "ungated.yaml",  # no gate of its own: only a client's schema judges
                          telemetry={"sinks": [{"kind": "jsonl", "path": str(work / "records.jsonl")}]})
    strict = router_yaml(work / "strict.yaml", gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}],
                         on_exhausted="raise",
                         telemetry={"sinks": [{"kind": "jsonl", "path": str(work / "records.jsonl")}]})
    config = proxy_config(emulator.url, {"tiered": cascade, "tiered-ungated": ungated, "tiered-strict": strict},
                          callbacks=("tests.litellm.payload_logger.instance",),
                          one_pass=None if request.param == "one_pass" else False, master_key="sk-ops",
                          custom_auth="tests.litellm.proxy_auth.user_api_key_auth")
    with litellm_proxy(config, work, env={"TIERED_TEST_PAYLOADS": str(work / "payloads.jsonl")}) as running:
        yield {**running, "records": work / "records.jsonl", "payloads": work / "payloads.jsonl"}


@pytest.fixture(scope="module")
def client(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy["url"], api_key="sk-ops", max_retries=0, timeout=60)


def _routed(proxy: dict, session: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The session's one record and the LiteLLM events that carry it."""
    deadline = time.monotonic() + 20
    while True:
        rows = [r for r in complete_jsonl(proxy["records"]) if r["session_id"] == session]
        events = [e for e in complete_jsonl(proxy["payloads"])
                  if ((e.get("spend_logs_metadata") or {}).get("tiered_router") or {}).get("session_id") == session]
        if (rows and events) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # a second event, were there one, would be written by now
    events = [e for e in complete_jsonl(proxy["payloads"])
              if ((e.get("spend_logs_metadata") or {}).get("tiered_router") or {}).get("session_id") == session]
    assert len(rows) == 1, rows
    return rows[0], events


def _billed_once(proxy: dict, session: str, header_cost: str | None = None) -> dict[str, Any]:
    row, events = _routed(proxy, session)
    assert row["tier"] == "mid" and [a["outcome"] for a in row["attempts"]] == ["gate_failed", "served"]
    routed = Decimal(row["cost_usd"])
    assert routed > 0
    (event,) = events  # one event: the inner tier calls are not logged
    assert event["event"] == "success" and event["key_alias"] == "ops-key" and event["team_id"] == "ops-team"
    assert Decimal(str(event["response_cost"])) == routed.quantize(Decimal(str(event["response_cost"])))
    assert event["prompt_tokens"] == sum(a["input_tokens"] for a in row["attempts"])
    assert event["completion_tokens"] == sum(a["output_tokens"] for a in row["attempts"])
    if header_cost is not None:
        assert Decimal(header_cost) == routed.quantize(Decimal(header_cost))
    return row


def test_text_completions_route_and_bill_the_routed_cost_once(proxy, client) -> None:
    raw = client.completions.with_raw_response.create(model="tiered", prompt=PROMPT,
                                                      extra_headers={"x-session-id": "ep-completions"})
    completion = raw.parse()
    assert completion.choices[0].text == ANSWER
    assert raw.headers["x-tiered-router-tier"] == "mid"
    # LiteLLM re-prices a chat answer it reshapes into a text completion: the routed cost must win
    _billed_once(proxy, "ep-completions", raw.headers["x-litellm-response-cost"])


def test_responses_api_routes_and_bills_the_routed_cost_once(proxy, client) -> None:
    raw = client.responses.with_raw_response.create(model="tiered", input=PROMPT,
                                                    extra_headers={"x-session-id": "ep-responses"})
    response = raw.parse()
    assert response.output_text == ANSWER
    assert raw.headers["x-tiered-router-tier"] == "mid"
    _billed_once(proxy, "ep-responses", raw.headers["x-litellm-response-cost"])


def test_responses_api_streamed(proxy, client) -> None:
    with client.responses.stream(model="tiered", input=PROMPT, extra_headers={"x-session-id": "ep-responses-s"}) as s:
        text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        final = s.get_final_response()
    assert text == ANSWER and final.output_text == ANSWER
    assert final.usage is not None and final.usage.output_tokens > 0
    row = _billed_once(proxy, "ep-responses-s")
    assert final.usage.input_tokens == sum(a["input_tokens"] for a in row["attempts"])


def _messages(proxy: dict, session: str, **extra: Any) -> httpx.Response:
    """Anthropic's Messages API as its SDKs send it: the key in ``x-api-key``."""
    return httpx.post(f"{proxy['url']}/v1/messages", timeout=60,
                      headers={"x-api-key": "sk-ops", "anthropic-version": "2023-06-01", "x-session-id": session},
                      json={"model": "tiered", "max_tokens": 200, "messages": [{"role": "user", "content": PROMPT}],
                            **extra})


def test_anthropic_messages_route_and_bill_the_routed_cost_once(proxy) -> None:
    response = _messages(proxy, "ep-messages")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "message" and body["content"] == [{"type": "text", "text": ANSWER}]
    assert body["stop_reason"] == "end_turn"
    assert response.headers["x-tiered-router-tier"] == "mid"
    row = _billed_once(proxy, "ep-messages", response.headers["x-litellm-response-cost"])
    assert body["usage"]["input_tokens"] == sum(a["input_tokens"] for a in row["attempts"])


def test_anthropic_messages_streamed(proxy) -> None:
    response = _messages(proxy, "ep-messages-s", stream=True)
    assert response.status_code == 200, response.text
    events = [json.loads(line[len("data: "):]) for line in response.text.splitlines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == ANSWER
    _billed_once(proxy, "ep-messages-s")


def test_anthropic_messages_exhausted_ladder_is_a_502_after_one_climb(proxy, emulator) -> None:
    """The status /chat/completions gives, the ladder climbed once. (LiteLLM builds this
    endpoint's error response from its own headers alone: no ``x-tiered-router-*`` and no
    ``x-should-retry`` reach the client there; the README says so.)"""
    emulator.clear_requests()
    response = httpx.post(f"{proxy['url']}/v1/messages", timeout=60,
                          headers={"x-api-key": "sk-ops", "anthropic-version": "2023-06-01",
                                   "x-session-id": "ep-messages-exhausted"},
                          json={"model": "tiered-strict", "max_tokens": 50,
                                "messages": [{"role": "user", "content": "an impossible invoice"}]})
    assert response.status_code == 502, response.text
    assert response.json()["type"] == "error"
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID, FRONTIER]
    (row,) = [r for r in settled_jsonl(proxy["records"]) if r["session_id"] == "ep-messages-exhausted"]
    assert row["tier"] is None and [a["outcome"] for a in row["attempts"]] == ["gate_failed"] * 3


def test_a_bad_key_is_refused_before_any_tier_is_called(proxy, emulator) -> None:
    before = len(emulator.requests)
    response = httpx.post(f"{proxy['url']}/v1/messages", timeout=60,
                          headers={"x-api-key": "sk-unknown", "anthropic-version": "2023-06-01",
                                   "x-session-id": "ep-refused"},
                          json={"model": "tiered", "max_tokens": 50, "messages": [{"role": "user", "content": PROMPT}]})
    assert response.status_code == 401
    time.sleep(0.3)
    assert not [r for r in complete_jsonl(proxy["records"]) if r["session_id"] == "ep-refused"]
    assert len(emulator.requests) == before


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_anthropic_messages_with_tools_get_a_checked_tool_call(proxy) -> None:
    """A coding agent's turn (Claude Code speaks this API): the tier's tool call comes back
    as a ``tool_use`` block, judged by the tool-call check and the forced choice, not the
    JSON gate of text turns."""
    response = httpx.post(f"{proxy['url']}/v1/messages", timeout=60,
                          headers={"x-api-key": "sk-ops", "anthropic-version": "2023-06-01",
                                   "x-session-id": "ep-messages-tools"},
                          json={"model": "tiered", "max_tokens": 100, "tool_choice": {"type": "any"},
                                "tools": [{"name": "get_weather", "description": "weather", "input_schema": WEATHER}],
                                "messages": [{"role": "user", "content": "what is the weather in Paris"}]})
    assert response.status_code == 200, response.text
    body = response.json()
    (call,) = [b for b in body["content"] if b["type"] == "tool_use"]
    assert call["name"] == "get_weather" and isinstance(call["input"]["city"], str)
    assert body["stop_reason"] == "tool_use"
    row, events = _routed(proxy, "ep-messages-tools")
    # the forced choice ({"type": "any"}) is judged too: a text answer would have failed it
    assert row["tier"] == "cheap" and [(a["turn"], a["gate"]) for a in row["attempts"]] == [
        ("tool_call", "tool_args & tool_choice")]
    (event,) = events
    logged = Decimal(str(event["response_cost"]))
    assert logged == Decimal(row["cost_usd"]).quantize(logged)


def test_anthropic_messages_streamed_tool_call_is_its_only_block(proxy) -> None:
    """The routing record rides on the answer's last chunk: on a chunk of empty text of
    its own, it became an empty text block after the tool_use block, which a client that
    sends the turn back gets refused."""
    response = httpx.post(f"{proxy['url']}/v1/messages", timeout=60,
                          headers={"x-api-key": "sk-ops", "anthropic-version": "2023-06-01",
                                   "x-session-id": "ep-messages-tools-s"},
                          json={"model": "tiered", "max_tokens": 100, "tool_choice": {"type": "any"}, "stream": True,
                                "tools": [{"name": "get_weather", "description": "weather", "input_schema": WEATHER}],
                                "messages": [{"role": "user", "content": "what is the weather in Paris"}]})
    assert response.status_code == 200, response.text
    events = [json.loads(line[len("data: "):]) for line in response.text.splitlines() if line.startswith("data: ")]
    blocks = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert blocks == ["tool_use"]
    stop = next(e for e in events if e["type"] == "message_delta")
    assert stop["delta"]["stop_reason"] == "tool_use"
    row, _ = _routed(proxy, "ep-messages-tools-s")
    assert row["tier"] == "cheap" and row["attempts"][0]["turn"] == "tool_call"


def test_responses_api_function_tools(proxy, client) -> None:
    response = client.responses.create(
        model="tiered", input="what is the weather in Paris", tool_choice="required",
        tools=[{"type": "function", "name": "get_weather", "description": "weather", "parameters": WEATHER}],
        extra_headers={"x-session-id": "ep-responses-tools"})
    (call,) = [o for o in response.output if o.type == "function_call"]
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    row, events = _routed(proxy, "ep-responses-tools")
    assert row["tier"] == "cheap" and row["attempts"][0]["turn"] == "tool_call" and len(events) == 1


def test_a_clients_response_format_schema_is_a_gate_of_its_request(proxy, client) -> None:
    """A model with no gate of its own: the schema an OpenAI client asks for (what
    ``with_structured_output`` sends) judges each tier's answer, so cheap's prose escalates."""
    raw = client.chat.completions.with_raw_response.create(
        model="tiered-ungated", messages=[{"role": "user", "content": PROMPT}],
        response_format={"type": "json_schema", "json_schema": {"name": "invoice", "schema": INVOICE_SCHEMA}},
        extra_headers={"x-session-id": "ep-response-format"})
    assert json.loads(raw.parse().choices[0].message.content) == {"total": 12}
    assert raw.headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:served"
    row = _billed_once(proxy, "ep-response-format", raw.headers["x-litellm-response-cost"])
    assert row["attempts"][0]["gate"] == "response_format"

    plain = client.chat.completions.create(model="tiered-ungated", messages=[{"role": "user", "content": PROMPT}],
                                           extra_headers={"x-session-id": "ep-no-format"})
    assert plain.choices[0].message.content == "The total is twelve."  # no schema asked: cheap's answer stands


# ---- LiteLLM's health checks ---------------------------------------------------------

def _health(proxy: dict) -> dict[str, Any]:
    response = httpx.get(f"{proxy['url']}/health", params={"model": "tiered"}, timeout=120,
                         headers={"Authorization": "Bearer sk-ops"})
    body = response.json()
    assert response.status_code == (200 if body["healthy_count"] else 503), response.text
    return body


def test_a_health_check_asks_the_cheapest_tier_once_and_is_not_traffic(proxy, emulator) -> None:
    """``/health`` (and LiteLLM's background checks) call the model with a one-word
    prompt: routed, it would fail the JSON gate on every tier and pay for all three."""
    before = len(settled_jsonl(proxy["records"]))  # the earlier tests' records all landed
    emulator.clear_requests()
    body = _health(proxy)
    assert body["healthy_count"] == 1 and body["unhealthy_count"] == 0
    assert [r.model_id for r in emulator.requests] == [CHEAP]
    time.sleep(0.5)
    assert len(complete_jsonl(proxy["records"])) == before  # no routing record: not a request


def test_a_health_check_passes_over_a_tier_that_is_down_and_fails_when_all_are(proxy, emulator) -> None:
    emulator.clear_requests()
    emulator.inject("server_error", model_id=CHEAP, times=None)
    try:
        assert _health(proxy)["healthy_count"] == 1  # the router would serve from mid
        assert [r.model_id for r in emulator.requests] == [CHEAP, MID]
        for model_id in (MID, FRONTIER):
            emulator.inject("server_error", model_id=model_id, times=None)
        body = _health(proxy)
        assert body["healthy_count"] == 0 and body["unhealthy_count"] == 1
    finally:
        emulator.clear_faults()
