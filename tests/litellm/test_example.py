"""The shipped example, unmodified: ``examples/litellm_config.yaml`` + ``examples/router.yaml``,
its Bedrock calls sent to the emulator through LiteLLM's AWS_BEDROCK_RUNTIME_ENDPOINT."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

from ._proc import REPO, litellm_proxy
from .conftest import CHEAP, FRONTIER, MID

pytestmark = pytest.mark.proxy

MASTER_KEY = "sk-" + "9a1e" * 8


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, emulator) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("example")  # the proxy's working directory: tiered_router.db lands here
    env = {"AWS_BEDROCK_RUNTIME_ENDPOINT": emulator.url, "LITELLM_MASTER_KEY": MASTER_KEY}
    with litellm_proxy(REPO / "examples" / "litellm_config.yaml", work, env=env) as proxy:
        print(f"\nexample proxy started in {proxy['start_s']:.1f}s")
        yield {**proxy, "db": work / "tiered_router.db"}


def _ask(example, text: str):
    client = openai.OpenAI(base_url=example["url"], api_key=MASTER_KEY, max_retries=0, timeout=60)
    raw = client.chat.completions.with_raw_response.create(
        model="tiered", messages=[{"role": "user", "content": text}])
    return raw.parse(), raw.headers


def _db_row(db: Path, request_id: str) -> sqlite3.Row:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if db.exists():
            with sqlite3.connect(db) as conn:
                conn.row_factory = sqlite3.Row
                try:
                    row = conn.execute("SELECT * FROM routing_records WHERE request_id = ?", (request_id,)).fetchone()
                except sqlite3.OperationalError:
                    row = None
            if row is not None:
                return row
        time.sleep(0.1)
    raise AssertionError(f"no row for {request_id} in {db}")


@pytest.mark.parametrize("text, tier, called", [
    ("hello there", "cheap", [CHEAP]),                       # cheap answers, confidently
    ("what is the capital of Peru?", "mid", [CHEAP, MID]),   # cheap says "I don't know": escalate
    ("prove that 2 is prime", "frontier", [FRONTIER]),       # the classifier starts at frontier
])
def test_example_routes(example, emulator, text, tier, called):
    emulator.clear_requests()
    response, headers = _ask(example, text)
    assert headers["x-tiered-router-tier"] == tier
    assert [r.model_id for r in emulator.requests] == called
    row = _db_row(example["db"], headers["x-tiered-router-request-id"])
    assert row["tier"] == tier and row["integration"] == "litellm" and row["baseline_tier"] == "frontier"
