"""Shadow sampling: ask the baseline tier too, in the background, and score the gap.

A sampled request's record waits (off the request path) until its shadow call is
scored, then goes to the sinks once, complete: the sinks stay append-only and no
record is lost. The pool holds ``max_in_flight`` workers and a bounded backlog;
when both are full the sample is skipped (``shadow_status="skipped_busy"``) rather
than ever making a user wait. The shadow's cost is kept apart (``shadow_cost_usd``):
it is a cost of measurement, not of serving.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import random
import threading
import time
from typing import Any, Callable

from ..backends import Backend, estimated_answer
from ..tiers import Ladder, Tier
from ..errors import TransportError
from ..pricing import Usage
from ..types import RouteRequest, RoutingResult, TierAnswer, sum_costs
from .comparators import Comparator
from .record import RoutingRecord

__all__ = ["ShadowSampler"]

log = logging.getLogger("langchain_tiered_router.telemetry")

Done = Callable[[RoutingRecord], None]


class ShadowSampler:
    def __init__(self, ladder: Ladder, comparator: Comparator, *, fraction: float, seed: int | None = None,
                 max_in_flight: int = 8, backlog: int | None = None, store_text: bool = False,
                 judge_tier: str | None = None):
        self.ladder = ladder
        self.baseline: Tier = ladder.baseline
        self.comparator = comparator
        self.fraction = fraction
        self.max_in_flight = max_in_flight
        self.store_text = store_text
        self.judge_tier = ladder[judge_tier] if judge_tier else None
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        backlog = 64 * max_in_flight if backlog is None else backlog
        self._slots = threading.BoundedSemaphore(max_in_flight + backlog)
        self._pool: cf.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._pending: dict[cf.Future, tuple[RoutingRecord, Done]] = {}
        self.submitted = self.skipped = 0

    def wants(self, result: RoutingResult) -> bool:
        """Sample lower-tier answers only (the baseline's own answers need no shadow)."""
        if self.fraction <= 0 or result.served is None or result.answer is None:
            return False
        if result.tier == self.baseline.name:
            return False
        with self._rng_lock:
            return self._rng.random() < self.fraction

    def submit(self, record: RoutingRecord, result: RoutingResult, request: RouteRequest, backend: Backend,
               done: Done) -> None:
        """Run the shadow in the background; ``done(record)`` gets the scored record."""
        if not self._slots.acquire(blocking=False):
            self.skipped += 1
            record.shadow_status = "skipped_busy"
            done(record)
            return
        served = result.answer if result.answer is not None else TierAnswer("", Usage(), "")
        with self._pool_lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="tiered-router-shadow")
            # the request's backend, no longer its callbacks': the shadow is no part of the caller's run
            future = self._pool.submit(self._run, record, served, request, backend.in_background())
            self._pending[future] = (record, done)
            self.submitted += 1
        future.add_done_callback(self._finished)

    def _run(self, record: RoutingRecord, served: TierAnswer, request: RouteRequest, backend: Backend) -> None:
        costs: list[Any] = []
        record.shadow_comparator = self.comparator.name
        try:
            shadow_request = RouteRequest(text=request.text, payload=request.payload, session_id=None,
                                          metadata={**request.metadata, "shadow_of": record.request_id})
            try:
                answer = backend.call(self.baseline, shadow_request)
            except TransportError as exc:
                if exc.billed_anyway:  # Bedrock runs it on and bills it, as an attempt's
                    usage = estimated_answer("", request.text, self.baseline.model_id).usage
                    costs.append(self.baseline.cost(usage))
                    record.shadow_input_tokens = usage.input_tokens
                raise
            costs.append(self.baseline.cost(answer.usage))
            record.shadow_input_tokens = answer.usage.input_tokens
            record.shadow_output_tokens = answer.usage.output_tokens

            def judge(prompt: str) -> TierAnswer:
                tier = self.judge_tier or self.baseline
                reply = backend.ask(tier, prompt)
                costs.append(tier.cost(reply.usage))
                return reply

            if _call_names(served) != _call_names(answer):  # another tool called, or text against a call
                score = 0.0
            else:
                score = float(self.comparator.score(_compared(served), _compared(answer), request.text, judge))
            if not 0.0 <= score <= 1.0:  # parity reads it as a quality: 5 would be 500 % parity
                raise ValueError(f"comparator {self.comparator.name!r} scored {score!r}, outside 0..1")
            record.shadow_score = score
            record.shadow_status = "done"
            if self.store_text:
                record.shadow_answer_text = answer.text
        except Exception as exc:  # noqa: BLE001 - a failed shadow is recorded, never raised
            record.shadow_status = "failed"
            record.shadow_error = f"{type(exc).__name__}: {exc}"
            log.warning("shadow call for request %s failed: %s", record.request_id, record.shadow_error)
        record.shadow_cost_usd = sum_costs(costs) if costs else None

    def _finished(self, future: cf.Future) -> None:
        with self._pool_lock:
            record, done = self._pending[future]
        self._slots.release()
        if future.cancelled():
            record.shadow_status = "cancelled"
        try:
            done(record)
        finally:  # pending until its record is with the sinks: a flush that finds none left may read it
            with self._pool_lock:
                del self._pending[future]

    def flush(self, timeout: float | None = 60) -> bool:
        """Wait for the shadows in flight; True when none is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._pool_lock:
                pending = list(self._pending)
            if not pending:
                return True
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            finished, _ = cf.wait(pending, timeout=left)
            if len(finished) == len(pending):
                time.sleep(0.001)  # called, scored: their records are on the way to the sinks (``_finished``)
            if deadline is not None and time.monotonic() >= deadline:
                with self._pool_lock:
                    return not self._pending

    def close(self, timeout: float | None = 60) -> None:
        """Finish what is running; records of shadows never started are written as cancelled."""
        if not self.flush(timeout):
            log.warning("shadow calls still running at close; their records are written without a score")
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _call_names(answer: TierAnswer) -> list[str]:
    return [str(call.get("name")) for call in answer.tool_calls]


def _compared(answer: TierAnswer) -> str:
    """What a comparator reads of an answer: its text, or for a tool call (an agent's
    step, structured output) its arguments as JSON (several calls: each with its name).
    Compared on their empty text, two calls of a tool with different arguments agreed."""
    calls = answer.tool_calls
    if not calls:
        return answer.text
    if len(calls) == 1:
        return json.dumps(calls[0].get("args", {}), sort_keys=True, default=str)
    return json.dumps([{"name": c.get("name"), "args": c.get("args", {})} for c in calls], sort_keys=True,
                      default=str)
