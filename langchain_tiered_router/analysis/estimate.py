"""The prize, before any routing code: what this ladder could save on this data at most.

From recorded outcomes (every tier's score and token counts per request):

* per tier, the share of requests it answers as well as the baseline tier (its score at
  least the baseline's), with a 95 % Wilson interval, and what serving it exactly there
  (else the baseline) would save: the "easy share x (1 - price ratio)" of routing guides,
  computed per request;
* the one-call oracle: every request on the cheapest tier that answers as well as the baseline,
  one call each (the oracle), with a percentile-bootstrap interval over requests;
* a perfect classifier after its own cost: the ceiling plus what the classifier pays per
  request. Which cost is an assumption, stated in the output: ``free`` (a trained
  classifier, features and a linear model on your machine), ``llm`` (one call to the
  classifier tier per request: the request in the LLM classifier's prompt, a tier name
  out), or a fixed USD amount per request;
* a perfect cascade: cheapest first, a perfect check stops at the first answer as good as
  the baseline's, every call paid (what gates at best reach);
* the random mix at parity 1 and at a target: what routing without knowing anything saves
  (a target above the best tier's quality is said to be out of its reach, not priced).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Sequence

import numpy as np

from ..core.classifiers import LLMClassifier
from ..core.pricing import Usage
from ..core.tiers import Ladder
from .eval.calibration import ladder_table
from .eval.data import EvalItem
from .eval.metrics import LadderTable, oracle_served, random_savings_at

__all__ = ["Prize", "TierPrize", "ClassifierCost", "estimate_prize", "classifier_cost", "classifier_usd",
           "wilson_interval", "LLM_LABEL_TOKENS"]

Z95 = 1.959963984540054
LLM_LABEL_TOKENS = 3  # an LLM classifier's reply: a tier name


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (sound near 0 and 1 and at small n)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class TierPrize:
    tier: str
    as_good: int  # requests where this tier's score >= the baseline's
    share: float
    low: float
    high: float
    quality: float  # mean score
    cost_vs_baseline: float  # its total cost / the baseline's
    two_tier_savings: float | None  # this tier where as good, else the baseline (None: the baseline itself)


@dataclass
class ClassifierCost:
    kind: str  # free | llm | fixed
    total_usd: float
    per_request_usd: float
    assumption: str


@dataclass
class Prize:
    n: int
    tiers: list[TierPrize]
    baseline: str
    baseline_cost_usd: float
    baseline_quality: float
    oracle_savings: float
    oracle_low: float
    oracle_high: float
    oracle_parity: float
    oracle_share: dict[str, float]
    classifier: ClassifierCost
    classifier_savings: float
    cascade_savings: float
    random_savings: dict[float, float]  # only the parities a random mix reaches
    estimated_tokens: bool
    resamples: int = 2000
    notes: list[str] = field(default_factory=list)
    random_unreached: list[float] = field(default_factory=list)  # asked parities no mix of tiers reaches
    random_max_parity: float | None = None  # the most a random mix reaches: the best tier's

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "baseline": self.baseline, "baseline_cost_usd": self.baseline_cost_usd,
            "baseline_quality": self.baseline_quality,
            "tiers": [{"tier": t.tier, "as_good_as_baseline": t.as_good, "share_as_good": t.share,
                       "share_low": t.low, "share_high": t.high, "interval": "95 % Wilson", "quality": t.quality,
                       "cost_vs_baseline": t.cost_vs_baseline, "two_tier_savings": t.two_tier_savings}
                      for t in self.tiers],
            "oracle": {"savings": self.oracle_savings, "low": self.oracle_low, "high": self.oracle_high,
                       "interval": f"95 % percentile bootstrap over requests, {self.resamples} resamples",
                       "parity": self.oracle_parity, "tier_share": self.oracle_share,
                       "definition": "each request on the cheapest tier whose score is at least the baseline's, "
                                     "one call"},
            "perfect_classifier": {"savings": self.classifier_savings, "kind": self.classifier.kind,
                                   "classifier_cost_usd": self.classifier.total_usd,
                                   "classifier_cost_per_request_usd": self.classifier.per_request_usd,
                                   "assumption": self.classifier.assumption},
            "perfect_cascade": {"savings": self.cascade_savings,
                                "definition": "cheapest tier first, a perfect check stops at the first answer as "
                                              "good as the baseline's, every call paid"},
            "random_mix": {f"{p:.2f}": self.random_savings.get(p) for p in
                           sorted({*self.random_savings, *self.random_unreached}, reverse=True)},
            "random_mix_max_parity": self.random_max_parity,
            "tokens": ("some token counts were estimated as ceil(characters / 4)" if self.estimated_tokens
                       else "token counts from the data"),
            "notes": list(self.notes),
        }


def classifier_cost(spec: str | Decimal | float, items: Sequence[EvalItem], ladder: Ladder,
                    llm_tier: str | None = None) -> ClassifierCost:
    """What a classifier pays to decide every request, and the assumption behind it."""
    n = len(items)
    if isinstance(spec, str) and spec == "free":
        return ClassifierCost("free", 0.0, 0.0, "a trained classifier: features and a linear model on your machine, "
                                                "$0 per request at run time")
    if isinstance(spec, str) and spec == "llm":
        tier = ladder[llm_tier] if llm_tier else ladder.cheapest
        template = LLMClassifier().prompt
        total = Decimal(0)
        for item in items:
            prompt = template.format(tiers=", ".join(ladder.names), request=item.prompt)
            cost = tier.cost(Usage(max(1, math.ceil(len(prompt) / 4)), LLM_LABEL_TOKENS))
            if cost is None:
                raise ValueError(f"tier {tier.name!r} has no price")
            total += cost
        return ClassifierCost("llm", float(total), float(total) / max(1, n),
                              f"an LLM classifier: one call to {tier.name} per request (the request inside the "
                              f"classifier's prompt in, ceil(characters / 4) tokens; {LLM_LABEL_TOKENS} tokens out)")
    per = classifier_usd(spec)
    return ClassifierCost("fixed", float(per) * n, float(per), f"a classifier that costs ${per} per request (given)")


def classifier_usd(spec: str | Decimal | float) -> Decimal:
    """A fixed classifier cost per request: a finite number of USD, at least 0."""
    try:
        per = Decimal(str(spec).strip())
    except ArithmeticError:
        raise ValueError(f"classifier cost must be free, llm or USD per request, got {spec!r}") from None
    if not per.is_finite() or not math.isfinite(float(per)):  # NaN compares with nothing; inf estimates nothing
        raise ValueError(f"classifier cost must be free, llm or a finite USD amount per request, got {spec!r}")
    if per < 0:
        raise ValueError("a classifier cost per request cannot be negative")
    return per


def _tidy(savings: float) -> float:
    """Float noise off a saving: the same cost summed in another order is not -2e-16 cheaper."""
    return 0.0 if abs(savings) < 1e-12 else float(savings)


def _savings(table: LadderTable, cost: np.ndarray) -> float:
    return _tidy(1 - cost.sum() / table.c_base.sum())


def _random_mix(table: LadderTable, parities: Sequence[float]) -> tuple[dict[float, float], list[float],
                                                                         float | None]:
    """The random mix's savings at each parity it reaches, the parities it does not reach,
    and the most it reaches. A blend's mean quality is between its tiers', so no blend
    beats the best tier alone; above that ``random_savings_at`` falls back to all-baseline,
    whose parity is 1, not the one asked for."""
    quality = table.q.mean(axis=0)
    base = float(quality[table.base])
    reached, unreached = {}, []
    for p in sorted(set(parities), reverse=True):
        if float(quality.max()) >= p * base:
            reached[p] = _tidy(random_savings_at(table, p))
        else:
            unreached.append(p)
    return reached, unreached, float(quality.max() / base)


def _bootstrap(cost: np.ndarray, base: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = len(cost)
    out = []
    for start in range(0, resamples, 250):
        idx = rng.integers(0, n, size=(min(250, resamples - start), n))
        out.append(1 - cost[idx].sum(axis=1) / base[idx].sum(axis=1))
    values = np.concatenate(out)
    return _tidy(np.quantile(values, 0.025)), _tidy(np.quantile(values, 0.975))


def estimate_prize(items: Sequence[EvalItem], ladder: Ladder, *, classifier: str | Decimal | float = "free",
                   llm_tier: str | None = None, target_parity: float = 0.95, resamples: int = 2000,
                   seed: int = 0) -> Prize:
    """The prize of routing ``items`` over ``ladder`` (every item needs every tier's outcome)."""
    table = ladder_table(items, ladder)
    rows = np.arange(table.n)
    base_q = table.q_base
    tiers = []
    for k, name in enumerate(table.names):
        good = table.q[:, k] >= base_q - 1e-12
        low, high = wilson_interval(int(good.sum()), table.n)
        two_tier = None
        if k != table.base:
            two_tier = _savings(table, np.where(good, table.c[:, k], table.c_base))
        tiers.append(TierPrize(name, int(good.sum()), float(good.mean()), low, high, float(table.q[:, k].mean()),
                               float(table.c[:, k].sum() / table.c_base.sum()), two_tier))
    served = oracle_served(table)
    oracle_cost = table.c[rows, served]
    low, high = _bootstrap(oracle_cost, table.c_base, resamples, seed)
    cls = classifier_cost(classifier, items, ladder, llm_tier)
    # the cascade climbs the ladder in its order and stops at the first tier as good as the
    # baseline (not at the oracle's pick, the cheapest such tier: one listed before it may
    # cost more on this request, and the cascade pays it)
    first_good = np.argmax(table.q >= base_q[:, None] - 1e-12, axis=1)  # the baseline always is
    cascade_cost = np.cumsum(table.c, axis=1)[rows, first_good]
    base_quality = float(base_q.mean())  # above 0: ``ladder_table`` refuses a baseline that scores 0 everywhere
    random_reached, random_unreached, random_max = _random_mix(table, [1.0, target_parity])
    return Prize(
        n=table.n, tiers=tiers, baseline=table.names[table.base], baseline_cost_usd=float(table.c_base.sum()),
        baseline_quality=base_quality, oracle_savings=_savings(table, oracle_cost), oracle_low=low, oracle_high=high,
        oracle_parity=float(table.q[rows, served].mean() / base_quality),
        oracle_share={name: float(np.mean(served == k)) for k, name in enumerate(table.names)},
        classifier=cls, classifier_savings=_tidy(1 - (oracle_cost.sum() + cls.total_usd) / table.c_base.sum()),
        cascade_savings=_savings(table, cascade_cost),
        random_savings=random_reached, random_unreached=random_unreached, random_max_parity=random_max,
        estimated_tokens=any(o.estimated_tokens for i in items for o in i.outcomes.values()),
        resamples=resamples, notes=_unknown_output_note(items))


def _unknown_output_note(items: Sequence[EvalItem]) -> list[str]:
    unknown = sum(o.output_unknown for i in items for o in i.outcomes.values())
    if not unknown:
        return []
    return [f"{unknown:,} outcomes have neither a response nor output_tokens: each is costed at one output token "
            "(a one-letter answer), so costs there count the prompts only; give output_tokens"]
