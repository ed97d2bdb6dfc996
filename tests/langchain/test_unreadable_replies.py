"""A Bedrock reply whose text is not UTF-8 is a malformed reply: retried on the tier like
any malformed reply, then the tier escalates, the attempt is recorded as ``malformed``, and ``on_exhausted: flag`` still serves an answer."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from langchain_tiered_router.core.pricing import Usage

from .scripts import CHEAP, MID


@pytest.mark.parametrize("how", ["invoke", "ainvoke", "stream"])
def test_a_reply_that_is_not_utf8_escalates_like_a_malformed_one(routed, emulator, how):
    llm = routed(on_exhausted="flag")
    emulator.clear_requests()
    tries = 1 + llm.config.retry.max_retries  # malformed replies are retried on the tier first
    emulator.inject("malformed", model_id=CHEAP, mode="invalid_utf8", times=tries)
    if how == "invoke":
        message = llm.invoke("hello there")
    elif how == "ainvoke":
        message = asyncio.run(llm.ainvoke("hello there"))
    else:
        chunks = list(llm.stream("hello there"))
        message = chunks[0]
        for chunk in chunks[1:]:
            message = message + chunk
    routing = message.response_metadata["routing"]
    # a failed call, not a verdict on the answer's quality (README: counted apart)
    assert routing["tier"] == "mid" and (routing["transport_escalations"], routing["quality_escalations"]) == (1, 0)
    cheap = routing["attempts"][0]
    assert (cheap["tier"], cheap["outcome"], cheap["error_kind"]) == ("cheap", "malformed", "malformed")
    assert "UnicodeDecodeError" in cheap["error"] and "\ufffd" not in cheap["error"]
    assert [r.model_id for r in emulator.requests] == [CHEAP] * tries + [MID]


def test_every_tier_unreadable_is_one_recorded_failure_not_a_crash(routed, emulator):
    from langchain_tiered_router.core import LadderExhaustedError

    llm = routed(on_exhausted="flag")
    emulator.inject("malformed", mode="invalid_utf8", times=3 * (1 + llm.config.retry.max_retries))  # every try
    with pytest.raises(LadderExhaustedError) as info:  # nothing readable to serve, flagged or not
        llm.invoke("hello there")
    assert [a.outcome for a in info.value.result.attempts] == ["malformed"] * 3
    assert routed.last is info.value.result  # the record was written


@pytest.mark.parametrize("mode, plain_type", [("invalid_utf8", ValueError), ("missing_output", ValueError)])
def test_a_ladder_that_ends_on_an_unreadable_reply_raises_what_plain_raises(routed, emulator, mode, plain_type):
    """ChatBedrockConverse raises the reader's own error for such a reply (langchain-aws's
    ``ValueError`` for a body without its output, a ``UnicodeDecodeError``, a ``ValueError``
    too): code that catches it catches the ladder's error as well, which still holds every
    attempt."""
    from langchain_aws import ChatBedrockConverse

    from langchain_tiered_router.core import LadderExhaustedError

    llm = routed(retry={"max_retries": 0})
    plain = ChatBedrockConverse(model=CHEAP, endpoint_url=emulator.url, region_name="us-east-1")
    emulator.inject("malformed", mode=mode, times=4)
    with pytest.raises(plain_type):
        plain.invoke("hello there")
    with pytest.raises(plain_type) as info:
        llm.invoke("hello there")
    assert isinstance(info.value, LadderExhaustedError)
    assert [a.outcome for a in info.value.result.attempts] == ["malformed"] * 3
    emulator.clear_faults()


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
def test_a_tool_call_whose_input_is_no_object_is_a_malformed_reply(routed, emulator, how):
    """A tier whose ``toolUse.input`` is a JSON string (or a list) makes langchain-aws's
    ``AIMessage`` refuse the tool call with pydantic's ``ValidationError``: it was raised
    into the caller after one call, with no retry and no escalation, where the same
    reply with a ``null`` input escalated. It is the tier's unreadable reply."""
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    llm = routed(gates=[]).bind_tools([get_weather])
    emulator.clear_requests()
    tries = 1 + routed(gates=[]).config.retry.max_retries
    emulator.inject("malformed", model_id=CHEAP, mode="tool_input_string", times=tries)
    message = llm.invoke("weather in Paris?") if how == "invoke" else asyncio.run(llm.ainvoke("weather in Paris?"))
    assert message.tool_calls[0]["args"] == {"city": "Paris"}
    routing = message.response_metadata["routing"]
    assert routing["tier"] == "mid" and (routing["transport_escalations"], routing["quality_escalations"]) == (1, 0)
    cheap = routing["attempts"][0]
    assert (cheap["outcome"], cheap["error_kind"]) == ("malformed", "malformed") and "ValidationError" in cheap["error"]
    assert [r.model_id for r in emulator.requests] == [CHEAP] * tries + [MID]


def test_an_unreadable_reply_that_states_its_usage_is_billed(routed, emulator):
    """Bedrock bills a reply langchain-aws could not read, on the usage the reply states:
    each try of the tier is priced on it, where the attempt used to cost nothing."""
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    llm = routed(gates=[])
    tries = 1 + llm.config.retry.max_retries
    emulator.inject("malformed", model_id=CHEAP, mode="tool_input_string", times=tries)
    message = llm.bind_tools([get_weather]).invoke("weather in Paris?")
    cheap, mid = message.response_metadata["routing"]["attempts"]
    assert cheap["outcome"] == "malformed" and mid["outcome"] == "served"
    assert cheap["input_tokens"] > 0 and cheap["output_tokens"] > 0
    price = llm.router.ladder["cheap"].price
    one_try = Decimal(cheap["cost_usd"]) / tries
    assert one_try == price.cost(Usage(cheap["input_tokens"] // tries, cheap["output_tokens"] // tries)) > 0
    assert Decimal(message.response_metadata["routing"]["cost_usd"]) == Decimal(cheap["cost_usd"]) + \
        Decimal(mid["cost_usd"])
