"""10,000 routed requests under injected faults, with the requests really in flight.

    python benchmarks/load_faults.py [--requests 10000] [--concurrency 100] [--fault-rate 0.097] [--durable]

``TieredChatBedrock`` (80 % ``ainvoke``, 20 % ``astream``) at a concurrency limit of 100
against the Bedrock-wire emulator, which runs in a process of its own and injects a
fault into each call it receives with probability ``--fault-rate`` (seeded): HTTP 500, 503, throttling
(half with a ``Retry-After``), a reply slower than the tier's timeout, a malformed body,
a stream cut after its first events. A three-tier cascade with a JSON gate: easy
prompts pass on the cheap tier, medium ones on mid, hard ones only on the frontier.
Telemetry goes to SQLite; afterwards every request's row is looked for.

Writes benchmarks/results/load_faults.{json,md}. "in flight" is the most Bedrock
calls open at once, counted at the boto3 client (before-send to after-call).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing as mp
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results"
CHEAP, MID, FRONTIER = "amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"
GOOD = '{"total": 12}'
# Each model takes a while to answer, as real ones do, so requests stay in flight.
SCRIPT = {"models": {
    CHEAP: {"rules": [{"match": "easy", "answer": GOOD}], "default": "the total is twelve", "latency_s": 0.2},
    MID: {"rules": [{"match": "easy|medium", "answer": GOOD}], "default": "twelve, I think", "latency_s": 0.4},
    FRONTIER: {"default": GOOD, "latency_s": 0.6},
}}
FAULTS = ["server_error", "service_unavailable", "throttle", "throttle_retry_after", "slow", "malformed",
          "stream_cut"]


def emulator_process(conn, rate: float) -> None:
    """The emulator, in its own process (its own GIL): each call draws its fault at random."""
    os.environ["TIERED_ROUTER_SIGNALS"] = "0"
    from langchain_tiered_router.emulator import BedrockEmulator

    # independent draws: ``rate`` of the calls that can take every kind but a stream cut
    # (streams only) fail; a streamed call has one more draw
    each = 1 - (1 - rate) ** (1 / (len(FAULTS) - 1))
    with BedrockEmulator(SCRIPT) as emu:
        for kind in FAULTS:
            if kind == "throttle_retry_after":
                emu.inject("throttle", times=None, probability=each, retry_after=0.05)
            elif kind == "slow":
                emu.inject("slow", times=None, probability=each, seconds=3.0)  # past the tiers' 2 s timeout
            elif kind == "stream_cut":
                emu.inject("stream_cut", times=None, probability=each, after_events=1)  # before any text
            else:
                emu.inject(kind, times=None, probability=each)
        conn.send(emu.url)
        conn.recv()  # "stop"
        conn.send({"calls": len(emu.requests), "injected": emu.faults_taken})


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--fault-rate", type=float, default=0.097)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--durable", action="store_true", help="the SQLite sink with its write-ahead journal")
    parser.add_argument("--out", default=str(RESULTS / "load_faults"))
    args = parser.parse_args()
    # the emulator ignores credentials; botocore needs some to sign with
    os.environ.update({"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    emulator = ctx.Process(target=emulator_process, args=(child, args.fault_rate), daemon=True)
    emulator.start()
    while not parent.poll(0.5):
        if not emulator.is_alive():
            raise SystemExit("the emulator process died")
    url = parent.recv()

    from langchain_tiered_router import TieredChatBedrock
    from langchain_tiered_router.core.telemetry.recorder import flush_all

    tmp = Path(tempfile.mkdtemp(prefix="load-faults-"))
    db = tmp / "telemetry.db"
    config = {
        "tiers": [{"name": "cheap", "model_id": CHEAP}, {"name": "mid", "model_id": MID},
                  {"name": "frontier", "model_id": FRONTIER}],
        "gates": [{"kind": "json_schema", "schema": {"type": "object", "required": ["total"],
                                                     "properties": {"total": {"type": "number"}}}}],
        "endpoint_url": url,
        "retry": {"max_retries": 2, "backoff_s": 0.05, "max_backoff_s": 0.5},
        "transport": {"timeout_s": 2.0, "deadline_s": 20, "max_concurrency": args.concurrency},
        "pinning": {"enabled": False},
        "telemetry": {"sinks": [{"kind": "sqlite", "path": str(db), "durable": args.durable}]},
    }
    llm = TieredChatBedrock(config=config)
    in_flight = [0, 0]  # now, max
    lock = threading.Lock()

    def opened(**_: object) -> None:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])

    def closed(**_: object) -> None:
        with lock:
            in_flight[0] -= 1

    events = llm.client.meta.events
    events.register("before-send.bedrock-runtime", opened)
    events.register("after-call.bedrock-runtime", closed)
    events.register("after-call-error.bedrock-runtime", closed)

    rng = random.Random(args.seed)
    kinds = ["easy"] * 6 + ["medium"] * 3 + ["hard"]
    plan = [(i, rng.random() < 0.2, rng.choice(kinds)) for i in range(args.requests)]
    latencies: list[float] = []
    outcomes: collections.Counter[str] = collections.Counter()
    raised: collections.Counter[str] = collections.Counter()
    peak_rss = [rss_mb()]
    rss_start = peak_rss[0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.2):
            peak_rss[0] = max(peak_rss[0], rss_mb())

    threading.Thread(target=sample, daemon=True).start()

    async def one(i: int, stream: bool, kind: str, gate: asyncio.Semaphore) -> None:
        prompt = f"{kind} invoice {i}: extract the total as JSON"
        async with gate:
            started = time.perf_counter()
            try:
                if stream:
                    routing = None
                    async for chunk in llm.astream(prompt):
                        routing = chunk.response_metadata.get("routing") or routing
                else:
                    routing = (await llm.ainvoke(prompt)).response_metadata["routing"]
                outcomes["flagged" if routing["flagged"] else "served"] += 1
            except Exception as exc:  # noqa: BLE001 - counted: a request that raised
                raised[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - started)

    async def run() -> float:
        gate = asyncio.Semaphore(args.concurrency)
        started = time.perf_counter()
        await asyncio.gather(*(one(i, s, k, gate) for i, s, k in plan))
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    flushed = flush_all(timeout=120)
    sampling.set()
    rss_end = rss_mb()
    parent.send("stop")
    emu_stats = parent.recv()
    emulator.join(10)

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT record FROM routing_records").fetchall()
    records = [json.loads(r[0]) for r in rows]
    attempt_outcomes: collections.Counter[str] = collections.Counter()
    error_kinds: collections.Counter[str] = collections.Counter()
    retried: collections.Counter[str] = collections.Counter()
    for record in records:
        for attempt in record["attempts"]:
            attempt_outcomes[attempt["outcome"]] += 1
            if attempt["error_kind"]:
                error_kinds[attempt["error_kind"]] += 1
            for kind in attempt["retried_on"]:
                retried[kind] += 1
    latencies.sort()
    sink = llm.router.observers[0].sinks.sinks[0]
    result = {
        "requests": args.requests, "concurrency": args.concurrency, "ainvoke": sum(1 for _, s, _ in plan if not s),
        "astream": sum(1 for _, s, _ in plan if s),
        "served": outcomes["served"], "flagged": outcomes["flagged"], "raised": dict(raised),
        "rows_written": len(records), "rows_lost": args.requests - len(records), "flushed": flushed,
        "sink": {"written": sink.written, "dropped": sink.dropped, "failed": sink.failed},
        "seconds": round(elapsed, 2), "throughput_rps": round(args.requests / elapsed, 1),
        "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "max_in_flight_bedrock_calls": in_flight[1],
        "rss_mb": {"start": round(rss_start), "peak": round(peak_rss[0]), "end": round(rss_end)},
        "emulator": emu_stats,
        "fault_rate_of_calls": round(sum(emu_stats["injected"].values()) / max(1, emu_stats["calls"]), 4),
        "attempt_outcomes": dict(attempt_outcomes), "final_error_kinds": dict(error_kinds),
        "retried_kinds": dict(retried),
        "gate_failures": attempt_outcomes["gate_failed"],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(render(result))
    print(render(result))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


def render(r: dict) -> str:
    errors = ", ".join(f"{k} {v:,}" for k, v in sorted(r["final_error_kinds"].items())) or "none"
    retried = ", ".join(f"{k} {v:,}" for k, v in sorted(r["retried_kinds"].items())) or "none"
    raised = ", ".join(f"{k} {v}" for k, v in sorted(r["raised"].items())) or "0"
    lines = [
        "| requests | served | flagged | raised | errors by type (attempts that ended in one) | rows written "
        "| rows lost | throughput | p50 / p99 | most Bedrock calls in flight | RSS start / peak / end |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['requests']:,} ({r['ainvoke']:,} ainvoke, {r['astream']:,} astream; concurrency {r['concurrency']}) "
        f"| {r['served']:,} | {r['flagged']:,} | {raised} | {errors} | {r['rows_written']:,} | {r['rows_lost']:,} "
        f"| {r['throughput_rps']} req/s | {r['latency_p50_ms']:,} / {r['latency_p99_ms']:,} ms "
        f"| {r['max_in_flight_bedrock_calls']} | {r['rss_mb']['start']} / {r['rss_mb']['peak']} / "
        f"{r['rss_mb']['end']} MB |",
        "",
        f"Faults injected: {sum(r['emulator']['injected'].values()):,} into {r['emulator']['calls']:,} Bedrock calls "
        f"({r['fault_rate_of_calls'] * 100:.1f} %): "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(r["emulator"]["injected"].items())) + ".",
        f"Retried on the same tier, by kind: {retried}. Gate failures (answers a gate failed, escalated or not): "
        f"{r['gate_failures']:,}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--render"]:  # the table again from a results JSON
        print(render(json.loads(Path(sys.argv[2]).read_text())))
    else:
        main()
