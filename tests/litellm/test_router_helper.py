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
