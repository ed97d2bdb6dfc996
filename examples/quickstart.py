"""Quickstart: a cheap -> mid -> frontier cascade with a JSON gate, offline.

Runs against the local Bedrock-wire emulator (scripted answers: the cheap tier
answers in prose, the mid tier with a wrong type, the frontier with valid JSON), so it
needs no AWS account. With credentials, drop the emulator and ``endpoint_url``.

    python examples/quickstart.py                    # telemetry in a temporary folder, removed after
    python examples/quickstart.py telemetry.jsonl    # telemetry kept in the file you name
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from langchain_core.output_parsers import JsonOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_tiered_router import TieredChatBedrock
from langchain_tiered_router.core.telemetry import flush_all
from langchain_tiered_router.testing import BedrockEmulator

CHEAP, MID, FRONTIER = ("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0",
                        "anthropic.claude-sonnet-4-5-20250929-v1:0")

SCRIPT = {"models": {
    CHEAP: {"rules": [{"match": "total 3 USD", "answer": '{"total": 3, "currency": "USD"}'},
                      {"match": "invoice", "answer": "The total is twelve fifty."}]},
    MID: {"rules": [{"match": "invoice", "answer": '{"total": "twelve fifty", "currency": "EUR"}'}]},
    FRONTIER: {"rules": [{"match": "invoice", "answer": '{"total": 12.5, "currency": "EUR"}'}]},
}}

ROUTER = {
    "tiers": [{"name": "cheap", "model_id": CHEAP}, {"name": "mid", "model_id": MID},
              {"name": "frontier", "model_id": FRONTIER}],
    "policy": {"kind": "cascade", "max_escalations": 2},
    "gates": [{"kind": "json_schema", "schema": {
        "type": "object", "required": ["total", "currency"],
        "properties": {"total": {"type": "number"}, "currency": {"type": "string"}}}}],
    "on_exhausted": "flag",
}


def main(telemetry_path: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="quickstart-") as tmp:
        path = Path(telemetry_path) if telemetry_path else Path(tmp) / "telemetry.jsonl"
        return _run(path, kept=telemetry_path is not None)


def _run(telemetry: Path, kept: bool) -> dict:
    config = {**ROUTER, "telemetry": {"sinks": [{"kind": "jsonl", "path": str(telemetry)}]}}
    with BedrockEmulator(SCRIPT) as emulator:
        # emulator.client() is a boto3 bedrock-runtime client on the emulator, with fake keys
        llm = TieredChatBedrock(config=config, client=emulator.client())
        prompt = ChatPromptTemplate.from_messages([("human", "Extract the invoice fields as JSON: {text}")])
        chain = prompt | llm
        message = chain.invoke({"text": "total 12.50 EUR"})
        routing = message.response_metadata["routing"]
        fields = JsonOutputParser().invoke(message)
        summary = {
            "answer": fields,
            "tier": routing["tier"],
            "attempts": [(a["tier"], a["gate_passed"], a["gate_reason"]) for a in routing["attempts"]],
            "cost_usd": routing["cost_usd"],
            "baseline_cost_usd": routing["baseline_cost_usd"],
        }
        easy = chain.invoke({"text": "total 3 USD"})  # the cheap tier gets this one right
        summary["easy_tier"] = easy.response_metadata["routing"]["tier"]
        summary["easy_cost_usd"] = easy.response_metadata["routing"]["cost_usd"]
        summary["easy_baseline_cost_usd"] = easy.response_metadata["routing"]["baseline_cost_usd"]
    flush_all()  # sinks write from their own thread: wait until both records are in the file
    rows = [json.loads(line) for line in telemetry.read_text().splitlines()]
    summary["telemetry"] = {"path": str(telemetry) if kept else None, "tiers": [r["tier"] for r in rows],
                            "cost_usd": [r["cost_usd"] for r in rows]}
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
