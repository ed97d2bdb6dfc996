"""Fixtures for the LangChain tests: one emulator per module, routed models on it.

No socket marker: the suite's ``--allow-hosts`` already lets tests reach the emulator
on 127.0.0.1 and nothing else.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from langchain_tiered_router.core.types import RoutingResult
from langchain_tiered_router.emulator import BedrockEmulator
from langchain_tiered_router.langchain import TieredChatBedrock

from .scripts import SCRIPT, config


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(SCRIPT) as emu:
        yield emu




class Routed:
    """Builds routed models on the emulator and keeps every ``RoutingResult`` they finish."""

    def __init__(self, emulator: BedrockEmulator):
        self.emulator = emulator
        self.results: list[RoutingResult] = []

    def __call__(self, **overrides: Any) -> TieredChatBedrock:
        llm = TieredChatBedrock(config=config(self.emulator.url, **overrides), telemetry=False)
        llm.router.add_observer(lambda result, request, backend: self.results.append(result))
        return llm

    @property
    def last(self) -> RoutingResult:
        return self.results[-1]


@pytest.fixture
def routed(emulator: BedrockEmulator) -> Callable[..., TieredChatBedrock]:
    return Routed(emulator)
