"""A priced ladder with round numbers, so expected costs can be worked out by hand."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from langchain_tiered_router.core.backends import Backend
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.pricing import Usage
from langchain_tiered_router.core.types import TierAnswer

# USD per million tokens: cheap 1 / 2, mid 5 / 10, frontier 20 / 40.
PRICED_LADDER = [
    {"name": "cheap", "model_id": "test.cheap-v1", "price": {"input_per_mtok": 1, "output_per_mtok": 2}},
    {"name": "mid", "model_id": "test.mid-v1", "price": {"input_per_mtok": 5, "output_per_mtok": 10}},
    {"name": "frontier", "model_id": "test.frontier-v1", "price": {"input_per_mtok": 20, "output_per_mtok": 40}},
]
RATES = {"cheap": (Decimal(1), Decimal(2)), "mid": (Decimal(5), Decimal(10)), "frontier": (Decimal(20), Decimal(40))}


def cost(tier: str, input_tokens: int, output_tokens: int) -> Decimal:
    rin, rout = RATES[tier]
    return (input_tokens * rin + output_tokens * rout) / Decimal(1_000_000)


def answer(text: str, input_tokens: int, output_tokens: int) -> TierAnswer:
    return TierAnswer(text=text, usage=Usage(input_tokens, output_tokens))


@pytest.fixture
def priced_config() -> dict:
    """Cascade, a regex gate (answers must contain "ok"), no sinks: tests add their own."""
    return copy.deepcopy({
        "tiers": PRICED_LADDER,
        "gates": [{"kind": "regex", "pattern": "ok"}],
        "pinning": {"enabled": False},
        "telemetry": {"sinks": []},
    })


@pytest.fixture
def make_router():
    def make(config: dict, observers=None):
        return build_router(config, observers=observers)

    return make


class FnBackend(Backend):
    """Answers with ``fn(tier_name, request)``, with no lock held (ScriptedBackend holds
    one while a scripted function runs, which would serialise a slow shadow call)."""

    def __init__(self, fn):
        self.fn = fn

    def call(self, tier, request):
        reply = self.fn(tier.name, request)
        if isinstance(reply, BaseException):
            raise reply
        return reply
