"""Streamed requests through a real proxy while the tiers fail, on both paths: every
request writes its one record, and LiteLLM logs each served one once, at its routed cost,
on the caller. A proxy of its own: the faults trip circuit breakers that other tests'
routers must not inherit."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from decimal import Decimal
from typing import Any, Iterator

import httpx
import pytest

from ._proc import litellm_proxy
from .conftest import complete_jsonl, stream_faults_proxy

pytestmark = pytest.mark.proxy

FAULTS = (("throttle", {}), ("server_error", {}), ("stream_cut", {"after_events": 2}), ("malformed", {}),
          ("stream_stall", {"after_events": 2, "seconds": 0.2}))
PROMPTS = ("stream the invoice total", "an impossible invoice", "refactor this", "say hello", "a hard invoice")


@pytest.fixture(scope="module", params=["provider", "one_pass"])
def proxy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, emulator) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("faults")
    config = stream_faults_proxy(emulator.url, work, one_pass=request.param == "one_pass")
    with litellm_proxy(config, work, env={"TIERED_TEST_PAYLOADS": str(work / "payloads.jsonl")}) as running:
        yield {**running, "jsonl": work / "records.jsonl", "payloads": work / "payloads.jsonl",
               "mode": request.param}


def _same_money(logged: Any, exact: str) -> bool:
    return Decimal(str(logged)) == Decimal(exact).quantize(Decimal(str(logged)))


def test_streams_under_injected_faults_each_write_one_record_and_bill_served_ones_once(proxy, emulator):
    """120 streamed requests, 20 at a time, each tier call throttled, failing, cut,
    malformed or stalled with probability 0.05 each, a tenth of the clients leaving after
    their first line."""
    rng = random.Random(11)
    run = uuid.uuid4().hex[:8]  # sessions of this run only: a rerun after a proxy crash reads no row of the first
    plan = [(f"faults-{proxy['mode']}-{run}-{i}", rng.choice(["tiered", "tiered-fast"]), rng.choice(PROMPTS),
             rng.random() < 0.5, rng.random() < 0.1) for i in range(120)]

    seen: dict[str, str] = {}  # per session: what its client met, for a failure's message

    async def one(client: httpx.AsyncClient, gate: asyncio.Semaphore, session: str, model: str, text: str,
                  usage: bool, leave: bool) -> None:
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": text}],
                **({"stream_options": {"include_usage": True}} if usage else {})}
        try:
            async with gate, client.stream("POST", "/chat/completions", json=body,
                                           headers={"x-session-id": session}) as response:
                seen[session] = f"{model} {response.status_code}"
                async for line in response.aiter_lines():
                    seen[session] += f" | {line[:160]}" if line.startswith("data: {\"error") else ""
                    if leave:
                        return
        except Exception as exc:  # noqa: BLE001 - reported if its record is missing
            seen[session] = f"{seen.get(session, model)} raised {exc!r}"
            raise

    async def run() -> None:
        async with httpx.AsyncClient(base_url=proxy["url"], headers={"Authorization": "Bearer sk-ops"},
                                     timeout=60) as client:
            gate = asyncio.Semaphore(20)
            await asyncio.gather(*(one(client, gate, *p) for p in plan), return_exceptions=True)

    for kind, params in FAULTS:
        emulator.inject(kind, times=None, probability=0.05, **params)
    try:
        asyncio.run(run())
    finally:
        emulator.clear_faults()
    sessions = {p[0] for p in plan}
    deadline = time.monotonic() + 30
    while True:
        rows = [r for r in complete_jsonl(proxy["jsonl"]) if r["session_id"] in sessions]
        if len(rows) >= len(plan) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    missing = {s: seen.get(s, "never sent") for s in sessions - {r["session_id"] for r in rows}}
    assert not missing, f"no record for {missing}"
    assert sorted(r["session_id"] for r in rows) == sorted(sessions)  # one record each, none twice
    time.sleep(1)
    events: dict[str, list[dict[str, Any]]] = {}
    for payload in complete_jsonl(proxy["payloads"]):
        record = (payload.get("spend_logs_metadata") or {}).get("tiered_router") or {}
        if record.get("session_id") in sessions:
            events.setdefault(record["request_id"], []).append(payload)
    served = [r for r in rows if r["tier"] is not None]
    assert len(served) > len(plan) / 2
    for row in served:
        (payload,) = events[row["request_id"]]
        assert payload["key_alias"] == "ops-key" and _same_money(payload["response_cost"], row["cost_usd"])
