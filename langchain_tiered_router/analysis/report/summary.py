"""Savings at parity: the numbers the report prints, computed from records.

The metric is the eval harness's (``analysis.eval.metrics``: ``savings``, ``parity``,
``bootstrap_parity_ci``); what differs is the data. Live records price the baseline
on the served answer's output tokens (the baseline's own answer was never made); the
harness prices the baseline's recorded answer. That, not the arithmetic, is why one
GSM8K routing reads 54.2 % here and 60.2 % in ``tiered-router eval``.

Savings % = 1 - sum(actual cost) / sum(baseline cost), over requests where both
are known (unknown is never counted as 0; those requests are counted apart). The
actual cost includes every attempt of an escalated request and every routing call;
shadow calls are a cost of measurement and are reported separately.

Parity is the served answers' quality relative to what the baseline would have
answered on the same requests. From recorded labels (served and baseline scores per
request): sum(served) / sum(baseline), with a paired bootstrap interval. From shadow
samples (lower-tier answers scored against the baseline's): the agreement rate a
(Wilson interval for 0/1 scores, bootstrap for graded), then
parity = share served by the baseline + share served lower x a.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Sequence

import numpy as np

from ...core.telemetry.record import RoutingRecord
from ..eval.metrics import bootstrap_parity_ci, parity, savings
from .stats import bootstrap_mean, wilson
from .store import Label

__all__ = ["Parity", "TierRow", "Summary", "summarize", "savings_phrase"]


def savings_phrase(savings: float) -> str:
    """``12.3 % cheaper``, or ``22.0 % more expensive`` for negative savings."""
    if savings < 0 and round(savings * 100, 1) != 0:
        return f"{-savings * 100:.1f} % more expensive"
    return f"{abs(savings) * 100:.1f} % cheaper"


@dataclass
class Parity:
    value: float
    low: float
    high: float
    method: str
    source: str  # "labels" or "shadow"
    n: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class TierRow:
    tier: str
    served: int = 0
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal | None = Decimal(0)
    judged: int = 0
    gate_passed: int = 0

    @property
    def gate_pass_rate(self) -> float | None:
        return self.gate_passed / self.judged if self.judged else None


@dataclass
class Summary:
    requests: int
    first_ts: float | None
    last_ts: float | None
    priced: int  # requests with both costs known
    unpriced: int
    actual_cost_usd: Decimal
    baseline_cost_usd: Decimal
    savings_pct: float | None
    routing_cost_usd: Decimal | None  # aux calls (classifiers, self-grades), part of actual
    shadow_cost_usd: Decimal | None
    escalated: int
    flagged: int
    errors: int
    tiers: list[TierRow]
    parity: Parity | None
    parity_alternatives: list[Parity]
    shadow: dict[str, Any]

    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.requests if self.requests else None

    def savings_unknown(self) -> str:
        """Why there is no savings figure, in words that are true of these records."""
        if self.priced == 0:
            return "savings unknown (no request with both its cost and its baseline cost known)"
        return (f"savings unknown (the baseline cost of the {self.priced:,} request{'s' if self.priced > 1 else ''} "
                f"with known costs adds up to $0)")

    def headline(self) -> str:
        if self.savings_pct is None:
            return self.savings_unknown()
        cheaper = savings_phrase(self.savings_pct)
        if self.parity is None:
            if self.shadow:  # sampling is on: say where the samples stand, not to turn it on
                states = ", ".join(f"{k} {v}" for k, v in sorted(self.shadow.items()))
                return f"{cheaper}; quality parity not measured yet (no shadow sample scored: {states})"
            return f"{cheaper}; quality parity not measured (enable telemetry.shadow or add labels)"
        p = self.parity
        return (f"{cheaper} at {p.value * 100:.1f} % quality parity "
                f"(95 % CI {p.low * 100:.1f}-{p.high * 100:.1f} %, {p.method}, n={p.n})")

    def to_dict(self) -> dict[str, Any]:
        def money(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        return {
            "headline": self.headline(),
            "requests": self.requests,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "priced_requests": self.priced,
            "unpriced_requests": self.unpriced,
            "actual_cost_usd": money(self.actual_cost_usd),
            "baseline_cost_usd": money(self.baseline_cost_usd),
            "savings_pct": None if self.savings_pct is None else round(self.savings_pct * 100, 4),
            "routing_cost_usd": money(self.routing_cost_usd),
            "shadow_cost_usd": money(self.shadow_cost_usd),
            "escalated": self.escalated,
            "escalation_rate": self.escalation_rate,
            "flagged": self.flagged,
            "errors": self.errors,
            "tiers": [{**{k: v for k, v in asdict(t).items() if k != "cost_usd"}, "cost_usd": money(t.cost_usd),
                       "gate_pass_rate": t.gate_pass_rate} for t in self.tiers],
            "parity": None if self.parity is None else asdict(self.parity),
            "parity_alternatives": [asdict(p) for p in self.parity_alternatives],
            "shadow": self.shadow,
        }


def _add(total: Decimal | None, value: Any) -> Decimal | None:
    if total is None or value is None:
        return None
    return total + Decimal(str(value))


def _tier_rows(records: Sequence[RoutingRecord], order: Sequence[str]) -> list[TierRow]:
    rows: dict[str, TierRow] = {}

    def row(name: str) -> TierRow:
        return rows.setdefault(name, TierRow(name))

    for record in records:
        if record.tier:
            row(record.tier).served += 1
        for attempt in record.attempts:
            if attempt.get("outcome") == "skipped":
                continue  # not called: an open circuit or a passed deadline
            r = row(attempt["tier"])
            r.attempts += 1
            r.input_tokens += attempt.get("input_tokens") or 0
            r.output_tokens += attempt.get("output_tokens") or 0
            r.cost_usd = _add(r.cost_usd, attempt.get("cost_usd"))
            if attempt.get("gate_passed") is not None:
                r.judged += 1
                r.gate_passed += bool(attempt["gate_passed"])
    known = [n for n in order if n in rows]
    return [rows[n] for n in known] + [rows[n] for n in sorted(rows) if n not in known]


def _labels_parity(records: Sequence[RoutingRecord], labels: dict[str, Label]) -> Parity | None:
    """Parity over the same requests as the savings: a labelled request that got no answer
    (its ladder exhausted, an error) served quality 0, whatever its label says it served."""
    pairs = [(labels[r.request_id].served_score if r.tier is not None else 0.0, labels[r.request_id].baseline_score)
             for r in records if r.request_id in labels]
    if not pairs or sum(b for _, b in pairs) <= 0:
        return None
    served, base = [a for a, _ in pairs], [b for _, b in pairs]
    low, high = bootstrap_parity_ci(np.asarray(served, dtype=float), np.asarray(base, dtype=float))
    unanswered = sum(1 for r in records if r.request_id in labels and r.tier is None)
    return Parity(parity(sum(served), sum(base)), low, high, "paired bootstrap, 2,000 resamples", "labels", len(pairs),
                  {"served_quality": sum(served) / len(pairs), "baseline_quality": sum(base) / len(pairs),
                   "unanswered_counted_as_0": unanswered})


def _shadow_parity(records: Sequence[RoutingRecord]) -> Parity | None:
    """Parity from shadows of the served requests, over every request: one left without an
    answer before its ladder reached the baseline tier (the baseline might have answered
    it) counts as quality 0; one whose baseline tier failed too counts for neither side.
    Each request is judged against its own ``baseline_tier``: one store can hold ladders
    with different baselines (a config changed, two services on one DB)."""
    served = [r for r in records if r.tier is not None]
    scores = [float(r.shadow_score) for r in served if r.shadowed]
    if not served or not scores:
        return None
    lost = sum(1 for r in records
               if r.tier is None and not any(a.get("tier") == r.baseline_tier for a in r.attempts))
    share = len(served) / (len(served) + lost)
    lower = sum(1 for r in served if r.tier != r.baseline_tier) / len(served)
    agreement = sum(scores) / len(scores)
    if all(s in (0.0, 1.0) for s in scores):
        a_low, a_high = wilson(sum(scores), len(scores))
        method = "Wilson interval on binary shadow scores"
    else:
        a_low, a_high = bootstrap_mean(scores)
        method = "bootstrap (2,000 resamples) on graded shadow scores"

    def lift(a: float) -> float:
        return share * ((1 - lower) + lower * a)

    return Parity(lift(agreement), lift(a_low), lift(a_high), method, "shadow", len(scores),
                  {"agreement": agreement, "agreement_low": a_low, "agreement_high": a_high,
                   "share_served_below_baseline": lower, "unanswered_counted_as_0": lost})


def summarize(records: Sequence[RoutingRecord], labels: dict[str, Label] | None = None,
              tier_order: Sequence[str] = ()) -> Summary:
    """The report's numbers. Labels, when present, give the headline parity."""
    labels = labels or {}
    actual = baseline = Decimal(0)
    priced = 0
    routing: Decimal | None = Decimal(0)
    shadow_cost: Decimal | None = Decimal(0)
    for r in records:
        if r.cost_usd is not None and r.baseline_cost_usd is not None:
            priced += 1
            actual += r.cost_usd
            baseline += r.baseline_cost_usd
        for call in r.aux_calls:
            routing = _add(routing, call.get("cost_usd"))
        if r.shadow_cost_usd is not None:
            shadow_cost = _add(shadow_cost, r.shadow_cost_usd)
        elif r.shadow_status == "done":
            shadow_cost = None  # a shadow answered at an unknown price
    order = list(tier_order) or _ladder_order(records)
    candidates = [p for p in (_labels_parity(records, labels), _shadow_parity(records)) if p is not None]
    shadow_states: dict[str, int] = defaultdict(int)
    for r in records:
        if r.shadow_status:
            shadow_states[r.shadow_status] += 1
    return Summary(
        requests=len(records),
        first_ts=records[0].ts if records else None,
        last_ts=records[-1].ts if records else None,
        priced=priced, unpriced=len(records) - priced,
        actual_cost_usd=actual, baseline_cost_usd=baseline,
        savings_pct=_savings(actual, baseline),
        routing_cost_usd=routing, shadow_cost_usd=shadow_cost,
        escalated=sum(r.escalated for r in records),
        flagged=sum(r.flagged for r in records),
        errors=sum(1 for r in records if r.tier is None),
        tiers=_tier_rows(records, order),
        parity=candidates[0] if candidates else None,
        parity_alternatives=candidates[1:],
        shadow=dict(shadow_states),
    )


def _savings(actual: Decimal, baseline: Decimal) -> float | None:
    """None without a positive baseline, or when the sums are not finite floats (the store
    skips such records; records built in memory are not checked)."""
    if not baseline > 0:
        return None
    value = savings(float(actual), float(baseline))
    return value if math.isfinite(value) else None


def _ladder_order(records: Sequence[RoutingRecord]) -> list[str]:
    """The ladder's order as the records show it, the config not at hand: the baseline tier
    last, the others by what a token cost on them (a ladder climbs in price), then as
    escalations climb, then as first seen. Escalations alone could not order the tiers a
    classifier or blend sends requests to straight."""
    before: dict[str, set[str]] = defaultdict(set)
    cost: dict[str, Decimal] = defaultdict(Decimal)
    tokens: dict[str, int] = defaultdict(int)
    names: list[str] = []
    baselines = {r.baseline_tier for r in records}
    for r in records:
        tiers = [a["tier"] for a in r.attempts]
        for i, (t, attempt) in enumerate(zip(tiers, r.attempts)):
            if t not in names:
                names.append(t)
            before[t].update(tiers[:i])
            if attempt.get("cost_usd") is not None and not attempt.get("usage_estimated"):
                cost[t] += Decimal(str(attempt["cost_usd"]))
                tokens[t] += (attempt.get("input_tokens") or 0) + (attempt.get("output_tokens") or 0)

    def per_token(name: str) -> float:
        return float(cost[name] / tokens[name]) if tokens[name] and cost[name] > 0 else math.inf

    return sorted(names, key=lambda n: (n in baselines, per_token(n), len(before[n]), names.index(n)))
