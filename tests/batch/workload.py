"""A 500-record workload whose answers, tokens and prices are known, so costs can be checked by hand.

Record ``i`` asks for ``i + i`` "with the number only"; the gate is ``^\\d+$``. The
cheap tier answers "about <n>" (fails the gate) when ``i % 4 == 0``, the mid tier
"I don't know" when ``i % 20 == 0``, the frontier always answers right. Every call
is recorded as 1,000 input and 100 output tokens.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

CHEAP = "amazon.nova-micro-v1:0"
MID = "amazon.nova-pro-v1:0"
FRONTIER = "anthropic.claude-sonnet-4-5-20250929-v1:0"
MODELS = {"cheap": CHEAP, "mid": MID, "frontier": FRONTIER}
IN_TOKENS, OUT_TOKENS = 1000, 100
ROLE = "arn:aws:iam::123456789012:role/bedrock-batch"

# USD per million tokens, typed from LiteLLM's cost map (model_prices_and_context_window_backup.json):
# input_cost_per_token(_batches) and output_cost_per_token(_batches) times 1e6.
BATCH_RATES = {"cheap": ("0.0175", "0.07"), "mid": ("0.4", "1.6"), "frontier": ("1.5", "7.5")}
ON_DEMAND_RATES = {"cheap": ("0.035", "0.14"), "mid": ("0.8", "3.2"), "frontier": ("3", "15")}


def call_cost(tier: str, mode: str = "batch", input_tokens: int = IN_TOKENS, output_tokens: int = OUT_TOKENS
              ) -> Decimal:
    rate_in, rate_out = (BATCH_RATES if mode == "batch" else ON_DEMAND_RATES)[tier]
    return (input_tokens * Decimal(rate_in) + output_tokens * Decimal(rate_out)) / Decimal(1_000_000)


def prompt(i: int) -> str:
    return f"Q{i:03d}: what is {i} plus {i}? Answer with the number only."


def answers(i: int) -> dict[str, str]:
    right = str(2 * i)
    return {"cheap": right if i % 4 else f"about {right}", "mid": right if i % 20 else "I don't know",
            "frontier": right}


def write_workload(folder: Path, n: int = 500) -> tuple[Path, Path]:
    """(records file, the emulator's replay file) for records 1..n."""
    records, replay = folder / "records.jsonl", folder / "replay.jsonl"
    with open(records, "w") as rec, open(replay, "w") as rep:
        for i in range(1, n + 1):
            rec.write(json.dumps({"id": f"doc-{i:03d}", "prompt": prompt(i)}) + "\n")
            outcomes = {t: {"response": a, "input_tokens": IN_TOKENS, "output_tokens": OUT_TOKENS}
                        for t, a in answers(i).items()}
            rep.write(json.dumps({"prompt": prompt(i), "outcomes": outcomes}) + "\n")
    return records, replay


def script(replay: Path) -> dict[str, Any]:
    return {"models": {model: {"replay": str(replay), "replay_key": tier, "default": "I don't know."}
                       for tier, model in MODELS.items()}}


def router_config(emulator_url: str, s3_url: str, folder: Path, **batch: Any) -> dict[str, Any]:
    return {
        "tiers": [{"name": t, "model_id": m} for t, m in MODELS.items()],
        "policy": {"kind": "cascade", "max_escalations": 2},
        "gates": [{"kind": "regex", "pattern": r"^\d+$"}],
        "on_exhausted": "flag",
        "retry": {"max_retries": 1},
        "pinning": {"enabled": False},
        "endpoint_url": emulator_url,
        "telemetry": {"sinks": [{"kind": "sqlite", "path": str(folder / "telemetry.db")},
                                {"kind": "jsonl", "path": str(folder / "telemetry.jsonl")}]},
        "batch": {"role_arn": ROLE, "min_records_per_job": 100, "max_records_per_job": 200,
                  "poll_interval_s": 0.02, "s3_endpoint_url": s3_url, **batch},
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
