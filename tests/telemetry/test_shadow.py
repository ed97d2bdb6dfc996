"""Shadow sampling in the background, its cost kept apart, and the comparators."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from langchain_tiered_router.core.telemetry import (ExactComparator, JsonFieldsComparator, LLMJudgeComparator,
                                                    MemorySink, NumericComparator, build_recorder)
from langchain_tiered_router.core.config import RouterConfig
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.tiers import Ladder
from langchain_tiered_router.core.types import RouteRequest

from .conftest import FnBackend, answer, cost


def _router_with_shadow(make_router, priced_config, comparator=None, **shadow):
    priced_config["telemetry"]["shadow"] = {"fraction": 1.0, "seed": 3, **shadow,
                                            **({"comparator": comparator} if comparator else {})}
    config = RouterConfig.from_dict(priced_config)
    memory = MemorySink()
    recorder = build_recorder(config, Ladder.from_config(config), sinks=[memory])
    return make_router(priced_config, observers=[recorder]), recorder, memory


def test_every_lower_tier_answer_is_shadowed_and_scored_and_the_shadow_cost_is_apart(make_router, priced_config):
    router, recorder, memory = _router_with_shadow(make_router, priced_config)
    backend = ScriptedBackend({
        "cheap": lambda r: answer("ok 42" if r.text != "hard" else "no", 100, 10),
        "mid": answer("ok 41", 100, 20),
        "frontier": lambda r: answer("OK   42" if r.text == "easy" else "ok 41", 100, 30),
    })
    for text in ("easy", "other", "hard"):
        router.route(RouteRequest(text=text, request_id=text), backend)
    recorder.flush()
    by_id = {r.request_id: r for r in memory.records}
    assert set(by_id) == {"easy", "other", "hard"}
    assert (by_id["easy"].shadow_status, by_id["easy"].shadow_score) == ("done", 1.0)  # case and spaces ignored
    assert (by_id["other"].shadow_status, by_id["other"].shadow_score) == ("done", 0.0)
    assert by_id["hard"].tier == "mid" and by_id["hard"].shadow_score == 1.0
    for record in by_id.values():
        assert record.shadow_cost_usd == cost("frontier", 100, 30)  # the baseline's call, priced as the baseline
        assert record.cost_usd not in (None, Decimal(0))
        assert record.cost_usd < record.shadow_cost_usd  # measurement is not part of serving
    assert [t for t, _ in backend.calls].count("frontier") == 3


def test_answers_served_by_the_baseline_are_not_shadowed(make_router, priced_config):
    router, recorder, memory = _router_with_shadow(make_router, priced_config)
    backend = ScriptedBackend({"cheap": answer("no", 1, 1), "mid": answer("no", 1, 1),
                               "frontier": answer("ok", 1, 1)})
    router.route(RouteRequest(text="q"), backend)
    recorder.flush()
    assert memory.records[0].tier == "frontier" and memory.records[0].shadow_status is None
    assert [t for t, _ in backend.calls] == ["cheap", "mid", "frontier"]


def test_the_user_never_waits_for_the_shadow(make_router, priced_config):
    router, recorder, memory = _router_with_shadow(make_router, priced_config)
    release = threading.Event()

    def slow_frontier(request):
        release.wait(10)
        return answer("ok", 5, 5)

    backend = FnBackend(lambda tier, r: slow_frontier(r) if tier == "frontier" else answer("ok", 5, 5))
    started = time.perf_counter()
    result = router.route(RouteRequest(text="q", request_id="fast"), backend)
    assert result.tier == "cheap" and time.perf_counter() - started < 1.0
    assert memory.records == []  # written once, complete, when the shadow is scored
    release.set()
    recorder.flush()
    assert [(r.request_id, r.shadow_status) for r in memory.records] == [("fast", "done")]


def test_a_flush_returns_once_the_shadowed_record_is_with_the_sinks(make_router, priced_config):
    """A shadow left the pending set before its record reached the sinks: a flush that
    found none pending returned True with the record not yet written (README: read the
    results after ``flush_all()``)."""
    router, recorder, memory = _router_with_shadow(make_router, priced_config)
    real_write = memory.write

    def slow_write(record):  # a sink that takes its time (a journal's fsync, a busy queue)
        time.sleep(0.3)
        real_write(record)

    def tiers(tier, request):
        if tier == "frontier":
            time.sleep(0.1)  # the shadow's call
        return answer("ok", 5, 5)

    memory.write = slow_write
    router.route(RouteRequest(text="q", request_id="r1"), FnBackend(tiers))
    time.sleep(0.2)  # the shadow call is done by now; its record is being written
    assert recorder.flush(5)
    assert [r.request_id for r in memory.records] == ["r1"]


def test_tool_calls_are_compared_on_their_arguments_not_their_empty_text(make_router, priced_config):
    """An agent's step (or structured output) is a tool call with no text: two calls of a
    tool with different arguments scored 1.0 with ``exact`` ("" == "")."""
    from langchain_tiered_router.core.pricing import Usage
    from langchain_tiered_router.core.types import TierAnswer

    priced_config["gates"] = []
    router, recorder, memory = _router_with_shadow(make_router, priced_config)

    def call(name, **args):
        return TierAnswer("", Usage(5, 5), tool_calls=[{"name": name, "args": args, "id": "t1"}])

    def tiers(tier, request):
        if tier != "frontier":
            return call("get_weather", city="Paris")
        return {"same": call("get_weather", city="Paris"), "other city": call("get_weather", city="London"),
                "other tool": call("get_time", city="Paris")}[request.text]

    for text in ("same", "other city", "other tool"):
        router.route(RouteRequest(text=text, request_id=text), FnBackend(tiers))
    recorder.flush()
    assert {r.request_id: r.shadow_score for r in memory.records} == {"same": 1.0, "other city": 0.0,
                                                                      "other tool": 0.0}


def test_a_full_pool_skips_the_sample_but_keeps_the_record(make_router, priced_config):
    router, recorder, memory = _router_with_shadow(make_router, priced_config, max_in_flight=1)
    recorder.shadow._slots = threading.BoundedSemaphore(1)  # no backlog
    release = threading.Event()
    backend = FnBackend(lambda tier, r: (tier != "frontier" or release.wait(10), answer("ok", 5, 5))[1])
    started = time.perf_counter()
    for i in range(5):
        router.route(RouteRequest(text=str(i), request_id=str(i)), backend)
    assert time.perf_counter() - started < 1.0
    assert sorted(r.shadow_status for r in memory.records) == ["skipped_busy"] * 4
    release.set()
    recorder.flush()
    assert sorted(r.shadow_status for r in memory.records) == ["done"] + ["skipped_busy"] * 4
    assert len({r.request_id for r in memory.records}) == 5


def test_a_failed_shadow_is_recorded_not_raised(make_router, priced_config):
    router, recorder, memory = _router_with_shadow(make_router, priced_config)
    backend = ScriptedBackend({"cheap": answer("ok", 5, 5), "frontier": RuntimeError("baseline down")})
    assert router.route(RouteRequest(text="q"), backend).tier == "cheap"
    recorder.flush()
    (record,) = memory.records
    assert record.shadow_status == "failed" and "baseline down" in record.shadow_error
    assert record.shadow_score is None and record.shadow_cost_usd is None


def test_a_shadow_call_given_up_at_its_timeout_is_billed_on_its_prompt(make_router, priced_config):
    """The baseline's shadow call timed out (Bedrock ran it on): its cost was None, where
    a tier attempt or a routing call cut off the same way is billed on the prompt's
    estimated input tokens. A call that never left costs nothing, as before."""
    from langchain_tiered_router.core.errors import TransportError
    from langchain_tiered_router.core.pricing import estimate_tokens

    router, recorder, memory = _router_with_shadow(make_router, priced_config)
    unsent = TransportError("timeout: queued", tier="frontier", model_id="test.frontier-v1", kind="timeout")
    unsent.reached_tier = False

    def tiers(tier, request):
        if tier != "frontier":
            return answer("ok", 5, 5)
        raise unsent if request.text == "queued" else TransportError(
            "timeout: no answer within 1s", tier="frontier", model_id="test.frontier-v1", kind="timeout")

    for text in ("a question cut off", "queued"):
        router.route(RouteRequest(text=text, request_id=text), FnBackend(tiers))
    recorder.flush()
    by_id = {r.request_id: r for r in memory.records}
    cut = by_id["a question cut off"]
    assert cut.shadow_status == "failed" and cut.shadow_input_tokens == estimate_tokens("a question cut off")
    assert cut.shadow_cost_usd == cost("frontier", estimate_tokens("a question cut off"), 0) > 0
    assert by_id["queued"].shadow_cost_usd is None


def test_sampling_fraction_is_honoured_and_seeded(make_router, priced_config):
    picks = []
    for _ in range(2):
        router, recorder, memory = _router_with_shadow(make_router, priced_config)
        recorder.shadow.fraction = 0.3
        backend = ScriptedBackend({"*": answer("ok", 1, 1)})
        for i in range(400):
            router.route(RouteRequest(text=str(i), request_id=f"{i:04d}"), backend)
        recorder.flush()
        picks.append(sorted(r.request_id for r in memory.records if r.shadow_status == "done"))
    assert picks[0] == picks[1]
    assert 90 <= len(picks[0]) <= 150  # 120 expected; a 3-sigma band


def test_llm_judge_asks_the_judge_tier_and_its_cost_counts_as_shadow_cost(make_router, priced_config):
    router, recorder, memory = _router_with_shadow(make_router, priced_config,
                                                   comparator={"kind": "llm_judge", "judge_tier": "mid"})
    backend = ScriptedBackend({"cheap": answer("ok cheap", 10, 10), "frontier": answer("ok frontier", 10, 10),
                               "mid": answer("SCORE: 8", 50, 5)})
    router.route(RouteRequest(text="q"), backend)
    recorder.flush()
    (record,) = memory.records
    assert record.shadow_comparator == "llm_judge" and record.shadow_score == 1.0
    assert record.shadow_cost_usd == cost("frontier", 10, 10) + cost("mid", 50, 5)
    judge_prompt = [text for tier, text in backend.calls if tier == "mid"][0]
    assert "ok cheap" in judge_prompt and "ok frontier" in judge_prompt


@pytest.mark.parametrize("served, baseline, expected", [
    ("Positive", "positive.", 1.0),
    ('{"a": 1, "b": "x"}', '```json\n{"b": "x", "a": 1}\n```', 1.0),
    ("42", "43", 0.0),
])
def test_exact_comparator(served, baseline, expected):
    assert ExactComparator().score(served, baseline) == expected


def test_json_fields_comparator_gives_a_graded_share():
    c = JsonFieldsComparator()
    assert c.score('{"name": "Ana", "city": "Lyon", "age": 4}', '{"name": "ana", "city": "Porto", "age": 4}') == \
        pytest.approx(2 / 3)
    assert JsonFieldsComparator(["age"]).score('{"age": 4, "x": 1}', '{"age": 4, "x": 2}') == 1.0
    assert c.score("not json", '{"a": 1}') == 0.0


def test_numeric_comparator_reads_final_answers():
    c = NumericComparator(tolerance=1e-6)
    assert c.score("9 * 2 = 18\n#### 18", "So she makes $18 every day.") == 1.0
    assert c.score("The answer is 1,250.", "Answer: 1250") == 1.0
    assert c.score("#### 17", "Answer: 18") == 0.0
    assert c.score("no number", "18") == 0.0


def test_llm_judge_without_a_score_is_an_error():
    from langchain_tiered_router.core.types import TierAnswer

    with pytest.raises(ValueError):
        LLMJudgeComparator("mid").score("a", "b", "q", judge=lambda p: TierAnswer(text="looks fine"))
    assert LLMJudgeComparator("mid").score("a", "b", "q", judge=lambda p: TierAnswer(text="SCORE: 3")) == 0.0


@pytest.mark.parametrize("reply, score", [
    ("The candidate matches.\nSCORE: 8", 1.0), ("SCORE: 3", 0.0), ("**9**", 1.0),
    ("10 reasons this is wrong; score 2", None), ("SCORE: 15", None), ("Step 1 is right. Step 2 too.", None),
])
def test_llm_judge_reads_only_a_line_that_is_one_score(reply, score):
    """The judge's first number anywhere was its score: "10 reasons this is wrong; score 2"
    and "SCORE: 15" counted as parity. A line that is one score from 0 to 10 is read, as a
    self-grade's reply must be; anything else is no judgement (the shadow fails, unscored)."""
    from langchain_tiered_router.core.types import TierAnswer

    judge = LLMJudgeComparator("mid")
    if score is None:
        with pytest.raises(ValueError, match="the judge gave no score") as info:
            judge.score("a", "b", "q", judge=lambda p: TierAnswer(text=reply))
        assert reply not in str(info.value)  # none of it: a judge's reply quotes the answers it compares
    else:
        assert judge.score("a", "b", "q", judge=lambda p: TierAnswer(text=reply)) == score
