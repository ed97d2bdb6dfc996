"""Run a collect plan: every prompt's tiers asked, graded and written, a few at a time.

At most ``concurrency`` prompts are in flight (each asks its tiers one after another,
then grades). Items are written by the calling thread as they finish, so the file is
written by one writer. With ``max_usd``, a prompt is started only while what was spent
plus the estimates of the prompts in flight plus its own estimate stays within the cap;
when it does not fit, the run waits for prompts in flight (their real cost is known when
they finish) and stops only when it does not fit with none in flight. Answers longer than
assumed can take the total past the cap by at most what was in flight. The cap counts
this run's spend only. A prompt whose call fails is reported and not written: the next
run asks it again.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from ...core.backends import Backend
from ...core.errors import RouterError
from ...core.types import RouteRequest, TierAnswer
from .grading import Grader, JudgeSpend
from .outcomes_file import OutcomesFile
from .plan import Job, Plan

__all__ = ["CollectResult", "run_plan", "build_record"]

Progress = Callable[[int, int, Decimal], None]


@dataclass
class CollectResult:
    collected: int = 0
    answers: int = 0
    judge_calls: int = 0
    answers_usd: Decimal = Decimal(0)
    judge_usd: Decimal = Decimal(0)
    failures: list[str] = field(default_factory=list)
    stopped_at_cap: bool = False
    not_started: int = 0  # prompts left for a later run (stopped at the cap)
    next_estimate_usd: Decimal | None = None  # the estimate of the first prompt not started

    @property
    def spent_usd(self) -> Decimal:
        return self.answers_usd + self.judge_usd


def _money(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


@dataclass
class _Done:
    record: dict[str, Any] | None  # None when a call or the grading failed
    answers_usd: Decimal  # paid even when the prompt failed later
    judge: JudgeSpend
    asked: int
    error: str | None = None


def build_record(job: Job, answers: dict[str, tuple[TierAnswer, Decimal, float]], scores: dict[str, float],
                 grader: Grader, judge: JudgeSpend) -> dict[str, Any]:
    """The output line: earlier outcomes kept, new ones added, grading and judge spend summed."""
    item = job.item
    record = job.item.to_record()
    outcomes = dict((job.existing or {}).get("outcomes", {}))
    binary = grader.binary(item)
    for tier, (answer, cost, latency_ms) in answers.items():
        outcomes[tier] = {"response": answer.text, "input_tokens": answer.usage.input_tokens,
                          "output_tokens": answer.usage.output_tokens, "model_id": answer.model_id,
                          "cost_usd": _money(cost), "latency_ms": round(latency_ms, 1)}
        if answer.usage.cache_read_tokens or answer.usage.cache_write_tokens:
            outcomes[tier]["cache_read_tokens"] = answer.usage.cache_read_tokens
            outcomes[tier]["cache_write_tokens"] = answer.usage.cache_write_tokens
            if answer.usage.cache_write_1h_tokens:
                outcomes[tier]["cache_write_1h_tokens"] = answer.usage.cache_write_1h_tokens
    for tier, score in scores.items():
        entry = dict(outcomes[tier])
        entry.pop("correct", None)
        entry.pop("score", None)
        if binary:
            entry["correct"] = score >= 0.5
        else:
            entry["score"] = score
        outcomes[tier] = entry
    record["outcomes"] = {t: outcomes[t] for t in job.sort(outcomes)}
    grading = dict((job.existing or {}).get("grading") or grader.method(item))
    if judge.calls:
        grading["judge_calls"] = int(grading.get("judge_calls", 0)) + judge.calls
        grading["judge_input_tokens"] = int(grading.get("judge_input_tokens", 0)) + judge.input_tokens
        grading["judge_output_tokens"] = int(grading.get("judge_output_tokens", 0)) + judge.output_tokens
        grading["judge_cost_usd"] = _money(Decimal(str(grading.get("judge_cost_usd", "0"))) + judge.cost_usd)
    record["grading"] = grading
    return record


def _work(job: Job, backend: Backend, grader: Grader) -> _Done:
    item = job.item
    answers: dict[str, tuple[TierAnswer, Decimal, float]] = {}
    spent = Decimal(0)
    judge = JudgeSpend()

    def ask_judge(prompt: str) -> TierAnswer:
        reply = backend.ask(grader.judge_tier, prompt)
        judge.add(reply, grader.judge_tier.cost(reply.usage))
        return reply

    try:
        for tier in job.ask:
            started = time.perf_counter()
            answer = backend.call(tier, RouteRequest(text=item.text, payload=item, request_id=item.id))
            cost = tier.cost(answer.usage) or Decimal(0)  # every tier is priced (the config check)
            answers[tier.name] = (answer, cost, (time.perf_counter() - started) * 1000)
            spent += cost
        responses = {t: o.get("response") or "" for t, o in ((job.existing or {}).get("outcomes") or {}).items()}
        responses.update({t: a.text for t, (a, _, _) in answers.items()})
        scores = grader.grade(item, responses, job.grade, ask_judge)
    except RouterError as exc:
        return _Done(None, spent, judge, len(answers), str(exc))
    except ValueError as exc:  # the judge gave no score
        return _Done(None, spent, judge, len(answers), f"grading failed: {exc}")
    return _Done(build_record(job, answers, scores, grader, judge), spent, judge, len(job.ask))


def run_plan(plan: Plan, backend: Backend, grader: Grader, out: OutcomesFile, *, concurrency: int = 4,
             max_usd: Decimal | None = None, progress: Progress = lambda done, total, spent: None) -> CollectResult:
    """Ask, grade and write every job of ``plan``; stop starting new ones at ``max_usd``."""
    result = CollectResult()
    queue = list(plan.jobs)
    total = len(queue)
    in_flight: dict[cf.Future, Job] = {}
    reserved = Decimal(0)
    pool = cf.ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="tiered-router-collect")
    try:
        while queue or in_flight:
            while queue and len(in_flight) < concurrency:
                job = queue[0]
                if max_usd is not None and result.spent_usd + reserved + job.estimate_usd > max_usd:
                    break  # wait: a prompt in flight may cost less than its estimate and make room
                queue.pop(0)
                reserved += job.estimate_usd
                in_flight[pool.submit(_work, job, backend, grader)] = job
            if not in_flight:  # the next prompt does not fit with what was really spent
                result.stopped_at_cap = bool(queue)
                result.next_estimate_usd = queue[0].estimate_usd if queue else None
                break
            finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                job = in_flight.pop(future)
                reserved -= job.estimate_usd
                done = future.result()
                result.answers += done.asked
                result.answers_usd += done.answers_usd
                result.judge_calls += done.judge.calls
                result.judge_usd += done.judge.cost_usd
                if done.record is None:
                    result.failures.append(f"{job.item.id}: {done.error}")
                else:
                    out.append(done.record)
                    result.collected += 1
                progress(result.collected + len(result.failures), total, result.spent_usd)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    result.not_started = len(queue)
    return result
