"""The telemetry record: one per routed request, the one serialised form of a routing.

The same record, built once from a ``RoutingResult``, is what ``TieredChatBedrock`` puts
in ``response_metadata["routing"]``, what the LiteLLM proxy returns in its
``tiered_router`` field and logging metadata, and what every sink writes
(``to_json_dict``). Money is ``Decimal`` here and a decimal string in every serialised
form, so sums stay exact. Prompt and answer text are kept only with ``store_text``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

from ..types import RouteRequest, RoutingResult, _bounded, money

__all__ = ["RoutingRecord", "record_from_result", "routing_dict", "MONEY_FIELDS"]

MONEY_FIELDS = ("cost_usd", "baseline_cost_usd", "savings_usd", "shadow_cost_usd")


@dataclass
class RoutingRecord:
    request_id: str
    ts: float  # unix seconds when the request started
    session_id: str | None
    policy: str
    integration: str  # "langchain", "litellm", "core", "eval"
    start_tier: str
    start_reason: str
    tier: str | None  # served tier; None when nothing was served
    model_id: str | None
    escalated: bool
    quality_escalations: int
    transport_escalations: int
    flagged: bool
    flag_reason: str | None
    error: str | None
    attempts: list[dict[str, Any]]
    aux_calls: list[dict[str, Any]]
    input_tokens: int  # all calls of the request
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: Decimal | None
    baseline_tier: str
    baseline_model_id: str
    baseline_cost_usd: Decimal | None
    savings_usd: Decimal | None
    latency_ms: float
    prompt_text: str | None = None
    answer_text: str | None = None
    shadow_score: float | None = None  # filled later for shadow-sampled requests
    shadow_cost_usd: Decimal | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Shadow sampling: "done", "failed", "skipped_busy" or "cancelled" (None: not sampled).
    shadow_status: str | None = None
    shadow_comparator: str | None = None
    shadow_answer_text: str | None = None  # only with store_text
    shadow_error: str | None = None
    gate_errors: int = 0  # gates that raised (a bug in the gate) instead of judging

    @property
    def shadowed(self) -> bool:
        return self.shadow_status == "done" and self.shadow_score is not None

    @property
    def time_iso(self) -> str:
        return _dt.datetime.fromtimestamp(self.ts, _dt.timezone.utc).isoformat()

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types; money as strings so no precision is lost."""
        out = asdict(self)
        for key in MONEY_FIELDS:
            out[key] = None if out[key] is None else str(out[key])
        return out

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> "RoutingRecord":
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}  # newer writers may add fields
        for key in MONEY_FIELDS:
            if data.get(key) is not None:
                data[key] = Decimal(str(data[key]))
        return cls(**data)


def record_from_result(result: RoutingResult, request: RouteRequest | None = None, *,
                       integration: str | None = None, store_text: bool = False) -> RoutingRecord:
    """The record of one routing. ``request`` defaults to the one the engine routed;
    ``integration`` to the request's ``metadata["integration"]``."""
    request = request if request is not None else result.request
    meta = dict(request.metadata) if request is not None else {}
    usage = result.total_usage
    answer = result.answer
    return RoutingRecord(
        request_id=result.request_id,
        ts=result.started_at,
        session_id=result.session_id,
        policy=result.policy,
        integration=integration or str(meta.get("integration") or "core"),
        start_tier=result.start_tier,
        start_reason=result.start_reason,
        tier=result.tier,
        model_id=result.model_id,
        escalated=result.escalated,
        quality_escalations=result.quality_escalations,
        transport_escalations=result.transport_escalations,
        flagged=result.flagged,
        flag_reason=_bounded(result.flag_reason),
        error=_bounded(result.error) if result.served is None else None,
        attempts=[a.to_dict(store_text) for a in result.attempts],
        aux_calls=[{"purpose": c.purpose, "tier": c.tier, "model_id": c.model_id,
                    "input_tokens": c.usage.input_tokens, "output_tokens": c.usage.output_tokens,
                    "cost_usd": money(c.cost_usd), "latency_ms": round(c.latency_ms, 3), "retries": c.retries}
                   for c in result.aux_calls],
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cost_usd=result.cost_usd,
        baseline_tier=result.baseline_tier,
        baseline_model_id=result.baseline_model_id,
        baseline_cost_usd=result.baseline_cost_usd,
        savings_usd=result.savings_usd,
        latency_ms=round(result.latency_ms, 3),
        prompt_text=request.text if (store_text and request is not None) else None,
        answer_text=(answer.text if answer else None) if store_text else None,
        metadata={k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))},
        gate_errors=result.gate_errors,
    )


def routing_dict(result: RoutingResult) -> dict[str, Any]:
    """The record as plain JSON (money as decimal strings): ``response_metadata["routing"]``
    and the proxy's ``tiered_router`` field. Text is never in it."""
    return record_from_result(result).to_json_dict()
