"""Faults in routing's own calls (the LLM classifier's, a self-grade's) and in what the
router pays for around them, as a ``TieredChatBedrock`` user meets them on the emulator:
a classifier that cannot answer costs the request its label, not its answer; its calls
retry as tier calls do; a stream cut before a gate saw it is still billed; a request
cancelled mid-judgement records its attempt as not served."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler

from .scripts import CHEAP, FRONTIER, INVOICE, INVOICE_SCHEMA, cost, tokens

LLM_CASCADE = {"kind": "cascade", "classifier": {"kind": "llm"}}


def _routing(message) -> dict:
    return message.response_metadata["routing"]


@pytest.mark.parametrize("fault, kind", [("access_denied", "model_unavailable"), ("throttle", "throttled")])
def test_a_failed_llm_classifier_call_starts_at_its_default_tier(routed, emulator, fault, kind) -> None:
    llm = routed(policy={"kind": "classifier", "classifier": {"kind": "llm", "default_tier": "mid"}})
    emulator.clear_requests()
    emulator.inject(fault, model_id=CHEAP, times=None)
    try:
        routing = _routing(llm.invoke("hello"))
    finally:
        emulator.clear_faults()
    assert routing["start_reason"].startswith(f"llm: classifier call failed ({kind})")
    assert [(a["tier"], a["outcome"]) for a in routing["attempts"]] == [("mid", "served")]
    calls = 2 if fault == "throttle" else 1  # a throttled one was retried (max_retries 1)
    # the failed call is listed, with what ended it, and not billed
    assert [(c["purpose"], c["error_kind"], c["retries"], c["input_tokens"], c["cost_usd"])
            for c in routing["aux_calls"]] == [("classifier", kind, calls - 1, 0, "0")]
    assert sum(r.model_id == CHEAP for r in emulator.requests) == calls


def test_one_malformed_classifier_reply_is_retried(routed, emulator) -> None:
    emulator.inject("malformed", model_id=CHEAP, times=1)
    routing = _routing(routed(policy=LLM_CASCADE).invoke("hello"))
    assert routing["start_reason"] == "llm: said 'cheap'"
    assert [(c["purpose"], c["retries"]) for c in routing["aux_calls"]] == [("classifier", 1)]


def test_a_classifier_retry_after_beyond_max_backoff_is_not_waited_for(routed, emulator) -> None:
    llm = routed(policy=LLM_CASCADE, retry={"max_retries": 2, "backoff_s": 0, "max_backoff_s": 1.0})
    emulator.inject("throttle", model_id=CHEAP, times=1, retry_after=600)  # waiting it would hang the suite
    routing = _routing(llm.invoke("hello"))
    assert routing["start_reason"].startswith("llm: classifier call failed (throttled)")
    assert [(a["tier"], a["outcome"], a["retries"]) for a in routing["attempts"]] == [("cheap", "served", 0)]


def test_one_malformed_grader_reply_is_retried_not_escalated(routed, emulator) -> None:
    # mid answers first, so the first call of the cheap model is its grader's
    llm = routed(policy={"kind": "cascade", "start_tier": "mid"}, gates=[{"kind": "self_grade", "threshold": 7}])
    emulator.inject("malformed", model_id=CHEAP, times=1)
    routing = _routing(llm.invoke("hello"))
    assert [(a["tier"], a["outcome"], a["gate_reason"]) for a in routing["attempts"]] == [
        ("mid", "served", "grade 9 >= 7")]
    assert routing["gate_errors"] == 0
    assert [(c["purpose"], c["retries"]) for c in routing["aux_calls"]] == [("self_grade", 1)]


def test_a_gated_stream_cut_after_output_is_billed_for_what_it_produced(routed, emulator) -> None:
    llm = routed(tiers=[{"name": "cheap", "model_id": CHEAP}, {"name": "frontier", "model_id": FRONTIER}],
                 gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}])
    emulator.inject("stream_cut", model_id=FRONTIER, times=1, after_events=3)
    full = None
    for chunk in llm.stream(INVOICE):
        full = chunk if full is None else full + chunk
    frontier = routed.last.attempts[-1]
    assert frontier.tier == "frontier" and frontier.retried_on == ["stream_cut"] and frontier.gate_passed
    served = tokens(full.text)  # the emulator's count of the answer served
    # the cut try produced text before a gate could see it: Bedrock bills it, so does the record
    assert frontier.usage_estimated and frontier.usage.output_tokens > served
    assert frontier.usage.input_tokens > routed.last.attempts[0].usage.input_tokens  # two prompts sent
    assert frontier.cost_usd == cost(FRONTIER, frontier.usage.input_tokens, frontier.usage.output_tokens)
    assert routed.last.cost_usd == sum(a.cost_usd for a in routed.last.attempts)


_judging, _release = threading.Event(), threading.Event()


def blocking_rule(question: str, answer: str) -> bool:
    _judging.set()
    _release.wait(30)
    return True


def test_a_request_cancelled_while_its_answer_is_judged_serves_nothing(routed) -> None:
    llm = routed(gates=[{"kind": "rule", "function": f"{__name__}:blocking_rule"}])
    _judging.clear()
    _release.clear()

    async def cancel_mid_judgement() -> None:
        task = asyncio.ensure_future(llm.ainvoke("hello"))
        assert await asyncio.get_running_loop().run_in_executor(None, _judging.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(cancel_mid_judgement())
    finally:
        _release.set()
    result = routed.last
    (attempt,) = result.attempts
    assert result.served is None and attempt.answer is not None
    assert attempt.outcome == "error" and attempt.error.startswith("ended while its answer was judged")
    assert attempt.cost_usd == cost(CHEAP, attempt.usage.input_tokens, attempt.usage.output_tokens) > 0


def test_a_grader_still_running_when_its_request_ends_is_billed_on_its_prompt(routed, emulator) -> None:
    """Bedrock bills a grader past its gate's budget; the record, written when the request
    ends, bills it on its prompt's estimated input tokens and says it was unfinished."""
    llm = routed(policy={"kind": "cascade", "start_tier": "mid", "max_escalations": 0}, on_exhausted="flag",
                 gates=[{"kind": "self_grade", "threshold": 7}], gate_timeout_s=0.3)
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=1.5)  # the grader's call (cheap grades)
    routing = _routing(llm.invoke("hello"))
    assert [(a["tier"], a["outcome"]) for a in routing["attempts"]] == [("mid", "gate_failed")]
    assert routing["flagged"] is True
    (grade,) = routing["aux_calls"]
    assert (grade["purpose"], grade["tier"], grade.get("unfinished")) == ("self_grade", "cheap", True)
    assert grade["input_tokens"] > 0 and grade["output_tokens"] == 0 and float(grade["cost_usd"]) > 0
    attempt_cost = sum(float(a["cost_usd"]) for a in routing["attempts"])
    assert float(routing["cost_usd"]) == pytest.approx(attempt_cost + float(grade["cost_usd"]))
    time.sleep(1.5)  # the grader answers now: the record it is in does not change, nor is it billed twice
    assert _routing(llm.invoke("hello again"))["aux_calls"][0].get("unfinished") is None


def test_a_call_cancelled_while_bedrock_has_it_is_billed_on_its_prompt(routed, emulator) -> None:
    """A caller's timeout (``asyncio.wait_for``) does not stop Bedrock's work on the call
    it made: the record bills the prompt's estimated input tokens, marked estimated."""
    llm = routed()
    emulator.clear_requests()
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=1.0)

    async def give_up() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(llm.ainvoke("hello there, a question"), 0.3)

    asyncio.run(give_up())
    result = routed.last
    (attempt,) = result.attempts
    assert [r.model_id for r in emulator.requests] == [CHEAP]  # Bedrock had it
    assert result.served is None and attempt.outcome == "error" and attempt.usage_estimated
    assert attempt.usage.input_tokens == tokens("hello there, a question") and attempt.usage.output_tokens == 0
    assert attempt.cost_usd == cost(CHEAP, attempt.usage.input_tokens, 0) > 0 and result.cost_usd == attempt.cost_usd
    time.sleep(1.0)  # the slow reply lands on a call nobody reads any more


@pytest.mark.parametrize("path, transport", [("invoke", {"deadline_s": 0.3}), ("ainvoke", {"deadline_s": 0.3}),
                                             ("ainvoke", {"timeout_s": 0.3})])
def test_a_call_abandoned_at_its_timeout_is_billed_on_its_prompt_as_a_cancelled_one_is(routed, emulator, path,
                                                                                        transport) -> None:
    """The request's deadline or the tier's timeout leaves the call running at Bedrock,
    which answers and bills it: it was priced at $0, where a caller's own cancel of the
    same call bills the prompt's estimated input tokens."""
    from langchain_tiered_router.core.errors import LadderExhaustedError

    llm = routed(tiers=[{"name": "cheap", "model_id": CHEAP}], on_exhausted="raise", retry={"max_retries": 0},
                 transport=transport)
    emulator.clear_requests()
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=1.0)
    prompt = "hello there, a question"
    with pytest.raises(LadderExhaustedError):
        llm.invoke(prompt) if path == "invoke" else asyncio.run(llm.ainvoke(prompt))
    (attempt,) = routed.last.attempts
    assert [r.model_id for r in emulator.requests] == [CHEAP]  # Bedrock had it
    assert (attempt.outcome, attempt.error_kind) == ("transport_error", "timeout") and attempt.usage_estimated
    assert attempt.usage.input_tokens == tokens(prompt) and attempt.usage.output_tokens == 0
    assert attempt.cost_usd == cost(CHEAP, tokens(prompt), 0) > 0 and routed.last.cost_usd == attempt.cost_usd
    time.sleep(1.0)  # the slow reply lands on a call nobody reads any more


@pytest.mark.parametrize("path", ["invoke", "ainvoke"])
def test_a_classifier_call_given_up_at_its_timeout_is_billed_on_its_prompt(routed, emulator, path) -> None:
    """The LLM classifier's call timed out (Bedrock ran it on) and left no trace in the
    record: no routing call, $0, where a tier attempt cut off the same way is billed on
    its prompt's estimated input tokens."""
    from langchain_tiered_router.core.classifiers import _LLM_PROMPT

    llm = routed(policy={"kind": "classifier", "classifier": {"kind": "llm"}}, retry={"max_retries": 0},
                 transport={"timeout_s": 0.3})
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=1.0)  # the classifier's call, on cheap
    routing = _routing(llm.invoke("hello") if path == "invoke" else asyncio.run(llm.ainvoke("hello")))
    assert routing["start_reason"].startswith("llm: classifier call failed (timeout)")
    (call,) = routing["aux_calls"]
    asked = _LLM_PROMPT.format(tiers="cheap, mid, frontier", request="hello")
    assert (call["purpose"], call["tier"], call.get("unfinished")) == ("classifier", "cheap", True)
    assert call["input_tokens"] == tokens(asked) and call["output_tokens"] == 0
    assert call["cost_usd"] == str(cost(CHEAP, tokens(asked), 0).normalize())
    time.sleep(1.0)  # the slow reply lands on a call nobody reads any more


class _SlowAttemptRuns(AsyncCallbackHandler):
    """Awaits in one event of every attempt run (a tracer sending it over the network)
    and notes what each attempt run was told."""

    def __init__(self, slow_in: str) -> None:
        self.slow_in, self.events = slow_in, []

    async def _note(self, event: str, parent_run_id: Any, detail: str = "") -> None:
        if parent_run_id is not None:  # an attempt run, not the request's own
            self.events.append((event, detail))
            if event == self.slow_in:
                await asyncio.sleep(1.0)

    async def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, **kwargs) -> None:
        await self._note("start", parent_run_id)

    async def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs) -> None:
        await self._note("end", parent_run_id)

    async def on_llm_error(self, error, *, run_id, parent_run_id=None, **kwargs) -> None:
        await self._note("error", parent_run_id, type(error).__name__)


def test_a_call_cancelled_while_its_attempt_run_starts_is_never_sent_nor_billed(routed, emulator) -> None:
    """Cancelled while a callback awaited in the attempt run's start: no call was made, yet
    the record billed the prompt as a call Bedrock had, and the run never ended."""
    handler = _SlowAttemptRuns("start")
    emulator.clear_requests()

    async def give_up() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(routed().ainvoke("hello", config={"callbacks": [handler]}), 0.3)

    asyncio.run(give_up())
    (attempt,) = routed.last.attempts
    assert emulator.requests == [] and attempt.cost_usd == 0 and not attempt.usage_estimated
    assert handler.events == [("start", ""), ("error", "CancelledError")]


def test_a_call_cancelled_while_its_attempt_run_ends_is_billed_as_it_answered(routed, emulator) -> None:
    """Cancelled while a callback awaited in the attempt run's end: the answer and its
    usage had come, yet the record billed the prompt's estimated input tokens only."""
    handler = _SlowAttemptRuns("end")

    async def give_up() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(routed().ainvoke("hello", config={"callbacks": [handler]}), 0.3)

    asyncio.run(give_up())
    (attempt,) = routed.last.attempts
    assert not attempt.usage_estimated and attempt.usage.output_tokens > 0
    assert attempt.cost_usd == cost(CHEAP, attempt.usage.input_tokens, attempt.usage.output_tokens)
    assert routed.last.served is None  # the caller left: nothing served


def test_an_async_call_past_its_timeout_tells_its_attempt_run_it_timed_out(routed, emulator) -> None:
    """The engine's timer cancels the call; the attempt run was told ``CancelledError``
    (a tracer shows a user's cancel), where the sync path says ``TransportError``."""
    from langchain_tiered_router.core.errors import LadderExhaustedError

    handler = _SlowAttemptRuns("")
    llm = routed(tiers=[{"name": "cheap", "model_id": CHEAP}], on_exhausted="raise", retry={"max_retries": 0},
                 transport={"deadline_s": 0.3})
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=1.0)
    with pytest.raises(LadderExhaustedError):
        asyncio.run(llm.ainvoke("hello", config={"callbacks": [handler]}))
    assert handler.events == [("start", ""), ("error", "TransportError")]
    time.sleep(1.0)


def test_messages_langchain_aws_cannot_send_are_the_callers_error_not_a_bad_reply(routed, emulator) -> None:
    """A content block without its text fails inside langchain-aws before any call: the
    caller gets the KeyError a plain ChatBedrockConverse raises, not three tiers tried
    for a 'malformed reply' Bedrock never sent."""
    from langchain_core.messages import HumanMessage

    llm = routed()
    emulator.clear_requests()
    with pytest.raises(KeyError):
        llm.invoke([HumanMessage(content=[{"type": "text", "txt": "oops"}])])
    assert emulator.requests == []
    (attempt,) = routed.last.attempts
    assert attempt.outcome == "error" and attempt.error_kind == "KeyError" and attempt.retries == 0


GRADED = [{"kind": "self_grade", "grader_tier": "cheap", "prompt": "Q: {question}\nA: {answer}\nSCORE:"}]


def test_a_grader_waiting_for_a_worker_thread_is_not_charged_to_the_gate_budget(routed, emulator) -> None:
    """Twelve ``ainvoke`` on two worker threads, every call 0.3 s, a 1 s gate budget: the
    graders wait for a thread longer than the budget, yet each answer is judged (the wait
    is the pool's, not the gate's) and served on cheap, one grader call each, all sent."""
    llm = routed(transport={"max_concurrency": 2, "timeout_s": 20}, gate_timeout_s=1.0, gates=GRADED,
                 retry={"max_retries": 0})
    emulator.clear_requests()
    emulator.inject("slow", model_id=CHEAP, times=24, seconds=0.3)

    async def many() -> list:
        return await asyncio.gather(*(llm.ainvoke(f"hello there {i}") for i in range(12)))

    started = time.perf_counter()
    messages = asyncio.run(many())
    assert time.perf_counter() - started > 3.0  # 24 calls of 0.3 s on two threads: the queue was real
    routings = [_routing(m) for m in messages]
    assert all([(a["tier"], a["outcome"]) for a in r["attempts"]] == [("cheap", "served")] for r in routings)
    assert all(r["attempts"][0]["gate_reason"].startswith("grade") for r in routings)
    assert sum(len(r["aux_calls"]) for r in routings) == 12 and sum(r.model_id == CHEAP for r in emulator.requests) == 24


@pytest.mark.parametrize("path", ["ainvoke", "invoke"])
def test_an_llm_classifier_call_honours_the_deadline(routed, emulator, path) -> None:
    """A classifier call that would take 3 s, a 1 s deadline: the call is given up at the
    deadline (billed on its prompt, as Bedrock had it) rather than waited out. A sync
    ``invoke`` runs it on the pool as its tier calls (before, it ran its 3 s out)."""
    from langchain_tiered_router.core.errors import LadderExhaustedError

    llm = routed(policy={"kind": "classifier", "classifier": {"kind": "llm"}}, transport={"deadline_s": 1.0},
                 retry={"max_retries": 0})
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=3.0)
    started = time.perf_counter()
    with pytest.raises(LadderExhaustedError):
        asyncio.run(llm.ainvoke("hello")) if path == "ainvoke" else llm.invoke("hello")
    assert time.perf_counter() - started < 2.0
    result = routed.last
    assert result.start_reason.startswith("llm: classifier call failed (timeout)")
    (aux,) = result.aux_calls
    assert aux.purpose == "classifier" and aux.unfinished and aux.cost_usd > 0


def test_a_grader_call_on_invoke_honours_the_deadline(routed, emulator) -> None:
    """A sync grader that would take 3 s, a 1 s deadline and a longer gate budget: the
    grade is given up at the deadline, not at the gate's budget or the read timeout."""
    llm = routed(policy={"kind": "cascade", "start_tier": "mid"}, gates=GRADED, gate_timeout_s=10.0,
                 transport={"deadline_s": 1.0}, retry={"max_retries": 0})
    emulator.inject("slow", model_id=CHEAP, times=1, seconds=3.0)  # mid answers, cheap grades
    started = time.perf_counter()
    try:
        llm.invoke("hello")
    except Exception:  # noqa: BLE001 - what the request does past its deadline is not this test's
        pass
    assert time.perf_counter() - started < 2.0
    (aux,) = routed.last.aux_calls
    assert aux.purpose == "self_grade" and aux.unfinished and aux.cost_usd > 0


def test_llm_classifier_calls_of_ainvoke_run_on_the_models_own_pool(routed, emulator) -> None:
    """Thirty ``ainvoke`` at once with an LLM classifier and ``max_concurrency: 32``: the
    classifier calls run on that pool (asyncio's default executor has 6 threads on 2
    cores, where they queued and ate a 2.5 s deadline)."""
    llm = routed(policy={"kind": "classifier", "classifier": {"kind": "llm"}},
                 transport={"max_concurrency": 32, "deadline_s": 2.5}, retry={"max_retries": 0})
    emulator.inject("slow", model_id=CHEAP, times=60, seconds=0.5)

    async def many() -> list:
        return await asyncio.gather(*(llm.ainvoke(f"hello there {i}") for i in range(30)), return_exceptions=True)

    outcomes = asyncio.run(many())
    assert not [o for o in outcomes if isinstance(o, BaseException)]
    assert all(_routing(m)["start_reason"].startswith("llm: said") for m in outcomes)
