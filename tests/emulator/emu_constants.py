"""Model ids and the script shared by the emulator tests (imported by name: no package)."""

from __future__ import annotations

from typing import Any

CHEAP = "amazon.nova-micro-v1:0"
STRONG = "amazon.nova-pro-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
LLAMA = "meta.llama3-8b-instruct-v1:0"
ROUTER_ARN = "arn:aws:bedrock:us-east-1:123456789012:prompt-router/abc123"

SCRIPT: dict[str, Any] = {
    "models": {
        CHEAP: {
            "rules": [
                {"match": "invoice", "answer": '{"total": "twelve"}'},
                {"match": "weather", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
            ],
            "default": "I am the cheap model.",
        },
        STRONG: {"default": "I am the strong model, and I think about every word you wrote."},
        HAIKU: {"default": "Hello from Claude on the emulator."},
        # Anchored: matches only if the user's words were taken out of the Llama template.
        LLAMA: {"rules": [{"match": "^my invoice$", "answer": "Llama read the invoice."}]},
    },
    "default_answer": "OK",
    "prompt_routers": {ROUTER_ARN: {"models": [CHEAP, STRONG], "threshold_chars": 40}},
}
