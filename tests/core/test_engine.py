"""The escalation loop through the core alone, with a scripted backend."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from langchain_tiered_router.core import (GateFailed, LadderExhaustedError, RouteRequest, Router, TierNotAllowedError,
                                          TransportError, Usage)
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.errors import MalformedReplyError, TierCallError
from langchain_tiered_router.core.pricing import lookup_price
from langchain_tiered_router.core.testing import ScriptedBackend

MICRO, PRO, SONNET = (lookup_price(m) for m in ("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0",
                                               "anthropic.claude-sonnet-4-5-20250929-v1:0"))


def answer(text: str, inp: int = 100, out: int = 20):
    from langchain_tiered_router.core import TierAnswer

    return TierAnswer(text=text, usage=Usage(inp, out))


def router(config: dict, records: list | None = None) -> Router:
    observers = [lambda result, request, backend: records.append(result)] if records is not None else []
    return build_router(config, observers=observers, sleep=lambda s: None)


def test_json_escalation_cheap_mid_frontier_pays_every_attempt(base_config):
    records: list = []
    backend = ScriptedBackend({"cheap": answer('{"total": "twelve"}'), "mid": answer("Total is 12"),
                               "frontier": answer('{"total": 12.5}', out=30)})
    result = router(base_config, records).route(RouteRequest("Extract the invoice total"), backend)
    assert result.tier == "frontier" and result.escalated and not result.flagged
    assert [a.outcome for a in result.attempts] == ["gate_failed", "gate_failed", "served"]
    assert "schema violation at total" in result.attempts[0].verdict.reason
    assert result.attempts[1].verdict.reason == "no JSON value in the answer"
    expected = MICRO.cost(Usage(100, 20)) + PRO.cost(Usage(100, 20)) + SONNET.cost(Usage(100, 30))
    assert result.cost_usd == expected
    assert result.baseline_cost_usd == SONNET.cost(Usage(100, 30))
    assert result.savings_usd == -(MICRO.cost(Usage(100, 20)) + PRO.cost(Usage(100, 20)))
    assert result.quality_escalations == 2 and result.transport_escalations == 0
    assert records == [result]


def test_the_baseline_tier_called_on_the_way_up_is_its_own_counterfactual(base_config):
    """With ``baseline: mid``, mid's own answer (failed, 11 output tokens) prices the
    counterfactual, not mid's rates on the frontier answer's 30 tokens."""
    backend = ScriptedBackend({"cheap": answer("no json"), "mid": answer("Total is 12", out=11),
                               "frontier": answer('{"total": 12.5}', out=30)})
    result = router({**base_config, "baseline": "mid"}).route(RouteRequest("Extract the invoice total"), backend)
    assert result.tier == "frontier" and result.attempts[1].outcome == "gate_failed"
    assert result.baseline_cost_usd == PRO.cost(Usage(100, 11)) == result.attempts[1].cost_usd
    # a baseline tier that was not called (cheap served): the served answer's tokens, as before
    served = router({**base_config, "baseline": "mid"}).route(RouteRequest("x"),
                                                              ScriptedBackend({"cheap": answer('{"total": 3}')}))
    assert served.baseline_cost_usd == PRO.cost(Usage(100, 20))


def test_cheap_answer_that_passes_is_served_and_saves(base_config):
    backend = ScriptedBackend({"cheap": answer('{"total": 3}')})
    result = router(base_config).route(RouteRequest("x"), backend)
    assert result.tier == "cheap" and not result.escalated
    assert result.cost_usd == Decimal("0.0000063")  # 100 * 0.035e-6 + 20 * 0.14e-6
    assert result.baseline_cost_usd == Decimal("0.0006")  # 100 * 3e-6 + 20 * 15e-6
    assert backend.calls == [("cheap", "x")]


def test_an_answer_from_a_response_cache_costs_nothing(base_config):
    """A cache in front of the model (LiteLLM's) answered cheap: no call was billed, so
    the attempt costs 0; the tier called for real is priced as ever."""
    from langchain_tiered_router.core import TierAnswer
    from langchain_tiered_router.core.telemetry.record import record_from_result

    cached = TierAnswer(text="no json", usage=Usage(100, 20), cache_hit=True)
    backend = ScriptedBackend({"cheap": cached, "mid": answer('{"total": 12}')})
    result = router(base_config).route(RouteRequest("x"), backend)
    cheap, mid = result.attempts
    assert (cheap.cache_hit, cheap.cost_usd, cheap.usage) == (True, Decimal(0), Usage(100, 20))
    assert (mid.cache_hit, mid.cost_usd) == (False, PRO.cost(Usage(100, 20)))
    assert result.cost_usd == PRO.cost(Usage(100, 20))
    assert [a["cache_hit"] for a in record_from_result(result).attempts] == [True, False]


def test_max_escalations_caps_depth_and_flags(base_config):
    base_config["policy"] = {"kind": "cascade", "max_escalations": 1}
    backend = ScriptedBackend({"*": answer("no json")})
    result = router(base_config).route(RouteRequest("x"), backend)
    assert [a.tier for a in result.attempts] == ["cheap", "mid"]
    assert result.flagged and result.tier == "mid"
    assert "no tier passed the gates" in result.flag_reason


def test_raise_terminal_holds_every_attempt(base_config):
    base_config["on_exhausted"] = "raise"
    records: list = []
    with pytest.raises(LadderExhaustedError) as info:
        router(base_config, records).route(RouteRequest("x"), ScriptedBackend({"*": answer("no json")}))
    assert [type(e) for e in info.value.exceptions] == [GateFailed] * 3
    assert [e.tier for e in info.value.exceptions] == ["cheap", "mid", "frontier"]
    assert len(records) == 1 and records[0].served is None and records[0].error


def test_a_gate_that_throws_fails_with_its_reason_and_escalates(base_config):
    base_config["gates"] = [{"kind": "rule", "function": "tests.core.rules:explode_on_cheap"}]
    backend = ScriptedBackend({"cheap": answer("cheap says"), "mid": answer("mid says")})
    result = router(base_config).route(RouteRequest("x"), backend)
    assert result.tier == "mid"
    # the exception's message quotes the answer: the reason names its type, the detail (store_text only) the rest
    assert result.attempts[0].verdict.reason == "gate raised RuntimeError"
    assert result.attempts[0].verdict.detail == "gate raised RuntimeError: rule blew up on 'cheap says'"


def test_throttling_retries_then_escalates_as_transport(base_config):
    throttle = TransportError("ThrottlingException", tier="cheap", model_id="m", kind="throttled")
    backend = ScriptedBackend({"cheap": [throttle, throttle, throttle, answer('{"total": 1}')],
                               "mid": answer('{"total": 2}')})
    result = router(base_config).route(RouteRequest("x"), backend)
    assert result.tier == "mid"
    cheap = result.attempts[0]
    assert (cheap.outcome, cheap.retries, cheap.retried_on) == ("transport_error", 2, ["throttled", "throttled"])
    assert result.transport_escalations == 1 and result.quality_escalations == 0
    assert [c[0] for c in backend.calls] == ["cheap", "cheap", "cheap", "mid"]


@pytest.mark.parametrize("error", [
    TransportError("ThrottlingException", tier="cheap", model_id="m", kind="throttled"),
    MalformedReplyError("bad body", tier="cheap", model_id="m"),
    TierCallError("AccessDenied", tier="cheap", model_id="m")])
def test_a_failure_already_delivered_to_the_caller_is_recorded_not_retried_or_escalated(base_config, error):
    """A proxy that made the call itself has answered its client with the error: retrying
    or escalating would spend on an answer nobody receives."""
    records: list = []
    error.delivered = True
    backend = ScriptedBackend({"cheap": error, "mid": answer('{"total": 2}')})
    with pytest.raises(LadderExhaustedError):
        router(base_config, records).route(RouteRequest("x"), backend)
    (record,) = records
    assert [c[0] for c in backend.calls] == ["cheap"]
    assert [(a.tier, a.retries) for a in record.attempts] == [("cheap", 0)]
    assert "its error reached the caller" in record.error


def test_a_failure_that_stands_for_several_calls_counts_each_in_the_circuit(base_config):
    """A backend that retried by itself (LiteLLM's router, on the proxy's own call) reports
    one failure for its tries: the circuit breaker counts every call, as if the engine had
    made them, and the next request skips the tier."""
    base_config["circuit"] = {"failures": 3, "cooldown_s": 60}
    base_config["retry"] = {"max_retries": 0}
    failed = TransportError("failed over after 3 tries", tier="cheap", model_id="m", kind="failed_over")
    failed.calls = 3
    engine = router(base_config)
    backend = ScriptedBackend({"cheap": failed, "mid": [answer('{"total": 2}'), answer('{"total": 3}')]})
    first = engine.route(RouteRequest("x"), backend)
    assert [(a.tier, a.outcome, a.error_kind) for a in first.attempts] == [
        ("cheap", "transport_error", "failed_over"), ("mid", "served", None)]
    second = engine.route(RouteRequest("y"), backend)
    assert [(a.tier, a.outcome, a.error_kind) for a in second.attempts] == [
        ("cheap", "skipped", "circuit_open"), ("mid", "served", None)]
    assert [c[0] for c in backend.calls] == ["cheap", "mid", "mid"]


def test_transport_retry_recovers_on_the_same_tier(base_config):
    throttle = TransportError("503", tier="cheap", model_id="m", kind="server_error")
    backend = ScriptedBackend({"cheap": [throttle, answer('{"total": 1}')]})
    result = router(base_config).route(RouteRequest("x"), backend)
    assert result.tier == "cheap" and result.attempts[0].retries == 1 and not result.escalated


def test_transport_raise_config_does_not_escalate(base_config):
    base_config["retry"] = {"max_retries": 0, "on_exhausted": "raise"}
    backend = ScriptedBackend({"cheap": TransportError("timeout", tier="cheap", model_id="m", kind="timeout")})
    with pytest.raises(LadderExhaustedError) as info:
        router(base_config).route(RouteRequest("x"), backend)
    assert isinstance(info.value.exceptions[0], TransportError)
    assert info.value.exceptions[0].kind == "timeout"


def test_malformed_reply_escalates(base_config):
    backend = ScriptedBackend({"cheap": MalformedReplyError("bad body", tier="cheap", model_id="m"),
                               "mid": answer('{"total": 2}')})
    result = router(base_config).route(RouteRequest("x"), backend)
    assert result.tier == "mid" and result.attempts[0].outcome == "malformed"


def test_unexpected_backend_error_is_recorded_and_raised(base_config):
    records: list = []
    backend = ScriptedBackend({"cheap": KeyError("boom")})
    with pytest.raises(KeyError):  # a bug, not a failed tier call: it propagates as itself
        router(base_config, records).route(RouteRequest("x"), backend)
    assert records[0].attempts[0].outcome == "error" and records[0].error == "KeyError: 'boom'"


def test_a_failed_tier_call_is_an_attempt_failure(base_config):
    records: list = []
    backend = ScriptedBackend({"cheap": TierCallError("ValidationException", tier="cheap", model_id="m")})
    with pytest.raises(LadderExhaustedError) as info:
        router(base_config, records).route(RouteRequest("x"), backend)
    assert [type(e) for e in info.value.exceptions] == [TierCallError]
    assert records[0].attempts[0].outcome == "error"


def test_a_bug_on_an_escalated_tier_is_not_served_as_a_flagged_answer(base_config, caplog):
    """Before: a TypeError on mid served cheap's gate-failed answer, flagged, silently."""
    records: list = []
    backend = ScriptedBackend({"cheap": answer("no json"), "mid": TypeError("unsupported operand")})
    with pytest.raises(TypeError):
        router(base_config, records).route(RouteRequest("x"), backend)
    (result,) = records
    assert result.served is None and not result.flagged
    assert [a.outcome for a in result.attempts] == ["gate_failed", "error"]
    assert result.error == "TypeError: unsupported operand"


def test_classifier_policy_starts_at_the_predicted_tier(base_config):
    base_config["gates"] = []
    base_config["policy"] = {"kind": "classifier", "classifier": {
        "kind": "rules", "rules": [{"tier": "frontier", "keywords": ["prove"]}, {"tier": "mid", "min_chars": 40}]}}
    r = router(base_config)
    backend = ScriptedBackend({})
    assert r.route(RouteRequest("Prove that sqrt 2 is irrational"), backend).tier == "frontier"
    assert r.route(RouteRequest("x" * 50), backend).tier == "mid"
    short = r.route(RouteRequest("hi"), backend)
    assert short.tier == "cheap" and short.start_reason == "rules: no rule matched"
    assert r.streams_through(RouteRequest("hi"))


def test_llm_classifier_pays_its_own_call(base_config):
    base_config["gates"] = []
    base_config["policy"] = {"kind": "classifier", "classifier": {"kind": "llm"}}
    backend = ScriptedBackend({"cheap": lambda req: answer("mid", 50, 1) if "TIER:" in req.text else answer("c"),
                               "mid": answer("the mid answer")})
    result = router(base_config).route(RouteRequest("hard question"), backend)
    assert result.tier == "mid" and result.start_reason == "llm: said 'mid'"
    assert [c.purpose for c in result.aux_calls] == ["classifier"]
    assert result.cost_usd == MICRO.cost(Usage(50, 1)) + PRO.cost(Usage(100, 20))


def test_confidence_policy_escalates_on_doubt(base_config):
    base_config["gates"] = []
    base_config["policy"] = {"kind": "confidence", "confidence": {"kind": "confidence", "threshold": 0.6}}
    backend = ScriptedBackend({"cheap": answer("42. Confidence: 0.3"), "mid": answer("[[ESCALATE]]"),
                               "frontier": answer("42. Confidence: 90%")})
    result = router(base_config).route(RouteRequest("q"), backend)
    assert result.tier == "frontier"
    assert result.attempts[0].verdict.reason == "self_rating confidence 0.30 < 0.60"
    assert result.attempts[1].verdict.reason == "sentinel confidence 0.00 < 0.60"


@pytest.mark.parametrize("text, expected", [
    ("42. Confidence: 0.3", 0.3), ("42. confidence 40%", 0.4), ("42. Confidence: 4/5", 0.8),
    ("42. Confidence: 3 / 5", 0.6), ("42. Confidence: 7 out of 10", 0.7), ("42. Confidence: 0,4", 0.4),
    ("42. Confidence: 8", 0.8), ("42. Confidence: 85", 0.85), ("42. Confidence level: .7", 0.7),
    ("42. Confidence: 4, I think", 0.4), ("42.", None),
    ("42.\n\n**Confidence:** 0.3", 0.3), ("42. Confidence: **0.3**", 0.3), ("42. Confidence: `0.3`", 0.3),
    ("42. Confidence (0-1): 0.3", 0.3), ("42. _Confidence rating_: 3/10", 0.3),
])
def test_a_self_rating_is_read_on_the_scale_the_model_wrote(text, expected):
    from langchain_tiered_router.core.confidence import self_rating

    assert self_rating(text) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("text", ["I don't know.", "I don\u2019t know.", "I DON\u02bcT KNOW", "i don\u2018t know"])
def test_an_abstention_is_found_whatever_apostrophe_the_model_wrote(text):
    from langchain_tiered_router.core.confidence import sentinel

    assert sentinel(text, ["I don't know"]) == 0.0 and sentinel(text, ["I don\u2019t know"]) == 0.0
    assert sentinel("I know.", ["I don't know"]) is None


def test_a_sentinel_inside_the_answers_code_is_no_abstention(base_config):
    """An answer that is code holding the sentinel (a constant "[[ESCALATE]]", a program
    that prints "I don't know") read as the model abstaining: it climbed every tier and
    paid all three. Code blocks and inline code are not read for sentinels."""
    from langchain_tiered_router.core.confidence import sentinel

    code = 'Here it is:\n```python\nSENTINEL = "[[ESCALATE]]"\nprint("I don\'t know")\n```'
    sentinels = ["[[ESCALATE]]", "I don't know"]
    assert sentinel(code, sentinels) is None and sentinel("Mark it with `[[ESCALATE]]`.", sentinels) is None
    assert sentinel(code + "\nI don't know if it runs.", sentinels) == 0.0  # prose after the code still counts
    base_config["gates"] = []
    base_config["policy"] = {"kind": "confidence", "confidence": {"kind": "confidence", "threshold": 0.6}}
    backend = ScriptedBackend({"cheap": answer(code), "mid": answer("mid"), "frontier": answer("frontier")})
    assert router(base_config).route(RouteRequest("q"), backend).tier == "cheap"


def test_malformed_replies_escalate_or_raise_by_retry_on_exhausted_and_count_as_failed_calls(base_config):
    """Like a transport error: retried, then ``retry.on_exhausted``; not a quality step
    (``max_escalations`` does not stop it, nor is it a quality escalation)."""
    def broken(req):
        raise MalformedReplyError("no output", tier="cheap", model_id="m")

    base_config["gates"] = []
    base_config["policy"] = {"kind": "cascade", "max_escalations": 0}
    result = router(base_config).route(RouteRequest("q"), ScriptedBackend({"cheap": broken, "mid": answer("ok")}))
    assert result.tier == "mid" and [a.outcome for a in result.attempts] == ["malformed", "served"]
    assert (result.transport_escalations, result.quality_escalations) == (1, 0)
    base_config["policy"] = {"kind": "cascade"}
    base_config["retry"] = {"on_exhausted": "raise", "max_retries": 0}
    with pytest.raises(LadderExhaustedError) as info:
        router(base_config).route(RouteRequest("q"), ScriptedBackend({"cheap": broken, "mid": answer("ok")}))
    assert [a.outcome for a in info.value.result.attempts] == ["malformed"]


def test_quality_escalations_count_escalations_not_gate_failures(base_config):
    base_config["policy"] = {"kind": "cascade", "max_escalations": 0}
    base_config["on_exhausted"] = "flag"
    result = router(base_config).route(RouteRequest("q"), ScriptedBackend({"cheap": answer("not json")}))
    assert result.flagged and not result.escalated
    assert [a.outcome for a in result.attempts] == ["gate_failed"] and result.quality_escalations == 0


def test_self_grade_gate_is_priced_as_an_aux_call(base_config):
    base_config["gates"] = [{"kind": "self_grade", "threshold": 7}]
    def cheap(req):
        return answer("3", 80, 1) if "SCORE:" in req.text else answer("a weak answer")
    backend = ScriptedBackend({"cheap": cheap, "mid": answer("a strong answer")})
    # the grader scores 3 for every answer: cheap and mid fail, frontier too, flagged
    result = router(base_config).route(RouteRequest("q"), backend)
    assert [c.purpose for c in result.aux_calls] == ["self_grade"] * 3
    assert result.flagged
    assert result.attempts[0].verdict.reason == "grade 3 < 7"


def test_session_pinning_keeps_a_conversation_on_its_tier(base_config):
    r = router(base_config)
    backend = ScriptedBackend({"cheap": answer("no json"), "mid": answer('{"total": 1}'), "frontier": answer("x")})
    first = r.route(RouteRequest("turn 1", session_id="s1"), backend)
    assert first.tier == "mid"
    backend.script["cheap"] = answer('{"total": 2}')
    second = r.route(RouteRequest("turn 2", session_id="s1"), backend)
    assert second.start_tier == "mid" and second.start_reason == "pinned by session s1"
    assert r.route(RouteRequest("other", session_id="s2"), backend).tier == "cheap"


def test_a_request_served_past_an_outage_does_not_move_its_sessions_pin(base_config):
    """A tier that failed to answer (throttled, its circuit open) sends the request up the
    ladder; its session's pin stays where it was, or one short outage would keep the
    conversation on a dearer tier for good. A gate failure moves it, as before."""
    from langchain_tiered_router.core.errors import TransportError

    base_config["retry"] = {"max_retries": 0}
    r = router(base_config)
    down = TransportError("throttled", tier="mid", model_id="m", kind="throttled")
    backend = ScriptedBackend({"cheap": answer("no json"), "mid": [down, answer('{"total": 1}')],
                               "frontier": answer('{"total": 2}')})
    first = r.route(RouteRequest("turn 1", session_id="s1"), backend)
    assert [(a.tier, a.outcome) for a in first.attempts] == [
        ("cheap", "gate_failed"), ("mid", "transport_error"), ("frontier", "served")]
    second = r.route(RouteRequest("turn 2", session_id="s1"), backend)  # mid is back
    assert second.start_reason != "pinned by session s1" and second.tier == "mid"  # a gate failure: pinned
    third = r.route(RouteRequest("turn 3", session_id="s1"), backend)
    assert (third.start_tier, third.start_reason, third.tier) == ("mid", "pinned by session s1", "mid")


def test_a_pinned_session_goes_on_when_the_breakers_store_is_down(base_config):
    """Reading whether a pinned tier's circuit is open fails (its Redis is down): read as
    closed, as the breaker's own ``allow`` reads an outage; the request is served."""
    r = router(base_config)
    backend = ScriptedBackend({"cheap": answer("no json"), "mid": answer('{"total": 1}'), "frontier": answer("x")})
    assert r.route(RouteRequest("turn 1", session_id="s1"), backend).tier == "mid"

    class Down:
        def allow(self, tier):
            return True

        def record(self, tier, ok):
            pass

        def state(self, tier):
            raise ConnectionError("redis is down")

    r.breaker = Down()
    second = r.route(RouteRequest("turn 2", session_id="s1"), backend)
    assert (second.start_reason, second.tier) == ("pinned by session s1", "mid")


def test_requested_tier_needs_permission(base_config):
    base_config["access"] = {"allow_tier_request": ["team:team-a"], "on_forbidden": "reject"}
    records: list = []
    r = router(base_config, records)
    backend = ScriptedBackend({"*": answer('{"total": 1}')})
    assert r.route(RouteRequest("x", requested_tier="frontier", caller="team:team-a"), backend).tier == "frontier"
    with pytest.raises(TierNotAllowedError):
        r.route(RouteRequest("x", requested_tier="frontier", caller="team:team-b"), backend)
    with pytest.raises(TierNotAllowedError):  # a bare name is a user id: the user "team-a" is not the team
        r.route(RouteRequest("x", requested_tier="frontier", caller="team-a"), backend)
    assert records[-1].error.startswith("TierNotAllowedError")
    base_config["access"]["on_forbidden"] = "ignore"
    ignored = router(base_config).route(RouteRequest("x", requested_tier="frontier", caller="team:team-b"), backend)
    assert ignored.tier == "cheap"


def test_async_route_matches_sync(base_config):
    backend = ScriptedBackend({"cheap": answer("no"), "mid": answer('{"total": 1}')})
    result = asyncio.run(router(base_config).aroute(RouteRequest("x"), backend))
    assert result.tier == "mid" and result.cost_usd == MICRO.cost(Usage(100, 20)) + PRO.cost(Usage(100, 20))


def test_gates_compose_with_and_or():
    from langchain_tiered_router.core import GateState, JsonSchemaGate, RegexGate, TierAnswer
    from langchain_tiered_router.core.tiers import Tier

    tier = Tier("cheap", "m", None)
    both = JsonSchemaGate({"type": "object"}) & RegexGate("total")
    either = RegexGate("^no$") | RegexGate("total")
    state = GateState(RouteRequest("q"), TierAnswer('{"total": 1}'), tier)
    assert both.judge(state).passed and either.judge(state).passed
    bad = GateState(RouteRequest("q"), TierAnswer("[1]"), tier)
    assert not both.judge(bad).passed
    verdict = either.judge(bad)
    assert not verdict.passed and "pattern not found" in verdict.reason


def test_observer_failure_never_fails_the_request(base_config, caplog):
    def broken(result, request, backend):
        raise RuntimeError("sink down")

    r = build_router(base_config, observers=[broken])
    result = r.route(RouteRequest("x"), ScriptedBackend({"*": answer('{"total": 1}')}))
    assert result.tier == "cheap"
    assert "routing observer" in caplog.text


def test_a_gate_that_raises_is_logged_once_and_counted(base_config, caplog):
    base_config["gates"] = [{"kind": "rule", "function": "tests.core.rules:explode_on_cheap"}]
    backend = ScriptedBackend({"cheap": answer("cheap says"), "mid": answer("mid says")})
    r = router(base_config)
    first, second = (r.route(RouteRequest("x"), backend) for _ in range(2))
    assert first.gate_errors == second.gate_errors == 1
    assert first.attempts[0].verdict.error == "RuntimeError"  # the type: the message quotes the answer
    logged = [rec for rec in caplog.records if "raised RuntimeError" in rec.getMessage()]
    assert len(logged) == 1 and "explode_on_cheap" in logged[0].getMessage()  # once, with where it raised
    assert "cheap says" not in caplog.text  # not the message: it quotes the answer


def test_a_throttled_grader_is_retried_not_escalated(base_config):
    base_config["gates"] = [{"kind": "self_grade", "threshold": 7}]
    throttle = TransportError("ThrottlingException", tier="cheap", model_id="m", kind="throttled")
    grades = [throttle, answer("9", 80, 1)]

    def cheap(req):
        if "SCORE:" in req.text:
            reply = grades.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        return answer("a fine answer")

    result = router(base_config).route(RouteRequest("q"), ScriptedBackend({"cheap": cheap}))
    assert result.tier == "cheap" and not result.escalated  # before: the throttle failed the gate
    assert [(c.purpose, c.retries) for c in result.aux_calls] == [("self_grade", 1)]


@pytest.mark.parametrize("route", ["route", "aroute"])
def test_a_grader_call_that_fails_is_in_the_record_with_its_error_and_no_cost(base_config, route):
    """A self-grade whose tier stayed down failed the gate, and the call left no trace in
    ``aux_calls`` (its retries neither): it is there, costing nothing, with what ended it."""
    import asyncio

    from langchain_tiered_router.core.telemetry.record import record_from_result

    base_config["gates"] = [{"kind": "self_grade", "threshold": 7, "grader_tier": "mid"}]
    base_config["retry"] = {"max_retries": 1, "backoff_s": 0}
    down = TransportError("ServiceUnavailableException", tier="mid", model_id="m", kind="server_error")

    def mid(req):
        if "SCORE:" in req.text:
            raise down
        return answer("a fine mid answer")

    backend = ScriptedBackend({"cheap": answer("a cheap answer"), "mid": mid, "frontier": answer("frontier")})
    r = router(base_config)
    result = r.route(RouteRequest("q"), backend) if route == "route" else asyncio.run(r.aroute(RouteRequest("q"),
                                                                                               backend))
    graders = [c for c in result.aux_calls if c.purpose == "self_grade" and c.tier == "mid"]
    assert graders and all(c.error_kind == "server_error" and c.retries == 1 and c.cost_usd == 0 for c in graders)
    assert "ServiceUnavailableException" in graders[0].error
    row = record_from_result(result).aux_calls
    assert any(c.get("error_kind") == "server_error" and c["cost_usd"] in ("0", "0.0", 0) for c in row), row
    assert result.cost_usd == sum(a.cost_usd for a in result.attempts) + sum(c.cost_usd for c in result.aux_calls)


def test_a_throttled_llm_classifier_is_retried(base_config):
    base_config["gates"] = []
    base_config["policy"] = {"kind": "classifier", "classifier": {"kind": "llm"}}
    throttle = TransportError("ThrottlingException", tier="cheap", model_id="m", kind="throttled")
    labels = [throttle, answer("mid", 50, 1)]

    def cheap(req):
        reply = labels.pop(0) if "TIER:" in req.text else answer("c")
        if isinstance(reply, Exception):
            raise reply
        return reply

    result = router(base_config).route(RouteRequest("hard"), ScriptedBackend({"cheap": cheap, "mid": answer("m")}))
    assert result.tier == "mid" and result.aux_calls[0].retries == 1


def test_request_ids_stay_unique_when_a_program_seeds_random_and_in_a_forked_child():
    import os
    import random

    from langchain_tiered_router.core.types import new_request_id

    random.seed(7)
    first = [RouteRequest("x").request_id for _ in range(1_000)]
    random.seed(7)  # the program's seed does not drive the router's ids
    again = [RouteRequest("x").request_id for _ in range(1_000)]
    assert len(set(first + again)) == 2_000 and all(len(i) == 32 and int(i, 16) >= 0 for i in first)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child, parent = os.read(read, 64).decode(), new_request_id()
    assert len(child) == 32 and child != parent


def test_a_route_cancelled_as_its_gate_answers_is_cancelled_and_recorded(base_config):
    """Python 3.11's ``asyncio.wait_for`` returns the inner result when it is ready as the
    caller is cancelled, losing the cancellation: a route cancelled at shutdown then went on
    (its caller's loop routed forever and the process never exited). The cancellation
    must reach the caller, and the route must still leave its one record."""
    from langchain_tiered_router.core.gates import Gate

    routes: list[asyncio.Task] = []

    class CancelsItsRoute(Gate):
        name = "cancels its route"

        def judge(self, state):
            raise AssertionError("an async route judges through ajudge")

        async def ajudge(self, state):
            routes[0].cancel()  # the route is cancelled just as the judgement is ready
            return self._verdict(True)

    records: list = []
    base = router({**base_config, "gates": []}, records)
    gated = Router(base.ladder, base.policy, [CancelsItsRoute()], observers=base.observers, sleep=lambda s: None)
    backend = ScriptedBackend({"*": answer('{"total": 1}')})

    async def main():
        routes.append(asyncio.create_task(gated.aroute(RouteRequest("Extract the invoice total"), backend)))
        with pytest.raises(asyncio.CancelledError):
            await routes[0]

    asyncio.run(main())
    assert len(records) == 1 and records[0].attempts[0].verdict.gate == "cancels its route"


class _SlowBackend(ScriptedBackend):
    """Answers after ``delay`` seconds; ``times_its_calls`` as given."""

    def __init__(self, delay: float, times_its_calls: bool):
        super().__init__({"cheap": answer("late but fine")})
        self.delay, self.times_its_calls = delay, times_its_calls

    async def acall(self, tier, request):
        await asyncio.sleep(self.delay)
        return self.call(tier, request)


def test_a_route_cancelled_mid_call_records_one_stable_error_text(base_config):
    """A server cancels a request whose client left with a message naming its cancel
    scope and task by memory address: the record says the same for every such request."""
    records: list = []
    r = router({**base_config, "gates": []}, records)

    async def main():
        route = asyncio.create_task(r.aroute(RouteRequest(text="hi"), _SlowBackend(5, False)))
        await asyncio.sleep(0.05)
        route.cancel("Cancelled via cancel scope 7f2c1810a840 by <Task pending name='Task-1816'>")
        with pytest.raises(asyncio.CancelledError):
            await route

    asyncio.run(main())
    (record,) = records
    assert record.error == "CancelledError: the caller cancelled the request"
    assert (record.attempts[0].outcome, record.attempts[0].error_kind) == ("error", "consumer_closed")


@pytest.mark.parametrize("own", [False, True])
def test_the_engine_times_calls_unless_the_backend_times_its_own(own):
    """A tier call past the tier's timeout is given up by the engine (a timeout, retried),
    unless the backend says its calls end at that timeout by themselves (a proxy whose
    router retries them): then the engine waits for the backend's own outcome instead of
    making the call again beside it."""
    tiers = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0", "timeout_s": 0.05},
             {"name": "top", "model_id": "amazon.nova-pro-v1:0"}]
    r = build_router({"tiers": tiers, "retry": {"max_retries": 0, "backoff_s": 0, "on_exhausted": "raise"}},
                     telemetry=False)
    backend = _SlowBackend(0.2, own)
    if own:
        result = asyncio.run(r.aroute(RouteRequest(text="hi"), backend))
        assert result.served.tier == "cheap" and backend.calls == [("cheap", "hi")]
    else:
        with pytest.raises(LadderExhaustedError) as info:
            asyncio.run(r.aroute(RouteRequest(text="hi"), backend))
        assert info.value.exceptions[0].kind == "timeout" and backend.calls == []  # given up while asleep


def test_a_call_waiting_for_a_worker_thread_is_timed_from_when_it_starts():
    """A backend whose ``call`` blocks runs it on the loop's worker threads (``acall``'s
    default): eight requests on two threads, each call 0.3 s against a tier timeout of
    0.5 s. The later calls wait up to 0.9 s for a thread, which is not the tier's time:
    every request is served by cheap, each call made once."""
    import concurrent.futures
    import time

    class Blocking(ScriptedBackend):
        def call(self, tier, request):
            time.sleep(0.3)
            return super().call(tier, request)

    tiers = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0", "timeout_s": 0.5},
             {"name": "top", "model_id": "amazon.nova-pro-v1:0"}]
    r = build_router({"tiers": tiers, "retry": {"max_retries": 1, "backoff_s": 0}}, telemetry=False)
    backend = Blocking({"*": "fine"})

    async def many():
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(2))
        return await asyncio.gather(*(r.aroute(RouteRequest(text=f"q{i}"), backend) for i in range(8)))

    started = time.monotonic()
    results = asyncio.run(many())
    assert time.monotonic() - started > 1.1  # four waves of two: the queue was real
    assert [res.served.tier for res in results] == ["cheap"] * 8
    assert sorted(backend.calls) == sorted(("cheap", f"q{i}") for i in range(8))


def test_a_policy_subclass_decides_on_the_async_path_as_on_the_sync_one():
    """A cascade whose subclass picks the start tier before its LLM classifier: ``aroute``
    runs that ``choose_start`` too (the async shortcut to the classifier's own call is
    for the policy as shipped)."""
    from langchain_tiered_router.core.classifiers import LLMClassifier, TierChoice
    from langchain_tiered_router.core.policies import CascadePolicy

    class RulesFirst(CascadePolicy):
        def choose_start(self, request, ladder, ask=None):
            if "urgent" in request.text:
                return TierChoice("top", "rule: urgent")
            return super().choose_start(request, ladder, ask)

    tiers = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
             {"name": "top", "model_id": "amazon.nova-pro-v1:0"}]
    r = build_router({"tiers": tiers}, telemetry=False)
    r.policy = RulesFirst(classifier=LLMClassifier())
    backend = ScriptedBackend({"cheap": "cheap", "top": "top"})
    result = asyncio.run(r.aroute(RouteRequest(text="urgent: the server is down"), backend))
    assert (result.start_tier, result.start_reason) == ("top", "rule: urgent")
    assert backend.calls == [("top", "urgent: the server is down")]
