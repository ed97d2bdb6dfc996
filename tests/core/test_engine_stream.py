"""A streamed request through the engine alone: one effect per attempt, whatever integration.

The backend double streams each tier's answer in pieces and can break before or after
output; the assertions are on what the caller receives and on the one record.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from langchain_tiered_router.core import LadderExhaustedError, RouteRequest, TierAnswer, TransportError, Usage
from langchain_tiered_router.core.backends import Backend, TierStream, estimated_answer
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.pricing import estimate_tokens, lookup_price

META = "<meta>"  # a chunk without output: held back until output starts


class Pieces(TierStream):
    def __init__(self, script: dict, tier, request):
        self.plan, self.tier, self.request = script[tier.name], tier, request

    def _items(self):
        text, fail_after = self.plan.pop(0) if isinstance(self.plan, list) else self.plan
        yield META
        for i, word in enumerate(text.split(" ")):
            if fail_after is not None and i == fail_after:
                raise TransportError("cut", tier=self.tier.name, model_id=self.tier.model_id, kind="stream_cut")
            yield word + " "

    def chunks(self):
        yield from self._items()

    async def achunks(self):
        for item in self._items():
            yield item

    def has_output(self, chunk):
        return chunk != META

    def answer(self, chunks, *, complete=True):
        text = "".join(c for c in chunks if c != META).strip()
        if not complete:
            return estimated_answer(text, self.request.text, self.tier.model_id)
        return TierAnswer(text=text, usage=Usage(10, estimate_tokens(text)), model_id=self.tier.model_id)


class StreamingBackend(Backend):
    def __init__(self, script: dict):
        self.script, self.opened = script, []

    def call(self, tier, request):
        raise AssertionError("a streamed request is read through stream()")

    def stream(self, tier, request, *, live):
        self.opened.append((tier.name, live))
        return Pieces(self.script, tier, request)


def router(config, records):
    return build_router(config, observers=[lambda r, q, b: records.append(r)], sleep=lambda s: None)


def test_a_stream_without_gates_passes_straight_through(base_config):
    base_config["gates"] = []
    records: list = []
    backend = StreamingBackend({"cheap": ("hello there friend", None)})
    routed = router(base_config, records).stream(RouteRequest("hi"), backend)
    got = list(routed)
    assert got == [META, "hello ", "there ", "friend "]  # held metadata goes out with the first output
    assert backend.opened == [("cheap", True)]
    (attempt,) = routed.result.attempts
    assert attempt.emitted and attempt.verdict.reason == "no gate (streamed through)"
    assert records == [routed.result]


def test_a_break_before_output_is_retried_then_escalated_unseen(base_config):
    base_config["gates"] = []
    base_config["retry"] = {"max_retries": 1, "backoff_s": 0}
    records: list = []
    backend = StreamingBackend({"cheap": [("a b", 0), ("a b", 0)], "mid": ("from mid", None)})
    got = list(router(base_config, records).stream(RouteRequest("hi"), backend))
    assert got == [META, "from ", "mid "]  # nothing of cheap's two broken tries reached the caller
    (result,) = records
    assert [(a.tier, a.outcome, a.retried_on) for a in result.attempts] == [
        ("cheap", "transport_error", ["stream_cut"]), ("mid", "served", [])]


def test_a_cut_after_output_is_priced_recorded_once_and_raised(base_config):
    base_config["gates"] = []
    records: list = []
    backend = StreamingBackend({"cheap": ("one two three four", 2), "mid": ("never", None)})
    got = []
    with pytest.raises(LadderExhaustedError) as info:
        for chunk in router(base_config, records).stream(RouteRequest("hi"), backend):
            got.append(chunk)
    assert got == [META, "one ", "two "]
    assert "after output was streamed" in str(info.value)
    (result,) = records
    (attempt,) = result.attempts  # no escalation: the caller already has cheap's words
    assert attempt.emitted and attempt.usage_estimated and attempt.outcome == "transport_error"
    sent = Usage(estimate_tokens("hi"), estimate_tokens("one two"))
    assert attempt.cost_usd == lookup_price("amazon.nova-micro-v1:0").cost(sent) > Decimal(0)


def test_a_gated_stream_is_buffered_and_only_the_served_answer_replayed(base_config):
    records: list = []
    backend = StreamingBackend({"cheap": ("no json", None), "mid": ('{"total": 3}', None)})
    routed = router(base_config, records).stream(RouteRequest("hi"), backend)
    assert list(routed) == [META, '{"total": ', "3} "]
    assert backend.opened == [("cheap", False), ("mid", False)]
    assert [a.outcome for a in routed.result.attempts] == ["gate_failed", "served"]


def test_async_stream_and_a_consumer_who_stops_reading(base_config):
    base_config["gates"] = []
    records: list = []
    backend = StreamingBackend({"cheap": ("a b c d", None)})

    async def read_two():
        routed = router(base_config, records).astream(RouteRequest("hi"), backend)
        got = []
        async for chunk in routed:
            got.append(chunk)
            if len(got) == 2:
                break
        await routed.aclose()
        return got

    assert asyncio.run(read_two()) == [META, "a "]
    (result,) = records
    assert result.served is None and result.attempts[0].error == "RuntimeError: stream closed by the consumer"
    # what reached the consumer is billed, on estimated tokens (no usage chunk came)
    (attempt,) = result.attempts
    assert attempt.emitted and attempt.usage_estimated
    sent = Usage(estimate_tokens("hi"), estimate_tokens("a"))
    assert attempt.cost_usd == lookup_price("amazon.nova-micro-v1:0").cost(sent) > Decimal(0)
