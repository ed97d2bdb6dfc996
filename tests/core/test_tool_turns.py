"""Tool-calling turns in the core: which gates judge them, the check of each call, the config."""

from __future__ import annotations

import pytest

from langchain_tiered_router.core import ConfigError, RouteRequest, TierAnswer, Usage
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.config import RouterConfig
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.tool_calls import tool_schemas, turn_kind

from .conftest import LADDER

CITY = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}},
        "additionalProperties": False}
TOOLS = {"get_weather": CITY}


def call(args, name: str = "get_weather", text: str = "") -> TierAnswer:
    return TierAnswer(text=text, usage=Usage(50, 10), tool_calls=[{"name": name, "args": args, "id": "t1"}])


def text(value: str) -> TierAnswer:
    return TierAnswer(text=value, usage=Usage(50, 10))


def route(config: dict, script: dict, request: RouteRequest):
    return build_router(config, telemetry=False, sleep=lambda s: None).route(request, ScriptedBackend(script))


def test_formats_of_bound_tools_are_read() -> None:
    openai = {"type": "function", "function": {"name": "a", "parameters": CITY}}
    bedrock = {"toolSpec": {"name": "b", "inputSchema": {"json": CITY}}}
    anthropic = {"name": "c", "input_schema": CITY}
    no_schema = {"type": "function", "function": {"name": "d"}}
    assert tool_schemas([openai, bedrock, anthropic, no_schema]) == {"a": CITY, "b": CITY, "c": CITY, "d": None}
    assert tool_schemas([{"what": "is this"}]) == {"?": None}
    assert tool_schemas(None) == {}
    assert turn_kind(call({})) == "tool_call" and turn_kind(text("hi")) == "text"


def test_a_text_gate_does_not_judge_tool_turns(base_config) -> None:
    # the case: a top-level JSON gate; the tool turn passes on cheap, unflagged
    result = route(base_config, {"cheap": call({"city": "Paris"})}, RouteRequest("weather?", tools=TOOLS))
    assert (result.tier, result.flagged, result.attempts[0].turn) == ("cheap", False, "tool_call")
    assert result.attempts[0].verdict.reason == "1 tool call valid"


@pytest.mark.parametrize("reply, reason", [
    (call({"city": 7}), 'tool call 0 (get_weather): schema violation at city: expected type "string"'),
    (call({"city": "Paris", "units": "K"}), "tool call 0 (get_weather): schema violation at (root): has properties "
                                            "the schema does not allow (additionalProperties: false)"),
    (call(None), "tool call 0 (get_weather): the arguments are not a JSON object"),
    (call({"city": "Paris"}, name="rm_rf"), "tool call 0 names no bound tool (bound: get_weather)"),
], ids=["type", "extra-key", "not-json", "unknown-tool"])
def test_a_bad_tool_call_fails_and_escalates(base_config, reply, reason) -> None:
    result = route(base_config, {"cheap": reply, "mid": call({"city": "Paris"})}, RouteRequest("weather?", tools=TOOLS))
    cheap, mid = result.attempts
    assert (cheap.outcome, cheap.verdict.reason, cheap.verdict.gate) == ("gate_failed", reason, "tool_args")
    assert (result.tier, mid.outcome) == ("mid", "served")
    assert "7" not in cheap.verdict.reason and "rm_rf" not in cheap.verdict.reason  # values only in the detail


def test_every_call_of_a_turn_is_checked(base_config) -> None:
    two = TierAnswer(text="", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}},
                                          {"name": "get_weather", "args": {}}])
    result = route(base_config, {"cheap": two, "mid": call({"city": "Oslo"})}, RouteRequest("w", tools=TOOLS))
    assert result.attempts[0].verdict.reason == "tool call 1 (get_weather): schema violation at (root): missing " \
                                                'required "city"'


def test_tool_gates_run_after_the_check_and_text_gates_judge_text(base_config) -> None:
    base_config["tool_gates"] = [{"kind": "regex", "pattern": "checking", "must_match": True}]
    script = {"cheap": call({"city": "Oslo"}), "mid": call({"city": "Oslo"}, text="checking the weather"),
              "frontier": text('{"total": 1}')}
    result = route(base_config, script, RouteRequest("w", tools=TOOLS))
    assert [(a.tier, a.turn, a.outcome, a.verdict.gate) for a in result.attempts] == [
        ("cheap", "tool_call", "gate_failed", "regex:checking"),
        ("mid", "tool_call", "served", "tool_args & regex:checking")]


def test_a_tiers_tool_gates_replace_the_top_level_ones(base_config) -> None:
    base_config["tool_gates"] = [{"kind": "regex", "pattern": "never"}]
    base_config["tiers"][0]["tool_gates"] = []
    result = route(base_config, {"cheap": call({"city": "Oslo"})}, RouteRequest("w", tools=TOOLS))
    assert (result.tier, result.attempts[0].verdict.gate) == ("cheap", "tool_args")


def test_without_bound_tools_or_tool_gates_a_tool_turn_has_no_gate(base_config) -> None:
    result = route(base_config, {"cheap": call({"anything": 1})}, RouteRequest("w"))
    cheap = result.attempts[0]
    assert (result.tier, cheap.verdict.reason, cheap.turn) == ("cheap", "no gate", "tool_call")


def test_request_gates_split_by_turn(base_config) -> None:
    from langchain_tiered_router.core import RegexGate

    request = RouteRequest("w", tools=TOOLS, gates=[RegexGate("^text ok$")], tool_gates=[RegexGate("^tool ok$")])
    script = {"cheap": call({"city": "Oslo"}, text="tool ok"), "mid": call({"city": "Oslo"}, text="tool ok")}
    assert route({**base_config, "gates": []}, script, request).tier == "cheap"
    script = {"cheap": text("tool ok"), "mid": text("text ok")}
    assert route({**base_config, "gates": []}, script, request).tier == "mid"


def test_a_streamed_request_with_tools_is_read_whole(base_config) -> None:
    router = build_router({**base_config, "gates": []}, telemetry=False)
    assert router.streams_through(RouteRequest("w"))
    assert not router.streams_through(RouteRequest("w", tools=TOOLS))


@pytest.mark.parametrize("key, gate, path, words", [
    ("gates", {"kind": "json_schema", "source": "tool_args", "schema": CITY}, "gates[0].source", "tool_gates"),
    ("tool_gates", {"kind": "pydantic", "source": "text", "model": "x:y"}, "tool_gates[0].source", "source 'text'"),
    ("tool_gates", {"kind": "self_grade"}, "tool_gates[0].kind", "self_grade gate"),
    ("tool_gates", {"kind": "all", "gates": [{"kind": "consistency", "tier": "mid"}]}, "tool_gates[0].gates[0].kind",
     "consistency gate"),
], ids=["tool-args-among-text-gates", "text-source-among-tool-gates", "self-grade", "nested-consistency"])
def test_a_gate_on_the_wrong_kind_of_turn_is_a_config_error(base_config, key, gate, path, words) -> None:
    base_config[key] = [gate]
    with pytest.raises(ConfigError) as info:
        RouterConfig.from_dict(base_config)
    assert info.value.path == path and words in str(info.value)
    tiered = {**base_config, key: [], "tiers": [{**LADDER[0], key: [gate]}, *LADDER[1:]]}
    with pytest.raises(ConfigError) as info:
        RouterConfig.from_dict(tiered)
    assert info.value.path == f"tiers[0].{path}"


def test_tool_gates_round_trip_through_yaml(base_config, tmp_path) -> None:
    base_config["tool_gates"] = [{"kind": "json_schema", "schema": CITY, "source": "tool_args"}]
    base_config["tiers"] = [{**LADDER[0], "tool_gates": [{"kind": "regex", "pattern": "x"}]}, *LADDER[1:]]
    config = RouterConfig.from_dict(base_config)
    config.to_yaml(tmp_path / "r.yaml")
    assert RouterConfig.from_yaml(tmp_path / "r.yaml") == config
    with pytest.raises(ConfigError, match="did you mean 'tool_gates'"):
        RouterConfig.from_dict({**base_config, "tool_gate": []})
