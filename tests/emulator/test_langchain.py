"""LangChain's Bedrock chat models on the emulator, through real botocore clients."""

from __future__ import annotations

from typing import Any

from langchain_aws import ChatBedrock, ChatBedrockConverse
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_tiered_router.emulator import BedrockEmulator

from emu_constants import CHEAP, HAIKU, ROUTER_ARN, STRONG


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


def test_converse_invoke(client: Any) -> None:
    message = ChatBedrockConverse(model=CHEAP, client=client).invoke("Hello")
    assert message.content == "I am the cheap model."
    assert message.usage_metadata["input_tokens"] == 2
    assert message.usage_metadata["output_tokens"] == 6
    assert message.response_metadata["stopReason"] == "end_turn"


def test_converse_stream(client: Any) -> None:
    chunks = list(ChatBedrockConverse(model=STRONG, client=client).stream("Hello"))
    assert len([c for c in chunks if c.text]) > 1
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.text == "I am the strong model, and I think about every word you wrote."
    assert full.usage_metadata["output_tokens"] == 16


def test_converse_bind_tools_round_trip(client: Any) -> None:
    llm = ChatBedrockConverse(model=CHEAP, client=client).bind_tools([get_weather])
    question = HumanMessage("What's the weather like?")
    first = llm.invoke([question])
    assert isinstance(first, AIMessage)
    (call,) = first.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
    result = get_weather.invoke(call)
    final = llm.invoke([question, first, result])
    assert "Sunny in Paris." in final.text
    streamed = None
    for chunk in llm.stream([question]):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed.tool_calls[0]["args"] == {"city": "Paris"}


def test_converse_structured_output_by_json_schema(client: Any) -> None:
    class Person(BaseModel):
        name: str
        age: int

    llm = ChatBedrockConverse(model=STRONG, client=client)
    person = llm.with_structured_output(Person, method="json_schema").invoke("'Grace' is 85")
    assert person == Person(name="Grace", age=85)
    person = llm.with_structured_output(Person).invoke("'Alan' is 41")
    assert person == Person(name="Alan", age=41)


def test_converse_prompt_router_trace(client: Any) -> None:
    message = ChatBedrockConverse(model=ROUTER_ARN, provider="amazon", client=client).invoke("hi")
    assert message.response_metadata["trace"]["promptRouter"]["invokedModelId"] == CHEAP


def test_chat_bedrock_anthropic_invoke_stream_and_tools(client: Any) -> None:
    llm = ChatBedrock(model_id=HAIKU, client=client)
    message = llm.invoke("Hello")
    assert message.content == "Hello from Claude on the emulator."
    assert message.usage_metadata["input_tokens"] == 2 and message.usage_metadata["output_tokens"] == 9
    streamed = "".join(chunk.text for chunk in llm.stream("Hello"))
    assert streamed == "Hello from Claude on the emulator."
    call = llm.bind_tools([get_weather]).invoke("What is the weather in 'Oslo'?")
    assert call.tool_calls[0]["name"] == "get_weather"
    assert call.tool_calls[0]["args"] == {"city": "Oslo"}


def test_chat_bedrock_nova_goes_through_converse(emulator: BedrockEmulator, client: Any) -> None:
    emulator.clear_requests()
    ChatBedrock(model_id=CHEAP, client=client).invoke("hi")
    assert [r.operation for r in emulator.calls_for(CHEAP)] == ["Converse"]
