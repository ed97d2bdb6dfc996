from __future__ import annotations

import copy

import pytest

LADDER = [
    {"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
    {"name": "mid", "model_id": "amazon.nova-pro-v1:0"},
    {"name": "frontier", "model_id": "anthropic.claude-sonnet-4-5-20250929-v1:0"},
]
INVOICE_SCHEMA = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}


@pytest.fixture
def base_config() -> dict:
    return copy.deepcopy({
        "tiers": LADDER,
        "gates": [{"kind": "json_schema", "schema": INVOICE_SCHEMA}],
        "telemetry": {"sinks": []},
    })
