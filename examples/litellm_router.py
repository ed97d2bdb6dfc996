"""The same cascade around a plain ``litellm.Router``, offline (no proxy, no AWS account).

Needs only the ``litellm`` extra: ``pip install 'langchain-tiered-router[litellm]'``.
Each tier is a ``litellm.Router`` model group whose Bedrock calls go to the local
Bedrock-wire emulator; with credentials, drop the emulator and the endpoint.

    python examples/litellm_router.py
"""

from __future__ import annotations

import asyncio
import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM reads it at import: never fetch its cost map

import litellm  # noqa: E402

from langchain_tiered_router.testing import BedrockEmulator  # noqa: E402
from litellm_hooks import TieredLiteLLMRouter  # noqa: E402

CHEAP, MID, FRONTIER = ("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0",
                        "anthropic.claude-sonnet-4-5-20250929-v1:0")
SCRIPT = {"models": {
    CHEAP: {"rules": [{"match": "invoice", "answer": "The total is twelve fifty."}], "default": "hi from cheap"},
    MID: {"rules": [{"match": "invoice", "answer": '{"total": 12.5, "currency": "EUR"}'}]},
    FRONTIER: {"default": "frontier answer"},
}}
ROUTER = {
    "tiers": [{"name": "cheap", "model_id": CHEAP}, {"name": "mid", "model_id": MID},
              {"name": "frontier", "model_id": FRONTIER}],
    "gates": [{"kind": "json_schema", "schema": {"type": "object", "required": ["total"]}}],
    "telemetry": {"sinks": [{"kind": "jsonl", "path": "litellm_router_telemetry.jsonl"}]},
}


async def main() -> dict:
    with BedrockEmulator(SCRIPT) as emulator:
        deployments = [{"model_name": tier["name"], "litellm_params": {
            "model": f"bedrock/converse/{tier['model_id']}", "aws_region_name": "us-east-1",
            "aws_bedrock_runtime_endpoint": emulator.url,
            "aws_access_key_id": "emulator", "aws_secret_access_key": "emulator"}} for tier in ROUTER["tiers"]]
        router = TieredLiteLLMRouter(litellm.Router(model_list=deployments, num_retries=0), ROUTER)
        response = await router.acompletion([{"role": "user", "content": "Extract the invoice total as JSON"}])
        routing = response.tiered_router
        summary = {"answer": json.loads(response.choices[0].message.content), "tier": routing["tier"],
                   "attempts": [(a["tier"], a["outcome"]) for a in routing["attempts"]],
                   "cost_usd": routing["cost_usd"], "baseline_cost_usd": routing["baseline_cost_usd"]}
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    asyncio.run(main())
