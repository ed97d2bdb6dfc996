"""One record's way up the ladder, one answer at a time, as the live engine walks it.

The live engine (``core.engine.Router``) answers a request in one go; a batch record
gets each tier's answer hours apart, from a job, and must survive a restart in
between. So the same rules are applied here to a record's saved state, step by step,
with the router's own objects: its policy picks the start tier, ``gates_for`` gives
the gates of each tier and ``safe_judge`` runs them as live traffic does,
``max_escalations`` caps quality escalations, ``retry`` decides what a failed call
does, and ``on_exhausted`` decides what happens when no tier passes (``flag``: the
strongest answer is served, flagged; ``raise``: the record ends unserved).

Batch adds two failure kinds of its own: a record its job never processed (a failed,
partial or expired job) is resubmitted up to ``batch.max_resubmits`` times, then
counts as a transport error (``job_failed``); a record of a job stopped by a user
ends there (``job_stopped``).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from ..core.engine import Router, guardrail_verdict
from ..core.gate_budget import judge_within
from ..core.gates import GateState, safe_judge
from ..core.tiers import Tier
from ..core.tool_calls import turn_kind
from ..core.types import RouteRequest, TierAnswer
from .formats import Prompt
from .pricing import BatchPricing
from .state import AttemptState, AuxState, RecordState

__all__ = ["Cascade", "error_kind_for_code"]


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def error_kind_for_code(code: int) -> str | None:
    """The transport error kind of a record's ``errorCode``; ``None`` for a request error (4xx)."""
    if code == 429:
        return "throttled"
    if code == 408:
        return "timeout"
    if code >= 500:
        return "server_error"
    return None


class Cascade:
    """Applies answers and failures to records, with one router's rules."""

    def __init__(self, router: Router, pricing: BatchPricing, backend: Any, *, max_resubmits: int = 2):
        self.router = router
        self.ladder = router.ladder
        self.pricing = pricing
        self.backend = backend
        self.max_resubmits = max_resubmits

    # -- the request, as gates and policies read it ----------------------------------------
    @staticmethod
    def prompt(record: RecordState) -> Prompt:
        return Prompt(tuple((r, t) for r, t in record.messages), record.system)

    def request(self, record: RecordState, request_id: str) -> RouteRequest:
        prompt = self.prompt(record)
        return RouteRequest(text=prompt.text, payload=prompt, request_id=request_id,
                            metadata={"integration": "batch", "batch_record_id": record.id})

    def _ask(self, record: RecordState):
        def ask(purpose: str, tier_name: str, prompt: str) -> TierAnswer:
            tier, started = self.ladder[tier_name], time.perf_counter()
            answer = self.backend.ask(tier, prompt)
            u = answer.usage
            record.aux.append(AuxState(purpose, tier.name, answer.model_id or tier.model_id, u.input_tokens,
                                       u.output_tokens, _money(self.pricing.cost(tier, u, "on_demand")),
                                       (time.perf_counter() - started) * 1000))
            return answer

        return ask

    # -- the steps ---------------------------------------------------------------------
    def start(self, record: RecordState, request_id: str, now: float) -> None:
        """Where the record starts: the policy's choice (a classifier, or the cheapest tier)."""
        choice = self.router.policy.choose_start(self.request(record, request_id), self.ladder, self._ask(record))
        tier = self.ladder[choice.tier]
        record.start_tier, record.start_reason = tier.name, choice.reason
        self._wait(record, tier, now)

    def answered(self, record: RecordState, answer: TierAnswer, *, mode: str, job: str | None, request_id: str,
                 now: float) -> None:
        tier = self.ladder[record.tier or ""]
        attempt = self._attempt(record, tier, "served", mode, job, now)
        u = answer.usage
        attempt.text, attempt.tool_calls, attempt.stop_reason = answer.text, list(answer.tool_calls), answer.stop_reason
        attempt.input_tokens, attempt.output_tokens = u.input_tokens, u.output_tokens
        attempt.cache_read_tokens, attempt.cache_write_tokens = u.cache_read_tokens, u.cache_write_tokens
        attempt.cache_write_1h_tokens = u.cache_write_1h_tokens
        attempt.cost_usd = _money(self.pricing.cost(tier, u, mode))
        request = self.request(record, request_id)
        gate = self.router.gates_for(tier, request, turn_kind(answer))
        guarded = guardrail_verdict(answer)
        if guarded is not None:
            attempt.gate_passed, attempt.gate_reason, attempt.gate = guarded.passed, guarded.reason, guarded.gate
        elif gate is None:
            attempt.gate_passed, attempt.gate_reason, attempt.gate = True, "no gate", ""
        else:
            previous = [(self.ladder[a.tier].index, TierAnswer(a.text, tool_calls=list(a.tool_calls)))
                        for a in record.attempts[:-1] if a.text is not None]
            state = GateState(request, answer, tier, ask=self._ask(record), previous=previous, ladder=self.ladder)
            verdict = judge_within(lambda: safe_judge(gate, state), gate, self.router.gate_timeout_s)
            attempt.gate_passed, attempt.gate_reason = verdict.passed, verdict.reason
            attempt.gate, attempt.gate_score = verdict.gate, verdict.score
        if attempt.gate_passed:
            record.served = len(record.attempts) - 1
            self.finish(record, now)
            return
        attempt.outcome = "gate_failed"
        self._climb(record, tier, now)

    def failed(self, record: RecordState, *, kind: str | None, error: str, mode: str, job: str | None,
               now: float, label: str | None = None, limit: str | None = None) -> None:
        """A call that did not answer: ``kind`` is its transport kind, ``None`` for a refused request.

        A refused request (a 4xx other than 408/429) ends the record, as an ``error``
        attempt ends a live route, unless it is a model limit (``limit``) that
        ``retry.escalate_on`` names: a larger tier may take it, so it escalates, as live;
        a transport error is retried on the same tier, then escalates or ends by
        ``retry.on_exhausted``.
        """
        tier = self.ladder[record.tier or ""]
        if kind is None:  # escalating would not mend a request the model refused, but another model may take
            attempt = self._attempt(record, tier, "error", mode, job, now)
            attempt.error, attempt.error_kind = error, limit or label or "error"
            above = self.ladder.above(tier)
            if limit is not None and limit in self.router.retry.escalate_on and above is not None:
                self._wait(record, above, now)
            else:
                self.finish(record, now)
            return
        retry = self.router.retry
        if kind in retry.retry_on and record.retries < retry.max_retries:
            record.retries += 1
            record.retried_on.append(kind)
            self._wait(record, tier, now, keep_retries=True)
            return
        attempt = self._attempt(record, tier, "transport_error", mode, job, now)
        attempt.error, attempt.error_kind = error, kind
        self._after_transport_error(record, tier, now)

    def malformed(self, record: RecordState, message: str, *, mode: str, job: str | None, now: float) -> None:
        """An unreadable reply: retried on the same tier as a transport error is (the
        tier is up; its reply was garbled), then escalated or ended by
        ``retry.on_exhausted``, as live; not a quality escalation."""
        tier = self.ladder[record.tier or ""]
        retry = self.router.retry
        if "malformed" in retry.retry_on and record.retries < retry.max_retries:
            record.retries += 1
            record.retried_on.append("malformed")
            self._wait(record, tier, now, keep_retries=True)
            return
        attempt = self._attempt(record, tier, "malformed", mode, job, now)
        attempt.error, attempt.error_kind = message, "malformed"
        self._after_transport_error(record, tier, now)

    def unprocessed(self, record: RecordState, *, stopped: bool, message: str, job: str, now: float) -> None:
        """The record's job ended without processing it."""
        tier = self.ladder[record.tier or ""]
        if not stopped and record.resubmits < self.max_resubmits:
            record.resubmits += 1
            record.retried_on.append("job_failed")
            self._wait(record, tier, now, keep_retries=True)
            return
        attempt = self._attempt(record, tier, "transport_error", "batch", job, now)
        attempt.error = f"job {job} ended {'Stopped' if stopped else 'without this record'}: {message}"
        attempt.error_kind = "job_stopped" if stopped else "job_failed"
        if stopped:
            self.finish(record, now)
        else:
            self._after_transport_error(record, tier, now)

    def refused(self, record: RecordState, reason: str, now: float) -> None:
        """No call could be made (a group below the job minimum with on-demand off)."""
        tier = self.ladder[record.tier or ""]
        attempt = self._attempt(record, tier, "error", "none", None, now)
        attempt.error, attempt.error_kind = reason, "below_min_job"
        self.finish(record, now)

    # -- moves ---------------------------------------------------------------------------
    def _attempt(self, record: RecordState, tier: Tier, outcome: str, mode: str, job: str | None,
                 now: float) -> AttemptState:
        attempt = AttemptState(tier=tier.name, model_id=tier.model_id, outcome=outcome, mode=mode, job=job,
                               retries=record.retries + record.resubmits, retried_on=list(record.retried_on),
                               latency_ms=max(0.0, (now - record.since) * 1000))
        record.attempts.append(attempt)
        return attempt

    def _wait(self, record: RecordState, tier: Tier, now: float, *, keep_retries: bool = False) -> None:
        if not keep_retries:
            record.retries = record.resubmits = 0
            record.retried_on = []
        record.tier, record.status, record.job, record.since = tier.name, "waiting", None, now

    def _climb(self, record: RecordState, tier: Tier, now: float) -> None:
        """A quality escalation, within the policy's cap."""
        above = self.ladder.above(tier)
        if above is None or record.quality_steps >= self.router.policy.max_escalations:
            self.finish(record, now)
            return
        record.quality_steps += 1
        self._wait(record, above, now)

    def _after_transport_error(self, record: RecordState, tier: Tier, now: float) -> None:
        above = self.ladder.above(tier)
        if self.router.retry.on_exhausted == "escalate" and above is not None:
            self._wait(record, above, now)
        else:
            self.finish(record, now)

    def finish(self, record: RecordState, now: float) -> None:
        """The end: served, or flagged with the strongest answer, or unserved (as the engine ends)."""
        if record.served is None:
            answered = [i for i, a in enumerate(record.attempts) if a.answered]
            last = record.attempts[-1]
            if answered and self.router.on_exhausted == "flag":
                served = record.attempts[answered[-1]]
                record.served, record.flagged = answered[-1], True
                reason = served.gate_reason or ""
                if not last.answered:  # the ladder ended on a failed call or job, not on a gate (as live)
                    reason = f"{reason}; then tier {last.tier} failed: {last.error or last.outcome}"
                record.flag_reason = f"no tier passed the gates; serving {served.tier}'s answer ({reason})"
            else:
                record.error = last.error or last.gate_reason or "failed"
        record.status, record.tier, record.job, record.finished_at = "done", None, None, now
