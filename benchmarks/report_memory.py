"""What ``tiered-router report`` holds in memory per record: whole records against the
slim ones it keeps (``analysis.report.slim``), on the same store, measured with ``tracemalloc``.

    python benchmarks/report_memory.py [--requests 20000]

Routes the requests through a three-tier cascade (a third escalated, sessions set) into a
SQLite sink, reads the file back both ways and checks that the report's numbers agree.
Writes results to benchmarks/results/report_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_tiered_router.analysis.report import summarize  # noqa: E402
from langchain_tiered_router.analysis.report.store import read_store  # noqa: E402
from langchain_tiered_router.core.build import build_router  # noqa: E402
from langchain_tiered_router.core.telemetry import flush_all  # noqa: E402
from langchain_tiered_router.core.telemetry.writer import waiting_for_room  # noqa: E402
from langchain_tiered_router.core.testing import ScriptedBackend  # noqa: E402
from langchain_tiered_router.core.types import RouteRequest  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LADDER = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"}, {"name": "mid", "model_id": "amazon.nova-pro-v1:0"},
          {"name": "frontier", "model_id": "anthropic.claude-sonnet-4-5-20250929-v1:0"}]


def held(db: Path, slim: bool) -> tuple[list, float]:
    tracemalloc.start()
    try:
        contents = read_store(db, slim=slim)
        return contents.records, tracemalloc.get_traced_memory()[0] / max(1, len(contents.records))
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "report_memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "t.db"
        router = build_router({"tiers": LADDER, "gates": [{"kind": "regex", "pattern": "^ok"}],
                               "telemetry": {"sinks": [{"kind": "sqlite", "path": str(db)}]}})
        backend = ScriptedBackend({"cheap": lambda r: "ok" if int(r.text.split()[-1]) % 3 else "no", "*": "ok fine"})
        with waiting_for_room():  # every record lands: none dropped by a full queue
            for i in range(args.requests):
                router.route(RouteRequest(text=f"question number {i}", session_id=f"s{i % 50}"), backend)
        flush_all()
        full, full_bytes = held(db, slim=False)
        slim, slim_bytes = held(db, slim=True)
        same = summarize(full).to_dict() == summarize(slim).to_dict()
    result = {"records": len(full), "whole_bytes_per_record": round(full_bytes), "slim_bytes_per_record":
              round(slim_bytes), "ratio": round(slim_bytes / full_bytes, 3), "same_numbers": same}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = ("| records read | whole records, bytes each | slim (the report's), bytes each | ratio | same numbers |\n"
          "|---|---|---|---|---|\n"
          f"| {len(full):,} | {full_bytes:,.0f} | {slim_bytes:,.0f} | {slim_bytes / full_bytes:.3f} | {same} |\n")
    args.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
