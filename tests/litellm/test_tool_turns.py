"""Tool-calling turns through ``TieredLiteLLMRouter`` (a plain ``litellm.Router``, no proxy):
each tool call is checked against the tool the client sent, ``tool_gates`` judge tool
turns, and the text gates (here a JSON gate) judge text answers only."""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator

import litellm
import pytest

from langchain_tiered_router.core import lookup_price
from langchain_tiered_router.emulator import BedrockEmulator
from litellm_hooks import TieredLiteLLMRouter

from .conftest import CHEAP, LADDER, MID, tier_deployments

SCRIPT = {"models": {
    CHEAP: {"rules": [{"match": "Paris", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
                      {"match": "Oslo", "tool_use": {"name": "get_weather", "input": {"city": 7}}},
                      {"match": "Rome", "tool_use": {"name": "get_time", "input": {"city": "Rome"}}},
                      {"match": "Bergen", "tool_use": {"name": "get_weather", "input": {"city": "Bergen"}}}],
            "default": "cheap text"},
    MID: {"rules": [{"match": "Oslo|Rome|Bergen", "tool_use": {"name": "get_weather", "input": {"city": "Oslo"}}}],
          "default": '{"total": 1}'},
}}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}
CONFIG = {"tiers": LADDER, "gates": [{"kind": "json_schema", "schema": {"type": "object", "required": ["total"]}}],
          "retry": {"max_retries": 0}, "telemetry": {"sinks": []}}


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(SCRIPT) as emu:
        yield emu


@pytest.fixture
def route(emulator):
    records: list[Any] = []

    def make(**overrides: Any) -> tuple[TieredLiteLLMRouter, list[Any]]:
        config = {**copy.deepcopy(CONFIG), **overrides}
        llm_router = litellm.Router(model_list=tier_deployments(emulator.url), num_retries=0)
        return TieredLiteLLMRouter(llm_router, config, observers=[lambda r, q, b: records.append(r)]), records

    return make


async def test_a_valid_tool_call_is_served_on_the_cheap_tier(route, emulator):
    tiered, records = route()
    emulator.clear_requests()
    response = await tiered.acompletion([{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER])
    (call,) = response.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    (result,) = records
    (cheap,) = result.attempts
    assert (result.tier, result.flagged, cheap.turn, cheap.verdict.gate) == ("cheap", False, "tool_call", "tool_args")
    assert result.cost_usd == lookup_price(CHEAP).cost(cheap.usage)
    assert [r.model_id for r in emulator.requests] == [CHEAP]


@pytest.mark.parametrize("city, reason", [
    ("Oslo", 'tool call 0 (get_weather): schema violation at city: expected type "string"'),
    ("Rome", "tool call 0 names no bound tool (bound: get_weather)"),
], ids=["bad-arguments", "unknown-tool"])
async def test_a_bad_tool_call_escalates(route, city, reason):
    tiered, records = route()
    response = await tiered.acompletion([{"role": "user", "content": f"weather in {city}?"}], tools=[WEATHER])
    assert json.loads(response.choices[0].message.tool_calls[0].function.arguments) == {"city": "Oslo"}
    (result,) = records
    assert [(a.tier, a.outcome) for a in result.attempts] == [("cheap", "gate_failed"), ("mid", "served")]
    assert result.attempts[0].verdict.reason == reason and not result.flagged
    assert result.cost_usd == sum(lookup_price(m).cost(a.usage) for m, a in zip((CHEAP, MID), result.attempts))


def test_tool_gates_from_the_config_judge_tool_turns(route):
    only_oslo = {"kind": "json_schema", "schema": {"type": "object", "properties": {"city": {"const": "Oslo"}}}}
    tiered, records = route(tool_gates=[only_oslo])
    tiered.completion([{"role": "user", "content": "weather in Bergen?"}], tools=[WEATHER])
    (result,) = records
    assert [(a.tier, a.turn, a.outcome) for a in result.attempts] == [
        ("cheap", "tool_call", "gate_failed"), ("mid", "tool_call", "served")]
    assert result.attempts[0].verdict.reason == 'schema violation at city: not an allowed value (const: "Oslo")'
