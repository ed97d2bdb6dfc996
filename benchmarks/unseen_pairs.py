"""``tiered-router eval --policy auto`` on model pairs that are none of the repo's ladders.

    python benchmarks/unseen_pairs.py [--seeds 1 2 3] [--data ../shared/data]

The promise is about tasks and model pairs a user brings, so this runs the CLI as a user
would on ten two-tier ladders built from ZeroEval's MATH recordings (13 models; the five
ladders in its folder are left out): each pair at the list prices of its models' ladder
files, the 721 problems shuffled with each seed and cut in halves, calibrated on one
(``--calibrate-on``) and measured on the other (``--data``), target parity 0.95.
Reported per run: the strategy ``auto`` kept, held-out savings and parity, the random mix
at the router's parity, the oracle and the share of the gap recovered; and how often test
parity fell below target - 0.01 or savings below zero. Writes
``benchmarks/results/unseen_pairs.{json,md}``. About 20 s per run on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TARGET = 0.95
# Across families, cheap or dear, one cheaper model that is better than its top; none is a
# ladder of the data set's own router files.
PAIRS = [("gemini-1.5-flash", "gpt-4o-2024-08-06"), ("gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20240620"),
         ("Qwen2.5-7B-Instruct", "Llama-3.1-405B-Inst@sambanova"), ("claude-3-haiku-20240307", "gpt-4o-2024-08-06"),
         ("Qwen2.5-7B-Instruct", "gpt-4o-2024-08-06"), ("gemini-1.5-flash", "Qwen2.5-72B-Instruct"),
         ("Meta-Llama-3.1-70B-Instruct", "gpt-4o-2024-08-06"), ("gpt-4o-mini-2024-07-18", "gemini-1.5-pro"),
         ("Qwen2.5-3B-Instruct", "gpt-4o-mini-2024-07-18"), ("Meta-Llama-3.1-8B-Instruct", "Qwen2.5-72B-Instruct")]


def priced_models(folder: Path) -> dict[str, dict[str, Any]]:
    """Each model's tier entry (model id and list price) from the data set's router files."""
    tiers: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("router_*.yaml")):
        for tier in yaml.safe_load(path.read_text())["tiers"]:
            tiers[tier["name"]] = tier
    return tiers


def run_pair(rows: list[dict], tiers: dict[str, dict], cheap: str, top: str, seed: int, work: Path) -> dict:
    items = [{**r, "outcomes": {k: r["outcomes"][k] for k in (cheap, top)}} for r in rows]
    random.Random(seed).shuffle(items)
    half = len(items) // 2
    cal, test, config, out = work / "cal.jsonl", work / "test.jsonl", work / "router.yaml", work / "result.json"
    cal.write_text("".join(json.dumps(r) + "\n" for r in items[:half]))
    test.write_text("".join(json.dumps(r) + "\n" for r in items[half:]))
    config.write_text(yaml.safe_dump({"tiers": [tiers[cheap], tiers[top]], "baseline": top,
                                      "telemetry": {"sinks": []}}))
    subprocess.run([sys.executable, "-m", "langchain_tiered_router.cli", "eval", "--config", str(config),
                    "--data", str(test), "--calibrate-on", str(cal), "--policy", "auto",
                    "--target-parity", str(TARGET), "--json-out", str(out)],
                   check=True, capture_output=True, text=True)
    r = json.loads(out.read_text())
    return {"cheap": cheap, "top": top, "seed": seed, "kept": r["policy"], "savings": r["savings"],
            "parity": r["parity"], "random_at_parity": r["random_savings"], "oracle": r["oracle_savings"],
            "headroom_recovered": r["headroom_recovered"], "curve_at_target": r["curve_savings_at_target"]}


def pct(x: float | None) -> str:
    return "-" if x is None else f"{round(x * 100, 1) + 0.0:.1f} %"  # no "-0.0 %"


def markdown(runs: list[dict]) -> str:
    lines = ["| cheap -> top | split seed | auto kept | held out: savings @ parity | random mix at that parity "
             "| oracle | gap recovered | curve at 0.95 (test labels) |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['cheap']} -> {r['top']} | {r['seed']} | {r['kept']} | {pct(r['savings'])} @ "
                     f"{pct(r['parity'])} | {pct(r['random_at_parity'])} | {pct(r['oracle'])} | "
                     f"{pct(r['headroom_recovered'])} | {pct(r['curve_at_target'])} |")
    below = sum(r["parity"] < TARGET - 0.01 for r in runs)
    losing = sum(r["savings"] < 0 for r in runs)
    lines += ["", f"{len(runs)} runs: test parity below {TARGET - 0.01:.2f} in {below}, savings below zero in "
              f"{losing}; lowest parity {pct(min(r['parity'] for r in runs))}; median savings "
              f"{pct(statistics.median(r['savings'] for r in runs))}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "unseen_pairs")
    args = parser.parse_args()
    folder = args.data / "zeroeval-math"
    tiers = priced_models(folder)
    rows = [json.loads(line) for line in (folder / "math_l5_outcomes.jsonl").read_text().splitlines()]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for cheap, top in PAIRS:
            for seed in args.seeds:
                run = run_pair(rows, tiers, cheap, top, seed, Path(tmp))
                runs.append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"target_parity": TARGET, "runs": runs}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(runs))
    print(markdown(runs))


if __name__ == "__main__":
    main()
