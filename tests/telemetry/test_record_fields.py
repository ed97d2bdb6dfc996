"""The record reads a result's attempts in one pass (it is built on the request path);
every derived field must still say what the result's own properties say."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from langchain_tiered_router.core.pricing import Usage
from langchain_tiered_router.core.telemetry.record import record_from_result
from langchain_tiered_router.core.types import (Attempt, AuxCall, GateVerdict, RouteRequest, RoutingResult,
                                                TierAnswer)

OUTCOMES = ("served", "gate_failed", "transport_error", "malformed", "error", "skipped")


def _attempt(tier: str, outcome: str, n: int, *, unknown_cost: bool = False, gate_error: bool = False) -> Attempt:
    verdict = GateVerdict(outcome == "served", "rule", "json_schema", error="ValueError" if gate_error else None)
    return Attempt(tier, f"m-{tier}", outcome, answer=TierAnswer(f"a{n}", model_id=f"m-{tier}-v2"),
                   verdict=verdict if outcome in ("served", "gate_failed") else None,
                   usage=Usage(10 + n, 3 + n, n % 2, n % 3), cost_usd=None if unknown_cost else Decimal(n) / 1000,
                   latency_ms=1.23456 * n)


def _results() -> list[RoutingResult]:
    out = []
    tiers = ("cheap", "mid", "frontier")
    for k, pattern in enumerate(itertools.product(OUTCOMES[1:], tiers, (False, True))):
        outcome, tier, twist = pattern
        attempts = [_attempt("cheap", outcome, 1, gate_error=twist and outcome == "gate_failed"),
                    _attempt(tier, "transport_error" if twist else outcome, 2),
                    _attempt("frontier", "served", 3, unknown_cost=twist and k % 4 == 1)]
        result = RoutingResult(f"r{k}", "cascade", "frontier", "m-frontier", "mid" if twist else "cheap", "why",
                               attempts=attempts, served=attempts[-1], baseline_cost_usd=Decimal("0.01"),
                               request=RouteRequest("q", metadata={"integration": "litellm", "team": "t", "n": 3,
                                                                   "obj": object()}))
        if k % 3 == 0:
            result.aux_calls.append(AuxCall("classify", "cheap", "m-cheap", Usage(5, 1), Decimal("0.0001"), 2.5))
        out.append(result)
    lone = _attempt("cheap", "served", 4)
    out.append(RoutingResult("single", "classifier", "frontier", "m-frontier", "cheap", "why", attempts=[lone],
                             served=lone, baseline_cost_usd=None))
    out.append(RoutingResult("nothing", "cascade", "frontier", "m-frontier", "cheap", "why", error="all failed"))
    return out


@pytest.mark.parametrize("result", _results(), ids=lambda r: r.request_id)
def test_each_derived_field_is_what_the_result_says(result):
    record = record_from_result(result)
    usage = result.total_usage
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens, record.cache_write_tokens) == (
        usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens)
    assert record.cost_usd == result.cost_usd
    assert record.savings_usd == result.savings_usd
    assert record.escalated == result.escalated
    assert record.quality_escalations == result.quality_escalations
    assert record.transport_escalations == result.transport_escalations
    assert record.gate_errors == result.gate_errors
    assert (record.tier, record.model_id) == (result.tier, result.model_id)
    assert record.attempts == [a.to_dict() for a in result.attempts]
    assert [c["purpose"] for c in record.aux_calls] == [c.purpose for c in result.aux_calls]
    assert record.error == (result.error if result.served is None else None)
    if result.request is not None:
        assert record.integration == "litellm" and record.metadata == {"integration": "litellm", "team": "t", "n": 3}


@pytest.mark.parametrize("result", _results(), ids=lambda r: r.request_id)
def test_the_routing_metadata_is_the_record_as_json_field_for_field_in_order(result):
    from dataclasses import fields

    from langchain_tiered_router.core.telemetry.record import RoutingRecord, routing_dict

    view = routing_dict(result)
    assert list(view) == [f.name for f in fields(RoutingRecord)]  # a new record field reaches the metadata
    assert view == record_from_result(result).json_view()
    assert RoutingRecord.from_json_dict(view) == record_from_result(result)


def test_money_is_a_plain_decimal_string_in_the_metadata_the_sinks_and_the_stored_json(tmp_path):
    """A one-token call costs 3.5E-8 as Decimal prints it; every serialised form says 0.000000035."""
    import json
    import sqlite3

    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.telemetry.record import routing_dict
    from langchain_tiered_router.core.telemetry.recorder import flush_all
    from langchain_tiered_router.core.testing import ScriptedBackend

    db = tmp_path / "t.db"
    router = build_router({"tiers": [{"name": "cheap", "model_id": "m-cheap", "price": {
        "input_per_mtok": 0.035, "output_per_mtok": 0.035}}, {"name": "top", "model_id": "m-top", "price": {
            "input_per_mtok": 0.035, "output_per_mtok": 0.035}}], "baseline": "top", "pinning": {"enabled": False},
        "telemetry": {"sinks": [{"kind": "sqlite", "path": str(db)}]}})
    result = router.route(RouteRequest("q"), ScriptedBackend({"cheap": TierAnswer("a", Usage(1, 0))}))
    assert result.cost_usd == Decimal("3.5E-8")
    shown = routing_dict(result)
    assert shown["cost_usd"] == "0.000000035" and Decimal(shown["savings_usd"]) == 0
    assert "E" not in shown["savings_usd"] and "E" not in shown["baseline_cost_usd"]
    flush_all()
    column, stored = sqlite3.connect(db).execute("select cost_usd, record from routing_records").fetchone()
    assert column == "0.000000035" and json.loads(stored)["cost_usd"] == "0.000000035"
    assert "E-" not in stored
