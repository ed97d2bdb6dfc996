"""Gates that would hurt the process: a backtracking pattern, a JSON bomb, a rule that
sleeps, a grader that rambles. A real event loop is timed around them with generous
bounds: each case takes milliseconds (the sleeping rule about a second), would stall the
loop for 15 s to days without the guards, and is allowed 3 s of stall and 10 s in all,
so a busy machine does not fail it."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from langchain_tiered_router.core import RouteRequest, TierAnswer, Usage
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.testing import ScriptedBackend

EVIL = "^(a+)+$"  # Python's re needs ~2^n steps on "a" * n + "b": n = 27 took 14 s, n = 40 would take days
HOSTILE = "a" * 40 + "b"


def answer(text: str) -> TierAnswer:
    return TierAnswer(text=text, usage=Usage(10, 10))


async def with_heartbeat(coro, tick: float = 0.01):
    """Run ``coro`` while a heartbeat task measures the event loop's longest stall."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def beat():
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(tick)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(beat())
    started = time.perf_counter()
    try:
        result = await coro
    finally:
        done.set()
        await task
    return result, time.perf_counter() - started, max(gaps, default=0.0)


def router(base_config, gates, **extra):
    return build_router({**base_config, "gates": gates, **extra}, telemetry=False, sleep=lambda s: None)


@pytest.mark.parametrize("gates, text", [
    ([{"kind": "regex", "pattern": EVIL}], HOSTILE),
    ([{"kind": "regex", "pattern": "(x+x+)+y"}], "x" * 1_000_000),
    ([{"kind": "json_schema", "schema": {"type": "string", "pattern": EVIL}}], f'"{HOSTILE}"'),
    ([{"kind": "json_schema", "schema": {"type": "object", "patternProperties": {EVIL: {"type": "number"}},
                                         "additionalProperties": False}}],
     '{"%s": "x"}' % HOSTILE),
    ([{"kind": "json_schema", "schema": {"type": "object"}}], "{" * 1_000_000),
    ([{"kind": "json_schema", "schema": {"type": "object"}}], "[" * 999_999),
    ([{"kind": "json_schema", "schema": {"type": "object"}}], "x {" * 300_000),
], ids=["regex", "regex-1MB", "schema-pattern", "schema-pattern-properties", "json-1MB-braces",
        "json-1MB-brackets", "json-many-candidates"])
def test_hostile_answers_never_freeze_the_event_loop(base_config, gates, text):
    r = router(base_config, gates)
    backend = ScriptedBackend({"*": answer(text)})
    result, took, stall = asyncio.run(with_heartbeat(r.aroute(RouteRequest("x"), backend)))
    assert result.flagged and [a.outcome for a in result.attempts] == ["gate_failed"] * 3
    assert took < 10 and stall < 3.0, (took, stall)  # milliseconds here; without the guards, seconds to days
    blocking = time.perf_counter()
    assert router(base_config, gates).route(RouteRequest("x"), backend).flagged
    assert time.perf_counter() - blocking < 10


def test_a_backtracking_pattern_rre2_cannot_run_is_refused_at_load(base_config):
    from langchain_tiered_router.core import ConfigError

    with pytest.raises(ConfigError) as info:
        router(base_config, [{"kind": "regex", "pattern": r"^(a+)\1$"}])
    assert info.value.path == "gates[0].pattern" and "RE2" in str(info.value)


def test_a_sleeping_rule_is_cut_at_its_budget_and_the_loop_runs_on(base_config):
    gates = [{"kind": "rule", "function": "tests.core.rules:sleepy"}]
    r = router(base_config, gates, gate_timeout_s=0.3)
    backend = ScriptedBackend({"*": answer("fine")})

    async def three_at_once():
        return await asyncio.gather(*(r.aroute(RouteRequest(f"q{i}"), backend) for i in range(3)))

    results, took, stall = asyncio.run(with_heartbeat(three_at_once()))
    for result in results:
        assert [a.verdict.reason for a in result.attempts] == ["gate timed out after 0.3s"] * 3
        assert result.flagged and result.gate_errors == 3
    assert took < 10 and stall < 3.0, (took, stall)  # three tiers x 0.3 s each, not 3 x 5 s
    blocking = time.perf_counter()
    result = r.route(RouteRequest("sync"), backend)
    assert result.attempts[0].verdict.reason == "gate timed out after 0.3s"
    assert time.perf_counter() - blocking < 10  # 3 x 0.3 s, not 3 x 5 s


@pytest.mark.parametrize("reply, score", [
    ("8", 8), ("  7.5 ", 7.5), ("Score: 9", 9), ("8/10", 8), ("**10**", 10), ("10.0", 10),
    ("10 reasons this is wrong; score 2", None), ("-3", None), ("1e9", None), ("11", None), ("", None),
    ("seven", None), ("3 or maybe 9", None), ("9" * 1000, None),
])
def test_a_self_grade_reply_is_one_score_or_a_failed_judgement(base_config, reply, score):
    r = router(base_config, [{"kind": "self_grade", "threshold": 7}])
    backend = ScriptedBackend({"*": lambda req: reply if req.text.endswith("SCORE:") else "an answer"})
    first = r.route(RouteRequest("question"), backend).attempts[0]
    if score is None:
        assert not first.verdict.passed
        assert first.verdict.reason == "grader gave no score (the reply must be one number from 0 to 10)"
        assert first.verdict.detail.startswith("grader replied") and len(first.verdict.detail) < 300
    else:
        assert first.verdict.passed and first.verdict.score == score


@pytest.mark.parametrize("function", ["says_no"])
def test_a_rule_that_does_not_return_a_judgement_fails(base_config, function):
    r = router(base_config, [{"kind": "rule", "function": f"tests.core.rules:{function}"}])
    result = r.route(RouteRequest("q"), ScriptedBackend({"*": answer("a")}))
    assert result.flagged and result.gate_errors == 3
    assert result.attempts[0].verdict.reason == "rule returned a str; expected a bool, (bool, reason) or a GateVerdict"


@pytest.mark.parametrize("function, wrong", [("verdict_says_no", "passed str"),
                                             ("verdict_without_reason", "reason NoneType"),
                                             ("verdict_with_numeric_detail", "detail int")])
async def test_a_hand_built_verdict_of_the_wrong_types_fails_its_gate(base_config, function, wrong):
    """``GateVerdict(passed="no")`` passed the answer (a truthy string); a reason of None
    or a numeric detail raised ``TypeError`` out of ``route`` and ``aroute``."""
    r = router(base_config, [{"kind": "rule", "function": f"tests.core.rules:{function}"}])
    for result in (r.route(RouteRequest("q"), ScriptedBackend({"*": answer("a")})),
                   await r.aroute(RouteRequest("q"), ScriptedBackend({"*": answer("a")}))):
        assert result.flagged and result.gate_errors == 3
        assert result.attempts[0].verdict.reason == f"gate returned a verdict with {wrong}"


def test_a_verdict_with_numpys_bool_and_a_decimal_score_is_a_verdict(base_config):
    """A similarity gate's ``np.float64(sim) >= 0.8`` is numpy's bool: the type check
    above failed every such answer."""
    import numpy as np

    from langchain_tiered_router.core.gates import Gate, _checked
    from langchain_tiered_router.core.types import GateVerdict

    class Similarity(Gate):
        def judge(self, state):  # pragma: no cover - not called: _checked judges the verdict alone
            raise AssertionError

    verdict = _checked(Similarity(), GateVerdict(np.float64(0.9) >= 0.8, "similar enough", score=Decimal("0.9")))
    assert verdict.passed is True and verdict.error is None


def test_a_json_schema_whose_dollar_schema_is_not_a_uri_is_a_config_error(base_config):
    from langchain_tiered_router.core.errors import ConfigError

    for value in (5, True, ["x"], {"a": 1}):
        with pytest.raises(ConfigError, match=r"gates\[0\]\.schema\.\$schema: \$schema must be the URI"):
            router(base_config, [{"kind": "json_schema", "schema": {"$schema": value, "type": "object"}}])


async def test_an_async_grader_cut_off_by_its_gates_budget_is_billed_as_unfinished(base_config):
    """``route`` billed it (its thread still ran when the request ended); ``aroute``
    cancelled it and dropped it from the record, though Bedrock bills the call."""
    import time as clock

    def reply(request):
        if "SCORE:" in request.text:
            clock.sleep(1.0)  # past the gate's 0.3 s
            return answer("9")
        return answer("an answer")

    r = router(base_config, [{"kind": "self_grade", "threshold": 7}], gate_timeout_s=0.3)
    result = await r.aroute(RouteRequest("q"), ScriptedBackend({"*": reply}))
    graders = [c for c in result.aux_calls if c.purpose == "self_grade"]
    assert len(graders) == 3 and all(c.unfinished for c in graders)
    assert all(c.cost_usd > 0 for c in graders)
    assert result.cost_usd == sum(a.cost_usd for a in result.attempts) + sum(c.cost_usd for c in result.aux_calls)


@pytest.mark.parametrize("text, rating", [("Confidence: 1e-9", 1e-9), ("Confidence: 1.5e-3", 0.0015),
                                          ("Confidence: 2E-1", 0.2), ("Confidence: 0.8e", 0.8)])
def test_a_self_rating_in_exponent_notation_is_read_whole(text, rating):
    """"1e-9" was read as 1 (its mantissa, rescaled): a near-zero rating passed the gate."""
    from langchain_tiered_router.core.confidence import self_rating

    assert self_rating(text) == pytest.approx(rating)


@pytest.mark.parametrize("text, passes", [
    ('{"a": ' * 100 + "1" + "}" * 100, True),  # 100 levels: the limit
    ('{"a": ' * 101 + "1" + "}" * 101, False),
    ("[" * 150 + "]" * 150, False),
    ('{"total": 12, "note": "' + "{[" * 200 + '"}', True),  # brackets inside a string nest nothing
    ('here: {"a": ' + "[" * 120 + "]" * 120 + "}", False),  # found past prose, still too deep
], ids=["100-levels", "101-levels", "150-brackets", "brackets-in-a-string", "after-prose"])
def test_json_nested_deeper_than_the_limit_fails_the_gate_and_brackets_in_strings_do_not_count(
        base_config, text, passes):
    # embedded: JSON after prose is read too, so the "after-prose" value is read and judged
    result = router(base_config, [{"kind": "json_schema", "schema": {}, "embedded": True}]).route(
        RouteRequest("x"), ScriptedBackend({"*": answer(text)}))
    verdict = result.attempts[0].verdict
    assert verdict is not None and verdict.passed is passes, verdict
    if not passes:
        assert "nested deeper than 100 levels" in f"{verdict.reason} {verdict.detail}", verdict


async def test_a_gate_that_raises_inside_any_is_counted_whichever_member_decides(base_config):
    """``kind: any`` built a new verdict that dropped its members' errors: a rule that
    raised beside a regex was in the reason but not in ``gate_errors`` (0 where the same
    rule alone or inside ``all`` counts one per attempt), and ``all`` dropped the error of
    a member that passed (any list of two gates is judged as one ``all``)."""
    raising = {"kind": "rule", "function": "tests.core.rules:explode_on_cheap"}  # raises on cheap's answer
    script = {"cheap": answer("cheap answer"), "mid": answer("mid answer"), "frontier": answer("top answer")}
    beside = {"kind": "regex", "pattern": "answer"}  # a second gate: the engine judges both inside an ``all``
    for other, served, also in (("^never$", "mid", []), ("answer", "cheap", []), ("answer", "cheap", [beside])):
        any_of = {"kind": "any", "gates": [raising, {"kind": "regex", "pattern": other}]}  # fails / passes everywhere
        r = router(base_config, [any_of, *also])
        for result in (r.route(RouteRequest("q"), ScriptedBackend(script)),
                       await r.aroute(RouteRequest("q"), ScriptedBackend(script))):
            assert result.served.tier == served
            assert result.attempts[0].verdict.error == "rule:explode_on_cheap: RuntimeError"
            assert result.gate_errors == 1
            assert result.attempts[-1].verdict.error is None or served == "cheap"


def test_a_regex_gates_pattern_means_what_pythons_re_reads_in_it():
    """RE2's \\d \\w \\s are ASCII, its ``$`` is the very end and its ``{,n}`` is text;
    a regex gate's pattern is Python's: ``café``, ``٤٢`` and an answer ending in a newline
    failed patterns Python's ``re`` matches, and escalated. Random patterns over the
    differing pieces, on texts made of the characters they differ on, agree with ``re``."""
    import random
    import re

    from langchain_tiered_router.core.errors import ConfigError
    from langchain_tiered_router.core.gates import RegexGate

    pieces = [r"\w", r"\d", r"\s", r"\W", r"\D", r"\S", "[\\w-]", "[^\\d]", "[]x]", "x", "é", "٤", "-", r"\$",
              "+", "*", "?", "{,2}", "{1,2}", "^", "$", "(?:a|\\d)", "."]
    alphabet = ["a", "x", "é", "ß", "٤", "2", "_", "-", " ", "\u00a0", "\n", "$", "]", "日"]
    rng = random.Random(11)
    compared = 0
    for _ in range(600):
        pattern = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
        try:
            python = re.compile(pattern)
        except re.error:
            continue  # not a pattern (a quantifier with nothing before it)
        try:
            gate = RegexGate(pattern)
        except ConfigError:  # what RE2 cannot run (a possessive "+" after a quantifier): refused, as documented
            continue
        for _ in range(8):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            assert (gate.pattern.search(text) is not None) == (python.search(text) is not None), (pattern, text)
            compared += 1
    assert compared > 2000
    with pytest.raises(ConfigError, match=r"pattern '\\\\d\{1,2\}\+' cannot run on RE2"):
        RegexGate(r"\d{1,2}+")  # refused as written, not as rewritten for RE2
    for pattern, text in [(r"^\w+$", "café"), (r"^Answer: \d+$", "Answer: 42\n"), (r"^Total: \d+ €$", "Total: ٤٢ €"),
                          (r"^a{,3}$", "aa")]:
        assert RegexGate(pattern).pattern.search(text) is not None, pattern
