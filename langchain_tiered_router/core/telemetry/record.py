"""The telemetry record: one per routed request, the same from LangChain and LiteLLM.

Prompt and answer text are kept only when ``telemetry.store_text`` is on. Money is
kept as ``Decimal`` here and written as text by sinks that can, so sums stay exact.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

from ..types import RouteRequest, RoutingResult

__all__ = ["RoutingRecord", "record_from_result", "record_from_metadata", "MONEY_FIELDS"]

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
    shadow_input_tokens: int | None = None  # the baseline's shadow call (judge calls not included)
    shadow_output_tokens: int | None = None

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


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def record_from_metadata(meta: dict[str, Any], *, integration: str, ts: float | None = None,
                         prompt_text: str | None = None, answer_text: str | None = None,
                         metadata: dict[str, Any] | None = None) -> RoutingRecord:
    """A record from ``RoutingResult.to_metadata()`` (``response_metadata["routing"]``).

    Used where only the JSON summary travels: the LangChain callback handler and the
    LiteLLM hook. Money went through float in that dict; ``str`` keeps what it printed.
    """
    calls = list(meta.get("attempts") or []) + list(meta.get("aux_calls") or [])
    started = ts if ts is not None else meta.get("started_at")
    return RoutingRecord(
        request_id=str(meta["request_id"]),
        ts=float(started) if started is not None else _dt.datetime.now(_dt.timezone.utc).timestamp(),
        session_id=meta.get("session_id"),
        policy=str(meta.get("policy") or ""),
        integration=integration,
        start_tier=str(meta.get("start_tier") or ""),
        start_reason=str(meta.get("start_reason") or ""),
        tier=meta.get("tier"),
        model_id=meta.get("model_id"),
        escalated=bool(meta.get("escalated")),
        quality_escalations=int(meta.get("quality_escalations") or 0),
        transport_escalations=int(meta.get("transport_escalations") or 0),
        flagged=bool(meta.get("flagged")),
        flag_reason=meta.get("flag_reason"),
        error=meta.get("error"),
        attempts=list(meta.get("attempts") or []),
        aux_calls=list(meta.get("aux_calls") or []),
        input_tokens=int(meta.get("total_input_tokens") or sum(c.get("input_tokens") or 0 for c in calls)),
        output_tokens=int(meta.get("total_output_tokens") or sum(c.get("output_tokens") or 0 for c in calls)),
        cache_read_tokens=sum(c.get("cache_read_tokens") or 0 for c in calls),
        cache_write_tokens=sum(c.get("cache_write_tokens") or 0 for c in calls),
        cost_usd=_decimal(meta.get("cost_usd")),
        baseline_tier=str(meta.get("baseline_tier") or ""),
        baseline_model_id=str(meta.get("baseline_model_id") or ""),
        baseline_cost_usd=_decimal(meta.get("baseline_cost_usd")),
        savings_usd=_decimal(meta.get("savings_usd")),
        latency_ms=float(meta.get("latency_ms") or 0.0),
        prompt_text=prompt_text,
        answer_text=answer_text,
        metadata=dict(metadata or {}),
    )
