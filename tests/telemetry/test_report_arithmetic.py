"""The report's arithmetic against costs worked out by hand (see the rates in conftest)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from langchain_tiered_router.analysis.report import Label, load_records, summarize
from langchain_tiered_router.core.telemetry import MemorySink, Recorder, RoutingRecord, SqliteSink, routing_dict
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest

from .conftest import answer, cost


def _route_two(make_router, priced_config, sink):
    """A: cheap passes. B: cheap and mid fail the gate, frontier passes."""
    recorder = Recorder([sink])
    router = make_router(priced_config, observers=[recorder])
    backend = ScriptedBackend({
        "cheap": lambda r: answer("ok cheap" if r.text == "A" else "nope", 1000, 500),
        "mid": answer("still nope", 1000, 600),
        "frontier": answer("ok frontier", 1000, 800),
    })
    a = router.route(RouteRequest(text="A", request_id="req-a", session_id="s1"), backend)
    b = router.route(RouteRequest(text="B", request_id="req-b"), backend)
    recorder.flush()
    return recorder, a, b


def test_escalated_request_pays_every_attempt_and_baseline_uses_the_served_tokens(make_router, priced_config,
                                                                                  tmp_path):
    sink = SqliteSink(tmp_path / "t.db")
    recorder, a, b = _route_two(make_router, priced_config, sink)
    records, labels = load_records(tmp_path / "t.db")
    assert [r.request_id for r in records] == ["req-a", "req-b"]
    ra, rb = records
    assert ra.cost_usd == cost("cheap", 1000, 500) == Decimal("0.002")
    assert ra.baseline_cost_usd == cost("frontier", 1000, 500) == Decimal("0.04")
    assert rb.cost_usd == cost("cheap", 1000, 500) + cost("mid", 1000, 600) + cost("frontier", 1000, 800)
    assert rb.cost_usd == Decimal("0.065")
    assert rb.baseline_cost_usd == Decimal("0.052")
    assert rb.savings_usd == Decimal("-0.013")  # an escalated request can cost more than the baseline
    assert [x["tier"] for x in rb.attempts] == ["cheap", "mid", "frontier"]
    assert [x["gate_passed"] for x in rb.attempts] == [False, False, True]
    assert rb.escalated and not ra.escalated
    assert ra.session_id == "s1" and ra.tier == "cheap" and rb.model_id == "test.frontier-v1"
    assert labels == {}

    s = summarize(records, tier_order=["cheap", "mid", "frontier"])
    assert s.actual_cost_usd == Decimal("0.067")
    assert s.baseline_cost_usd == Decimal("0.092")
    assert s.savings_pct == pytest.approx(1 - 0.067 / 0.092)
    assert s.escalation_rate == 0.5
    rows = {t.tier: t for t in s.tiers}
    assert (rows["cheap"].served, rows["cheap"].attempts, rows["cheap"].cost_usd) == (1, 2, Decimal("0.004"))
    assert rows["cheap"].gate_pass_rate == 0.5
    assert (rows["mid"].served, rows["mid"].attempts, rows["mid"].gate_pass_rate) == (0, 1, 0.0)
    assert rows["frontier"].cost_usd == Decimal("0.052") and rows["frontier"].gate_pass_rate == 1.0
    assert rows["cheap"].input_tokens == 2000 and rows["mid"].output_tokens == 600
    assert s.parity is None and "not measured" in s.headline()


def test_unknown_cost_is_left_out_and_counted_not_taken_as_zero(make_router, priced_config):
    sink = MemorySink()
    _route_two(make_router, priced_config, sink)
    a, b = sink.records
    b.cost_usd = None  # as a model the cost map does not price would leave it
    s = summarize([a, b])
    assert (s.priced, s.unpriced) == (1, 1)
    assert s.actual_cost_usd == Decimal("0.002") and s.baseline_cost_usd == Decimal("0.04")
    assert s.savings_pct == pytest.approx(0.95)
    assert summarize([b]).savings_pct is None and "unknown" in summarize([b]).headline()


def test_labels_give_parity_as_a_ratio_with_a_bootstrap_interval(make_router, priced_config):
    sink = MemorySink()
    _route_two(make_router, priced_config, sink)
    labels = {"req-a": Label("req-a", 0.0, 1.0), "req-b": Label("req-b", 1.0, 1.0)}
    s = summarize(sink.records, labels)
    assert s.parity is not None and s.parity.source == "labels"
    assert s.parity.value == 0.5 and s.parity.n == 2
    assert "bootstrap" in s.parity.method
    assert 0.0 <= s.parity.low <= 0.5 <= s.parity.high <= 1.0
    assert s.headline().startswith(f"{(1 - 0.067 / 0.092) * 100:.1f} % cheaper at 50.0 % quality parity")


def test_shadow_parity_lifts_agreement_by_the_share_served_below_the_baseline(make_router, priced_config):
    sink = MemorySink()
    _route_two(make_router, priced_config, sink)
    a, b = sink.records
    a.shadow_status, a.shadow_score = "done", 0.0
    s = summarize([a, b])
    # half the requests were served below the baseline, and those disagree: 0.5 + 0.5 * 0
    assert s.parity.value == 0.5 and s.parity.source == "shadow"
    assert s.parity.detail["share_served_below_baseline"] == 0.5
    assert "Wilson" in s.parity.method


def test_parity_covers_the_requests_savings_covers_an_unanswered_one_counting_as_quality_0(
        make_router, priced_config):
    """A request whose ladder was exhausted paid for its attempts (in the savings); its
    label cannot count as served quality (in the parity): 0, and the report says so."""
    sink = MemorySink()
    priced_config["on_exhausted"] = "raise"
    recorder = Recorder([sink])
    router = make_router(priced_config, observers=[recorder])
    backend = ScriptedBackend({"*": lambda r: answer("ok" if r.text == "good" else "nope", 1000, 500)})
    router.route(RouteRequest(text="good", request_id="good"), backend)
    with pytest.raises(Exception):
        router.route(RouteRequest(text="bad", request_id="bad"), backend)
    recorder.flush()
    labels = {"good": Label("good", 1.0, 1.0), "bad": Label("bad", 1.0, 1.0)}  # a label claiming it served
    s = summarize(sink.records, labels)
    assert s.priced == 2 and s.errors == 1  # both in the savings
    assert (s.parity.value, s.parity.n, s.parity.detail["unanswered_counted_as_0"]) == (0.5, 2, 1)
    # shadows: the unanswered request reached the baseline tier, which failed too: neither side
    good = next(r for r in sink.records if r.request_id == "good")
    good.shadow_status, good.shadow_score = "done", 1.0
    assert summarize(sink.records).parity.value == 1.0
    priced_config["policy"] = {"kind": "cascade", "max_escalations": 0}  # stops below the baseline tier
    router = make_router(priced_config, observers=[recorder])
    with pytest.raises(Exception):
        router.route(RouteRequest(text="bad", request_id="bad-early"), backend)
    recorder.flush()
    shadow = summarize(sink.records).parity
    assert shadow.detail["unanswered_counted_as_0"] == 1 and shadow.value == pytest.approx(0.5)


def test_text_is_kept_only_when_asked(make_router, priced_config, tmp_path):
    backend = ScriptedBackend({"*": answer("ok secret answer", 10, 10)})
    for store_text in (False, True):
        path = tmp_path / f"{store_text}.db"
        recorder = Recorder([SqliteSink(path)], store_text=store_text)
        make_router(priced_config, observers=[recorder]).route(RouteRequest(text="secret prompt"), backend)
        recorder.close()
        raw = path.read_bytes()
        (record,), _ = load_records(path)
        if store_text:
            assert (record.prompt_text, record.answer_text) == ("secret prompt", "ok secret answer")
        else:
            assert record.prompt_text is None and record.answer_text is None
            assert b"secret" not in raw


def test_a_record_from_response_metadata_matches_the_one_from_the_result(make_router, priced_config):
    sink = MemorySink()
    _, a, b = _route_two(make_router, priced_config, sink)
    direct = {r.request_id: r for r in sink.records}
    for result in (a, b):
        from_meta = RoutingRecord.from_json_dict(routing_dict(result))
        want = direct[result.request_id]
        for name in ("request_id", "ts", "tier", "model_id", "escalated", "attempts", "input_tokens",
                     "output_tokens", "cost_usd", "baseline_cost_usd", "baseline_model_id", "savings_usd"):
            assert getattr(from_meta, name) == getattr(want, name), name
        assert from_meta.to_json_dict() == want.to_json_dict()  # one shape: the same record, whole


def test_tiers_a_classifier_sent_requests_to_straight_are_listed_in_ladder_order(make_router, priced_config):
    """No escalation orders them: the report lists the tiers cheapest first and the
    baseline last, whatever order the requests came in (it listed mid, cheap, frontier)."""
    sink = MemorySink()
    recorder = Recorder([sink])
    router = make_router({**priced_config, "gates": [], "access": {"allow_tier_request": ["*"]}}, observers=[recorder])
    backend = ScriptedBackend({name: answer(f"ok {name}", 1000, 500) for name in ("cheap", "mid", "frontier")})
    for i, tier in enumerate(["mid", "frontier", "cheap", "mid"]):
        router.route(RouteRequest(text=f"q{i}", request_id=f"req-{i}", requested_tier=tier), backend)
    recorder.flush()
    assert [r.tier for r in sink.records] == ["mid", "frontier", "cheap", "mid"]
    assert not any(r.escalated for r in sink.records)
    assert [t.tier for t in summarize(sink.records).tiers] == ["cheap", "mid", "frontier"]
