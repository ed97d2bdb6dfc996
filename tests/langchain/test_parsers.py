"""Gates as output parsers, and chain-level escalation with ``with_fallbacks``."""

from __future__ import annotations

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

from langchain_tiered_router.core import JsonSchemaGate, PydanticGate, RegexGate
from langchain_tiered_router.langchain import GateOutputParser, escalation_chain, with_tier_fallbacks

from .scripts import CHEAP, FRONTIER, INVOICE, INVOICE_SCHEMA, MID


class Invoice(BaseModel):
    total: float
    currency: str


def test_gate_parser_returns_value_or_raises() -> None:
    parser = GateOutputParser(JsonSchemaGate(INVOICE_SCHEMA))
    assert parser.parse('{"total": 3, "currency": "USD"}\nHope this helps.') == {"total": 3, "currency": "USD"}
    # JSON after prose is not what a JSON parser reads: refused unless the gate is told to find it there
    with pytest.raises(OutputParserException, match="JSON after prose"):
        parser.parse('Here: {"total": 3, "currency": "USD"}')
    assert GateOutputParser(JsonSchemaGate(INVOICE_SCHEMA, embedded=True)).parse(
        'Here: {"total": 3, "currency": "USD"}') == {"total": 3, "currency": "USD"}
    with pytest.raises(OutputParserException, match="schema violation at total"):
        parser.parse('{"total": "three", "currency": "USD"}')
    assert GateOutputParser(PydanticGate(Invoice)).parse('{"total": 3, "currency": "USD"}') == Invoice(
        total=3, currency="USD")
    assert GateOutputParser(RegexGate("USD")).parse("3 USD") == "3 USD"
    with pytest.raises(OutputParserException, match="pattern not found"):
        GateOutputParser(RegexGate("USD")).parse("3 EUR")


def test_gate_parser_reads_tool_call_arguments() -> None:
    parser = GateOutputParser(PydanticGate(Invoice, source="tool_args"))
    message = AIMessage(content="", tool_calls=[{"name": "Invoice", "args": {"total": 1, "currency": "EUR"},
                                                "id": "t1"}])
    assert parser.parse_result([ChatGeneration(message=message)]) == Invoice(total=1, currency="EUR")
    with pytest.raises(OutputParserException, match="no tool call"):
        parser.parse_result([ChatGeneration(message=AIMessage(content="{}"))])


PROMPT = ChatPromptTemplate.from_messages([("human", "{q}")])


def test_with_tier_fallbacks_escalates_chain_on_parser_failure(routed, emulator) -> None:
    llm = routed()
    chain = with_tier_fallbacks(PROMPT, GateOutputParser(JsonSchemaGate(INVOICE_SCHEMA)), llm)
    emulator.clear_requests()
    assert chain.invoke({"q": INVOICE}) == {"total": 12.5, "currency": "EUR"}
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID, FRONTIER]


def test_a_json_gate_passes_only_what_the_chains_json_parser_reads(routed, emulator) -> None:
    """``prompt | llm | JsonOutputParser()``: cheap's JSON after prose ("Sure! Here are the
    fields: {...}") passed the gate, was served, and the parser raised; it escalates, and
    mid's JSON with a note after it (which the parser reads) is served."""
    from langchain_core.output_parsers import JsonOutputParser

    llm = routed(gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}])
    chain = PROMPT | llm | JsonOutputParser()
    assert chain.invoke({"q": "prose-wrapped fields: total 12.50 EUR"}) == {"total": 12.5, "currency": "EUR"}
    attempts = routed.last.attempts
    assert [(a.tier, a.outcome) for a in attempts] == [("cheap", "gate_failed"), ("mid", "served")]
    assert "JSON after prose" in attempts[0].verdict.reason


def test_with_tier_fallbacks_raises_the_first_error_when_all_fail(routed) -> None:
    chain = with_tier_fallbacks(PROMPT, GateOutputParser(RegexGate("^NEVER$")), routed())
    with pytest.raises(OutputParserException) as info:
        chain.invoke({"q": "hello"})
    assert info.value.llm_output == "I am the cheap model."  # the first tier's failure, not the last


def test_escalation_chain_falls_back_on_transport_errors(routed, emulator) -> None:
    llm = routed()
    emulator.inject("throttle", model_id=CHEAP, times=1)
    chain = escalation_chain(lambda model: PROMPT | model, list(llm.tier_models.values()))
    assert chain.invoke({"q": "hello"}).content == "I am the mid model, a little slower and a lot more careful."
    with pytest.raises(ValueError):
        escalation_chain(lambda m: m, [])
