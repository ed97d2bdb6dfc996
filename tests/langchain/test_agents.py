"""Agents and conversations through ``TieredChatBedrock``, on the emulator.

A LangGraph ReAct agent (``langgraph.prebuilt.create_react_agent``) with a top-level
``json_schema`` gate: its tool-calling turns are judged as tool calls (each call's
arguments against the bound tool's schema, plus ``tool_gates``), its final answer by the
text gate. Conversations stay on one tier across calls, named by LangGraph's
``configurable.thread_id`` or ``RunnableWithMessageHistory``'s ``configurable.session_id``.
LangChain 1.x's ``create_agent`` too, with its structured output and a summarization
middleware sized from the ladder's model profile.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Optional

import copy

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware
from langchain_core.tools import tool
from langgraph.checkpoint.memory import MemorySaver
from langgraph.prebuilt import create_react_agent
from pydantic import BaseModel
from typing_extensions import TypedDict

from langchain_tiered_router.core.errors import ConfigError
from langchain_tiered_router.core.telemetry.recorder import flush_all
from langchain_tiered_router.emulator import BedrockEmulator
from langchain_tiered_router.langchain import TieredChatBedrock

from .scripts import CHEAP, FRONTIER, MID, config, cost

FORECAST_SCHEMA = {"type": "object", "required": ["city", "forecast"],
                   "properties": {"city": {"type": "string"}, "forecast": {"type": "string"}}}
# After a tool result the last user turn has no text: those rules match the empty prompt.
AFTER_TOOL = "^$"
SCRIPT: dict[str, Any] = {
    "models": {
        CHEAP: {"rules": [
            {"match": "Paris", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
            {"match": "Oslo", "tool_use": {"name": "get_weather", "input": {"city": 7}}},
            {"match": "Rome", "tool_use": {"name": "get_weather", "input": {"city": "Rome", "units": "kelvin"}}},
            {"match": AFTER_TOOL, "answer": "It is sunny."},
        ], "default": "I am the cheap model."},
        MID: {"rules": [
            {"match": "Oslo", "tool_use": {"name": "get_weather", "input": {"city": "Oslo"}}},
            {"match": "Rome", "tool_use": {"name": "get_weather", "input": {"city": "Rome", "units": "celsius"}}},
            {"match": AFTER_TOOL, "answer": '{"city": "Paris", "forecast": "sunny"}'},
        ], "default": '{"city": "?", "forecast": "mid"}'},
        FRONTIER: {"rules": [], "default": '{"city": "?", "forecast": "frontier"}'},
    },
}


@tool
def get_weather(city: str, units: str = "celsius") -> str:
    """The weather in a city."""
    return f"Sunny in {city}, 21 degrees {units}."


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(SCRIPT) as emu:
        yield emu


def _model(emulator: BedrockEmulator, telemetry: Path, *, streaming: bool = False, **overrides: Any
           ) -> TieredChatBedrock:
    settings = {"gates": [{"kind": "json_schema", "schema": FORECAST_SCHEMA}],
                "telemetry": {"sinks": [{"kind": "jsonl", "path": str(telemetry)}]}, **overrides}
    return TieredChatBedrock(config=config(emulator.url, **settings), streaming=streaming)


def _records(path: Path) -> list[dict[str, Any]]:
    flush_all()  # the JSONL sink writes from its own thread
    return [json.loads(line) for line in path.read_text().splitlines()]


def _attempt_cost(attempt: dict[str, Any]) -> Decimal:
    model = {"cheap": CHEAP, "mid": MID, "frontier": FRONTIER}[attempt["tier"]]
    return cost(model, attempt["input_tokens"], attempt["output_tokens"])


def test_react_agent_tool_turn_is_served_cheap_and_the_answer_judged_by_the_text_gate(emulator, tmp_path) -> None:
    telemetry = tmp_path / "routing.jsonl"
    llm = _model(emulator, telemetry)
    agent = create_react_agent(llm, [get_weather])
    emulator.clear_requests()

    out = agent.invoke({"messages": [HumanMessage("What is the weather in Paris? Reply as JSON.")]})

    messages = out["messages"]
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert messages[1].tool_calls[0]["args"] == {"city": "Paris"}
    assert messages[2].content == "Sunny in Paris, 21 degrees celsius."
    assert json.loads(messages[3].content) == {"city": "Paris", "forecast": "sunny"}
    # two model calls: cheap (the tool turn), then cheap -> mid (the answer); no frontier call
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP, MID]

    tool_turn, answer = _records(telemetry)  # one routing record per model call
    assert (tool_turn["tier"], tool_turn["flagged"], tool_turn["escalated"]) == ("cheap", False, False)
    (served,) = tool_turn["attempts"]
    assert (served["turn"], served["gate"], served["gate_passed"]) == ("tool_call", "tool_args", True)
    assert served["gate_reason"] == "1 tool call valid"
    assert Decimal(tool_turn["cost_usd"]) == _attempt_cost(served) > 0
    assert Decimal(tool_turn["baseline_cost_usd"]) == cost(FRONTIER, served["input_tokens"], served["output_tokens"])

    assert (answer["tier"], answer["flagged"], answer["quality_escalations"]) == ("mid", False, 1)
    cheap, mid = answer["attempts"]
    assert [(a["tier"], a["turn"], a["gate"], a["outcome"]) for a in answer["attempts"]] == [
        ("cheap", "text", "json_schema", "gate_failed"), ("mid", "text", "json_schema", "served")]
    assert cheap["gate_reason"] == "no JSON value in the answer"
    assert Decimal(answer["cost_usd"]) == _attempt_cost(cheap) + _attempt_cost(mid)
    assert Decimal(answer["savings_usd"]) == Decimal(answer["baseline_cost_usd"]) - Decimal(answer["cost_usd"]) > 0
    # the served message carries its own routing, the same as the record
    assert messages[1].response_metadata["routing"]["tier"] == "cheap"
    assert messages[3].response_metadata["routing"]["tier"] == "mid"


def test_tool_call_with_arguments_off_the_tool_schema_escalates(emulator, tmp_path) -> None:
    telemetry = tmp_path / "routing.jsonl"
    agent = create_react_agent(_model(emulator, telemetry), [get_weather])
    emulator.clear_requests()

    out = agent.invoke({"messages": [HumanMessage("What is the weather in Oslo?")]})

    assert out["messages"][1].tool_calls[0]["args"] == {"city": "Oslo"}
    assert out["messages"][2].content == "Sunny in Oslo, 21 degrees celsius."
    tool_turn = _records(telemetry)[0]
    assert (tool_turn["tier"], tool_turn["flagged"]) == ("mid", False)
    cheap, mid = tool_turn["attempts"]
    assert (cheap["turn"], cheap["outcome"]) == ("tool_call", "gate_failed")
    # judged as the tool will read it: by its pydantic model (a number is no string there either)
    assert cheap["gate_reason"] == "tool call 0 (get_weather): schema violation at city: Input should be a valid string"
    assert (mid["turn"], mid["outcome"], mid["gate_reason"]) == ("tool_call", "served", "1 tool call valid")
    assert Decimal(tool_turn["cost_usd"]) == _attempt_cost(cheap) + _attempt_cost(mid)
    assert [r.model_id for r in emulator.requests][:2] == [CHEAP, MID]


@tool
def add_days(n: int) -> str:
    """Add n days to today."""
    return f"in {n} days"


class Search(TypedDict):
    """Search the catalogue."""

    q: str
    limit: Optional[int]


class Refund(BaseModel):
    """Refund an order."""

    order: int


def test_tool_calls_are_judged_as_the_code_that_reads_them_will(tmp_path) -> None:
    """A call the tool or the parser takes is served, not escalated on LangChain's stricter
    JSON schema: ``"42"`` is an ``int`` to a tool's (and a pydantic class's) pydantic model,
    and a TypedDict's ``Optional`` field may be ``null`` (its sent schema drops the null).
    A call neither takes still escalates."""
    script = {"models": {
        CHEAP: {"rules": [{"match": "days", "tool_use": {"name": "add_days", "input": {"n": "42"}}},
                          {"match": "catalogue", "tool_use": {"name": "Search", "input": {"q": "shoes", "limit": None}}},
                          {"match": "refund", "tool_use": {"name": "Refund", "input": {"order": "A-7"}}}]},
        MID: {"rules": [{"match": "refund", "tool_use": {"name": "Refund", "input": {"order": 7}}}],
              "default": "mid"},
        FRONTIER: {"default": "frontier"}}}
    with BedrockEmulator(script) as emulator:
        llm = TieredChatBedrock(config=config(emulator.url), telemetry=False)

        bound = llm.bind_tools([add_days])
        message = bound.invoke("add some days")
        assert add_days.invoke(message.tool_calls[0]).content == "in 42 days"
        # the readers are kept out of the binding's kwargs, which a chain's dump writes
        assert "not_implemented" not in dumps(bound)
        routing = message.response_metadata["routing"]
        assert (routing["tier"], routing["attempts"][0]["gate_reason"]) == ("cheap", "1 tool call valid")

        message = llm.bind_tools([Search]).invoke("search the catalogue")
        assert message.tool_calls[0]["args"] == {"q": "shoes", "limit": None}
        assert message.response_metadata["routing"]["tier"] == "cheap"

        message = llm.bind_tools([Refund]).invoke("refund it")
        assert message.tool_calls[0]["args"] == {"order": 7}
        cheap, mid = message.response_metadata["routing"]["attempts"]
        assert cheap["gate_reason"] == "tool call 0 (Refund): schema violation at order: Input should be a valid " \
                                       "integer, unable to parse string as an integer"
        assert (mid["tier"], mid["outcome"]) == ("mid", "served")


def test_a_cache_point_after_the_tools_is_sent_as_bound_and_is_no_tool(emulator, tmp_path) -> None:
    """langchain-aws's way to cache tool definitions: a ``cachePoint`` entry in the tools."""
    llm = _model(emulator, tmp_path / "routing.jsonl").bind_tools([get_weather, {"cachePoint": {"type": "default"}}])
    emulator.clear_requests()
    message = llm.invoke("What is the weather in Paris?")
    assert message.tool_calls[0]["args"] == {"city": "Paris"}
    (sent,) = emulator.requests
    tools = sent.body["toolConfig"]["tools"]
    assert tools[0]["toolSpec"]["name"] == "get_weather" and tools[1] == {"cachePoint": {"type": "default"}}
    assert message.response_metadata["routing"]["attempts"][0]["gate_reason"] == "1 tool call valid"


def test_tool_gates_judge_tool_turns_after_the_schema_check(emulator, tmp_path) -> None:
    telemetry = tmp_path / "routing.jsonl"
    units = {"kind": "json_schema", "schema": {"type": "object", "properties": {"units": {"enum": ["celsius"]}}}}
    agent = create_react_agent(_model(emulator, telemetry, tool_gates=[units]), [get_weather])

    out = agent.invoke({"messages": [HumanMessage("What is the weather in Rome?")]})

    assert out["messages"][1].tool_calls[0]["args"] == {"city": "Rome", "units": "celsius"}
    cheap, mid = _records(telemetry)[0]["attempts"]
    # kelvin is a string, so the tool's schema passes; the configured tool gate does not
    assert (cheap["turn"], cheap["gate"], cheap["outcome"]) == ("tool_call", "json_schema", "gate_failed")
    assert cheap["gate_reason"] == 'schema violation at units: not an allowed value (enum: ["celsius"])'
    assert (mid["tier"], mid["outcome"]) == ("mid", "served")


def test_streamed_agent_turns_are_judged_the_same_way(emulator, tmp_path) -> None:
    telemetry = tmp_path / "routing.jsonl"
    agent = create_react_agent(_model(emulator, telemetry, streaming=True), [get_weather])
    emulator.clear_requests()

    steps = list(agent.stream({"messages": [HumanMessage("What is the weather in Oslo?")]}, stream_mode="values"))

    final = steps[-1]["messages"]
    assert final[1].tool_calls[0]["args"] == {"city": "Oslo"}  # cheap's bad call never reached the graph
    assert json.loads(final[3].text) == {"city": "Paris", "forecast": "sunny"}
    assert {r.operation for r in emulator.requests} == {"ConverseStream"}
    assert [(r["tier"], [(a["tier"], a["turn"], a["outcome"]) for a in r["attempts"]])
            for r in _records(telemetry)] == [
        ("mid", [("cheap", "tool_call", "gate_failed"), ("mid", "tool_call", "served")]),
        ("mid", [("cheap", "text", "gate_failed"), ("mid", "text", "served")])]


# ---- conversations stay on one tier ----------------------------------------------------

def test_langgraph_thread_stays_on_the_tier_it_was_pinned_to(emulator, tmp_path) -> None:
    telemetry = tmp_path / "routing.jsonl"
    agent = create_react_agent(_model(emulator, telemetry), [get_weather], checkpointer=MemorySaver())
    thread = {"configurable": {"thread_id": "thread-1"}}

    agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]}, thread)
    # the answer needed mid: the thread is pinned there
    agent.invoke({"messages": [HumanMessage("And in Paris tomorrow?")]}, thread)
    agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]},
                 {"configurable": {"thread_id": "thread-2"}})

    records = _records(telemetry)
    assert [(r["session_id"], r["start_tier"], r["tier"]) for r in records] == [
        ("thread-1", "cheap", "cheap"), ("thread-1", "cheap", "mid"),  # tool turn, then the answer on mid
        ("thread-1", "mid", "mid"),  # the next turn of the thread starts where it was left
        ("thread-2", "cheap", "cheap"), ("thread-2", "cheap", "mid")]  # another thread starts afresh
    assert records[2]["start_reason"] == "pinned by session thread-1"
    assert [a["tier"] for a in records[2]["attempts"]] == ["mid"]


def test_message_history_session_stays_on_one_tier(emulator, tmp_path) -> None:
    telemetry = tmp_path / "routing.jsonl"
    llm = _model(emulator, telemetry, gates=[{"kind": "regex", "pattern": "^\\{"}])
    histories: dict[str, InMemoryChatMessageHistory] = {}
    chat = RunnableWithMessageHistory(llm, lambda sid: histories.setdefault(sid, InMemoryChatMessageHistory()))

    first = chat.invoke([HumanMessage("Hello, who are you?")], {"configurable": {"session_id": "chat-1"}})
    second = chat.invoke([HumanMessage("Tell me more.")], {"configurable": {"session_id": "chat-1"}})
    other = chat.invoke([HumanMessage("Hello?")], {"configurable": {"session_id": "chat-2"}})

    assert first.response_metadata["routing"]["tier"] == "mid"  # cheap's default is not JSON
    assert len(histories["chat-1"].messages) == 4
    records = _records(telemetry)
    assert [(r["session_id"], r["start_tier"], r["tier"]) for r in records] == [
        ("chat-1", "cheap", "mid"), ("chat-1", "mid", "mid"), ("chat-2", "cheap", "mid")]
    assert second.response_metadata["routing"]["attempts"][0]["tier"] == "mid"
    assert other.response_metadata["routing"]["start_tier"] == "cheap"


BOTH = {"session_id": "c", "thread_id": "t"}


@pytest.mark.parametrize("kwargs, config, expected", [
    ({"session_id": "kwarg"}, {"metadata": {"session_id": "meta"}, "configurable": BOTH}, "kwarg"),
    ({}, {"metadata": {"session_id": "meta"}, "configurable": BOTH}, "meta"),
    ({}, {"configurable": BOTH}, "c"),
    ({}, {"configurable": {"thread_id": "t"}}, "t"),
    ({}, {"configurable": {"thread_id": 42}}, "42"),
    ({}, {"configurable": {"thread_id": {"not": "a name"}}}, None),
    ({}, {}, None),
], ids=["kwarg", "metadata", "configurable-session", "thread", "numeric-thread", "object-thread", "none"])
def test_session_precedence(emulator, tmp_path, kwargs, config, expected) -> None:
    llm = _model(emulator, tmp_path / "routing.jsonl", gates=[])
    message = llm.invoke("hello", config, **kwargs)
    assert message.response_metadata["routing"]["session_id"] == expected


def test_a_uuid_session_given_as_an_argument_or_in_metadata_is_stored_as_text(emulator, tmp_path) -> None:
    """A UUID as ``session_id=`` or ``metadata.session_id`` pinned but reached the record as
    an object: the SQLite sink could not bind it and dropped the row (1 of 3 stored), and
    ``json.dumps`` of the routing metadata failed. ``configurable`` already made it text;
    all three ways do now, and a value that names nothing (a dict, blanks) is no session."""
    import sqlite3
    import uuid

    db = tmp_path / "t.db"
    llm = TieredChatBedrock(config=config(emulator.url, gates=[], telemetry={
        "sinks": [{"kind": "sqlite", "path": str(db)}]}))
    sid = uuid.uuid4()
    messages = [llm.invoke("hello", {"metadata": {"session_id": sid}}), llm.invoke("hello", session_id=sid),
                llm.invoke("hello", {"configurable": {"session_id": sid}}),
                llm.invoke("hello", {"metadata": {"session_id": {"a": 1}}}), llm.invoke("hello", session_id="   ")]
    assert [m.response_metadata["routing"]["session_id"] for m in messages] == [str(sid)] * 3 + [None, None]
    json.dumps([m.response_metadata["routing"] for m in messages])
    flush_all()
    rows = sqlite3.connect(db).execute("select session_id from routing_records").fetchall()
    assert sorted(rows, key=str) == sorted([(str(sid),)] * 3 + [(None,)] * 2, key=str)


async def test_async_agent_reads_the_thread_too(emulator, tmp_path) -> None:
    telemetry = tmp_path / "routing.jsonl"
    agent = create_react_agent(_model(emulator, telemetry), [get_weather], checkpointer=MemorySaver())
    thread = {"configurable": {"thread_id": "async-thread"}}
    await agent.ainvoke({"messages": [HumanMessage("What is the weather in Paris?")]}, thread)
    await agent.ainvoke({"messages": [HumanMessage("What is the weather in Paris?")]}, thread)
    records = _records(telemetry)
    assert [r["session_id"] for r in records] == ["async-thread"] * 4
    assert [r["start_tier"] for r in records] == ["cheap", "cheap", "mid", "mid"]


def test_a_tool_args_gate_among_the_text_gates_is_a_config_error(emulator, tmp_path) -> None:
    gate = {"kind": "json_schema", "source": "tool_args", "schema": FORECAST_SCHEMA}
    with pytest.raises(ConfigError) as info:
        _model(emulator, tmp_path / "t.jsonl", gates=[gate])
    assert info.value.path == "gates[0].source" and "tool_gates" in str(info.value)


async def test_streamed_calls_read_the_configured_session(emulator, tmp_path) -> None:
    llm = _model(emulator, tmp_path / "routing.jsonl", gates=[])
    chunks = list(llm.stream("hello", {"configurable": {"thread_id": "streamed"}}))
    assert chunks[-1].response_metadata["routing"]["session_id"] == "streamed"
    chunks = [c async for c in llm.astream("hello", {"configurable": {"session_id": "astreamed"}})]
    assert chunks[-1].response_metadata["routing"]["session_id"] == "astreamed"


def test_a_thread_pin_belongs_to_its_caller(emulator, tmp_path) -> None:
    llm = _model(emulator, tmp_path / "routing.jsonl", gates=[{"kind": "regex", "pattern": "^\\{"}])

    def start(caller: str) -> str:
        config = {"configurable": {"thread_id": "shared-thread"}, "metadata": {"caller": caller}}
        return llm.invoke("hello", config).response_metadata["routing"]["start_tier"]

    assert [start("user:alice"), start("user:alice"), start("user:bob")] == ["cheap", "mid", "cheap"]


# ---- LangChain 1.x: create_agent ------------------------------------------------------

class Forecast(BaseModel):
    city: str
    forecast: str


def test_create_agent_routes_each_model_call_like_the_react_agent(emulator, tmp_path) -> None:
    telemetry = tmp_path / "routing.jsonl"
    agent = create_agent(_model(emulator, telemetry), tools=[get_weather])
    emulator.clear_requests()

    out = agent.invoke({"messages": [HumanMessage("What is the weather in Paris? Reply as JSON.")]})

    messages = out["messages"]
    assert messages[1].tool_calls[0]["args"] == {"city": "Paris"}
    assert json.loads(messages[-1].content) == {"city": "Paris", "forecast": "sunny"}
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP, MID]
    assert [(r["tier"], [(a["turn"], a["outcome"]) for a in r["attempts"]]) for r in _records(telemetry)] == [
        ("cheap", [("tool_call", "served")]), ("mid", [("text", "gate_failed"), ("text", "served")])]


def test_create_agent_structured_output(tmp_path) -> None:
    """No tier claims native structured output in every profile, and the ladder's name is
    not its top tier's (a Claude 4.5 id, which LangChain knows for native structured
    output): ``create_agent`` asks for the answer as a ``Forecast`` tool call, as it does
    of a plain nova micro, and the tool-call check escalates arguments off its schema."""
    script = {"models": {
        CHEAP: {"rules": [{"match": "Paris", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
                          {"match": AFTER_TOOL, "tool_use": {"name": "Forecast",
                                                             "input": {"city": "Paris", "forecast": 7}}}]},
        MID: {"rules": [{"match": AFTER_TOOL, "tool_use": {"name": "Forecast",
                                                           "input": {"city": "Paris", "forecast": "sunny"}}}]},
        FRONTIER: {"default": "unused"}}}
    telemetry = tmp_path / "routing.jsonl"
    with BedrockEmulator(script) as emulator:
        agent = create_agent(_model(emulator, telemetry), tools=[get_weather], response_format=Forecast)
        out = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
        assert not any("outputConfig" in r.body for r in emulator.requests)  # never asked for native output

    assert out["structured_response"] == Forecast(city="Paris", forecast="sunny")
    assert [(r["tier"], [(a["turn"], a["outcome"]) for a in r["attempts"]]) for r in _records(telemetry)] == [
        ("cheap", [("tool_call", "served")]), ("mid", [("tool_call", "gate_failed"), ("tool_call", "served")])]


def test_summarization_middleware_sizes_its_trigger_from_the_ladders_profile(tmp_path) -> None:
    """A fractional trigger needs ``profile["max_input_tokens"]`` (the middleware refuses
    to start without it): the ladder's is its smallest tier's, and the summary call is
    routed and recorded like any other."""
    script = copy.deepcopy(SCRIPT)
    script["models"][CHEAP]["rules"].insert(0, {"match": "Context Extraction", "answer": "Asked about Paris."})
    telemetry = tmp_path / "routing.jsonl"
    with BedrockEmulator(script) as emu:
        llm = _model(emu, telemetry, gates=[])
        smallest = min(m.profile["max_input_tokens"] for m in llm.tier_models.values())
        assert llm.profile["max_input_tokens"] == smallest
        summarize = SummarizationMiddleware(model=llm, trigger=("fraction", 40 / smallest), keep=("messages", 2))
        agent = create_agent(llm, tools=[get_weather], middleware=[summarize], checkpointer=MemorySaver())
        thread = {"configurable": {"thread_id": "summarized"}}
        agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]}, thread)
        out = agent.invoke({"messages": [HumanMessage("And in Paris tomorrow?")]}, thread)
        calls = list(emu.requests)

    assert "Asked about Paris." in out["messages"][0].content  # the earlier turns, summarized
    summary_calls = [c for c in calls if "Context Extraction" in json.dumps(c.body)]
    assert summary_calls and {c.model_id for c in summary_calls} == {CHEAP}
    records = _records(telemetry)  # one per model call, the summary calls included
    assert len(records) == len(calls) and {r["session_id"] for r in records} == {"summarized"}


async def test_every_handler_sees_each_attempt_start_while_langgraph_streams_messages(emulator, tmp_path) -> None:
    """LangGraph's ``stream_mode="messages"`` adds an inline handler; langchain-core's async
    ``on_llm_start`` then starts runs on inline handlers alone, so a plain handler got each
    ``tier:*`` attempt's end without its start (the sync path and other modes were fine)."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Runs(BaseCallbackHandler):
        def __init__(self) -> None:
            self.started: dict[Any, str] = {}
            self.ended: set[Any] = set()

        def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs) -> None:
            self.started[run_id] = "model"

        def on_llm_start(self, serialized, prompts, *, run_id, **kwargs) -> None:
            self.started[run_id] = kwargs.get("name") or "llm"

        def on_llm_end(self, response, *, run_id, **kwargs) -> None:
            self.ended.add(run_id)

    agent = create_react_agent(_model(emulator, tmp_path / "routing.jsonl", gates=[]), [get_weather])
    for mode in ("messages", "updates"):
        runs = Runs()
        async for _ in agent.astream({"messages": [HumanMessage("hi")]}, {"callbacks": [runs]}, stream_mode=mode):
            pass
        assert runs.ended <= set(runs.started), mode  # no end without its start
        assert "tier:cheap" in runs.started.values(), mode
