"""Structured output judged as the user's parser reads it, against plain ``ChatBedrockConverse``.

A tier whose answer the parser accepts is served, not escalated and flagged after paying
every tier: arguments sent as JSON strings, values pydantic coerces, a TypedDict's
``Optional`` field answered ``null``. One the parser would refuse still escalates.
"""

from __future__ import annotations

import json
import warnings
from typing import Annotated, Iterator, List, Optional

import pytest
from langchain_aws import ChatBedrockConverse
from pydantic import BaseModel
from typing_extensions import TypedDict

from langchain_tiered_router.emulator import BedrockEmulator
from langchain_tiered_router.langchain import TieredChatBedrock

from .scripts import CHEAP, FRONTIER, MID, config

MISTRAL = "mistral.mistral-large-2407-v1:0"  # Bedrock takes toolChoice "auto" and "any" for it, not "tool"


class Item(BaseModel):
    sku: str


class Order(BaseModel):
    """An order."""

    id: int
    items: List[Item]


class Person(BaseModel):
    """A person."""

    name: str
    age: int


class Contact(TypedDict):
    """A contact."""

    name: Annotated[str, ..., "the name"]
    phone: Annotated[Optional[str], None, "the phone number, if any"]
    age: Annotated[int, ..., "the age"]


def _tool(name: str, cheap: dict, mid: dict, frontier: dict) -> dict[str, list[dict]]:
    return {model: [{"match": f"^{name.lower()}:", "tool_use": {"name": name, "input": args}}]
            for model, args in ((CHEAP, cheap), (MID, mid), (FRONTIER, frontier))}


def _script() -> dict:
    rules: dict[str, list[dict]] = {CHEAP: [], MID: [], FRONTIER: []}
    cases = [
        # the cheap tier stringifies the array, as Claude on Bedrock may; mid sends garbage in it
        ("Order", {"id": 7, "items": json.dumps([{"sku": "A1"}])}, {"id": 7, "items": "A1"},
         {"id": 7, "items": [{"sku": "A1"}]}),
        ("Person", {"name": "Bob", "age": "42"}, {"name": "Bob", "age": "forty-two"}, {"name": "Bob", "age": 42}),
        ("Contact", {"name": "Ann", "phone": None, "age": 30}, {"name": "Ann", "phone": None, "age": None},
         {"name": "Ann", "phone": "555", "age": 30}),
    ]
    for name, cheap, mid, frontier in cases:
        for model, answers in _tool(name, cheap, mid, frontier).items():
            rules[model] += answers
    # the "bad" prompts: cheap answers what mid answered above, so the request escalates
    for name, _, mid, frontier in cases:
        rules[CHEAP].append({"match": f"^bad {name.lower()}:", "tool_use": {"name": name, "input": mid}})
        rules[MID].append({"match": f"^bad {name.lower()}:", "tool_use": {"name": name, "input": frontier}})
    # method="json_schema": the answer's text is the JSON; cheap's does not parse as a Person
    rules[CHEAP].append({"match": "^native person:", "answer": '{"name": "Bob", "age": "forty-two"}'})
    rules[MID].append({"match": "^native person:", "answer": '{"name": "Bob", "age": 42}'})
    # valid JSON inside prose (the schema gates would find it; LangChain's parsers do not), a tool call, no text
    rules[CHEAP].append({"match": "^prose person:", "answer": 'Sure: {"name": "Bob", "age": 42} hope that helps'})
    rules[CHEAP].append({"match": "^called person:", "tool_use": {"name": "Person", "input": {"name": "Bob", "age": 42}}})
    rules[MID] += [{"match": f"^{kind} person:", "answer": '{"name": "Bob", "age": 42}'} for kind in ("prose", "called")]
    return {"models": {m: {"rules": r, "default": "plain text"} for m, r in rules.items()}}


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(_script()) as emu:
        yield emu


def _routed(emulator: BedrockEmulator, **overrides) -> TieredChatBedrock:
    return TieredChatBedrock(config=config(emulator.url, **overrides), telemetry=False)


def _plain(emulator: BedrockEmulator, model: str = CHEAP) -> ChatBedrockConverse:
    return ChatBedrockConverse(model=model, endpoint_url=emulator.url, region_name="us-east-1")


@pytest.mark.parametrize("schema, prompt, expected", [
    (Order, "order: 7 with A1", Order(id=7, items=[Item(sku="A1")])),
    (Person, "person: Bob is 42", Person(name="Bob", age=42)),
    (Contact, "contact: Ann, 30", {"name": "Ann", "phone": None, "age": 30}),
], ids=["stringified-array", "coerced-int", "typeddict-optional-null"])
def test_an_answer_the_parser_accepts_is_served_by_the_cheap_tier_as_plain_parses_it(emulator, schema, prompt,
                                                                                      expected) -> None:
    assert _plain(emulator).with_structured_output(schema).invoke(prompt) == expected
    out = _routed(emulator).with_structured_output(schema, include_raw=True).invoke(prompt)
    assert out["parsed"] == expected and out["parsing_error"] is None
    routing = out["raw"].response_metadata["routing"]
    assert (routing["tier"], routing["escalated"], routing["flagged"]) == ("cheap", False, False)
    assert [a["gate_passed"] for a in routing["attempts"]] == [True]
    streamed = list(_routed(emulator).with_structured_output(schema).stream(prompt))
    assert streamed[-1] == expected
    # the partial objects too (a dict grows key by key), as plain streams them
    assert streamed == list(_plain(emulator).with_structured_output(schema).stream(prompt))


@pytest.mark.parametrize("schema, prompt, reason", [
    (Order, "bad order: 7 with A1", "items"),
    (Person, "bad person: Bob is 42", "age"),
    (Contact, "bad contact: Ann, 30", "age"),  # a null for a field that is not Optional
], ids=["unparseable-array", "not-an-int", "null-where-required"])
def test_an_answer_the_parser_would_refuse_still_escalates(emulator, schema, prompt, reason) -> None:
    out = _routed(emulator).with_structured_output(schema, include_raw=True).invoke(prompt)
    routing = out["raw"].response_metadata["routing"]
    assert routing["tier"] == "mid" and out["parsing_error"] is None
    first = routing["attempts"][0]
    assert first["tier"] == "cheap" and first["gate_passed"] is False and reason in first["gate_reason"]


@pytest.mark.skipif(not hasattr(ChatBedrockConverse, "_with_structured_output_json_schema"),
                    reason="this langchain-aws has no method='json_schema'")
def test_method_json_schema_sends_bedrocks_own_output_config_and_judges_the_text(emulator) -> None:
    """As ChatBedrockConverse: ``outputConfig.textFormat``, no tool; the text is the JSON.
    A tier whose text the parser would refuse escalates."""
    emulator.clear_requests()
    plain = _plain(emulator, MID).with_structured_output(Person, method="json_schema").invoke("native person: Bob")
    out = _routed(emulator).with_structured_output(Person, method="json_schema", include_raw=True).invoke(
        "native person: Bob")
    assert out["parsed"] == plain == Person(name="Bob", age=42) and out["parsing_error"] is None
    assert json.loads(out["raw"].content) == {"name": "Bob", "age": 42} and not out["raw"].tool_calls
    routing = out["raw"].response_metadata["routing"]
    assert [(a["tier"], a["gate_passed"]) for a in routing["attempts"]] == [("cheap", False), ("mid", True)]
    sent = emulator.requests
    assert len(sent) == 3 and all("toolConfig" not in r.body for r in sent)
    assert [r.body["outputConfig"] for r in sent[1:]] == [sent[0].body["outputConfig"]] * 2  # as plain sent it
    with pytest.raises(ValueError, match="Unsupported schema type"):
        _routed(emulator).with_structured_output(Contact, method="json_schema")  # as plain refuses a TypedDict


@pytest.mark.skipif(not hasattr(ChatBedrockConverse, "_with_structured_output_json_schema"),
                    reason="this langchain-aws has no method='json_schema'")
def test_other_keyword_arguments_are_taken_as_plain_takes_them(emulator) -> None:
    """``json_schema`` binds them (a stop sequence reaches every tier), ``function_calling``
    ignores them, and ``strict`` off ``function_calling`` warns, as on ChatBedrockConverse
    (before: any of them was a ``ValueError``)."""
    emulator.clear_requests()
    out = _routed(emulator).with_structured_output(Person, method="json_schema", stop=["STOP"]).invoke(
        "native person: Bob")
    assert out == Person(name="Bob", age=42)
    assert [r.body["inferenceConfig"]["stopSequences"] for r in emulator.requests] == [["STOP"]] * 2
    assert _routed(emulator).with_structured_output(Person, unknown_option=1).invoke("person: Bob is 42") == \
        _plain(emulator).with_structured_output(Person, unknown_option=1).invoke("person: Bob is 42")
    for method in ("json_schema", "json_mode"):
        with pytest.warns(UserWarning, match=f"ignored for method='{method}'"):
            _routed(emulator).with_structured_output(Person, method=method, strict=True)


@pytest.mark.skipif(not hasattr(ChatBedrockConverse, "_with_structured_output_json_schema"),
                    reason="this langchain-aws has no method='json_schema'")
@pytest.mark.parametrize("schema", [Person, Person.model_json_schema()], ids=["pydantic", "dict"])
@pytest.mark.parametrize("prompt", ["prose person: Bob", "called person: Bob"], ids=["json-in-prose", "tool-call"])
def test_method_json_schema_escalates_a_text_the_users_parser_would_refuse(emulator, schema, prompt) -> None:
    """The gate reads the text as the parser does: JSON inside prose, or a tool call with
    no text, is not served to a parser that raises on it (invoke) or yields nothing (stream)."""
    expected = {"name": "Bob", "age": 42}
    out = _routed(emulator).with_structured_output(schema, method="json_schema", include_raw=True).invoke(prompt)
    parsed = out["parsed"].model_dump() if isinstance(out["parsed"], Person) else out["parsed"]
    assert parsed == expected and out["parsing_error"] is None
    routing = out["raw"].response_metadata["routing"]
    assert [(a["tier"], a["gate_passed"]) for a in routing["attempts"]] == [("cheap", False), ("mid", True)]
    assert "parser" in routing["attempts"][0]["gate_reason"]
    streamed = list(_routed(emulator).with_structured_output(schema, method="json_schema").stream(prompt))
    last = streamed[-1] if streamed else None  # a dict schema streams partial dicts, then the whole one
    assert (last if isinstance(last, dict) else last.model_dump()) == expected


@pytest.mark.skipif(not hasattr(ChatBedrockConverse, "_with_structured_output_json_schema"),
                    reason="this langchain-aws has no method='json_schema'")
@pytest.mark.parametrize("schema", [Person, Person.model_json_schema()], ids=["pydantic", "dict"])
def test_method_json_schema_says_an_answer_no_tier_gave_as_json_was_served_flagged(emulator, schema) -> None:
    """Every tier answered prose (``on_exhausted: flag``): the parser's error says which
    tier served it and why it was flagged, as the tool-calling method's does; it said
    only "Invalid json output"."""
    from langchain_core.exceptions import OutputParserException

    tiers = [{"name": "cheap", "model_id": CHEAP}, {"name": "again", "model_id": CHEAP}]  # prose on both
    with pytest.raises(OutputParserException, match=r"hope that helps \(served by again, flagged: .+\)"):
        _routed(emulator, tiers=tiers).with_structured_output(schema, method="json_schema").invoke("prose person: Bob")


def test_a_tier_that_cannot_name_a_tool_is_forced_with_any_as_plain_does(emulator) -> None:
    tiers = [{"name": "cheap", "model_id": MISTRAL}, {"name": "frontier", "model_id": FRONTIER}]
    sent = len(emulator.requests)
    plain = _plain(emulator, MISTRAL).with_structured_output(Person).invoke("person: Bob is 42")
    assert isinstance(plain, Person)  # the emulator's made-up call (no rule for this model)
    assert emulator.requests[-1].body["toolConfig"]["toolChoice"] == {"any": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # forced, not called without tool_choice
        out = _routed(emulator, tiers=tiers).with_structured_output(Person, include_raw=True).invoke(
            "person: Bob is 42")
    assert out["parsed"] == plain
    assert out["raw"].response_metadata["routing"]["tier"] == "cheap"
    assert [r.body["toolConfig"]["toolChoice"] for r in emulator.requests[sent + 1:]] == [{"any": {}}]


def test_a_cache_point_after_the_one_tool_does_not_count_as_a_second_tool(emulator) -> None:
    """One tool and a ``cachePoint`` marker after it: still one tool, so a tier that cannot
    name it is forced with "any", as with the tool alone (the marker counted as a tool, and
    the tier was asked without tool_choice)."""
    tiers = [{"name": "cheap", "model_id": MISTRAL}, {"name": "frontier", "model_id": FRONTIER}]
    sent = len(emulator.requests)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        message = _routed(emulator, tiers=tiers).bind_tools(
            [Person, {"cachePoint": {"type": "default"}}], tool_choice="Person").invoke("person: Bob is 42")
    assert [c["name"] for c in message.tool_calls] == ["Person"]
    assert emulator.requests[sent].body["toolConfig"]["toolChoice"] == {"any": {}}
    assert emulator.requests[sent].body["toolConfig"]["tools"][-1] == {"cachePoint": {"type": "default"}}


def test_bedrock_system_tools_are_refused_in_words(emulator) -> None:
    """Nova's system tools run on Nova models only, and a tiered model sends its tools to
    every tier: binding one says so, before any call (it was LangChain's "Unsupported
    function")."""
    llm = _routed(emulator)
    for tool in ("nova_grounding", {"systemTool": {"name": "nova_code_interpreter"}}):
        with pytest.raises(ValueError, match="system tools .* are not routed"):
            llm.bind_tools([Person, tool])


def test_with_several_tools_a_named_choice_is_not_widened_to_any(emulator) -> None:
    tiers = [{"name": "cheap", "model_id": MISTRAL}, {"name": "frontier", "model_id": FRONTIER}]
    sent = len(emulator.requests)
    with pytest.warns(RuntimeWarning, match="without tool_choice"):
        _routed(emulator, tiers=tiers).bind_tools([Person, Order], tool_choice="Person").invoke("person: Bob is 42")
    assert "toolChoice" not in emulator.requests[sent].body["toolConfig"]


@pytest.mark.parametrize("prompt, cheap_answered", [("hello there", "the answer is text"), ("the order, please", "the answer calls Order")])
def test_a_forced_tool_choice_the_cheap_tier_could_not_force_escalates_its_other_answer(emulator, prompt,
                                                                                        cheap_answered) -> None:
    """The caller forced a call of Person; the cheap tier, asked without tool_choice (it
    cannot name a tool), answers in text or calls another tool: that escalates to a tier
    that can force it, as the caller's chain expects the call (plain on that tier: a call)."""
    tiers = [{"name": "cheap", "model_id": MISTRAL}, {"name": "frontier", "model_id": FRONTIER}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = _routed(emulator, tiers=tiers).bind_tools([Person, Order], tool_choice="Person").invoke(prompt)
    plain = _plain(emulator, FRONTIER).bind_tools([Person, Order], tool_choice="Person").invoke(prompt)
    assert [c["name"] for c in out.tool_calls] == [c["name"] for c in plain.tool_calls] == ["Person"]
    routing = out.response_metadata["routing"]
    first = routing["attempts"][0]
    assert (first["tier"], first["gate"], first["gate_passed"]) == ("cheap", "tool_choice", False)
    assert cheap_answered in first["gate_reason"]
    assert (routing["tier"], routing["flagged"]) == ("frontier", False)
    # "auto" forces nothing: the cheap tier's text is served
    auto = _routed(emulator, tiers=tiers).bind_tools([Person, Order], tool_choice="auto").invoke("hello there")
    assert auto.response_metadata["routing"]["tier"] == "cheap" and not auto.tool_calls


def test_a_stop_string_is_the_callers_error_not_one_stop_per_character(emulator) -> None:
    llm = _routed(emulator)
    results = []
    llm.router.add_observer(lambda result, request, backend: results.append(result))
    sent = len(emulator.requests)
    with pytest.raises(ValueError, match=r"stop must be a list of strings.*\['STOP'\]"):
        llm.invoke("hello", stop="STOP")
    with pytest.raises(ValueError, match="stop must be a list of strings"):
        list(llm.stream("hello", stop="STOP"))
    assert len(emulator.requests) == sent  # nothing reached Bedrock
    assert len(results) == 2 and all("stop must be a list" in str(r.error) for r in results)  # both recorded
    assert llm.invoke("hello", stop=["STOP"]).content == "plain text"
    assert emulator.requests[-1].body["inferenceConfig"]["stopSequences"] == ["STOP"]


@pytest.mark.parametrize("args, expected", [
    ({"items": '[{"sku": "A1"}]'}, {"items": [{"sku": "A1"}]}),
    ({"items": ' {"items": [1]} '}, {"items": [1]}),  # wrapped under its own key
    ({"meta": '{"a": 1}'}, {"meta": {"a": 1}}),  # type ["object", "null"]
    ({"items": '{"other": [1]}'}, {"items": '{"other": [1]}'}),  # decodes to the wrong type: left to the schema
    ({"items": "[1, 2"}, {"items": "[1, 2"}),  # not JSON
    ({"name": '["a"]'}, {"name": '["a"]'}),  # a string property stays a string
    ({"items": "[" * 5000 + "]" * 5000}, {"items": "[" * 5000 + "]" * 5000}),  # nested too deep to read
])
def test_arguments_sent_as_json_strings_are_decoded_only_where_the_schema_wants_json(args, expected) -> None:
    from langchain_tiered_router.core.json_answer import unstringify_args

    properties = {"items": {"type": "array"}, "meta": {"type": ["object", "null"]}, "name": {"type": "string"}}
    assert unstringify_args(args, properties) == expected
    unchanged = {"items": [1], "name": "x"}
    assert unstringify_args(unchanged, properties) is unchanged


def test_a_ladder_that_cannot_be_forced_to_call_the_tool_raises_as_plain_does(emulator) -> None:
    """Claude 4 models thinking cannot be forced to call a tool: each answered in text,
    failed the schema gate, and the flagged answer parsed to ``None``, silently. Plain
    ``ChatBedrockConverse`` raises ``OutputParserException`` there; so does the ladder now
    (and ``include_raw`` carries it as the parsing error)."""
    from langchain_core.exceptions import OutputParserException

    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    ladder = [{"name": "sonnet", "model_id": "global.anthropic.claude-sonnet-4-5-20250929-v1:0"},
              {"name": "opus", "model_id": "us.anthropic.claude-opus-4-1-20250805-v1:0"}]
    llm = TieredChatBedrock(config={**config(emulator.url), "tiers": ladder, "on_exhausted": "flag"},
                            additional_model_request_fields=thinking, max_tokens=2000, telemetry=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each tier is called without a forced tool, and says so
        with pytest.raises(OutputParserException, match="calls no tool"):
            llm.with_structured_output(Person).invoke("Tell me about Grace")
        raw = llm.with_structured_output(Person, include_raw=True).invoke("Tell me about Grace")
    assert raw["parsed"] is None and isinstance(raw["parsing_error"], OutputParserException)
    assert raw["raw"].response_metadata["routing"]["flagged"] is True
