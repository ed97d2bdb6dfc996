"""Drift: has routing behaviour changed in the recent window against the reference?

The recent window is the last ``window`` of records (a duration such as ``1h`` or a
count such as ``500``); the reference is every earlier record in the selection.
Escalation rate, gate failure rate and the shadows' agreement with the baseline (the
metric ``shadow_parity``; binary scores) are compared with a two-proportion z-test,
graded agreement with a z-test on means, and the served
tier mix with a chi-square test. A change is an alarm when p < ``alpha`` and both
windows hold at least ``min_samples`` observations of that metric.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ...core.errors import TelemetryError
from ...core.telemetry.record import RoutingRecord
from .stats import chi_square, mean_z, two_proportion_z

__all__ = ["DriftCheck", "DriftReport", "check_drift", "parse_window", "parse_duration"]

log = logging.getLogger("langchain_tiered_router.telemetry")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """Seconds in ``90s``, ``30m``, ``1h``, ``7d``, ``2w``; None if it is not a duration."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


def parse_window(text: str) -> tuple[str, float]:
    """("duration", seconds) or ("count", n) from ``1h`` or ``500``."""
    seconds = parse_duration(text)
    if seconds is not None and seconds > 0:
        return ("duration", seconds)
    if re.fullmatch(r"\s*\d+\s*", text) and int(text) > 0:
        return ("count", int(text))
    raise TelemetryError(f"bad drift window {text!r}: use a duration (30m, 1h, 7d) or a request count (500)")


@dataclass
class DriftCheck:
    metric: str
    test: str
    reference: Any
    recent: Any
    n_reference: int
    n_recent: int
    statistic: float | None
    p_value: float | None
    alarm: bool
    note: str = ""


@dataclass
class DriftReport:
    window: str
    alpha: float
    n_reference: int
    n_recent: int
    checks: list[DriftCheck]

    @property
    def alarm(self) -> bool:
        return any(c.alarm for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "alpha": self.alpha, "n_reference": self.n_reference,
                "n_recent": self.n_recent, "alarm": self.alarm, "checks": [asdict(c) for c in self.checks]}


def split_window(records: Sequence[RoutingRecord], window: str) -> tuple[list[RoutingRecord], list[RoutingRecord]]:
    kind, size = parse_window(window)
    records = sorted(records, key=lambda r: r.ts)
    if kind == "count":
        cut = max(0, len(records) - int(size))
    else:
        start = (records[-1].ts - size) if records else 0
        cut = next((i for i, r in enumerate(records) if r.ts > start), len(records))
    return records[:cut], records[cut:]


def _proportion(metric: str, ref: tuple[int, int], new: tuple[int, int], alpha: float, min_n: int) -> DriftCheck:
    (x1, n1), (x2, n2) = ref, new
    rate = lambda x, n: round(x / n, 6) if n else None  # noqa: E731
    if min(n1, n2) < min_n:
        return DriftCheck(metric, "two-proportion z", rate(x1, n1), rate(x2, n2), n1, n2, None, None, False,
                          f"fewer than {min_n} observations in a window")
    z, p = two_proportion_z(x1, n1, x2, n2)
    return DriftCheck(metric, "two-proportion z", rate(x1, n1), rate(x2, n2), n1, n2, round(z, 4), p, p < alpha)


def _gate_counts(records: Sequence[RoutingRecord]) -> tuple[int, int]:
    judged = [a for r in records for a in r.attempts if a.get("gate_passed") is not None]
    return sum(1 for a in judged if not a["gate_passed"]), len(judged)


def check_drift(records: Sequence[RoutingRecord], window: str, *, alpha: float = 0.01,
                min_samples: int = 30) -> DriftReport:
    reference, recent = split_window(records, window)
    checks = [
        _proportion("escalation_rate", (sum(r.escalated for r in reference), len(reference)),
                    (sum(r.escalated for r in recent), len(recent)), alpha, min_samples),
        _proportion("gate_failure_rate", _gate_counts(reference), _gate_counts(recent), alpha, min_samples),
    ]
    s_ref = [float(r.shadow_score) for r in reference if r.shadowed]
    s_new = [float(r.shadow_score) for r in recent if r.shadowed]
    if all(s in (0.0, 1.0) for s in s_ref + s_new):
        checks.append(_proportion("shadow_parity", (int(sum(s_ref)), len(s_ref)), (int(sum(s_new)), len(s_new)),
                                  alpha, min_samples))
    elif min(len(s_ref), len(s_new)) < min_samples:
        checks.append(DriftCheck("shadow_parity", "z on means", None, None, len(s_ref), len(s_new), None, None,
                                 False, f"fewer than {min_samples} observations in a window"))
    else:
        z, p = mean_z(s_ref, s_new)
        checks.append(DriftCheck("shadow_parity", "z on means", sum(s_ref) / len(s_ref), sum(s_new) / len(s_new),
                                 len(s_ref), len(s_new), round(z, 4), p, p < alpha))
    checks.append(_tier_mix(reference, recent, alpha, min_samples))
    report = DriftReport(window, alpha, len(reference), len(recent), checks)
    for check in report.checks:
        if check.alarm:
            log.warning("routing drift: %s changed from %s to %s (%s, p=%.3g)", check.metric, check.reference,
                        check.recent, check.test, check.p_value)
    return report


def _tier_mix(reference: Sequence[RoutingRecord], recent: Sequence[RoutingRecord], alpha: float,
              min_n: int) -> DriftCheck:
    tiers = sorted({r.tier for r in [*reference, *recent] if r.tier})
    ref = [sum(1 for r in reference if r.tier == t) for t in tiers]
    new = [sum(1 for r in recent if r.tier == t) for t in tiers]
    mix = lambda counts: ({t: round(c / sum(counts), 4) for t, c in zip(tiers, counts)}  # noqa: E731
                          if sum(counts) else {})
    if min(sum(ref), sum(new)) < min_n:
        return DriftCheck("tier_mix", "chi-square", mix(ref), mix(new), sum(ref), sum(new), None, None, False,
                          f"fewer than {min_n} observations in a window")
    stat, dof, p = chi_square([ref, new])
    return DriftCheck("tier_mix", f"chi-square ({dof} dof)", mix(ref), mix(new), sum(ref), sum(new),
                      round(stat, 4), p, p < alpha)
