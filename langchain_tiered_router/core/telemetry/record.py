"""The telemetry record: one per routed request, the same from LangChain and LiteLLM.

Prompt and answer text are kept only when ``telemetry.store_text`` is on. Money is
kept as ``Decimal`` here and written as text by sinks that can, so sums stay exact.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from ..types import RouteRequest, RoutingResult

__all__ = ["RoutingRecord", "record_from_result"]


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

    @property
    def time_iso(self) -> str:
        return _dt.datetime.fromtimestamp(self.ts, _dt.timezone.utc).isoformat()

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types; money as strings so no precision is lost."""
        out = asdict(self)
        for key in ("cost_usd", "baseline_cost_usd", "savings_usd", "shadow_cost_usd"):
            out[key] = None if out[key] is None else str(out[key])
        return out

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> "RoutingRecord":
        data = dict(data)
        for key in ("cost_usd", "baseline_cost_usd", "savings_usd", "shadow_cost_usd"):
            if data.get(key) is not None:
                data[key] = Decimal(str(data[key]))
        return cls(**data)


def record_from_result(result: RoutingResult, request: RouteRequest, *, integration: str = "core",
                       store_text: bool = False) -> RoutingRecord:
    meta = result.to_metadata()
    usage = result.total_usage
    answer = result.answer
    return RoutingRecord(
        request_id=result.request_id,
        ts=result.started_at,
        session_id=result.session_id,
        policy=result.policy,
        integration=integration,
        start_tier=result.start_tier,
        start_reason=result.start_reason,
        tier=result.tier,
        model_id=result.model_id,
        escalated=result.escalated,
        quality_escalations=result.quality_escalations,
        transport_escalations=result.transport_escalations,
        flagged=result.flagged,
        flag_reason=result.flag_reason,
        error=result.error if result.served is None else None,
        attempts=meta["attempts"],
        aux_calls=meta["aux_calls"],
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cost_usd=result.cost_usd,
        baseline_tier=result.baseline_tier,
        baseline_model_id=result.baseline_model_id,
        baseline_cost_usd=result.baseline_cost_usd,
        savings_usd=result.savings_usd,
        latency_ms=result.latency_ms,
        prompt_text=request.text if store_text else None,
        answer_text=(answer.text if answer else None) if store_text else None,
        metadata={k: v for k, v in request.metadata.items() if isinstance(v, (str, int, float, bool))},
    )
