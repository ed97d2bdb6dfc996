"""Fixtures for the emulator tests: one emulator per module, real botocore clients."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from langchain_tiered_router.emulator import BedrockEmulator

from emu_constants import SCRIPT
from tests._sockets import allow_sockets_in


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The emulator listens on 127.0.0.1: let these tests open sockets under pytest-socket."""
    allow_sockets_in(__file__, config, items)


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(SCRIPT) as emu:
        yield emu




@pytest.fixture(scope="module")
def client(emulator: BedrockEmulator) -> Any:
    """A real bedrock-runtime client with retries off, so each fault shows once."""
    return emulator.client(retries={"max_attempts": 0})
