"""Every injectable fault, as botocore (and LangChain) surface it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError
from urllib3.exceptions import ProtocolError

from langchain_tiered_router.emulator import BedrockEmulator, Fault, FaultSpecError

from emu_constants import CHEAP, STRONG

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


@pytest.mark.parametrize(("fault", "code", "status"), [
    ("throttle", "ThrottlingException", 429),
    ("server_error", "InternalServerException", 500),
    ("service_unavailable", "ServiceUnavailableException", 503),
    ("model_not_ready", "ModelNotReadyException", 429),
    ("model_timeout", "ModelTimeoutException", 408),
    ("model_error", "ModelErrorException", 424),
])
def test_error_faults(emulator: BedrockEmulator, client: Any, fault: str, code: str, status: int) -> None:
    emulator.inject(fault, model_id=CHEAP)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=CHEAP, messages=MESSAGES)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert isinstance(caught.value, getattr(client.exceptions, code))
    client.converse(modelId=CHEAP, messages=MESSAGES)  # times=1: the next call is fine


def test_fault_targets_one_model_and_counts_down(emulator: BedrockEmulator, client: Any) -> None:
    emulator.inject("throttle", model_id=STRONG, times=2, message="slow down")
    client.converse(modelId=CHEAP, messages=MESSAGES)
    for _ in range(2):
        with pytest.raises(client.exceptions.ThrottlingException, match="slow down"):
            client.converse(modelId=STRONG, messages=MESSAGES)
    client.converse(modelId=STRONG, messages=MESSAGES)


def test_throttle_then_botocore_retry_succeeds(emulator: BedrockEmulator) -> None:
    retrying = emulator.client(retries={"mode": "standard", "max_attempts": 3})
    emulator.inject("throttle", model_id=CHEAP, times=1)
    before = len(emulator.calls_for(CHEAP))
    response = retrying.converse(modelId=CHEAP, messages=MESSAGES)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(emulator.calls_for(CHEAP)) == before + 2


def test_error_fault_on_converse_stream_is_an_http_error(emulator: BedrockEmulator, client: Any) -> None:
    emulator.inject("throttle")
    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse_stream(modelId=CHEAP, messages=MESSAGES)


def test_slow_reply_hits_the_read_timeout(emulator: BedrockEmulator) -> None:
    impatient = emulator.client(read_timeout=0.5, retries={"max_attempts": 0})
    emulator.inject("slow", model_id=CHEAP, seconds=1.5)
    with pytest.raises(ReadTimeoutError):
        impatient.converse(modelId=CHEAP, messages=MESSAGES)
    assert impatient.converse(modelId=CHEAP, messages=MESSAGES)["stopReason"] == "end_turn"


def test_malformed_body(emulator: BedrockEmulator, client: Any) -> None:
    from langchain_aws import ChatBedrockConverse

    emulator.inject("malformed")
    response = client.converse(modelId=CHEAP, messages=MESSAGES)
    assert "output" not in response  # botocore keeps a non-JSON body as {"message": ...}
    emulator.inject("malformed", mode="missing_output")
    with pytest.raises(ValueError, match="No 'output' key"):
        ChatBedrockConverse(model=CHEAP, client=client).invoke("hi")


def test_malformed_invoke_body_fails_in_langchain(emulator: BedrockEmulator, client: Any) -> None:
    from langchain_aws import ChatBedrock

    emulator.inject("malformed")
    with pytest.raises(ValueError):  # json.JSONDecodeError
        ChatBedrock(model_id="anthropic.claude-3-haiku-20240307-v1:0", client=client).invoke("hi")


def test_malformed_stream_fails_the_checksum(emulator: BedrockEmulator, client: Any) -> None:
    from botocore.eventstream import ChecksumMismatch

    emulator.inject("malformed")
    stream = client.converse_stream(modelId=CHEAP, messages=MESSAGES)["stream"]
    with pytest.raises(ChecksumMismatch):
        list(stream)


def test_stream_cut_raises_while_iterating(emulator: BedrockEmulator, client: Any) -> None:
    from langchain_aws import ChatBedrockConverse

    emulator.inject("stream_cut", after_events=2)
    stream = client.converse_stream(modelId=STRONG, messages=MESSAGES)["stream"]
    seen = []
    with pytest.raises(ProtocolError, match="ended prematurely"):
        for event in stream:
            seen.append(event)
    assert [next(iter(event)) for event in seen] == ["messageStart", "contentBlockDelta"]
    emulator.inject("stream_cut", after_events=3)
    with pytest.raises(ProtocolError):
        list(ChatBedrockConverse(model=STRONG, client=client).stream("hi"))


def test_stream_error_is_an_exception_frame(emulator: BedrockEmulator, client: Any) -> None:
    emulator.inject("stream_error", after_events=2, exception="throttlingException", message="later")
    stream = client.converse_stream(modelId=CHEAP, messages=MESSAGES)["stream"]
    with pytest.raises(EventStreamError) as caught:
        list(stream)
    assert caught.value.response["Error"] == {"Code": "throttlingException", "Message": "later"}


def test_stream_error_on_invoke_stream(emulator: BedrockEmulator, client: Any) -> None:
    emulator.inject("stream_error")
    response = client.invoke_model_with_response_stream(
        modelId="meta.llama3-8b-instruct-v1:0", body='{"prompt": "hi"}')
    with pytest.raises(EventStreamError, match="modelStreamErrorException"):
        list(response["body"])


def test_stream_stall_pauses_mid_stream_then_goes_on(emulator: BedrockEmulator, client: Any) -> None:
    emulator.inject("stream_stall", after_events=2, seconds=0.4)
    stream = client.converse_stream(modelId=CHEAP, messages=MESSAGES)["stream"]
    arrived = [(next(iter(event)), time.monotonic()) for event in stream]
    kinds = [kind for kind, _ in arrived]
    assert kinds[:2] == ["messageStart", "contentBlockDelta"] and kinds[-1] == "metadata"
    gaps = [later - earlier for (_, earlier), (_, later) in zip(arrived, arrived[1:])]
    # the pause falls after the second event; the client's clock sees it start a little
    # late when the second event waited in a buffer, so its length is checked loosely
    assert gaps.index(max(gaps)) == 1 and max(gaps) >= 0.2


def test_stream_only_faults_wait_for_a_stream(emulator: BedrockEmulator, client: Any) -> None:
    emulator.inject("stream_cut")
    client.converse(modelId=CHEAP, messages=MESSAGES)
    assert [f.kind for f in emulator.pending_faults] == ["stream_cut"]
    emulator.clear_faults()
    assert emulator.pending_faults == []


def test_bad_fault_specs() -> None:
    with pytest.raises(FaultSpecError, match="unknown fault"):
        Fault.make("explode")
    with pytest.raises(FaultSpecError, match="no parameter"):
        Fault.make("slow", delay=3)
    assert Fault.make("slow").params["seconds"] == 2.0
