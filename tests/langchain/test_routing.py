"""End to end through real botocore against the emulator: escalation, costs, terminals,
transport faults, streaming, classifier and confidence routes, tools, pinning, async."""

from __future__ import annotations

from decimal import Decimal

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_tiered_router.core import GateFailed, LadderExhaustedError, TierNotAllowedError, TransportError

from .scripts import CHEAP, FRONTIER, INVOICE, INVOICE_JSON, INVOICE_SCHEMA, MID, ROUTER_ARN, cost, tokens

JSON_GATE = [{"kind": "json_schema", "schema": INVOICE_SCHEMA}]
CHEAP_TEXT = "Sure! The total is twelve fifty."
MID_TEXT = '{"total": "twelve fifty", "currency": "EUR"}'


def merged(chunks):
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


def test_json_escalates_cheap_mid_frontier_with_exact_costs(routed) -> None:
    llm = routed(gates=JSON_GATE)
    message = llm.invoke(INVOICE)

    assert message.content == INVOICE_JSON
    routing = message.response_metadata["routing"]
    assert routing["tier"] == "frontier" and routing["model_id"] == FRONTIER
    assert message.response_metadata["model_name"] == FRONTIER == message.response_metadata["model_id"]
    assert routing["escalated"] is True and routing["flagged"] is False
    assert routing["quality_escalations"] == 2 and routing["transport_escalations"] == 0
    n_in = tokens(INVOICE)
    outs = {CHEAP: tokens(CHEAP_TEXT), MID: tokens(MID_TEXT), FRONTIER: tokens(INVOICE_JSON)}
    assert [(a["tier"], a["model_id"], a["gate_passed"], a["input_tokens"], a["output_tokens"])
            for a in routing["attempts"]] == [
        ("cheap", CHEAP, False, n_in, outs[CHEAP]), ("mid", MID, False, n_in, outs[MID]),
        ("frontier", FRONTIER, True, n_in, outs[FRONTIER])]
    assert routing["attempts"][0]["gate_reason"] == "no JSON value in the answer"
    assert routing["attempts"][1]["gate_reason"] == 'schema violation at total: expected type "number"'

    costs = {m: cost(m, n_in, outs[m]) for m in outs}
    result = routed.last
    assert [a.cost_usd for a in result.attempts] == [costs[CHEAP], costs[MID], costs[FRONTIER]]
    assert result.cost_usd == costs[CHEAP] + costs[MID] + costs[FRONTIER] == Decimal("0.000221175")
    assert result.baseline_cost_usd == costs[FRONTIER] == Decimal("0.000174")
    # money is a decimal string in every serialised form
    assert routing["cost_usd"] == str(result.cost_usd) and routing["baseline_cost_usd"] == str(costs[FRONTIER])
    # usage_metadata is the served attempt's only; totals of all attempts are in routing
    assert message.usage_metadata["input_tokens"] == n_in
    assert message.usage_metadata["output_tokens"] == outs[FRONTIER]
    assert routing["output_tokens"] == sum(outs.values())


def test_cheap_tier_serves_when_its_answer_passes(routed) -> None:
    plain = routed().invoke("hello there")
    assert plain.content == "I am the cheap model."
    assert plain.response_metadata["routing"]["escalated"] is False
    assert Decimal(plain.response_metadata["routing"]["baseline_cost_usd"]) == \
        cost(FRONTIER, tokens("hello there"), tokens("I am the cheap model."))


def test_flagged_terminal_serves_last_answer(routed) -> None:
    llm = routed(gates=[{"kind": "regex", "pattern": "^NEVER$"}])
    message = llm.invoke("hello")
    routing = message.response_metadata["routing"]
    assert routing["flagged"] is True and routing["tier"] == "frontier"
    assert routing["flag_reason"] == "no tier passed the gates; serving frontier's answer (pattern not found)"
    assert [a["outcome"] for a in routing["attempts"]] == ["gate_failed"] * 3
    assert message.content.startswith("I am the frontier model")


def test_raise_terminal_is_a_group_with_one_error_per_attempt(routed) -> None:
    llm = routed(gates=[{"kind": "regex", "pattern": "^NEVER$"}], on_exhausted="raise")
    with pytest.raises(LadderExhaustedError) as info:
        llm.invoke("hello")
    group = info.value
    assert [type(e) for e in group.exceptions] == [GateFailed, GateFailed, GateFailed]
    assert [e.tier for e in group.exceptions] == ["cheap", "mid", "frontier"]
    assert group.result.flagged is False and len(group.result.attempts) == 3


def exploding_rule(question: str, answer: str) -> bool:
    raise RuntimeError("rule service down")


def test_gate_that_raises_fails_with_reason_and_escalates(routed) -> None:
    llm = routed(gates=[{"kind": "rule", "function": f"{__name__}:exploding_rule"}], on_exhausted="raise")
    with pytest.raises(LadderExhaustedError) as info:
        llm.invoke("hello")
    reasons = [a.verdict.reason for a in info.value.result.attempts]
    assert reasons == ["gate raised RuntimeError"] * 3


def test_throttled_tier_is_retried_then_escalated(routed, emulator) -> None:
    llm = routed()
    emulator.inject("throttle", model_id=CHEAP, times=2)  # max_retries 1: two tries, both throttled
    message = llm.invoke("hello")
    assert message.content == "I am the mid model, a little slower and a lot more careful."
    routing = message.response_metadata["routing"]
    first, second = routing["attempts"]
    assert (first["tier"], first["outcome"], first["error_kind"], first["retries"], first["retried_on"]) == (
        "cheap", "transport_error", "throttled", 1, ["throttled"])
    assert Decimal(first["cost_usd"]) == 0 and first["gate_passed"] is None
    assert (second["tier"], second["outcome"]) == ("mid", "served")
    assert routing["transport_escalations"] == 1 and routing["quality_escalations"] == 0
    assert len(emulator.calls_for(CHEAP)) >= 2


def test_throttle_once_is_retried_on_the_same_tier(routed, emulator) -> None:
    emulator.inject("throttle", model_id=CHEAP, times=1)
    routing = routed().invoke("hello").response_metadata["routing"]
    assert [(a["tier"], a["outcome"], a["retries"]) for a in routing["attempts"]] == [("cheap", "served", 1)]


def test_stream_cut_before_output_is_retried_in_gated_stream(routed, emulator) -> None:
    llm = routed(gates=JSON_GATE)
    emulator.inject("stream_cut", model_id=FRONTIER, times=1, after_events=3)
    chunks = list(llm.stream(INVOICE))
    full = merged(chunks)
    assert full.text == INVOICE_JSON
    attempts = full.response_metadata["routing"]["attempts"]
    assert [(a["tier"], a["retries"], a["retried_on"]) for a in attempts] == [
        ("cheap", 0, []), ("mid", 0, []), ("frontier", 1, ["stream_cut"])]
    assert sum(1 for c in chunks if "routing" in c.response_metadata) == 1


def test_stream_cut_after_output_in_pass_through_raises(routed, emulator) -> None:
    llm = routed()
    emulator.inject("stream_cut", model_id=CHEAP, times=None, after_events=2)
    seen = []
    with pytest.raises(LadderExhaustedError) as info:
        for chunk in llm.stream("hello"):
            seen.append(chunk)
    assert merged(seen).text == "I am the "  # the part that was streamed before the cut
    (error,) = info.value.exceptions
    assert isinstance(error, TransportError) and error.kind == "stream_cut"
    assert info.value.result.attempts[0].outcome == "transport_error"
    assert "after output was streamed" in str(info.value)
    cut = info.value.result.attempts[0]  # billed for what it sent: priced on estimated tokens
    assert cut.emitted and cut.usage_estimated and cut.usage.output_tokens == tokens("I am the ")
    assert cut.cost_usd == cost(CHEAP, cut.usage.input_tokens, tokens("I am the ")) > 0


def test_stream_cut_before_output_in_pass_through_is_retried(routed, emulator) -> None:
    emulator.inject("stream_cut", model_id=CHEAP, times=1, after_events=1)
    full = merged(list(routed().stream("hello")))
    assert full.text == "I am the cheap model."
    assert full.response_metadata["routing"]["attempts"][0]["retried_on"] == ["stream_cut"]


CLASSIFIER = {"kind": "classifier", "classifier": {"kind": "rules", "rules": [
    {"tier": "frontier", "keywords": ["prove"]}, {"tier": "mid", "min_chars": 40}], "default_tier": "cheap"}}


def test_classifier_route_streams_straight_through_token_by_token(routed, emulator) -> None:
    llm = routed(policy=CLASSIFIER)
    assert llm.router.streams_through(llm._request([HumanMessage("prove it")], {}, {})[0])
    chunks = list(llm.stream("Please prove it"))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 3  # several deltas, not one buffered block
    full = merged(chunks)
    assert full.text == "I am the frontier model, and I weigh every word of your question with care."
    routing = full.response_metadata["routing"]
    assert (routing["tier"], routing["start_reason"]) == ("frontier", "rules[0]: keyword 'prove'")
    assert routing["attempts"][0]["gate_reason"] == "no gate (streamed through)"
    assert full.response_metadata["model_name"] == FRONTIER
    assert full.usage_metadata["output_tokens"] == tokens(full.text)
    assert sum(1 for c in chunks if "routing" in c.response_metadata) == 1
    assert routed(policy=CLASSIFIER).invoke("hi").response_metadata["routing"]["tier"] == "cheap"


def test_confidence_route_escalates_on_self_rating_and_sentinel(routed) -> None:
    llm = routed(policy={"kind": "confidence", "confidence": {"kind": "confidence", "threshold": 0.7}})
    message = llm.invoke("What is the capital of France?")
    assert message.content == "Paris. Confidence: 0.9"
    first = message.response_metadata["routing"]["attempts"][0]
    assert first["gate_reason"] == "self_rating confidence 0.30 < 0.70"
    sentinel = llm.invoke("escalate-me please").response_metadata["routing"]
    assert [a["tier"] for a in sentinel["attempts"]] == ["cheap", "mid"]
    assert sentinel["attempts"][0]["gate_reason"] == "sentinel confidence 0.00 < 0.70"


def test_a_logprobs_confidence_gate_on_converse_tiers_says_it_cannot_judge(routed, caplog) -> None:
    """Bedrock's Converse API returns no token logprobs: a gate reading only them judged
    every answer 'missing' and passed it, as silently as a gate that works."""
    llm = routed(policy={"kind": "confidence", "confidence": {"kind": "confidence", "signal": "logprobs"}})
    with caplog.at_level("WARNING", logger="langchain_tiered_router"):
        first = llm.invoke("What is the capital of France?").response_metadata["routing"]
        llm.invoke("What is the capital of Spain?")
    assert first["attempts"][0]["gate_reason"] == "no confidence signal (pass when missing)"
    told = [r.getMessage() for r in caplog.records if "without token logprobs" in r.getMessage()]
    assert len(told) == 1 and "'cheap'" in told[0] and "pass as 'missing'" in told[0]


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


class Person(BaseModel):
    name: str
    age: int


def test_tools_routed_and_invalid_args_escalate(routed) -> None:
    # no gate configured: a tool call is checked against the bound tool's own schema
    llm = routed().bind_tools([get_weather])
    message = llm.invoke("What's the weather like?")
    assert message.tool_calls[0]["name"] == "get_weather" and message.tool_calls[0]["args"] == {"city": "Paris"}
    routing = message.response_metadata["routing"]
    assert [a["tier"] for a in routing["attempts"]] == ["cheap", "mid"]
    assert routing["attempts"][0]["gate_reason"] == "tool call 0 (get_weather): schema violation at city: Input " \
                                                    "should be a valid string"
    assert [a["turn"] for a in routing["attempts"]] == ["tool_call", "tool_call"]
    follow = llm.invoke([HumanMessage("What's the weather like?"), message, get_weather.invoke(message.tool_calls[0])])
    assert "Sunny in Paris." in follow.text
    assert follow.response_metadata["routing"]["attempts"][0]["turn"] == "text"


@pytest.mark.parametrize("schema", [Person, Person.model_json_schema()], ids=["pydantic", "json_schema"])
def test_structured_output_schema_is_a_gate(routed, schema) -> None:
    llm = routed().with_structured_output(schema, include_raw=True)
    out = llm.invoke("'Grace' is 85")
    parsed = out["parsed"]
    assert (parsed if isinstance(parsed, dict) else parsed.model_dump()) == {"name": "Grace", "age": 85}
    attempts = out["raw"].response_metadata["routing"]["attempts"]
    assert [a["tier"] for a in attempts] == ["cheap", "mid"]
    assert attempts[0]["gate_passed"] is False and "age" in attempts[0]["gate_reason"]


def test_structured_output_typed_dict_streamed(routed) -> None:
    from typing_extensions import TypedDict

    class PersonDict(TypedDict):
        name: str
        age: int

    chunks = list(routed().with_structured_output(PersonDict).stream("'Grace' is 85"))
    assert chunks[-1] == {"name": "Grace", "age": 85}


def test_session_pinning_keeps_a_conversation_on_one_tier(routed) -> None:
    llm = routed(gates=JSON_GATE)
    first = llm.invoke(INVOICE, config={"metadata": {"session_id": "s-1"}})
    assert first.response_metadata["routing"]["tier"] == "frontier"
    again = llm.invoke("hello", config={"metadata": {"session_id": "s-1"}})
    routing = again.response_metadata["routing"]
    assert routing["start_reason"] == "pinned by session s-1" and routing["tier"] == "frontier"
    by_kwarg = llm.invoke("hello", session_id="s-1").response_metadata["routing"]
    assert by_kwarg["start_tier"] == "frontier"
    other = llm.invoke("hello", session_id="s-2").response_metadata["routing"]
    assert other["start_tier"] == "cheap"


def test_a_session_pinned_to_a_tier_that_is_down_is_started_by_the_policy(routed, emulator) -> None:
    """A session pinned to a tier whose circuit is open is not held to it (every turn
    would be skipped there and fail): the policy starts the turn, as for any request,
    and the conversation goes on; the pin is kept for when the tier is back."""
    llm = routed(access={"allow_tier_request": ["*"]}, circuit={"failures": 1, "cooldown_s": 60},
                 retry={"max_retries": 0, "on_exhausted": "raise"})
    assert llm.invoke("hello", tier="frontier", session_id="s-1").response_metadata["routing"]["tier"] == "frontier"
    emulator.inject("throttle", model_id=FRONTIER, times=1)
    with pytest.raises(LadderExhaustedError):  # frontier's circuit opens
        llm.invoke("hello", tier="frontier")
    routing = llm.invoke("hello", session_id="s-1").response_metadata["routing"]
    assert (routing["start_tier"], routing["tier"]) == ("cheap", "cheap")
    assert routing["start_reason"] != "pinned by session s-1"
    # the turn served by cheap left the pin alone (it moved the session to cheap for good)
    from langchain_tiered_router.core.access import pin_key
    from langchain_tiered_router.core.pinning import decode_pin

    assert decode_pin(llm.built.router.pin_store.get(pin_key("s-1", ()))) == ("frontier", True)


def test_a_session_whose_pinned_tier_fails_is_served_below_it(routed, emulator) -> None:
    """The pinned tier (the top one) throttled past its retries, before its circuit
    opens: the policy starts the request below it, as without the pin, instead of the
    turn failing; the pin stays, so the next turn is back on it."""
    llm = routed(access={"allow_tier_request": ["*"]}, retry={"max_retries": 1, "backoff_s": 0})
    assert llm.invoke("hello", tier="frontier", session_id="s-2").response_metadata["routing"]["tier"] == "frontier"
    emulator.inject("throttle", model_id=FRONTIER, times=2)
    routing = llm.invoke("hello", session_id="s-2").response_metadata["routing"]
    assert [(a["tier"], a["outcome"]) for a in routing["attempts"]] == [
        ("frontier", "transport_error"), ("cheap", "served")]
    assert routing["start_reason"] == "pinned by session s-2" and not routing["flagged"]
    again = llm.invoke("hello", session_id="s-2").response_metadata["routing"]
    assert (again["start_reason"], again["tier"]) == ("pinned by session s-2", "frontier")


def test_requested_tier_and_model_override(routed) -> None:
    with pytest.raises(TierNotAllowedError):
        routed().invoke("hello", tier="mid")  # the config's access list is empty by default
    llm = routed(access={"allow_tier_request": ["*"]})
    assert llm.invoke("hello", tier="mid").response_metadata["routing"]["tier"] == "mid"
    message = llm.invoke("hello", model=FRONTIER)
    assert message.response_metadata["model_name"] == FRONTIER
    assert message.response_metadata["routing"]["start_reason"] == "requested by the caller"


async def test_async_paths(routed) -> None:
    llm = routed(gates=JSON_GATE)
    message = await llm.ainvoke(INVOICE)
    assert message.content == INVOICE_JSON and message.response_metadata["routing"]["tier"] == "frontier"
    chunks = [c async for c in llm.astream(INVOICE)]
    assert merged(chunks).text == INVOICE_JSON
    assert sum(1 for c in chunks if "routing" in c.response_metadata) == 1
    outs = await llm.abatch([INVOICE, "hello"])
    assert [m.response_metadata["routing"]["tier"] for m in outs] == ["frontier", "frontier"]
    through = routed(policy=CLASSIFIER)
    streamed = [c async for c in through.astream("prove it")]
    assert len([c for c in streamed if c.text]) > 3
    assert merged(streamed).response_metadata["routing"]["tier"] == "frontier"


def test_batch_and_invoke_with_streaming_flag_run_gates(routed) -> None:
    llm = routed(gates=JSON_GATE)
    outs = llm.batch([INVOICE, INVOICE])
    assert [m.content for m in outs] == [INVOICE_JSON, INVOICE_JSON]
    streaming = routed(gates=JSON_GATE).model_copy(update={"streaming": True})
    message = streaming.invoke(INVOICE)  # goes through _stream: gates must still run
    assert message.text == INVOICE_JSON
    assert [a["tier"] for a in message.response_metadata["routing"]["attempts"]] == ["cheap", "mid", "frontier"]


def test_server_error_on_every_tier_raises_group_of_transport_errors(routed, emulator) -> None:
    emulator.inject("server_error", times=None)
    with pytest.raises(LadderExhaustedError) as info:
        routed().invoke("hello")
    # every call's error, the retried ones included (max_retries: 1), cheapest first
    assert [(type(e), e.kind, e.tier) for e in info.value.exceptions] == [
        (TransportError, "server_error", tier) for tier in ("cheap", "cheap", "mid", "mid", "frontier", "frontier")]
    assert all("InternalServerException" in str(e) for e in info.value.exceptions)


@pytest.mark.parametrize("mode", ["missing_output", "invalid_json"])
def test_a_malformed_reply_is_retried_on_the_same_tier(routed, emulator, mode) -> None:
    emulator.inject("malformed", model_id=CHEAP, times=1, mode=mode)
    routing = routed().invoke("hello").response_metadata["routing"]
    assert [(a["tier"], a["outcome"], a["retried_on"]) for a in routing["attempts"]] == [
        ("cheap", "served", ["malformed"])]


def test_a_tier_that_keeps_replying_malformed_escalates(routed, emulator) -> None:
    emulator.inject("malformed", model_id=CHEAP, times=None)
    routing = routed().invoke("hello").response_metadata["routing"]
    assert [(a["tier"], a["outcome"]) for a in routing["attempts"]] == [("cheap", "malformed"), ("mid", "served")]
    assert routing["attempts"][0]["retries"] == 1


def test_self_grade_gate_calls_are_priced_as_aux_calls(routed) -> None:
    llm = routed(gates=[{"kind": "self_grade", "threshold": 7}])
    message = llm.invoke("hello")
    routing = message.response_metadata["routing"]
    assert routing["tier"] == "mid"
    assert [a["gate_reason"] for a in routing["attempts"]] == ["grade 3 < 7", "grade 9 >= 7"]
    aux = routed.last.aux_calls
    assert [(c.purpose, c.tier, c.model_id, c.usage.output_tokens) for c in aux] == [
        ("self_grade", "cheap", CHEAP, 1), ("self_grade", "cheap", CHEAP, 1)]
    assert [c.cost_usd for c in aux] == [cost(CHEAP, c.usage.input_tokens, 1) for c in aux]
    result = routed.last
    assert result.cost_usd == sum(a.cost_usd for a in result.attempts) + sum(c.cost_usd for c in aux)


def test_routings_own_calls_keep_the_calls_guardrail(routed, emulator) -> None:
    """The classifier's and the self-grade's calls carry the user's request: a guardrail
    (and request metadata) bound to the call is sent on them too, not only on tier calls;
    tools and stop words are not."""
    guardrail = {"guardrailIdentifier": "pii", "guardrailVersion": "1"}
    llm = routed(policy={"kind": "cascade", "classifier": {"kind": "llm"}},
                 gates=[{"kind": "self_grade", "threshold": 7}])
    emulator.clear_requests()
    llm.bind(guardrail_config=guardrail, request_metadata={"team": "ops"}, stop=["END"]).invoke("hello")
    purposes = [c.purpose for c in routed.last.aux_calls]
    assert purposes.count("classifier") == 1 and purposes.count("self_grade") >= 1
    assert len(emulator.requests) == len(routed.last.aux_calls) + len(routed.last.attempts)
    for request in emulator.requests:
        assert request.body["guardrailConfig"] == guardrail and request.body["requestMetadata"] == {"team": "ops"}
    assert sum("stopSequences" in r.body.get("inferenceConfig", {}) for r in emulator.requests) == \
        len(routed.last.attempts)  # the tier calls only


def test_llm_classifier_asks_the_cheap_tier(routed) -> None:
    llm = routed(policy={"kind": "cascade", "classifier": {"kind": "llm"}})
    routing = llm.invoke("a hard question").response_metadata["routing"]
    assert (routing["start_tier"], routing["start_reason"], routing["tier"]) == ("mid", "llm: said 'mid'", "mid")
    assert [(c["purpose"], c["tier"]) for c in routing["aux_calls"]] == [("classifier", "cheap")]
    easy = llm.invoke("hello").response_metadata["routing"]
    assert easy["start_tier"] == "cheap"


def test_tier_that_cannot_stream_is_called_whole_on_the_stream_path(routed) -> None:
    llm = routed(gates=JSON_GATE)
    llm.tier_models["frontier"].disable_streaming = True
    chunks = list(llm.stream(INVOICE))
    assert merged(chunks).text == INVOICE_JSON
    assert len([c for c in chunks if c.text]) == 1


def test_prompt_router_tier_reports_and_prices_the_invoked_model(routed) -> None:
    llm = routed(tiers=[{"name": "router", "model_id": ROUTER_ARN, "provider": "amazon",
                         "price": {"input_per_mtok": 1, "output_per_mtok": 1}},
                        {"name": "frontier", "model_id": FRONTIER}])
    assert llm.tier_models["router"].provider == "amazon"
    message = llm.invoke("hello")
    assert message.content == "I am the cheap model."
    assert message.response_metadata["model_name"] == CHEAP
    routing = message.response_metadata["routing"]
    assert (routing["tier"], routing["model_id"]) == ("router", CHEAP)
    # priced at the model the router invoked (cost map), not the tier's override
    assert routed.last.attempts[0].cost_usd == cost(CHEAP, tokens("hello"), tokens("I am the cheap model."))
    streamed = merged(list(llm.stream("hello")))
    assert streamed.response_metadata["model_name"] == CHEAP


def test_consumer_closing_a_pass_through_stream_still_records_the_route(routed) -> None:
    llm = routed()
    stream = llm.stream("hello")
    first = next(c for c in stream if c.text)
    stream.close()
    assert first.text == "I am the "
    result = routed.last
    assert result.served is None and result.attempts[0].error == "RuntimeError: stream closed by the consumer"
    assert result.attempts[0].error_kind == "consumer_closed"
    assert result.attempts[0].emitted and result.cost_usd > 0  # what reached the consumer is billed


def test_stream_error_event_is_a_transport_error_and_retried(routed, emulator) -> None:
    emulator.inject("stream_error", model_id=FRONTIER, times=1, after_events=1)
    full = merged(list(routed(gates=JSON_GATE).stream(INVOICE)))
    assert full.text == INVOICE_JSON
    frontier = full.response_metadata["routing"]["attempts"][-1]
    assert (frontier["tier"], frontier["outcome"], frontier["retries"]) == ("frontier", "served", 1)
    # botocore's EventStreamError, its code the event's (modelStreamErrorException): Bedrock failed
    assert frontier["retried_on"] == ["server_error"]


def test_read_timeout_of_the_shared_client_is_a_timeout_error(emulator) -> None:
    from langchain_tiered_router.langchain import TieredChatBedrock

    from .scripts import config

    llm = TieredChatBedrock(config=config(emulator.url, retry={"max_retries": 0, "backoff_s": 0}),
                            telemetry=False, timeout=0.2)
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=0.6)
    routing = llm.invoke("hello").response_metadata["routing"]
    assert [(a["tier"], a["outcome"], a["error_kind"]) for a in routing["attempts"]] == [
        ("cheap", "transport_error", "timeout"), ("mid", "served", None)]


def test_an_hour_long_cache_point_is_billed_at_its_write_rate(routed, emulator) -> None:
    """``cache_control={"ttl": "1h"}`` (langchain-aws's cache points): Bedrock reports the
    writes per ttl (``cacheDetails``) and langchain-aws then gives ``cache_creation`` as 0
    and the writes as ``ephemeral_1h_input_tokens``. They are cache writes, billed at the
    hour-long rate (Sonnet 4.5: $6 per million, not the 5-minute $3.75 nor the input $3);
    the next call reads them."""
    from langchain_core.messages import SystemMessage

    from langchain_tiered_router.core.pricing import Usage, lookup_price

    llm = routed(tiers=[{"name": "frontier", "model_id": FRONTIER}])
    emulator.clear_requests()
    messages = [SystemMessage("You answer questions about invoices. " * 300), HumanMessage("hello")]
    first = llm.invoke(messages, cache_control={"ttl": "1h"}).response_metadata["routing"]
    sent = emulator.requests[0].body
    assert {"cachePoint": {"type": "default", "ttl": "1h"}} in sent["system"]
    (attempt,) = first["attempts"]
    written = attempt["cache_write_tokens"]
    assert written > 2000 and attempt["cache_read_tokens"] == 0
    usage = Usage(attempt["input_tokens"], attempt["output_tokens"], 0, written, written)
    price = lookup_price(FRONTIER)
    assert Decimal(attempt["cost_usd"]) == price.cost(usage)
    assert Decimal(attempt["cost_usd"]) > price.cost(Usage(attempt["input_tokens"], attempt["output_tokens"], 0,
                                                           written))
    second = llm.invoke(messages, cache_control={"ttl": "1h"}).response_metadata["routing"]["attempts"][0]
    assert (second["cache_read_tokens"], second["cache_write_tokens"]) == (written, 0)


def test_a_prompt_router_baseline_that_was_called_is_priced_at_the_model_it_invoked():
    """A Bedrock prompt router as the baseline tier loads only with a placeholder ``price``
    (its ARN is in no cost map). Its attempt was billed at the model it invoked, but the
    counterfactual baseline at the placeholder: a routing that cost more than the baseline
    alone (cheap's failed try, then the router's call) was reported as a saving."""
    from decimal import Decimal

    from langchain_tiered_router import TieredChatBedrock
    from langchain_tiered_router.core import lookup_price
    from langchain_tiered_router.core.pricing import Usage
    from langchain_tiered_router.emulator import BedrockEmulator

    micro, pro = "amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0"
    arn = "arn:aws:bedrock:us-east-1:123456789012:prompt-router/abc"
    script = {"models": {micro: {"rules": [{"match": "hard", "answer": "dunno"}], "default": "42"},
                         pro: {"default": "42"}},
              "prompt_routers": {arn: {"models": [micro, pro], "threshold_chars": 5}}}
    with BedrockEmulator(script) as emu:
        llm = TieredChatBedrock(config={
            "tiers": [{"name": "cheap", "model_id": micro},
                      {"name": "router", "model_id": arn, "provider": "amazon",
                       "price": {"input_per_mtok": 3, "output_per_mtok": 15}}],
            "gates": [{"kind": "regex", "pattern": "^42$"}], "endpoint_url": emu.url}, telemetry=False)
        routing = llm.invoke("hard question that is long").response_metadata["routing"]
    cheap, router = routing["attempts"]
    assert router["outcome"] == "served" and routing["model_id"] == pro  # the router invoked Nova Pro
    billed = lookup_price(pro).cost(Usage(router["input_tokens"], router["output_tokens"]))
    assert Decimal(str(router["cost_usd"])) == billed  # Nova Pro's rate, not the placeholder's
    assert Decimal(str(routing["baseline_cost_usd"])) == billed  # the baseline: its own call, as billed
    assert Decimal(str(routing["savings_usd"])) == -Decimal(str(cheap["cost_usd"]))  # the failed try is what routing added
