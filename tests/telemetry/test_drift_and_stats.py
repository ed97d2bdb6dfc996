"""Intervals and tests against textbook values; drift alarms on shifted windows only."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from langchain_tiered_router.core.errors import TelemetryError
from langchain_tiered_router.analysis.report import check_drift
from langchain_tiered_router.analysis.report.drift import parse_window, split_window
from langchain_tiered_router.core.telemetry import RoutingRecord
from langchain_tiered_router.analysis.eval.metrics import bootstrap_parity_ci
from langchain_tiered_router.analysis.report.stats import bootstrap_mean, chi2_sf, chi_square, two_proportion_z, wilson


def test_wilson_matches_published_values():
    # Newcombe (1998), 81/263: 0.2553 - 0.3662
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson(0, 10)[0] == pytest.approx(0.0) and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)


@pytest.mark.parametrize("x, dof, p", [(3.841459, 1, 0.05), (5.991465, 2, 0.05), (11.070498, 5, 0.05),
                                       (6.634897, 1, 0.01), (0.584375, 3, 0.9), (29.588298, 10, 0.001)])
def test_chi_square_tail_matches_tables(x, dof, p):
    assert chi2_sf(x, dof) == pytest.approx(p, rel=1e-4)


def test_chi_square_and_z_tests():
    stat, dof, p = chi_square([[10, 20, 30], [30, 20, 10]])
    assert (stat, dof) == (20.0, 2) and p == pytest.approx(math.exp(-10))
    z, p = two_proportion_z(10, 100, 25, 100)
    assert z == pytest.approx(2.7915, abs=1e-4) and p == pytest.approx(0.005247, rel=1e-3)
    assert two_proportion_z(5, 50, 5, 50) == (0.0, 1.0)


def test_bootstrap_intervals_cover_the_estimate_and_shrink_with_n():
    small = bootstrap_mean([0.0, 0.5, 1.0] * 10)
    large = bootstrap_mean([0.0, 0.5, 1.0] * 1000)
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1]
    assert (large[1] - large[0]) < (small[1] - small[0]) / 5
    low, high = bootstrap_parity_ci(np.array([1, 0, 1, 1] * 50, float), np.array([1, 1, 1, 1] * 50, float))
    assert low < 0.75 < high


def _records(spec: list[tuple[str, bool, float | None]], start: float = 1_000_000.0) -> list[RoutingRecord]:
    out = []
    for i, (tier, escalated, shadow) in enumerate(spec):
        attempts = ([{"tier": "cheap", "gate_passed": False}] if escalated else []) + \
            [{"tier": tier, "gate_passed": True}]
        out.append(RoutingRecord(
            request_id=f"r{i:05d}", ts=start + i, session_id=None, policy="cascade", integration="core",
            start_tier="cheap", start_reason="", tier=tier, model_id=tier, escalated=escalated,
            quality_escalations=int(escalated), transport_escalations=0, flagged=False, flag_reason=None,
            error=None, attempts=attempts, aux_calls=[], input_tokens=1, output_tokens=1, cache_read_tokens=0,
            cache_write_tokens=0, cost_usd=Decimal("0.001"), baseline_tier="frontier", baseline_model_id="f",
            baseline_cost_usd=Decimal("0.01"), savings_usd=Decimal("0.009"), latency_ms=1.0,
            shadow_score=shadow, shadow_status="done" if shadow is not None else None))
    return out


def _window(n: int, escalation_every: int, frontier_every: int, disagree_every: int):
    spec = []
    for i in range(n):
        tier = "frontier" if i % frontier_every == 0 else "cheap"
        shadow = None if tier == "frontier" or i % 2 else (0.0 if i % disagree_every == 0 else 1.0)
        spec.append((tier, i % escalation_every == 0, shadow))
    return spec


def test_no_alarm_when_the_recent_window_looks_like_the_reference():
    records = _records(_window(600, 5, 10, 8) + _window(300, 5, 10, 8))
    report = check_drift(records, "300")
    assert (report.n_reference, report.n_recent) == (600, 300)
    assert not report.alarm and all(c.p_value is not None and c.p_value > 0.5 for c in report.checks)


def test_alarm_on_each_shifted_metric(caplog):
    reference = _window(600, 5, 10, 8)
    shifted = _window(300, 2, 3, 3)  # more escalation, more frontier, more disagreement
    report = check_drift(_records(reference + shifted), "300")
    fired = {c.metric for c in report.checks if c.alarm}
    assert fired == {"escalation_rate", "gate_failure_rate", "shadow_parity", "tier_mix"}
    assert report.alarm and report.to_dict()["alarm"] is True
    assert any("routing drift: escalation_rate" in r.getMessage() for r in caplog.records)


def test_too_few_samples_never_alarm():
    report = check_drift(_records(_window(20, 5, 10, 8) + _window(10, 1, 1, 1)), "10")
    assert not report.alarm and all(c.note for c in report.checks)


def test_windows_by_duration_and_count():
    records = _records(_window(100, 5, 10, 8), start=0.0)  # one request per second
    ref, recent = split_window(records, "30s")
    assert len(recent) == 30 and len(ref) == 70
    assert parse_window("2h") == ("duration", 7200.0) and parse_window("500") == ("count", 500)
    for bad in ("soon", "0", "-5m", ""):
        with pytest.raises(TelemetryError):
            parse_window(bad)
