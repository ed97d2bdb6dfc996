"""The emulator against botocore's service model for bedrock-runtime: the request limits Bedrock
enforces and the in-stream exceptions each stream can carry (the HTTP layer's own refusal and
its request id: test_converse)."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError, EventStreamError

from langchain_tiered_router.emulator import BedrockEmulator, FaultSpecError
from langchain_tiered_router.emulator._request_limits import LIMITS, TOOL_NAME_PATTERN
from langchain_tiered_router.emulator._wire_errors import STREAM_EXCEPTIONS

from emu_constants import CHEAP, LLAMA

MODEL = botocore.session.get_session().get_service_model("bedrock-runtime")
MESSAGES = [{"role": "user", "content": [{"text": "weather please"}]}]


def tool(name: str) -> dict[str, Any]:
    return {"tools": [{"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}]}


def refusal(message: str) -> str:
    return f"1 validation error detected: {message}"


REFUSED = {
    "temperature above 1": (
        {"inferenceConfig": {"temperature": 1.5}},
        refusal("Value '1.5' at 'inferenceConfig.temperature' failed to satisfy constraint: "
                "Member must have value less than or equal to 1")),
    "temperature below 0": (
        {"inferenceConfig": {"temperature": -0.1}},
        refusal("Value '-0.1' at 'inferenceConfig.temperature' failed to satisfy constraint: "
                "Member must have value greater than or equal to 0")),
    "topP above 1": (
        {"inferenceConfig": {"topP": 2.0}},
        refusal("Value '2.0' at 'inferenceConfig.topP' failed to satisfy constraint: "
                "Member must have value less than or equal to 1")),
    "maxTokens 0": (
        {"inferenceConfig": {"maxTokens": 0}},
        refusal("Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: "
                "Member must have value greater than or equal to 1")),
    "tool name with a space": (
        {"toolConfig": tool("get weather")},
        refusal("Value 'get weather' at 'toolConfig.tools.1.member.toolSpec.name' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+")),
    "tool name of 65 characters": (
        {"toolConfig": tool("a" * 65)},
        refusal(f"Value '{'a' * 65}' at 'toolConfig.tools.1.member.toolSpec.name' failed to satisfy "
                "constraint: Member must have length less than or equal to 64")),
    "forced tool name with a dot": (
        {"toolConfig": {**tool("get_weather"), "toolChoice": {"tool": {"name": "get.weather"}}}},
        refusal("Value 'get.weather' at 'toolConfig.toolChoice.tool.name' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+")),
    "11 response field paths": (
        {"additionalModelResponseFieldPaths": ["/x"] * 11},
        refusal("Value '[" + ", ".join(["/x"] * 11) + "]' at 'additionalModelResponseFieldPaths' failed "
                "to satisfy constraint: Member must have length less than or equal to 10")),
    "two broken rules at once": (
        {"inferenceConfig": {"temperature": 1.5}, "toolConfig": tool("get weather")},
        "2 validation errors detected: Value '1.5' at 'inferenceConfig.temperature' failed to satisfy "
        "constraint: Member must have value less than or equal to 1; Value 'get weather' at "
        "'toolConfig.tools.1.member.toolSpec.name' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: [a-zA-Z0-9_-]+"),
}


@pytest.fixture(scope="module")
def unchecked(emulator: BedrockEmulator) -> Any:
    """A client that leaves every check to the service, as botocore does for a ``max`` or a
    ``pattern`` (and as other SDKs do for a ``min`` too)."""
    return emulator.client(retries={"max_attempts": 0}, parameter_validation=False)


@pytest.mark.parametrize("operation", ["converse", "converse_stream"])
@pytest.mark.parametrize("case", list(REFUSED))
def test_requests_out_of_the_service_models_limits_are_refused_as_bedrock_words_it(
        unchecked: Any, operation: str, case: str) -> None:
    extra, message = REFUSED[case]
    with pytest.raises(ClientError) as caught:
        getattr(unchecked, operation)(modelId=CHEAP, messages=MESSAGES, **extra)
    error = caught.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationException", 400)
    assert error["Error"]["Message"] == message


def test_a_tool_use_name_in_the_history_is_checked_too(client: Any) -> None:
    messages = [MESSAGES[0],
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get weather",
                                                               "input": {}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "sun"}]}}]}]
    with pytest.raises(client.exceptions.ValidationException, match=(
            r"Value at 'messages\.2\.member\.content\.1\.member\.toolUse\.name' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern")):
        client.converse(modelId=CHEAP, messages=messages, toolConfig=tool("get_weather"))


def test_requests_at_the_limits_are_served(client: Any) -> None:
    name = "Get_weather-9" + "x" * 51  # 64 characters, every kind the pattern allows
    response = client.converse(modelId=CHEAP, messages=MESSAGES, toolConfig=tool(name),
                               inferenceConfig={"temperature": 1, "topP": 0, "maxTokens": 1},
                               additionalModelResponseFieldPaths=["/x"] * 10)
    assert response["stopReason"] in ("end_turn", "tool_use", "max_tokens")
    response = client.converse(modelId=CHEAP, messages=MESSAGES, inferenceConfig={"temperature": 0, "topP": 1})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_the_limits_are_those_of_botocores_service_model() -> None:
    for shape_name, (low, high) in LIMITS.items():
        metadata = MODEL.shape_for(shape_name).metadata
        assert (metadata.get("min"), metadata.get("max")) == (low, high), shape_name
    assert MODEL.shape_for("ToolName").metadata["pattern"] == TOOL_NAME_PATTERN
    # the limits are written once, for Converse; ConverseStream's request shares them
    converse, stream = (MODEL.operation_model(op).input_shape for op in ("Converse", "ConverseStream"))
    for member in ("inferenceConfig", "additionalModelResponseFieldPaths", "toolConfig"):
        assert converse.members[member].metadata == stream.members[member].metadata
    paths = stream.members["additionalModelResponseFieldPaths"]
    assert (paths.metadata, paths.member.metadata) == (
        converse.members["additionalModelResponseFieldPaths"].metadata,
        converse.members["additionalModelResponseFieldPaths"].member.metadata)


def test_the_stream_exceptions_are_those_of_botocores_service_model() -> None:
    for operation, members in STREAM_EXCEPTIONS.items():
        union = MODEL.operation_model(operation).get_event_stream_output().members
        assert set(members) == {name for name, shape in union.items() if shape.metadata.get("exception")}


def _stream_error(client: Any, operation: str) -> EventStreamError:
    with pytest.raises(EventStreamError) as caught:
        if operation == "ConverseStream":
            list(client.converse_stream(modelId=CHEAP, messages=MESSAGES)["stream"])
        else:
            list(client.invoke_model_with_response_stream(modelId=LLAMA, body='{"prompt": "hi"}')["body"])
    return caught.value


@pytest.mark.parametrize(("operation", "member"), [
    (operation, member) for operation, members in STREAM_EXCEPTIONS.items() for member in members])
def test_each_stream_exception_carries_its_code_and_bedrocks_message(
        emulator: BedrockEmulator, client: Any, operation: str, member: str) -> None:
    emulator.inject("stream_error", exception=member)
    error = _stream_error(client, operation).response["Error"]
    assert error["Code"] == member
    assert error["Message"] and error["Message"] != "The stream failed."


def test_in_stream_throttling_reads_as_a_throttle(emulator: BedrockEmulator, client: Any) -> None:
    emulator.inject("stream_error", exception="ThrottlingException")  # the error code is taken too
    error = _stream_error(client, "ConverseStream").response["Error"]
    assert error == {"Code": "throttlingException",
                     "Message": "Too many requests, please wait before trying again."}


@pytest.mark.parametrize("name", ["accessDeniedException", "AccessDeniedException", "modelErrorException", "nope"])
def test_a_stream_error_no_stream_can_carry_is_refused_when_injected(emulator: BedrockEmulator, name: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        emulator.inject("stream_error", exception=name)
    text = str(caught.value)
    assert name in text
    assert ("ConverseStream: internalServerException, modelStreamErrorException, validationException, "
            "throttlingException, serviceUnavailableException") in text
    assert "InvokeModelWithResponseStream: " in text and "modelTimeoutException" in text
    assert emulator.pending_faults == []


def test_a_model_timeout_in_stream_is_for_invoke_streams_only(emulator: BedrockEmulator, client: Any) -> None:
    """ConverseStream's union has no modelTimeoutException: its calls pass the fault by."""
    emulator.clear_faults()
    emulator.inject("stream_error", exception="modelTimeoutException")
    try:
        events = list(client.converse_stream(modelId=CHEAP, messages=MESSAGES)["stream"])
        assert next(iter(events[-1])) == "metadata"
        assert len(emulator.pending_faults) == 1
        assert _stream_error(client, "InvokeModelWithResponseStream").response["Error"]["Code"] == \
            "modelTimeoutException"
        assert emulator.pending_faults == []
    finally:
        emulator.clear_faults()

