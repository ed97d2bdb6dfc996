"""Every code block of README.md a reader might copy runs as written.

Convention: each ```python and ```json block is preceded by a marker line
``<!-- readme-test: NAME -->`` naming the check below that runs it (a block without one
fails this test, so a new snippet cannot go untested). Python blocks run as they are, in
a fresh interpreter whose working directory looks like a clone of the repository
(``examples/`` is there); Bedrock is the local emulator, reached the way a user would
redirect any boto3 client: botocore's ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``, with fake
keys. YAML blocks must parse, and the router config shown must load.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from langchain_tiered_router.analysis.collect.prompts import read_prompts
from langchain_tiered_router.analysis.eval.data import load_outcomes
from langchain_tiered_router.core.config import RouterConfig
from langchain_tiered_router.testing import BedrockEmulator

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")

_BLOCK = re.compile(r"(?:<!-- readme-test: (?P<name>[\w-]+) -->\n)?^```(?P<lang>\w+)\n(?P<code>.*?)^```",
                    re.S | re.M)


def blocks(lang: str) -> list[tuple[str | None, str]]:
    return [(m["name"], m["code"]) for m in _BLOCK.finditer(README) if m["lang"] == lang]


INVOICE = {"total": 12.5, "currency": "EUR"}
CHEAP, MID, FRONTIER = ("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0",
                        "anthropic.claude-sonnet-4-5-20250929-v1:0")
# the cheap tier answers the invoice in prose (the gate escalates), the mid tier in JSON
SCRIPT = {"models": {
    CHEAP: {"rules": [{"match": "Invoice 17", "answer": "The total is 12.50 EUR."}]},
    MID: {"rules": [{"match": "Invoice 17", "answer": json.dumps(INVOICE)}]},
    FRONTIER: {"rules": [{"match": "Invoice 17", "answer": json.dumps(INVOICE)}]},
    "mistral.mixtral-8x7b-instruct-v0:1": {"rules": [{"match": "robe", "answer": "2 + 1 = 3. Answer: 3"}]},
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0": {"rules": [{"match": "robe", "answer": "Answer: 3"}]},
}}


@pytest.fixture(scope="module")
def emulator():
    with BedrockEmulator(SCRIPT) as emu:
        yield emu


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A working directory like the root of a clone: the examples are where the README says."""
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    return tmp_path


def run_block(code: str, cwd: Path, emulator) -> tuple[dict, str]:
    """Run one block as a script; return its JSON-able top-level names and its stdout."""
    script = cwd / "block.py"
    script.write_text(code + "\n\nimport json as _j\nprint('\\nREADME-NAMES ' + _j.dumps({k: v for k, v in list("
                      "globals().items()) if not k.startswith('_') and isinstance(v, (dict, list, str, int, float))}))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": emulator.url,
           "AWS_ENDPOINT_URL_BEDROCK": emulator.url}
    done = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out, _, names = done.stdout.rpartition("\nREADME-NAMES ")
    return json.loads(names), out


def _records(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT record FROM routing_records")]


def check_invoice(names: dict, stdout: str, cwd: Path) -> None:
    routing = names["routing"]
    assert names["fields"] == INVOICE
    assert routing["tier"] == "mid" and routing["escalated"] is True and not routing["flagged"]
    assert [a["tier"] for a in routing["attempts"]] == ["cheap", "mid"]
    assert float(routing["cost_usd"]) < float(routing["baseline_cost_usd"])
    assert [r["request_id"] for r in _records(cwd / "tiered_router.db")] == [routing["request_id"]]


def check_fallbacks(names: dict, stdout: str, cwd: Path) -> None:
    assert names["fields"] == names["same"] == INVOICE  # the cheap tier's prose failed; the mid tier's JSON passed
    # one record, the handler's (the model's own telemetry is off, the fallback chain has none)
    [record] = _records(cwd / "tiered_router.db")
    assert record["tier"] == "mid" and record["escalated"] is True


def check_batch(names: dict, stdout: str, cwd: Path) -> None:
    results = [json.loads(line) for line in (cwd / "results.jsonl").read_text().splitlines()]
    assert len(results) == 3 and "3 records, finished" in stdout
    # fewer than Bedrock's 100-record job minimum: the records go on-demand, as the README says
    assert "records sent on-demand (below the job minimum): cheap 3" in stdout


def check_walkthrough_route(names: dict, stdout: str, cwd: Path) -> None:
    assert names["routing"]["tier"] == "cheap" and names["routing"]["model_id"].startswith("mistral.")


PYTHON_CHECKS = {"invoice": check_invoice, "fallbacks": check_fallbacks, "batch": check_batch,
                 "walkthrough-route": check_walkthrough_route}


def prepare_batch(cwd: Path) -> None:
    # the input file the README describes: one JSON object per line with a prompt and an id
    rows = [{"id": f"inv-{i}", "prompt": f"Extract the invoice fields as JSON: Invoice 17/{i}: total 12.50 EUR"}
            for i in range(3)]
    (cwd / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


PREPARE = {"batch": prepare_batch}


def test_every_code_block_is_marked_and_checked():
    python, jsonl = blocks("python"), blocks("json")
    assert [name for name, _ in python] == list(PYTHON_CHECKS)  # in README order
    assert [name for name, _ in jsonl] == list(JSON_CHECKS)


@pytest.mark.parametrize("name", list(PYTHON_CHECKS))
def test_python_block_runs_as_written(name, clone, emulator):
    code = dict(blocks("python"))[name]
    PREPARE.get(name, lambda cwd: None)(clone)
    names, stdout = run_block(code, clone, emulator)
    PYTHON_CHECKS[name](names, stdout, clone)


def check_prompts(path: Path) -> None:
    items = read_prompts(path)
    assert [i.id for i in items] == ["q-17", "c-3"] and items[0].gold == "3"


def check_outcomes(path: Path) -> None:
    items = load_outcomes(path, ["cheap", "frontier"])
    assert len(items) == 1 and items[0].outcomes["cheap"].score == 1.0
    assert items[0].outcomes["frontier"].output_tokens == 95


JSON_CHECKS = {"prompts-jsonl": check_prompts, "outcomes-jsonl": check_outcomes}


@pytest.mark.parametrize("name", list(JSON_CHECKS))
def test_json_block_loads_as_shown(name, tmp_path):
    text = dict(blocks("json"))[name]
    for line in text.splitlines():  # every line one JSON object, as the files are
        assert isinstance(json.loads(line), dict)
    path = tmp_path / f"{name}.jsonl"
    path.write_text(text)
    JSON_CHECKS[name](path)


def test_yaml_blocks_parse_and_the_router_config_loads():
    docs = [yaml.safe_load(code) for _, code in blocks("yaml")]
    assert all(isinstance(d, dict) for d in docs)
    routers = [d for d in docs if "tiers" in d]
    assert routers and all(RouterConfig.from_dict(d).tier_names for d in routers)
