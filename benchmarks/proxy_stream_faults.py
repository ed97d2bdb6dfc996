"""Streamed requests through a real LiteLLM proxy while the tiers fail: what gets recorded and logged.

    python benchmarks/proxy_stream_faults.py [--requests 400] [--one-pass | --provider]

A proxy with the hook serves ``tiered`` (a JSON cascade) and ``tiered-fast`` (a keyword
classifier, no gate) on the emulator; each tier call is throttled, fails, is cut, is
malformed or stalls with a probability of 0.06 each, and a tenth of the clients leave
after their first line. Counts, per routed request: the router's records (one each),
the LiteLLM events that carry the record, and whether each served request was logged
once at its routed cost. Writes benchmarks/results/proxy_stream_faults_<path>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# proxies as users start them, each a process of its own (the tests fork them from one
# that has imported LiteLLM, which would make the first start pay for every later one)
os.environ.setdefault("TIERED_TESTS_PROXY_FORK", "0")

FAULTS = (("throttle", {}), ("server_error", {}), ("stream_cut", {"after_events": 2}), ("malformed", {}),
          ("stream_stall", {"after_events": 2, "seconds": 0.3}))
PROMPTS = ("stream the invoice total", "an impossible invoice", "refactor this", "say hello", "a hard invoice")


async def _load(url: str, n: int, seed: int) -> Counter:
    import httpx

    rng = random.Random(seed)
    outcomes: Counter = Counter()

    async def one(client: httpx.AsyncClient, gate: asyncio.Semaphore, i: int) -> None:
        body = {"model": rng.choice(["tiered", "tiered-fast"]), "stream": True,
                "messages": [{"role": "user", "content": f"{rng.choice(PROMPTS)} {i}"}]}
        if rng.random() < 0.5:
            body["stream_options"] = {"include_usage": True}
        leave = rng.random() < 0.1
        async with gate:
            try:
                async with client.stream("POST", "/chat/completions", json=body,
                                         headers={"x-session-id": f"faults-{i}"}) as response:
                    if response.status_code != 200:
                        await response.aread()
                        outcomes["error status"] += 1
                        return
                    async for _ in response.aiter_lines():
                        if leave:
                            outcomes["client left"] += 1
                            return
                outcomes["read to the end"] += 1
            except Exception:  # noqa: BLE001 - a broken stream: counted
                outcomes["broken"] += 1

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer sk-ops"}, timeout=60) as client:
        gate = asyncio.Semaphore(20)
        await asyncio.gather(*(one(client, gate, i) for i in range(n)))
    return outcomes


def run(n: int, one_pass: bool, seed: int = 7) -> dict[str, Any]:
    from langchain_tiered_router.emulator import BedrockEmulator
    from tests.litellm._proc import litellm_proxy
    from tests.litellm.conftest import SCRIPT, complete_jsonl, stream_faults_proxy

    with tempfile.TemporaryDirectory() as tmp, BedrockEmulator(SCRIPT) as emulator:
        work = Path(tmp)
        jsonl, payloads = work / "records.jsonl", work / "payloads.jsonl"
        config = stream_faults_proxy(emulator.url, work, one_pass=one_pass)
        for kind, params in FAULTS:
            emulator.inject(kind, times=None, probability=0.06, **params)
        with litellm_proxy(config, work, env={"TIERED_TEST_PAYLOADS": str(payloads),
                                              "PYTHONPATH": str(REPO)}) as proxy:
            t0 = time.perf_counter()
            outcomes = asyncio.run(_load(proxy["url"], n, seed))
            took = time.perf_counter() - t0
            time.sleep(5)  # the last records and events
            rows = complete_jsonl(jsonl)
            events = complete_jsonl(payloads)
    logged: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        record = (event.get("spend_logs_metadata") or {}).get("tiered_router") or {}
        if record.get("request_id"):
            logged.setdefault(record["request_id"], []).append(event)
    served = [r for r in rows if r["tier"] is not None]
    unserved = [r for r in rows if r["tier"] is None]

    def once_at_cost(row: dict[str, Any]) -> bool:
        found = logged.get(row["request_id"], [])
        return len(found) == 1 and Decimal(str(found[0]["response_cost"])) == \
            Decimal(row["cost_usd"]).quantize(Decimal(str(found[0]["response_cost"])))

    return {"path": "one-pass" if one_pass else "provider", "requests": n, "seconds": round(took, 1),
            "clients": dict(outcomes), "records": len(rows),
            "records_distinct_sessions": len({r["session_id"] for r in rows}),
            "served": len(served), "served_logged_once_at_routed_cost": sum(map(once_at_cost, served)),
            "unserved": len(unserved),
            "unserved_without_a_logged_record": sum(1 for r in unserved if r["request_id"] not in logged),
            "unserved_logged_more_than_once": sum(1 for r in unserved if len(logged.get(r["request_id"], [])) > 1),
            "faults_per_tier_call": {kind: 0.06 for kind, _ in FAULTS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    path = parser.add_mutually_exclusive_group()
    path.add_argument("--provider", action="store_true", help="the provider's path (one-pass switched off)")
    path.add_argument("--one-pass", action="store_true", help="one-pass routing (the default)")
    args = parser.parse_args()
    result = run(args.requests, one_pass=not args.provider)
    out = HERE / "results" / f"proxy_stream_faults_{result['path']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
