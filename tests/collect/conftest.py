"""Recorded GSM8K answers served over the Bedrock wire, for the collect / estimate /
calibrate-from-shadows tests and the README walk-through.

The walk-through's router (examples/walkthrough/router.yaml) names Mixtral 8x7B and
Claude Sonnet 4.5; offline, the emulator answers with what RouteLLM recorded for
Mixtral 8x7B and, standing in for the frontier, GPT-4 Turbo on the same questions.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from langchain_tiered_router.emulator import BedrockEmulator
from tests._sockets import allow_sockets_in

REPO = Path(__file__).resolve().parents[2]
WALKTHROUGH = REPO / "examples" / "walkthrough" / "router.yaml"
CHEAP_ID = "mistral.mixtral-8x7b-instruct-v0:1"
FRONTIER_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
MIXTRAL, GPT4 = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
JUDGE_MATCH = "Reply with one line: SCORE"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The emulator listens on 127.0.0.1: let these tests open sockets under pytest-socket."""
    allow_sockets_in(__file__, config, items)


@dataclass(frozen=True)
class Row:
    """One GSM8K question: the gold answer and both models' recorded answers and grades."""

    n: int
    prompt: str
    gold: str
    cheap: str
    frontier: str
    cheap_correct: bool
    frontier_correct: bool


@pytest.fixture(scope="session")
def gsm8k(shared_data: Path) -> list[Row]:
    folder = shared_data / "routellm" / "gsm8k"
    gold = {}
    for line in (folder / "test.jsonl").read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        gold[raw["question"]] = raw["answer"].rsplit("####", 1)[-1].strip().replace(",", "")
    skip = {json.loads(line)["eval_prompt"] for line in
            (folder / "contaminated_prompts.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()}
    csv.field_size_limit(10_000_000)
    rows = []
    with open(folder / "gsm8k_responses.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["prompt"] in skip:
                continue
            rows.append(Row(len(rows), r["prompt"], gold[r["prompt"]], r[f"{MIXTRAL}_response"],
                            r[f"{GPT4}_response"], r[MIXTRAL] == "True", r[GPT4] == "True"))
    return rows


def write_prompts(rows: list[Row], path: Path, *, gold: bool = True) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            line: dict[str, Any] = {"id": f"gsm8k-{row.n}", "prompt": row.prompt}
            if gold:
                line["gold"] = row.gold
            fh.write(json.dumps(line) + "\n")
    return path


def write_script(rows: list[Row], folder: Path, *, judge_answer: str = "SCORE: 8") -> Path:
    """An emulator script: each model replays its recorded answers; the frontier model
    also answers judge prompts (with ``judge_answer``)."""
    replay = folder / "recorded.jsonl"
    with open(replay, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({"prompt": row.prompt, "outcomes": {"cheap": {"response": row.cheap},
                                                                    "frontier": {"response": row.frontier}}}) + "\n")
    script = {"models": {
        CHEAP_ID: {"replay": replay.name, "replay_key": "cheap", "default": "I don't know."},
        FRONTIER_ID: {"replay": replay.name, "replay_key": "frontier", "default": "I don't know.",
                      "rules": [{"match": JUDGE_MATCH, "answer": judge_answer}]}}}
    path = folder / "emulator.yaml"
    path.write_text(yaml.safe_dump(script), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def emulator(gsm8k: list[Row], tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedrockEmulator]:
    """One emulator per module, replaying the first 400 questions."""
    folder = tmp_path_factory.mktemp("emulator")
    with BedrockEmulator(write_script(gsm8k[:400], folder)) as emu:
        yield emu
