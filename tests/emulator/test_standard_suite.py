"""LangChain's own integration suite for ChatBedrockConverse, run against the emulator.

This is the emulator's fidelity test: a stock ``ChatBedrockConverse`` on a real
botocore client must behave as the suite expects of any chat model. The emulator here
has an empty script, so every answer comes from its defaults (text, tool calls
synthesised from schemas, tool-result follow-ups). Anthropic-style inputs are
switched on. Switched off with the suite's documented properties: image/PDF/audio
inputs and image/PDF tool messages (the emulator does not read media, and those tests
download their samples from the internet) and model override (``ChatBedrockConverse``
itself rejects ``model=`` at call time, on AWS as here). ``test_stream_time`` skips
itself: it needs VCR cassettes, which do not apply to a local endpoint.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from langchain_aws import ChatBedrockConverse
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_tiered_router.emulator import BedrockEmulator

from emu_constants import CHEAP


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator() as emu:
        yield emu


class TestChatBedrockConverseOnEmulator(ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _bind_client(self, emulator: BedrockEmulator) -> None:
        self._client = emulator.client(retries={"max_attempts": 0})

    @property
    def chat_model_class(self) -> type[ChatBedrockConverse]:
        return ChatBedrockConverse

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": CHEAP, "client": self._client}

    @property
    def supports_model_override(self) -> bool:
        return False

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True
