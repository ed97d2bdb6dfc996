"""A batch run in numbers, from its state file: records, jobs per tier, costs at batch rates.

Savings are given twice: against the baseline tier at the batch rate (what routing
saves within batch) and against the baseline tier at the on-demand rate (what
routing plus batch save against sending everything to the baseline live).

Records that ended without an answer are summed up by the first of them (in input
order): its reason, and how many failed records share that reason. A reason names the
job it came from; records of different jobs that ended the same way share a reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .state import RecordState, RunState

__all__ = ["BatchSummary", "FirstFailure", "summarize_run"]


def _pct(saved: Decimal | None, base: Decimal | None) -> float | None:
    if saved is None or base is None or base <= 0:
        return None
    return float(1 - saved / base)


@dataclass
class FirstFailure:
    """The first record (in input order) that ended without an answer, and why."""

    id: str
    error: str
    shared_by: int  # failed records with the same reason, this one included

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "error": self.error, "shared_by": self.shared_by}


@dataclass
class BatchSummary:
    run_id: str
    state_path: str
    out_path: str
    finished: bool
    records: int
    served: int
    flagged: int
    failed: int
    pending: int
    served_by_tier: dict[str, int]
    jobs_by_tier: dict[str, int]
    job_states: dict[str, int]
    on_demand_by_tier: dict[str, int]
    cost_usd: Decimal | None
    baseline_cost_usd: Decimal | None
    baseline_cost_on_demand_usd: Decimal | None
    seconds: float | None = None
    unpriced: int = 0
    # billed already for records still in progress (their earlier tiers' answers): not in
    # ``cost_usd``, which covers finished records, the ones the savings compare
    in_progress_cost_usd: Decimal | None = Decimal(0)
    first_failure: FirstFailure | None = None
    # the config's shadow sampling: on-demand calls to the baseline tier that measure
    # parity, billed but in no figure here (the report lists them as measurement)
    shadow_fraction: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def savings_pct(self) -> float | None:
        """1 - routed cost / baseline at the batch rate."""
        return _pct(self.cost_usd, self.baseline_cost_usd)

    @property
    def savings_vs_on_demand_pct(self) -> float | None:
        """1 - routed cost / baseline at the on-demand rate."""
        return _pct(self.cost_usd, self.baseline_cost_on_demand_usd)

    def to_dict(self) -> dict[str, Any]:
        def money(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        def pct(v: float | None) -> float | None:
            return None if v is None else round(v * 100, 4)

        return {
            "run_id": self.run_id, "state": self.state_path, "out": self.out_path, "finished": self.finished,
            "records": self.records, "served": self.served, "flagged": self.flagged, "failed": self.failed,
            "pending": self.pending, "served_by_tier": self.served_by_tier, "jobs_by_tier": self.jobs_by_tier,
            "job_states": self.job_states, "on_demand_by_tier": self.on_demand_by_tier,
            "cost_usd": money(self.cost_usd), "baseline_cost_usd": money(self.baseline_cost_usd),
            "baseline_cost_on_demand_usd": money(self.baseline_cost_on_demand_usd),
            "savings_pct": pct(self.savings_pct), "savings_vs_on_demand_pct": pct(self.savings_vs_on_demand_pct),
            "unpriced": self.unpriced, "in_progress_cost_usd": money(self.in_progress_cost_usd),
            "seconds": self.seconds, "shadow_fraction": self.shadow_fraction,
            "first_failure": self.first_failure.to_dict() if self.first_failure else None, **self.extra,
        }

    def lines(self) -> list[str]:
        """The summary as a few lines of text, for the CLI."""
        def money(v: Decimal | None) -> str:
            return "unknown" if v is None else f"${float(v):,.4f}"

        def cheaper(v: float | None) -> str:
            if v is None:
                return "n/a"
            if v < 0 and round(v * 100, 1) != 0:
                return f"{-v * 100:.1f} % more expensive"
            return f"{abs(v) * 100:.1f} % cheaper"

        jobs = ", ".join(f"{t} {n}" for t, n in self.jobs_by_tier.items()) or "none"
        demand = ", ".join(f"{t} {n}" for t, n in self.on_demand_by_tier.items() if n) or "none"
        served = ", ".join(f"{t} {n}" for t, n in self.served_by_tier.items()) or "none"
        state = "finished" if self.finished else f"{self.pending} records still in progress"
        lines = [
            f"batch run {self.run_id}: {self.records} records, {state}; served {self.served} "
            f"({self.flagged} flagged), failed {self.failed}",
        ]
        if self.first_failure is not None:
            lines.append(self.failure_line())
        if self.pending:
            lines.append(f"billed so far for the {self.pending} records in progress: {money(self.in_progress_cost_usd)} "
                         "(in no figure below until they finish)")
        return lines + [
            f"served by tier: {served}",
            f"jobs by tier: {jobs}; records sent on-demand (below the job minimum): {demand}",
            f"cost at batch prices {money(self.cost_usd)} vs baseline tier {money(self.baseline_cost_usd)} at the "
            f"batch rate ({cheaper(self.savings_pct)}) and {money(self.baseline_cost_on_demand_usd)} at the "
            f"on-demand rate ({cheaper(self.savings_vs_on_demand_pct)}); quality parity not measured by the run "
            "(`tiered-router report` on its telemetry, with labels or shadows)",
        ] + ([f"shadow calls (telemetry.shadow.fraction {self.shadow_fraction:g}: the baseline tier asked again "
              "on-demand, to measure parity) are billed too and in no figure above: `tiered-router report` "
              "on the run's telemetry gives their cost"] if self.shadow_fraction else [])

    def failure_line(self) -> str:
        """Why records failed, by the first of them; every record's reason is in the results file."""
        first = self.first_failure
        if first is None:
            return f"failed {self.failed}"
        share = ("the only failed record" if self.failed == 1 else
                 f"{first.shared_by} of the {self.failed} failed records share this reason")
        return f"first failure: record {first.id}: {first.error} ({share}; every reason is in {self.out_path})"


def _add(total: Decimal | None, value: str | Decimal | None) -> Decimal | None:
    if total is None or value is None:
        return None
    return total + Decimal(value)


def _reason(record: RecordState) -> str:
    """A failed record's reason without the name of its job, so records of different jobs
    that ended the same way compare equal."""
    error = record.error or "failed"
    job = record.attempts[-1].job if record.attempts else None
    return error.replace(job, "its job") if job else error


def _first_failure(failed: list[RecordState]) -> FirstFailure | None:
    if not failed:
        return None
    first = min(failed, key=lambda r: r.index)
    reason = _reason(first)
    return FirstFailure(id=first.id, error=first.error or "failed",
                        shared_by=sum(1 for r in failed if _reason(r) == reason))


def summarize_run(state: RunState, *, state_path: str | Path = "", ladder_order: list[str] | None = None,
                  baseline: Any = None) -> BatchSummary:
    """Numbers of one run; ``baseline(record) -> (batch, on_demand)`` prices the counterfactual."""
    order = ladder_order or [t["name"] for t in state.config.get("tiers", [])]
    done = [r for r in state.records if r.status == "done"]
    served = [r for r in done if r.served is not None]
    by_tier = Counter(r.attempts[r.served].tier for r in served if r.served is not None)
    jobs = Counter(j.tier for j in state.jobs)
    cost: Decimal | None = Decimal(0)
    base: Decimal | None = Decimal(0)
    base_od: Decimal | None = Decimal(0)
    unpriced = 0
    for r in done:
        record_cost: Decimal | None = Decimal(0)
        for value in [a.cost_usd for a in r.attempts] + [x.cost_usd for x in r.aux]:
            record_cost = _add(record_cost, value)
        b, b_od = baseline(r) if baseline is not None else (None, None)
        if record_cost is None or b is None or b_od is None:
            unpriced += 1
            continue
        cost = _add(cost, record_cost)
        base = _add(base, b)
        base_od = _add(base_od, b_od)
    in_progress: Decimal | None = Decimal(0)
    for r in state.records:
        if r.status != "done":  # the answers its earlier tiers gave, billed already (None: one unpriced)
            for value in [a.cost_usd for a in r.attempts] + [x.cost_usd for x in r.aux]:
                in_progress = _add(in_progress, value)
    return BatchSummary(
        run_id=state.run_id, state_path=str(state_path), out_path=state.out_path, finished=state.finished,
        records=len(state.records), served=len(served), flagged=sum(r.flagged for r in done),
        failed=len(done) - len(served), pending=len(state.records) - len(done),
        served_by_tier={t: by_tier[t] for t in order if by_tier[t]},
        jobs_by_tier={t: jobs[t] for t in order if jobs[t]},
        job_states=dict(Counter(j.bedrock_status or j.status for j in state.jobs)),
        on_demand_by_tier={t: state.on_demand.get(t, 0) for t in order if state.on_demand.get(t)},
        cost_usd=cost, baseline_cost_usd=base, baseline_cost_on_demand_usd=base_od, unpriced=unpriced,
        in_progress_cost_usd=in_progress, first_failure=_first_failure([r for r in done if r.served is None]),
        shadow_fraction=_shadow_fraction(state.config))


def _shadow_fraction(config: dict[str, Any]) -> float:
    shadow = (config.get("telemetry") or {}).get("shadow") or {}
    try:
        return float(shadow.get("fraction") or 0.0)
    except (TypeError, ValueError):
        return 0.0
