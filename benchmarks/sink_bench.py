"""Telemetry sink throughput: 8 threads writing records, end to end (write() to rows
committed), with the queue's memory bound, drops and the time a write() takes.

Producers offer a fixed rate (20,000 and 30,000 records/s in all, paced), then write flat
out (more than any router produces: the queue fills and drops are counted, never a
blocked write); durable sinks are measured flat out with 8 and 64 threads.

    python benchmarks/sink_bench.py [--records 160000] [--postgres DSN]

Rows per second from first write to the last row committed; ``write p99`` is the time
one ``write()`` call took (what a request pays). The baseline row is the floor measured
in the same run: the same store called directly by one thread, 500 rows a batch, no
queue and no other thread. Writes results to benchmarks/results/sink_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_tiered_router.core.build import build_router  # noqa: E402
from langchain_tiered_router.core.telemetry import MemorySink, Recorder  # noqa: E402
from langchain_tiered_router.core.telemetry.record import RoutingRecord  # noqa: E402
from langchain_tiered_router.core.telemetry.sqlite import SqliteSink, SqliteStore  # noqa: E402
from langchain_tiered_router.core.testing import ScriptedBackend  # noqa: E402
from langchain_tiered_router.core.types import RouteRequest  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
THREADS = 8


def sample_records(n: int) -> list[RoutingRecord]:
    """Real records from the engine (an escalation, two attempts), with distinct ids."""
    config = {"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                        {"name": "frontier", "model_id": "anthropic.claude-sonnet-4-5-20250929-v1:0"}],
              "gates": [{"kind": "regex", "pattern": "ok"}], "pinning": {"enabled": False},
              "telemetry": {"sinks": []}}
    memory = MemorySink()
    router = build_router(config, observers=[Recorder([memory])])
    router.route(RouteRequest(text="Extract the invoice total as JSON " * 5, session_id="s-1"),
                 ScriptedBackend({"cheap": "no", "frontier": "ok, the total is 12"}))
    base = memory.records[0].to_json_dict()
    out = []
    for i in range(n):
        data = dict(base)
        data["request_id"] = f"req-{i:08d}"
        data["ts"] = base["ts"] + i * 1e-4
        out.append(RoutingRecord.from_json_dict(data))
    return out


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_sink(sink, records: list[RoutingRecord], *, rate: float | None, threads: int = THREADS) -> dict:
    """``threads`` producers write ``records`` at ``rate`` records/s in all (None: as fast as
    they can); returns throughput, drops, write() latency and the RSS growth seen."""
    chunks = [records[i::threads] for i in range(threads)]
    write_times: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    per_thread = None if rate is None else rate / threads
    start_at = [0.0]

    def producer(k: int) -> None:
        times = write_times[k]
        barrier.wait()
        t0 = start_at[0]
        for j, record in enumerate(chunks[k]):
            if per_thread is not None:
                wait = t0 + j / per_thread - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            t = time.perf_counter()
            sink.write(record)
            times.append(time.perf_counter() - t)

    peak = [rss_mb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rss_before = peak[0]
    workers = [threading.Thread(target=producer, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    start_at[0] = time.perf_counter() + 0.05
    barrier.wait()
    start = start_at[0]
    for t in workers:
        t.join()
    produced = time.perf_counter() - start
    assert sink.flush(timeout=600)
    elapsed = time.perf_counter() - start
    stop.set()
    all_times = sorted(x for ts in write_times for x in ts)
    out = {"records": len(records), "threads": threads, "offered_per_s": round(len(records) / produced),
           "written": sink.written, "dropped": sink.dropped, "failed": sink.failed,
           "seconds": round(elapsed, 3), "rows_per_s": round(sink.written / elapsed),
           "write_p50_us": round(all_times[len(all_times) // 2] * 1e6, 1),
           "write_p99_us": round(all_times[int(len(all_times) * 0.99)] * 1e6, 1),
           "peak_rss_growth_mb": round(peak[0] - rss_before, 1)}
    sink.close()
    return out


def baseline(records: list[RoutingRecord], path: Path) -> dict:
    """The floor: the sink's own store, called directly by one thread, 500 rows a batch."""
    store = SqliteStore(path)
    start = time.perf_counter()
    for i in range(0, len(records), 500):
        store.insert(records[i:i + 500])
    elapsed = time.perf_counter() - start
    store.close()
    return {"records": len(records), "written": len(records), "seconds": round(elapsed, 3),
            "offered_per_s": "-", "rows_per_s": round(len(records) / elapsed)}


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--durable-records", type=int, default=40_000)
    parser.add_argument("--postgres", default=os.environ.get("TIERED_ROUTER_POSTGRES_DSN"))
    parser.add_argument("--out", type=Path, default=RESULTS / "sink_bench", help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    records = sample_records(args.records)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows["baseline: the store called directly, one thread, no queue"] = baseline(records, tmp / "base.db")
        for rate in (20_000, 30_000):
            rows[f"sqlite, 8 threads offering {rate:,}/s"] = run_sink(SqliteSink(tmp / f"r{rate}.db"), records,
                                                                       rate=rate)
        rows["sqlite, 8 threads writing flat out (queue 10,000: drops counted)"] = run_sink(
            SqliteSink(tmp / "flat.db"), records, rate=None)
        durable = records[: args.durable_records]
        for threads in (8, 64):
            rows[f"sqlite durable (journal, fsync, group commit), {threads} threads flat out"] = run_sink(
                SqliteSink(tmp / f"durable{threads}.db", durable=True), durable, rate=None, threads=threads)
        if args.postgres:
            from langchain_tiered_router.core.telemetry.postgres import PostgresSink

            rows["postgres, 8 threads offering 20,000/s"] = run_sink(PostgresSink(args.postgres),
                                                                     records[: args.records // 2], rate=20_000)
    base = rows["baseline: the store called directly, one thread, no queue"]["rows_per_s"]
    for row in rows.values():
        row["vs_baseline"] = round(row["rows_per_s"] / base, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| sink | records | offered/s | rows/s | vs baseline | dropped | failed | write() p50 / p99 µs "
             "| RSS growth MB |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['records']:,} | {_n(r.get('offered_per_s'))} | {r['rows_per_s']:,} "
                     f"| {r['vs_baseline']} | {r.get('dropped', 0):,} "
                     f"| {r.get('failed', 0)} | {r.get('write_p50_us', '-')} / {r.get('write_p99_us', '-')} "
                     f"| {r.get('peak_rss_growth_mb', '-')} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
