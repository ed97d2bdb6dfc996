"""Converse and ConverseStream through a real botocore client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emu_constants import CHEAP, ROUTER_ARN, STRONG


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def text_of(response: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in response["output"]["message"]["content"])


WEATHER_TOOL = {"toolSpec": {"name": "get_weather", "description": "Weather for a city.",
                             "inputSchema": {"json": {"type": "object", "properties": {
                                 "city": {"type": "string"}}, "required": ["city"]}}}}
ADD_TOOL = {"toolSpec": {"name": "add", "description": "Add two integers.",
                         "inputSchema": {"json": {"type": "object", "properties": {
                             "a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}}


def stream_events(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return list(client.converse_stream(**kwargs)["stream"])


def test_converse_text_usage_and_metrics(client: Any) -> None:
    response = client.converse(modelId=CHEAP, messages=[user("Hello there")])
    assert response["output"]["message"]["role"] == "assistant"
    assert text_of(response) == "I am the cheap model."
    assert response["stopReason"] == "end_turn"
    # ceil(chars / 4): "Hello there" is 11 chars -> 3; the answer is 21 chars -> 6.
    assert response["usage"] == {"inputTokens": 3, "outputTokens": 6, "totalTokens": 9}
    assert response["metrics"]["latencyMs"] >= 1
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_rules_first_match_wins_and_default_answer(client: Any) -> None:
    assert text_of(client.converse(modelId=CHEAP, messages=[user("my invoice please")])) == '{"total": "twelve"}'
    assert text_of(client.converse(modelId="some.unknown-model-v1:0", messages=[user("hi")])) == "OK"


def test_max_tokens_truncates(client: Any) -> None:
    response = client.converse(modelId=STRONG, messages=[user("hi")], inferenceConfig={"maxTokens": 3})
    assert response["stopReason"] == "max_tokens"
    assert text_of(response) == "I am the str"  # 3 tokens * 4 chars
    assert response["usage"]["outputTokens"] == 3


def test_stop_sequence_cuts(client: Any) -> None:
    response = client.converse(modelId=STRONG, messages=[user("hi")],
                               inferenceConfig={"stopSequences": ["think"]})
    assert response["stopReason"] == "stop_sequence"
    assert text_of(response) == "I am the strong model, and I "


def test_converse_stream_decoded_by_botocore(client: Any) -> None:
    events = stream_events(client, modelId=STRONG, messages=[user("hi")])
    kinds = [next(iter(event)) for event in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert len(deltas) > 1
    assert "".join(deltas) == "I am the strong model, and I think about every word you wrote."
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    metadata = events[-1]["metadata"]
    assert metadata["usage"] == {"inputTokens": 1, "outputTokens": 16, "totalTokens": 17}
    assert "latencyMs" in metadata["metrics"]


def test_scripted_tool_use(client: Any) -> None:
    response = client.converse(modelId=CHEAP, messages=[user("what is the weather?")],
                               toolConfig={"tools": [WEATHER_TOOL]})
    assert response["stopReason"] == "tool_use"
    (block,) = response["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "get_weather"
    assert block["toolUse"]["input"] == {"city": "Paris"}
    assert block["toolUse"]["toolUseId"].startswith("tooluse_")


def test_forced_tool_gets_arguments_from_the_prompt(client: Any) -> None:
    response = client.converse(modelId=STRONG, messages=[user("What is 1 + 2?")],
                               toolConfig={"tools": [WEATHER_TOOL, ADD_TOOL], "toolChoice": {"tool": {"name": "add"}}})
    (block,) = response["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "add" and block["toolUse"]["input"] == {"a": 1, "b": 2}


def test_tool_use_stream_and_tool_result_round_trip(client: Any) -> None:
    question = user("Please add 40 and 2")
    events = stream_events(client, modelId=STRONG, messages=[question],
                           toolConfig={"tools": [ADD_TOOL], "toolChoice": {"any": {}}})
    start = next(e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e)
    pieces = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e]
    assert start["name"] == "add"
    assert json.loads("".join(pieces)) == {"a": 40, "b": 2}
    assert next(e for e in events if "messageStop" in e)["messageStop"]["stopReason"] == "tool_use"
    history = [
        question,
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": start["toolUseId"], "name": "add",
                                                       "input": {"a": 40, "b": 2}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": start["toolUseId"],
                                                     "content": [{"json": {"sum": 42}}]}}]},
    ]
    response = client.converse(modelId=STRONG, messages=history, toolConfig={"tools": [ADD_TOOL]})
    assert response["stopReason"] == "end_turn"
    assert '{"sum": 42}' in text_of(response) and "add" in text_of(response)


def test_output_schema_answer_is_json(client: Any) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    response = client.converse(
        modelId=STRONG, messages=[user("Extract: 'Ada' is 36")],
        outputConfig={"textFormat": {"type": "json_schema",
                                     "structure": {"jsonSchema": {"schema": json.dumps(schema), "name": "p"}}}})
    assert json.loads(text_of(response)) == {"name": "Ada", "age": 36}


def test_cache_points_write_then_read(client: Any) -> None:
    system = [{"text": "You are a careful assistant. " * 10}, {"cachePoint": {"type": "default"}}]
    first = client.converse(modelId=STRONG, system=system, messages=[user("one")])["usage"]
    second = client.converse(modelId=STRONG, system=system, messages=[user("two")])["usage"]
    assert first["cacheWriteInputTokens"] == 73 and first["cacheReadInputTokens"] == 0
    assert second["cacheReadInputTokens"] == 73 and second["cacheWriteInputTokens"] == 0
    assert second["inputTokens"] == 1
    assert second["totalTokens"] == 1 + 73 + second["outputTokens"]


def test_prompt_router_trace(client: Any) -> None:
    short = client.converse(modelId=ROUTER_ARN, messages=[user("hi")])
    assert short["trace"]["promptRouter"]["invokedModelId"] == CHEAP
    assert text_of(short) == "I am the cheap model."
    long_prompt = "Please explain, step by step and with care, how tides work."
    events = stream_events(client, modelId=ROUTER_ARN, messages=[user(long_prompt)])
    assert events[-1]["metadata"]["trace"]["promptRouter"]["invokedModelId"] == STRONG


def test_default_prompt_router_is_known(client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"
    response = client.converse(modelId=arn, messages=[user("hi")])
    assert response["trace"]["promptRouter"]["invokedModelId"].startswith("anthropic.claude-3")


@pytest.mark.parametrize(("messages", "tool_config", "fragment"), [
    ([], None, "must start with a user message"),
    ([user("a"), user("b")], None, "must alternate"),
    ([{"role": "user", "content": [{"toolResult": {"toolUseId": "x", "content": [{"text": "1"}]}}]}], None,
     "toolConfig field must be defined"),
])
def test_validation_errors_as_bedrock_words_them(client: Any, messages: list, tool_config: Any,
                                                  fragment: str) -> None:
    kwargs = {"toolConfig": tool_config} if tool_config else {}
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=CHEAP, messages=messages, **kwargs)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in caught.value.response["Error"]["Message"]


def test_strict_script_rejects_unknown_models() -> None:
    from langchain_tiered_router.emulator import BedrockEmulator

    with BedrockEmulator({"strict": True, "models": {CHEAP: {}}}) as emu:
        client = emu.client(retries={"max_attempts": 0})
        assert text_of(client.converse(modelId=f"us.{CHEAP}", messages=[user("hi")])) == "OK"
        with pytest.raises(client.exceptions.ValidationException):
            client.converse(modelId="amazon.nova-nope-v9:0", messages=[user("hi")])
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.converse(modelId="arn:aws:bedrock:us-east-1:1:prompt-router/missing", messages=[user("hi")])


def test_count_tokens(client: Any) -> None:
    response = client.count_tokens(modelId=CHEAP, input={"converse": {"messages": [user("12345678")]}})
    assert response["inputTokens"] == 2


def test_request_log(emulator: Any, client: Any) -> None:
    emulator.clear_requests()
    client.converse(modelId=STRONG, messages=[user("logged")], inferenceConfig={"maxTokens": 50})
    (request,) = emulator.calls_for(STRONG)
    operation, model_id, body, headers = request
    assert (operation, model_id) == ("Converse", STRONG)
    assert body["messages"] == [user("logged")] and body["inferenceConfig"] == {"maxTokens": 50}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256")


def test_bad_requests_get_a_validation_exception(emulator: Any) -> None:
    import urllib.request

    for data in (b"not json", b"[1, 2]", b'{"messages": "nope"}', b'{"messages": [{"role": "user", "content": [7]}]}'):
        request = urllib.request.Request(f"{emulator.url}/model/{CHEAP}/converse", data=data, method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 400
        assert caught.value.headers["x-amzn-ErrorType"].startswith("ValidationException")
        assert "message" in json.loads(caught.value.read())


def test_bad_content_length_is_refused(emulator: Any) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    connection.putrequest("POST", f"/model/{CHEAP}/converse")
    connection.putheader("Content-Length", "lots")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400
    assert response.getheader("x-amzn-ErrorType").startswith("ValidationException")
    assert len(response.getheader("x-amzn-RequestId") or "") == 36  # a uuid, as on every other reply
    connection.close()


def test_prompt_router_routes_and_fixed_rules() -> None:
    from langchain_tiered_router.emulator import BedrockEmulator

    routes = {"arn:aws:bedrock:us-east-1:1:prompt-router/r": {
        "models": [CHEAP, STRONG], "rule": "first", "routes": [{"match": "contract", "model": STRONG}]}}
    with BedrockEmulator({"prompt_routers": routes}) as emu:
        client = emu.client(retries={"max_attempts": 0})
        arn = "arn:aws:bedrock:us-east-1:1:prompt-router/r"
        picked = [client.converse(modelId=arn, messages=[user(text)])["trace"]["promptRouter"]["invokedModelId"]
                  for text in ("hi " * 100, "review this contract")]
        assert picked == [CHEAP, STRONG]
