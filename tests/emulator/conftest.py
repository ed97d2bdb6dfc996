"""Fixtures for the emulator tests: one emulator per module, real botocore clients."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from langchain_tiered_router.emulator import BedrockEmulator

from emu_constants import SCRIPT


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The emulator listens on 127.0.0.1: let these tests open sockets under pytest-socket."""
    if not config.pluginmanager.hasplugin("socket"):
        return
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.enable_socket)


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(SCRIPT) as emu:
        yield emu




@pytest.fixture(scope="module")
def client(emulator: BedrockEmulator) -> Any:
    """A real bedrock-runtime client with retries off, so each fault shows once."""
    return emulator.client(retries={"max_attempts": 0})
