"""Every recorded data set and ladder the benchmarks run on, read from ../shared/data.

RouteLLM's recordings (one cheap, one frontier model on GSM8K, MMLU and MT-Bench) with
examples/eval/routellm_router.yaml, and ZeroEval's MATH level-5 recordings with the five
ladders that ship beside them (two of three tiers). Nothing is copied into the repo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from langchain_tiered_router.analysis.eval.data import EvalItem, load_outcomes, load_routellm
from langchain_tiered_router.core.config import RouterConfig, load_config
from langchain_tiered_router.core.tiers import Ladder

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = Path(os.environ.get("TIERED_ROUTER_SHARED_DATA", REPO.parent / "shared" / "data"))
# RouteLLM paper / project page: cost reduction at 95 % of GPT-4's performance
ROUTELLM_PUBLISHED = {"gsm8k": 0.35, "mmlu": 0.45, "mt_bench": 0.85}
ZEROEVAL_LADDERS = ("llama", "qwen", "openai", "google", "anthropic")


@dataclass
class Dataset:
    name: str
    config: RouterConfig
    load: Callable[[], list[EvalItem]]
    published: float | None = None

    @property
    def ladder(self) -> Ladder:
        return Ladder.from_config(self.config)


def all_datasets(data: Path = DATA, only: set[str] | None = None) -> list[Dataset]:
    routellm = load_config(REPO / "examples" / "eval" / "routellm_router.yaml")
    ladder = Ladder.from_config(routellm)
    out = []
    for name, path in (("gsm8k", data / "routellm" / "gsm8k" / "gsm8k_responses.csv"),
                       ("mmlu", data / "routellm" / "mmlu"), ("mt_bench", data / "routellm" / "mt_bench")):
        out.append(Dataset(name, routellm, lambda p=path: load_routellm(p, cheap_tier=ladder.cheapest.name,
                                                                         frontier_tier=ladder.baseline.name),
                           ROUTELLM_PUBLISHED[name]))
    for lad in ZEROEVAL_LADDERS:
        config = load_config(data / "zeroeval-math" / f"router_{lad}.yaml")
        names = [t.name for t in config.tiers]
        out.append(Dataset(f"math_{lad}", config,
                           lambda lad=lad, names=names: load_outcomes(data / "zeroeval-math" / f"math_l5_{lad}.jsonl",
                                                                      names)))
    return [d for d in out if only is None or d.name in only]
