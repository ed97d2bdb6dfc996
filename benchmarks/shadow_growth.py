"""How savings at a kept parity grow as production shadows accumulate.

    python benchmarks/shadow_growth.py [--data ../shared/data/routellm] [--runs 3] [--setups gsm8k,mmlu]

For RouteLLM's GSM8K and MMLU recordings (cheap = Mixtral 8x7B, baseline = GPT-4 Turbo):

1. split by sha256 of the prompt into "traffic" (70 %) and a held-out test set (30 %);
2. route the traffic, in a shuffled order, through the real engine (``build_router``:
   policy, gates, the telemetry recorder, the shadow sampler, the SQLite sink) on the
   recorded answers, with ``store_text: true`` and shadow sampling on. The router in
   production meanwhile serves cheap first: with no gate ("gsm8k", "mmlu"), or with the
   demo's arithmetic verifier gate on the cheap tier ("gsm8k+gate");
3. after the first 200, 500, 2,000 ... shadows, read the SQLite DB back, turn the
   shadowed records into labels exactly as ``tiered-router calibrate --from-db`` does,
   calibrate (policy auto, target parity 0.95, delta 0.05, clt bound), and route the
   held-out test set through the engine with ``policy: {kind: auto}`` (and the same
   gates). Savings and parity there are measured with the recorded correctness of both
   models, not with the shadows' agreement;
4. for comparison, calibrate on as many requests of the same traffic labelled with every
   tier's graded answer (what ``tiered-router collect`` with gold answers gives).

Each setup runs ``--runs`` times (another traffic order and shadow sample each time);
the table gives the mean and the range.

MMLU's recordings hold correctness only, no answer text: the replayed answers are
stand-ins ("Answer: X"), a pseudo-random letter for a correct answer and a different one
for a wrong answer (two wrong answers agree one time in three), so the shadow's exact
comparison agrees exactly when both are right or both picked the same wrong letter.

Writes benchmarks/results/shadow_growth.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_tiered_router.analysis.eval.calibration import calibrate
from langchain_tiered_router.analysis.eval.data import EvalItem, load_routellm, split_by_hash
from langchain_tiered_router.analysis.eval.harness import evaluate_config
from langchain_tiered_router.analysis.eval.replay import ReplayBackend
from langchain_tiered_router.analysis.shadow_labels import shadow_labels
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.config import RouterConfig, load_config
from langchain_tiered_router.core.model_file import save_routing_model
from langchain_tiered_router.core.telemetry.recorder import flush_all
from langchain_tiered_router.analysis.report.store import load_records
from langchain_tiered_router.core.tiers import Ladder
from langchain_tiered_router.core.types import RouteRequest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TRAFFIC_SHARE = 0.7
SETUPS = {
    # name: (data, where in the data folder, the production router, comparator, shadow fraction, snapshots)
    "gsm8k": ("gsm8k", "gsm8k/gsm8k_responses.csv", "cheap_first", "numeric", 1.0, (200, 500, 900)),
    "gsm8k+gate": ("gsm8k", "gsm8k/gsm8k_responses.csv", "gsm8k_gate", "numeric", 1.0, (200, 500)),
    "mmlu": ("mmlu", "mmlu", "cheap_first", "exact", 0.4, (200, 500, 2000)),
}


def base_config(kind: str, comparator: str, fraction: float, db: Path) -> dict[str, Any]:
    data = load_config(REPO / "examples" / "eval" / "routellm_router.yaml").model_dump(
        mode="json", by_alias=True, exclude_defaults=True)
    if kind == "gsm8k_gate":
        data["tiers"][0]["gates"] = [{"kind": "rule", "function": "langchain_tiered_router.demo.gates:check_gsm8k"}]
    data["policy"] = {"kind": "cascade", "max_escalations": 1}
    data["on_exhausted"] = "flag"
    data["retry"] = {"max_retries": 0}
    data["pinning"] = {"enabled": False}
    data["telemetry"] = {"store_text": True, "sinks": [{"kind": "sqlite", "path": str(db)}],
                         "shadow": {"fraction": fraction, "seed": 11, "max_in_flight": 64,
                                    "comparator": {"kind": comparator}}}
    return data


def mmlu_stand_ins(items: list[EvalItem]) -> list[EvalItem]:
    """Answer texts for correctness-only recordings (see the module docstring)."""
    out = []
    for item in items:
        digest = hashlib.sha256(item.prompt.encode()).digest()
        right = "ABCD"[digest[0] % 4]
        wrong = [x for x in "ABCD" if x != right]
        outcomes = {}
        for tier, o in item.outcomes.items():
            pick = hashlib.sha256(f"{tier}\0{item.prompt}".encode()).digest()[0] % 3
            letter = right if o.score >= 1 else wrong[pick]
            outcomes[tier] = dataclasses.replace(o, response=f"Answer: {letter}")
        out.append(EvalItem(item.id, item.prompt, outcomes, item.messages))
    return out


def route_traffic(config: dict[str, Any], traffic: list[EvalItem]) -> list[str]:
    """Every traffic request through the engine; returns request ids in routing order."""
    router = build_router(RouterConfig.from_dict(config))
    backend = ReplayBackend()
    ids = []
    for item in traffic:
        request_id = f"req-{len(ids):06d}"
        router.route(RouteRequest(item.prompt, payload=item, request_id=request_id), backend)
        ids.append(request_id)
    flush_all()
    return ids


def measure(config: dict[str, Any], test: list[EvalItem]) -> dict[str, Any]:
    config = {**config, "telemetry": {"sinks": []}}
    result = evaluate_config(RouterConfig.from_dict(config), test)
    return {"savings": result["savings"], "parity": result["parity"], "parity_low": result["parity_ci"]["low"],
            "parity_high": result["parity_ci"]["high"]}


def recalibrated(config: dict[str, Any], items: list[EvalItem], ladder: Ladder, target: float, model: Path,
                 test: list[EvalItem]) -> dict[str, Any]:
    cal = calibrate(items, ladder, target, policy="auto")
    save_routing_model(cal.model, model)
    routed = {**config, "policy": {"kind": "auto", "path": str(model), "max_escalations": 1}}
    return {"strategy": cal.chosen.name, **measure(routed, test)}


def one_run(name: str, config: dict[str, Any], traffic: list[EvalItem], test: list[EvalItem], ladder: Ladder,
            target: float, snapshots: tuple[int, ...], work: Path, seed: int) -> list[dict[str, Any]]:
    """One order of the traffic: route it with shadows, recalibrate at each snapshot."""
    order = list(traffic)
    random.Random(seed).shuffle(order)
    db = work / f"{name}-{seed}.db"
    config = {**config, "telemetry": {**config["telemetry"], "sinks": [{"kind": "sqlite", "path": str(db)}],
                                      "shadow": {**config["telemetry"]["shadow"], "seed": seed}}}
    ids = route_traffic(config, order)
    records, _ = load_records(db)
    rank = {rid: n for n, rid in enumerate(ids)}
    records.sort(key=lambda r: rank[r.request_id])
    labels = shadow_labels(records, ladder).items
    rows = []
    for n in snapshots:
        if n > len(labels):
            rows.append({"shadows": n, "skipped": f"{len(labels)} shadows in this traffic"})
            continue
        row = {"shadows": n, "requests_routed": rank[labels[n - 1].id] + 1,
               "from_shadows": recalibrated(config, labels[:n], ladder, target, work / f"{name}-{seed}-s{n}.npz", test),
               "from_gold": recalibrated(config, order[:n], ladder, target, work / f"{name}-{seed}-g{n}.npz", test)}
        print(f"{name} run {seed}: {n} shadows -> {row['from_shadows']['strategy']} "
              f"{100 * row['from_shadows']['savings']:.1f} % @ {100 * row['from_shadows']['parity']:.1f} %; "
              f"{n} gold labels -> {100 * row['from_gold']['savings']:.1f} % @ "
              f"{100 * row['from_gold']['parity']:.1f} %", flush=True)
        rows.append(row)
    return rows


def _summary(values: list[dict[str, Any]], target: float) -> dict[str, Any]:
    savings = [v["savings"] for v in values]
    parity = [v["parity"] for v in values]
    return {"savings_mean": statistics.mean(savings), "savings_min": min(savings), "savings_max": max(savings),
            "parity_mean": statistics.mean(parity), "parity_min": min(parity), "parity_max": max(parity),
            "kept": sum(p >= target for p in parity), "runs": len(values),
            "strategies": sorted({v["strategy"] for v in values})}


def run_setup(name: str, data_dir: Path, target: float, work: Path, runs: int) -> dict[str, Any]:
    dataset, where, kind, comparator, fraction, snapshots = SETUPS[name]
    items = load_routellm(data_dir / where)
    if dataset == "mmlu":
        items = mmlu_stand_ins(items)
    traffic, test = split_by_hash(items, TRAFFIC_SHARE)
    config = base_config(kind, comparator, fraction, work / "unused.db")
    ladder = Ladder.from_config(RouterConfig.from_dict(config))
    started = time.perf_counter()
    per_run = [one_run(name.replace("+", "_"), config, traffic, test, ladder, target, snapshots, work, seed)
               for seed in range(runs)]
    out: dict[str, Any] = {"traffic": len(traffic), "test": len(test), "shadow_fraction": fraction,
                           "comparator": comparator, "production_router": kind, "runs": runs,
                           "production_on_test": measure(config, test), "snapshots": [], "per_run": per_run}
    for k, n in enumerate(snapshots):
        rows = [run[k] for run in per_run if "skipped" not in run[k]]
        if len(rows) < runs:
            out["snapshots"].append({"shadows": n, "skipped": "fewer shadows than this in the traffic"})
            continue
        out["snapshots"].append({"shadows": n,
                                 "requests_routed_mean": statistics.mean(r["requests_routed"] for r in rows),
                                 "from_shadows": _summary([r["from_shadows"] for r in rows], target),
                                 "from_gold": _summary([r["from_gold"] for r in rows], target)})
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _cell(s: dict[str, Any]) -> str:
    return (f"{_pct(s['savings_mean'])} ({_pct(s['savings_min'])}-{_pct(s['savings_max'])}) @ "
            f"{_pct(s['parity_mean'])} ({_pct(s['parity_min'])}-{_pct(s['parity_max'])}); kept {s['kept']}/{s['runs']}")


def markdown(results: dict[str, Any]) -> str:
    target = results["target_parity"]
    lines = ["| data (router while shadows accumulate) | labels | requests routed to get them | recalibrated from the "
             "shadows: held-out savings @ parity, mean (min-max) | from as many gold-labelled requests (collect) |",
             "|---|---|---|---|---|"]
    for name, r in results["setups"].items():
        p = r["production_on_test"]
        lines.append(f"| {name} ({r['production_router']}) | none: the router itself | - | {_pct(p['savings'])} @ "
                     f"{_pct(p['parity'])} ({'kept' if p['parity'] >= target else 'NOT kept'}) | - |")
        for s in r["snapshots"]:
            if "skipped" in s:
                lines.append(f"| {name} | {s['shadows']:,} shadows | - | ({s['skipped']}) | - |")
                continue
            lines.append(f"| {name} | {s['shadows']:,} shadows | {s['requests_routed_mean']:,.0f} | "
                         f"{_cell(s['from_shadows'])} | {_cell(s['from_gold'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "routellm")
    parser.add_argument("--target-parity", type=float, default=0.95)
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"any of {', '.join(SETUPS)}")
    parser.add_argument("--runs", type=int, default=3, help="orders of the traffic (and shadow samples) per setup")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "shadow_growth",
                        help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    results: dict[str, Any] = {"target_parity": args.target_parity, "traffic_share": TRAFFIC_SHARE,
                               "delta": 0.05, "bound": "clt", "policy": "auto", "setups": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shadow-growth-") as tmp:
        for name in args.setups.split(","):
            results["setups"][name] = run_setup(name, args.data, args.target_parity, Path(tmp), args.runs)
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')} in {results['seconds']} s")


if __name__ == "__main__":
    main()
