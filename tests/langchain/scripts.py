"""Model ids, the emulator script and router configs shared by the LangChain tests.

Each tier answers differently, chosen by a regex on the last user message, so a test
can tell from the text alone which tier served it.
"""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from typing import Any

CHEAP = "amazon.nova-micro-v1:0"
MID = "amazon.nova-pro-v1:0"
FRONTIER = "anthropic.claude-sonnet-4-5-20250929-v1:0"

# USD per million tokens, LiteLLM's cost map (input, output)
PRICES = {CHEAP: (Decimal("0.035"), Decimal("0.14")), MID: (Decimal("0.8"), Decimal("3.2")),
          FRONTIER: (Decimal("3"), Decimal("15"))}

ROUTER_ARN = "arn:aws:bedrock:us-east-1:123456789012:prompt-router/tiered-test"

INVOICE = "Extract the invoice fields as JSON: total 12.50 EUR"
INVOICE_JSON = '{"total": 12.5, "currency": "EUR"}'
INVOICE_SCHEMA = {"type": "object", "required": ["total", "currency"],
                  "properties": {"total": {"type": "number"}, "currency": {"type": "string"}}}

SCRIPT: dict[str, Any] = {
    "models": {
        CHEAP: {
            "rules": [
                # routing's own calls on the cheap tier: the self-grade and the LLM classifier
                {"match": "ANSWER:\\n<data-[0-9a-f]+>\\nI am the cheap", "answer": "3"},
                {"match": "SCORE:$", "answer": "9"},
                {"match": "hard question[\\s\\S]*TIER:$", "answer": "mid"},
                {"match": "TIER:$", "answer": "cheap"},
                {"match": "invoice", "answer": "Sure! The total is twelve fifty."},
                {"match": "prose-wrapped", "answer": f"Sure! Here are the fields: {INVOICE_JSON}. Ask me more."},
                {"match": "capital", "answer": "Paris, I think. Confidence: 0.3"},
                {"match": "weather", "tool_use": {"name": "get_weather", "input": {"city": 7}}},
                {"match": "Grace", "tool_use": {"name": "Person", "input": {"name": "Grace"}}},
                {"match": "escalate-me", "answer": "[[ESCALATE]]"},
                {"match": "policy", "answer": "Refunds take 90 days."},
            ],
            "default": "I am the cheap model.",
        },
        MID: {
            "rules": [
                {"match": "invoice", "answer": '{"total": "twelve fifty", "currency": "EUR"}'},
                {"match": "prose-wrapped", "answer": f"{INVOICE_JSON}\nHope this helps."},
                {"match": "capital", "answer": "Paris. Confidence: 0.9"},
                {"match": "weather", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
                {"match": "policy", "answer": "Refunds take 90 days."},
            ],
            "default": "I am the mid model, a little slower and a lot more careful.",
        },
        FRONTIER: {
            "rules": [
                {"match": "invoice", "answer": INVOICE_JSON},
                {"match": "policy", "answer": "Refunds take 30 days."},
            ],
            "default": "I am the frontier model, and I weigh every word of your question with care.",
        },
    },
    "default_answer": "OK",
    "prompt_routers": {ROUTER_ARN: {"models": [CHEAP, MID], "threshold_chars": 40}},
}


def tokens(text: str) -> int:
    """The emulator's token estimate: ceil(chars / 4), at least 1."""
    return max(1, math.ceil(len(text) / 4))


def cost(model_id: str, input_tokens: int, output_tokens: int) -> Decimal:
    price_in, price_out = PRICES[model_id]
    return (input_tokens * price_in + output_tokens * price_out) / Decimal(1_000_000)


def config(endpoint_url: str, **overrides: Any) -> dict[str, Any]:
    """A cheap -> mid -> frontier cascade on the emulator, no retry back-off."""
    base: dict[str, Any] = {
        "tiers": [{"name": "cheap", "model_id": CHEAP}, {"name": "mid", "model_id": MID},
                  {"name": "frontier", "model_id": FRONTIER}],
        "endpoint_url": endpoint_url,
        "retry": {"max_retries": 1, "backoff_s": 0},
    }
    for key, value in overrides.items():
        base[key] = copy.deepcopy(value)
    return base
