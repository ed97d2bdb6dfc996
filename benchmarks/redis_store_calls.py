"""What asking a healthy Redis from a worker thread would cost an async request.

    python benchmarks/redis_store_calls.py [--rounds 5] [--requests 500]

Starts a real ``redis-server`` on loopback, builds a router whose session pins and
circuit breaker live there, and routes batches of concurrent ``aroute`` requests (a
scripted backend answers at once, so what is timed is the router and its Redis calls).
Each request asks Redis four times: its session's pin, the tier's circuit, the call's
record, the pin again. Two ways, interleaved round by round:

* inline: the engine's default for a healthy store, on the event loop's thread;
* worker thread: every call handed to the store pool (``core.store_calls``), as the
  engine does only while a store is failing.

Prints wall time and CPU (the process's, every thread) per request, medians over the
rounds, and writes ``benchmarks/results/redis_store_calls.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "redis_store_calls")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not on PATH (apt-get install redis-server)")

    from langchain_tiered_router.core import engine
    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import RouteRequest
    from tests.litellm._proc import redis_server

    inline = engine.may_stall
    results: dict[str, list[tuple[float, float]]] = {"inline": [], "worker thread": []}
    with redis_server(Path(tempfile.mkdtemp())) as url:
        router = build_router({"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                                         {"name": "frontier", "model_id": "anthropic.claude-sonnet-4-5-20250929-v1:0"}],
                               "pinning": {"backend": "redis", "redis_url": url},
                               "circuit": {"backend": "redis", "redis_url": url}}, telemetry=False)
        backend = ScriptedBackend({"*": "ok"})

        async def batch(n: int) -> None:
            await asyncio.gather(*(router.aroute(RouteRequest("q", session_id=f"s{i % 50}"), backend)
                                   for i in range(n)))

        async def run() -> None:
            for way in results:  # warm both
                engine.may_stall = inline if way == "inline" else (lambda store: True)  # type: ignore[assignment]
                await batch(200)
            for _ in range(args.rounds):
                for way, timings in results.items():
                    engine.may_stall = inline if way == "inline" else (lambda store: True)  # type: ignore[assignment]
                    wall, cpu = time.perf_counter(), time.process_time()
                    await batch(args.requests)
                    timings.append(((time.perf_counter() - wall) / args.requests * 1e6,
                                    (time.process_time() - cpu) / args.requests * 1e6))
            engine.may_stall = inline

        asyncio.run(run())
    out = {way: {"wall_us_per_request": round(statistics.median(w for w, _ in t)),
                 "cpu_us_per_request": round(statistics.median(c for _, c in t)),
                 "rounds": len(t), "requests_per_round": args.requests} for way, t in results.items()}
    lines = ["| Redis asked | wall per request | CPU per request (all threads) |", "|---|---|---|"]
    lines += [f"| {way} | {v['wall_us_per_request']} µs | {v['cpu_us_per_request']} µs |" for way, v in out.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
