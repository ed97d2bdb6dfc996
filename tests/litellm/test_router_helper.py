"""``TieredLiteLLMRouter``: the same routing around a plain ``litellm.Router``, no proxy."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import litellm
import pytest

from langchain_tiered_router.core import ConfigError, LadderExhaustedError, TierNotAllowedError, lookup_price
from langchain_tiered_router.core.pricing import Usage
from litellm_hooks import TieredLiteLLMRouter

from .conftest import CHEAP, FRONTIER, INVOICE_SCHEMA, LADDER, MID, tier_deployments

CONFIG = {"tiers": LADDER, "gates": [{"kind": "json_schema", "schema": INVOICE_SCHEMA}],
          "retry": {"max_retries": 0}, "access": {"allow_tier_request": ["user:ops"]}, "telemetry": {"sinks": []}}


@pytest.fixture(scope="module")
def llm_router(emulator):
    return litellm.Router(model_list=tier_deployments(emulator.url), num_retries=0)


@pytest.fixture
def records():
    return []


@pytest.fixture
def tiered(llm_router, records):
    return TieredLiteLLMRouter(llm_router, CONFIG, observers=[lambda result, request, backend: records.append(
        (result, request))])


async def test_acompletion_escalates_and_prices_every_attempt(tiered, emulator, records):
    emulator.clear_requests()
    response = await tiered.acompletion([{"role": "user", "content": "extract the invoice total"}],
                                        session_id="s-1", temperature=0)
    assert json.loads(response.choices[0].message.content) == {"total": 12}
    assert response.tiered_router["tier"] == "mid"
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]
    assert emulator.requests[0].body["inferenceConfig"] == {"temperature": 0}  # client params reach the tier
    (result, request), = records
    assert request.metadata["integration"] == "litellm" and result.session_id == "s-1"
    cheap, mid = result.attempts
    assert cheap.outcome == "gate_failed" and mid.outcome == "served"
    assert result.cost_usd == lookup_price(CHEAP).cost(cheap.usage) + lookup_price(MID).cost(mid.usage)
    assert result.baseline_cost_usd == lookup_price(FRONTIER).cost(Usage(mid.usage.input_tokens,
                                                                         mid.usage.output_tokens))
    # The core's price for a tier equals LiteLLM's own cost of the same call.
    import litellm

    prompt_cost, completion_cost = litellm.cost_per_token(model=f"bedrock/{MID}", prompt_tokens=mid.usage.input_tokens,
                                                          completion_tokens=mid.usage.output_tokens)
    assert Decimal(str(prompt_cost + completion_cost)) == pytest.approx(mid.cost_usd)
    # The response says what the routing spent, as the proxy's does: every attempt's tokens, the routed cost.
    assert response.usage.prompt_tokens == cheap.usage.input_tokens + mid.usage.input_tokens
    assert response.usage.completion_tokens == cheap.usage.output_tokens + mid.usage.output_tokens
    assert Decimal(str(response._hidden_params["response_cost"])) == pytest.approx(result.cost_usd)
    with pytest.raises(ValueError, match="stream=True is not supported here"):
        await tiered.acompletion([{"role": "user", "content": "hi"}], stream=True)


def test_sync_completion_serves_the_cheap_tier_when_it_passes(llm_router):
    config = copy.deepcopy(CONFIG)
    config["gates"] = [{"kind": "regex", "pattern": "hi from"}]
    response = TieredLiteLLMRouter(llm_router, config, telemetry=False).completion(
        [{"role": "user", "content": "hello there"}])
    assert response.choices[0].message.content == "hi from cheap"
    assert response.tiered_router["escalated"] is False and response.tiered_router["tier"] == "cheap"


async def test_tier_requests_follow_the_access_list(tiered, emulator):
    emulator.clear_requests()
    with pytest.raises(TierNotAllowedError):
        await tiered.acompletion([{"role": "user", "content": "invoice"}], tier="frontier", caller="someone")
    assert emulator.requests == []
    response = await tiered.acompletion([{"role": "user", "content": "invoice"}], tier="frontier", caller="ops")
    assert response.tiered_router["tier"] == "frontier" and [r.model_id for r in emulator.requests] == [FRONTIER]


async def test_exhausted_ladder_raises_with_every_attempt(llm_router):
    config = {**CONFIG, "on_exhausted": "raise"}
    with pytest.raises(LadderExhaustedError) as info:
        await TieredLiteLLMRouter(llm_router, config, telemetry=False).acompletion(
            [{"role": "user", "content": "an impossible invoice"}])
    assert [a.tier for a in info.value.result.attempts] == ["cheap", "mid", "frontier"]
    assert len(info.value.exceptions) == 3


def test_tiers_must_be_router_model_groups(llm_router):
    config = copy.deepcopy(CONFIG)
    config["tiers"][1]["name"] = "middle"
    with pytest.raises(ConfigError) as info:
        TieredLiteLLMRouter(llm_router, config, telemetry=False)
    assert info.value.path == "tiers[1].name" and "middle" in str(info.value)


def test_tiers_are_priced_where_their_deployments_call_bedrock(emulator):
    """Deployments calling GovCloud (``aws_region_name``) were billed at the router YAML's
    default us-east-1 prices, silently. A YAML that names no region takes theirs; one that
    names another is refused; the same check runs on the proxy."""
    gov = [{**d, "litellm_params": {**d["litellm_params"], "aws_region_name": "us-gov-west-1"}}
           for d in tier_deployments(emulator.url)]
    llm_router = litellm.Router(model_list=gov, num_retries=0)
    tiered = TieredLiteLLMRouter(llm_router, CONFIG, telemetry=False)
    assert tiered.config.region_name == "us-gov-west-1"
    assert tiered.router.ladder["cheap"].price == lookup_price(CHEAP, region="us-gov-west-1") != lookup_price(CHEAP)
    with pytest.raises(ConfigError) as info:
        TieredLiteLLMRouter(llm_router, {**CONFIG, "region_name": "us-east-1"}, telemetry=False)
    assert info.value.path == "region_name" and "us-gov-west-1" in str(info.value)


@pytest.mark.parametrize("response_format", [
    {"type": "json_schema", "json_schema": {"name": "invoice", "schema": INVOICE_SCHEMA}},
    {"type": "json_object"},  # JSON mode: cheap's prose is no JSON object
], ids=["json_schema", "json_object"])
async def test_response_format_schema_is_a_gate_for_that_request(llm_router, emulator, response_format):
    config = {**CONFIG, "gates": []}  # no configured gate: the client's schema is the only one
    emulator.clear_requests()
    response = await TieredLiteLLMRouter(llm_router, config, telemetry=False).acompletion(
        [{"role": "user", "content": "extract the invoice total"}], response_format=response_format)
    assert response.tiered_router["tier"] == "mid"
    assert response.tiered_router["attempts"][0]["gate_reason"]
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]


async def test_a_reply_that_is_not_utf8_escalates(llm_router, emulator):
    """LiteLLM reports it as a bad request; it is the tier's malformed reply, not the caller's error."""
    emulator.clear_requests()
    emulator.inject("malformed", model_id=CHEAP, mode="invalid_utf8")
    config = {**CONFIG, "gates": []}
    response = await TieredLiteLLMRouter(llm_router, config, telemetry=False).acompletion(
        [{"role": "user", "content": "hello"}])
    assert response.tiered_router["tier"] == "mid"
    cheap = response.tiered_router["attempts"][0]
    assert cheap["outcome"] == "malformed" and "decode" in cheap["error"]
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]


async def test_a_reply_without_its_output_is_malformed_and_its_error_has_no_traceback(llm_router, emulator):
    """LiteLLM reports a reply it cannot read (a KeyError on ``output``) as a connection
    error, with its Python traceback in the message: it is the tier's malformed reply,
    and the record's error says so in one line."""
    emulator.clear_requests()
    emulator.inject("malformed", model_id=CHEAP, mode="missing_output")
    response = await TieredLiteLLMRouter(llm_router, {**CONFIG, "gates": []}, telemetry=False).acompletion(
        [{"role": "user", "content": "hello"}])
    assert response.tiered_router["tier"] == "mid"
    cheap = response.tiered_router["attempts"][0]
    assert cheap["outcome"] == "malformed" and "Traceback" not in cheap["error"] and len(cheap["error"]) < 400


class _Logged(litellm.integrations.custom_logger.CustomLogger):
    """What LiteLLM's async success callbacks see of each tier call."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, float, int, dict]] = []

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        usage = response_obj.usage
        self.events.append((kwargs["model"], kwargs.get("response_cost") or 0.0,
                            usage.prompt_tokens + usage.completion_tokens,
                            kwargs.get("litellm_params", {}).get("metadata") or {}))


async def test_litellm_callbacks_see_each_tier_call_once_with_the_callers_metadata(llm_router, emulator):
    """LiteLLM logs a call after ``acompletion`` returned it: the wrapper changed that very
    response into the route's (every attempt's tokens, the routed cost), so the served
    tier's event counted the failed attempts again. And the caller's ``metadata`` (trace
    names, tags) reached no callback, where a plain router's calls carry it."""
    import asyncio

    logged = _Logged()
    litellm.callbacks = [logged]
    try:
        response = await TieredLiteLLMRouter(llm_router, CONFIG, telemetry=False).acompletion(
            [{"role": "user", "content": "extract the invoice total"}],
            metadata={"trace_name": "checkout", "tags": ["prod"]})
        request_id = response.tiered_router["request_id"]

        def ours() -> list:  # an earlier test's calls may still be logging
            return [e for e in logged.events if (e[3].get("tiered_router") or {}).get("request_id") == request_id]

        for _ in range(100):  # LiteLLM logs on its own task
            if len(ours()) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        litellm.callbacks = []
    (cheap_model, cheap_cost, cheap_tokens, cheap_meta), (mid_model, mid_cost, mid_tokens, mid_meta) = ours()
    assert (cheap_model, mid_model) == (f"converse/{CHEAP}", f"converse/{MID}")  # the deployments' models
    attempts = response.tiered_router["attempts"]
    assert cheap_tokens == attempts[0]["input_tokens"] + attempts[0]["output_tokens"]
    assert mid_tokens == attempts[1]["input_tokens"] + attempts[1]["output_tokens"]
    assert cheap_cost + mid_cost == pytest.approx(response._hidden_params["response_cost"])  # the routed cost, once
    for meta, tier in ((cheap_meta, "cheap"), (mid_meta, "mid")):
        assert meta["trace_name"] == "checkout" and meta["tags"] == ["prod"]
        assert meta["tiered_router"]["tier"] == tier


async def test_the_inner_routers_fallbacks_never_answer_for_a_tier(emulator):
    """A ``litellm.Router`` with ``fallbacks`` answered a throttled cheap call from the
    frontier group: the record said cheap served it, at cheap's price (about a hundredth
    of what it cost), and cheap's gates judged frontier's answer. The ladder escalates."""
    llm_router = litellm.Router(model_list=tier_deployments(emulator.url), num_retries=0,
                                fallbacks=[{"cheap": ["frontier"]}])
    emulator.clear_requests()
    emulator.inject("throttle", model_id=CHEAP, times=1)
    response = TieredLiteLLMRouter(llm_router, {**CONFIG, "gates": []}, telemetry=False).completion(
        [{"role": "user", "content": "hello"}])
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]
    assert response.tiered_router["tier"] == "mid" and response.model == MID
    assert [a["outcome"] for a in response.tiered_router["attempts"]] == ["transport_error", "served"]


async def test_errors_are_litellms_types_too(llm_router, emulator):
    """A ``litellm.Router`` user catches LiteLLM's types; the wrapper raised the router's
    own only (``LadderExhaustedError``, ``BadChatRequest``, a ``ConfigError`` for a
    client's schema) and refused a pydantic ``response_format``, which LiteLLM takes."""
    from pydantic import BaseModel

    tiered = TieredLiteLLMRouter(llm_router, {**CONFIG, "gates": []}, telemetry=False)
    emulator.inject("throttle", model_id=None, times=3)
    with pytest.raises(litellm.RateLimitError) as throttled:
        await tiered.acompletion([{"role": "user", "content": "hello"}])
    assert isinstance(throttled.value, LadderExhaustedError) and throttled.value.status_code == 429
    assert [a.tier for a in throttled.value.result.attempts] == ["cheap", "mid", "frontier"]
    with pytest.raises(litellm.BadRequestError) as refused:
        await tiered.acompletion([{"role": "wizard", "content": "hello"}])
    assert isinstance(refused.value, ValueError) and refused.value.status_code == 400
    with pytest.raises(litellm.BadRequestError):
        await tiered.acompletion([{"role": "user", "content": "hello"}], response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/missing"}}})

    class Invoice(BaseModel):
        total: int

    emulator.clear_requests()
    response = await tiered.acompletion([{"role": "user", "content": "extract the invoice total"}],
                                        response_format=Invoice)
    assert response.tiered_router["tier"] == "mid"  # cheap's prose fails the class's schema
    assert Invoice.model_validate_json(response.choices[0].message.content).total == 12


LLAMA = "meta.llama3-1-8b-instruct-v1:0"
WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                            "required": ["city"]}}}]


@pytest.mark.parametrize("drop_params", [False, True], ids=["llama-refuses-tool_choice", "drop_params"])
def test_a_tier_that_cannot_take_tool_choice_is_passed_over_or_judged(drop_params):
    """A cheap Llama tier (Bedrock takes no ``tool_choice`` from it): LiteLLM refused the
    parameter before any call with ``UnsupportedParamsError``, taken for the caller's
    mistake, so every request sending ``tool_choice`` (even ``auto``) failed on that ladder.
    With ``drop_params`` LiteLLM dropped it silently, and a forced call's text answer was
    served: nothing judged that the caller forced a tool. Now the refusal is the tier's
    limit (the ladder goes up), and a forced ``tool_choice`` fails a text answer, as on the
    LangChain side."""
    script = {"models": {LLAMA: {"default": "It is sunny in Paris."},
                         FRONTIER: {"rules": [{"match": "Paris", "tool_use": {"name": "get_weather",
                                                                              "input": {"city": "Paris"}}}]}}}
    from langchain_tiered_router.emulator import BedrockEmulator

    from .conftest import deployment

    config = {"tiers": [{"name": "cheap", "model_id": LLAMA}, {"name": "frontier", "model_id": FRONTIER}],
              "retry": {"max_retries": 0}, "telemetry": {"sinks": []}}
    with BedrockEmulator(script) as emu:
        cheap = deployment("cheap", LLAMA, emu.url)
        cheap["litellm_params"]["drop_params"] = drop_params
        llm_router = litellm.Router(model_list=[cheap, deployment("frontier", FRONTIER, emu.url)], num_retries=0)
        tiered = TieredLiteLLMRouter(llm_router, config, telemetry=False)
        for choice in ("auto", "required", {"type": "function", "function": {"name": "get_weather"}}):
            emu.clear_requests()
            response = tiered.completion([{"role": "user", "content": "Paris forecast?"}], tools=WEATHER,
                                         tool_choice=choice)
            attempts = response.tiered_router["attempts"]
            if choice == "auto" and drop_params:  # nothing forced: the cheap text answer is served
                assert response.tiered_router["tier"] == "cheap"
                continue
            assert response.tiered_router["tier"] == "frontier", (choice, attempts)
            assert [c.function.name for c in response.choices[0].message.tool_calls] == ["get_weather"]
            if drop_params:  # asked without it, answered text: the forced call's gate failed it
                assert attempts[0]["outcome"] == "gate_failed" and "tool_choice" in attempts[0]["gate_reason"]
                assert [r.model_id for r in emu.requests] == [LLAMA, FRONTIER]
            else:  # refused before any call: passed over, at no cost
                assert (attempts[0]["outcome"], attempts[0]["error_kind"]) == ("error", "unsupported_input")
                assert [r.model_id for r in emu.requests] == [FRONTIER]


def test_a_tiers_model_kwargs_in_langchains_names_make_the_same_bedrock_request(llm_router, emulator):
    """One router YAML drives both integrations, and its tiers' ``model_kwargs`` are written
    in ``ChatBedrockConverse``'s names. Through LiteLLM, ``additional_model_request_fields``
    was nested inside Bedrock's ``additionalModelRequestFields`` (a request Bedrock refuses
    as extraneous keys) and ``stop_sequences`` went there too: the stop was lost."""
    config = copy.deepcopy({**CONFIG, "gates": []})
    config["tiers"][0]["model_kwargs"] = {"additional_model_request_fields": {"top_k": 5},
                                          "stop_sequences": ["END"], "top_p": 0.9}
    emulator.clear_requests()
    TieredLiteLLMRouter(llm_router, config, telemetry=False).completion([{"role": "user", "content": "hello"}])
    llm_router.completion(model="cheap", messages=[{"role": "user", "content": "hello"}], top_k=5, stop=["END"],
                          top_p=0.9)  # the deployment called directly, in LiteLLM's names
    routed, direct = (r.body for r in emulator.requests)
    assert routed["inferenceConfig"]["stopSequences"] == ["END"] and routed["inferenceConfig"]["topP"] == 0.9
    assert routed["additionalModelRequestFields"] == direct["additionalModelRequestFields"]  # Nova's topK, as LiteLLM puts it
    assert {k: v for k, v in routed.items() if k != "system"} == {k: v for k, v in direct.items() if k != "system"}


def test_deployments_that_take_their_region_from_the_environment_are_priced_there(emulator, monkeypatch):
    """LiteLLM calls a deployment that names no ``aws_region_name`` in the environment's
    region (``AWS_REGION_NAME``, then ``AWS_REGION``...): a GovCloud process was priced at
    us-east-1's rates, 17 % low, without a word."""
    monkeypatch.setenv("AWS_REGION_NAME", "us-gov-west-1")
    unnamed = [{**d, "litellm_params": {k: v for k, v in d["litellm_params"].items() if k != "aws_region_name"}}
               for d in tier_deployments(emulator.url)]
    tiered = TieredLiteLLMRouter(litellm.Router(model_list=unnamed, num_retries=0), CONFIG, telemetry=False)
    assert tiered.config.region_name == "us-gov-west-1"
    assert tiered.router.ladder["cheap"].price == lookup_price(CHEAP, region="us-gov-west-1") != lookup_price(CHEAP)
