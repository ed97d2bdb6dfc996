"""InvokeModel and InvokeModelWithResponseStream, one body family at a time."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emu_constants import CHEAP, HAIKU, LLAMA, ROUTER_ARN

MISTRAL = "mistral.mistral-7b-instruct-v0:2"


def invoke(client: Any, model_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    response = client.invoke_model(modelId=model_id, body=json.dumps(body))
    assert response["contentType"] == "application/json"
    return json.loads(response["body"].read()), response["ResponseMetadata"]["HTTPHeaders"]


def invoke_stream(client: Any, model_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
    return [json.loads(event["chunk"]["bytes"]) for event in response["body"]]


def anthropic_body(content: Any, **extra: Any) -> dict[str, Any]:
    return {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
            "messages": [{"role": "user", "content": content}], **extra}


def test_anthropic_messages(client: Any) -> None:
    body, headers = invoke(client, HAIKU, anthropic_body("Hello"))
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == "claude-3-haiku-20240307"
    assert body["content"] == [{"type": "text", "text": "Hello from Claude on the emulator."}]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"] == {"input_tokens": 2, "output_tokens": 9}
    assert headers["x-amzn-bedrock-input-token-count"] == "2"
    assert headers["x-amzn-bedrock-output-token-count"] == "9"


def test_anthropic_stream_events(client: Any) -> None:
    chunks = invoke_stream(client, HAIKU, anthropic_body([{"type": "text", "text": "Hello"}]))
    types = [chunk["type"] for chunk in chunks]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    assert text == "Hello from Claude on the emulator."
    assert chunks[-2]["delta"]["stop_reason"] == "end_turn"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 9


def test_anthropic_tool_use_and_cache_control(client: Any) -> None:
    tools = [{"name": "lookup", "description": "Look up an order.", "cache_control": {"type": "ephemeral"},
              "input_schema": {"type": "object", "properties": {"order": {"type": "integer"}},
                               "required": ["order"]}}]
    body, headers = invoke(client, HAIKU, anthropic_body("Find order 1234", tools=tools,
                                                         tool_choice={"type": "any"}))
    assert body["stop_reason"] == "tool_use"
    (block,) = body["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_bdrk_")
    assert block["input"] == {"order": 1234}
    assert "cache_creation_input_tokens" in body["usage"]
    assert "x-amzn-bedrock-cache-write-input-token-count" in headers
    chunks = invoke_stream(client, HAIKU, anthropic_body("Find order 77", tools=tools, tool_choice={"type": "any"}))
    partial = "".join(c["delta"]["partial_json"] for c in chunks if c["type"] == "content_block_delta")
    assert json.loads(partial) == {"order": 77}


def test_anthropic_requires_max_tokens(client: Any) -> None:
    body = anthropic_body("hi")
    del body["max_tokens"]
    with pytest.raises(client.exceptions.ValidationException, match="max_tokens"):
        invoke(client, HAIKU, body)


def test_nova(client: Any) -> None:
    request = {"schemaVersion": "messages-v1", "messages": [{"role": "user", "content": [{"text": "hi"}]}],
               "inferenceConfig": {"max_new_tokens": 3}}
    body, _ = invoke(client, CHEAP, request)
    assert body["output"]["message"]["content"] == [{"text": "I am the che"}]
    assert body["stopReason"] == "max_tokens"
    assert body["usage"]["inputTokens"] == 1 and body["usage"]["outputTokens"] == 3
    chunks = invoke_stream(client, CHEAP, {**request, "inferenceConfig": {}})
    text = "".join(c["contentBlockDelta"]["delta"]["text"] for c in chunks if "contentBlockDelta" in c)
    assert text == "I am the cheap model."
    assert chunks[-1]["metadata"]["usage"]["outputTokens"] == 6
    assert "amazon-bedrock-invocationMetrics" in chunks[-1]


def test_mistral(client: Any) -> None:
    body, _ = invoke(client, MISTRAL, {"prompt": "<s>[INST] hi [/INST]", "max_tokens": 50})
    assert body == {"outputs": [{"text": "OK", "stop_reason": "stop"}]}
    chunks = invoke_stream(client, MISTRAL, {"prompt": "<s>[INST] hi [/INST]"})
    assert chunks[-1]["outputs"][0]["stop_reason"] == "stop"
    assert "".join(c["outputs"][0]["text"] for c in chunks) == "OK"


def test_meta(client: Any) -> None:
    prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nmy invoice<|eot_id|>"
    body, _ = invoke(client, LLAMA, {"prompt": prompt, "max_gen_len": 50})
    assert body["generation"] == "Llama read the invoice."  # the rule saw the user's words only
    prompt_tokens = math.ceil(len(prompt) / 4)  # the whole template counts
    assert body["prompt_token_count"] == prompt_tokens and body["generation_token_count"] == 6
    assert body["stop_reason"] == "stop"
    chunks = invoke_stream(client, LLAMA, {"prompt": prompt})
    assert chunks[0]["prompt_token_count"] == prompt_tokens and chunks[-1]["stop_reason"] == "stop"


def test_invoke_through_a_prompt_router(client: Any) -> None:
    # The router picks CHEAP for a short prompt; CHEAP's "invoice" rule answers.
    body, _ = invoke(client, ROUTER_ARN, {"schemaVersion": "messages-v1",
                                          "messages": [{"role": "user", "content": [{"text": "invoice"}]}]})
    assert body["output"]["message"]["content"] == [{"text": '{"total": "twelve"}'}]


def test_unknown_family_and_bad_json(client: Any) -> None:
    with pytest.raises(ClientError, match="no InvokeModel body format"):
        invoke(client, "cohere.command-r-v1:0", {"message": "hi"})
    with pytest.raises(client.exceptions.ValidationException):
        client.invoke_model(modelId=HAIKU, body=b"{not json")


def test_count_tokens_of_an_invoke_body(client: Any) -> None:
    body = json.dumps(anthropic_body("12345678")).encode()
    response = client.count_tokens(modelId=HAIKU, input={"invokeModel": {"body": body}})
    assert response["inputTokens"] == 2
