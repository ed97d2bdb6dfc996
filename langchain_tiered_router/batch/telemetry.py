"""One telemetry record per batch record, through the router's own observers.

A finished record becomes a ``RoutingResult`` (attempts priced at batch rates, or at
on-demand rates for the calls that went on-demand) and goes to every observer the
router config builds (``build_router`` -> telemetry sinks, shadow sampling), as a
live request's result does; ``tiered-router report`` reads it like any other. It is
marked ``integration: batch``; its metadata carries the run id, the caller's record
id, how each attempt was served (``attempt_modes``: batch or on_demand, and
``attempt_jobs``), and the baseline cost at the on-demand rate
(``baseline_cost_on_demand_usd``) beside ``baseline_cost_usd`` at the batch rate.
A record's time (``ts``) is when it finished; its latency runs from the run's start.

Request ids are ``<run id>-<recordId>``, the same on every resume, so a record sent
twice (a runner killed after writing telemetry, before saving that it did) is stored
once by the SQLite sink.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any, Sequence

from ..core.pricing import Usage
from ..core.telemetry.writer import waiting_for_room
from ..core.types import Attempt, AuxCall, GateVerdict, RoutingResult, TierAnswer
from .cascade import Cascade
from .pricing import BatchPricing
from .state import AttemptState, RecordState, RunState

__all__ = ["request_id_for", "routing_result", "baseline_costs", "emit"]

log = logging.getLogger("langchain_tiered_router.batch")


def request_id_for(run: RunState, record: RecordState) -> str:
    return f"{run.run_id}-{record.record_id}"


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _usage(a: AttemptState) -> Usage:
    return Usage(a.input_tokens, a.output_tokens, a.cache_read_tokens, a.cache_write_tokens, a.cache_write_1h_tokens)


def _attempt(a: AttemptState) -> Attempt:
    answer = None
    if a.answered:
        answer = TierAnswer(text=a.text or "", usage=_usage(a), model_id=a.model_id, tool_calls=list(a.tool_calls),
                            stop_reason=a.stop_reason)
    verdict = None if a.gate_passed is None else GateVerdict(a.gate_passed, a.gate_reason or "", a.gate or "",
                                                            a.gate_score)
    return Attempt(tier=a.tier, model_id=a.model_id, outcome=a.outcome, answer=answer,  # type: ignore[arg-type]
                   verdict=verdict, error=a.error, error_kind=a.error_kind, usage=_usage(a),
                   cost_usd=_decimal(a.cost_usd), latency_ms=a.latency_ms, retries=a.retries,
                   retried_on=list(a.retried_on))


def baseline_costs(pricing: BatchPricing, record: RecordState) -> tuple[Decimal | None, Decimal | None]:
    """The baseline tier's cost on this record, at batch and at on-demand rate.

    As live (``Router._set_baseline_cost``): the baseline tier's own answer when the record
    called it (its gate verdict aside), else the served answer's tokens (or the last
    answer's, when none was served).
    """
    answered = [a for a in record.attempts if a.answered]
    own = next((a for a in reversed(answered) if a.tier == pricing.ladder.baseline.name), None)
    source = own or (record.attempts[record.served] if record.served is not None
                     else (answered[-1] if answered else None))
    if source is None:
        return None, None
    return pricing.baseline_costs(_usage(source))


def routing_result(run: RunState, record: RecordState, cascade: Cascade) -> RoutingResult:
    base = cascade.ladder.baseline
    attempts = [_attempt(a) for a in record.attempts]
    batch_base, _ = baseline_costs(cascade.pricing, record)
    finished = record.finished_at if record.finished_at is not None else run.created_at
    return RoutingResult(
        request_id=request_id_for(run, record), policy=cascade.router.policy.name, baseline_tier=base.name,
        baseline_model_id=base.model_id, start_tier=record.start_tier, start_reason=record.start_reason,
        attempts=attempts,
        aux_calls=[AuxCall(x.purpose, x.tier, x.model_id, Usage(x.input_tokens, x.output_tokens),
                           _decimal(x.cost_usd), x.latency_ms) for x in record.aux],
        served=attempts[record.served] if record.served is not None else None,
        # stamped when it finished (its answer came), not when the run began: a run of hours,
        # or one resumed days later, is spread over the windows ``report --since`` and the
        # drift check read as its answers came; the latency is still from the run's start
        flagged=record.flagged, flag_reason=record.flag_reason, session_id=None, started_at=finished,
        latency_ms=max(0.0, (finished - run.created_at) * 1000), baseline_cost_usd=batch_base,
        error=record.error)


def _metadata(run: RunState, record: RecordState, cascade: Cascade) -> dict[str, Any]:
    _, on_demand_base = baseline_costs(cascade.pricing, record)
    return {
        "integration": "batch",
        "batch_run": run.run_id,
        "batch_record_id": record.id,
        "pricing": "batch",
        "attempt_modes": ",".join(a.mode for a in record.attempts),
        "attempt_jobs": ",".join(a.job or "-" for a in record.attempts),
        "baseline_cost_on_demand_usd": None if on_demand_base is None else str(on_demand_base),
        "finished_at": dt.datetime.fromtimestamp(record.finished_at or run.created_at, dt.timezone.utc).isoformat(),
    }


def emit(run: RunState, records: Sequence[RecordState], cascade: Cascade) -> int:
    """Send each finished, unrecorded record to the router's observers, then flush them.

    The caller marks the records recorded (and saves) only after this returns, so a
    crash before that sends them again on resume rather than never.
    """
    router = cascade.router
    sent = 0
    with waiting_for_room():  # a job's records at once: a full sink queue makes the run wait, not drop them
        for record in records:
            result = routing_result(run, record, cascade)
            request = cascade.request(record, result.request_id)
            request.metadata.update({k: v for k, v in _metadata(run, record, cascade).items() if v is not None})
            for observer in router.observers:
                try:
                    observer(result, request, cascade.backend)
                except Exception:  # noqa: BLE001 - telemetry never fails a run
                    log.exception("routing observer %r failed on batch record %s", observer, record.id)
            sent += 1
    for observer in router.observers:
        flush = getattr(observer, "flush", None)
        if callable(flush):
            try:
                flush()
            except Exception:  # noqa: BLE001
                log.exception("flushing routing observer %r failed", observer)
    return sent
