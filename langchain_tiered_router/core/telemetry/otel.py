"""OpenTelemetry spans for routed requests, following the GenAI semantic conventions.

One span per request (``chat <served model>``) and one child span per attempt, with
``gen_ai.*`` attributes where the conventions define them and the router's own
fields under ``tiered_router.*``. Spans are written after the fact with the
request's real start time and duration, so a sink never sits in the request path.
The SDK is optional: ``pip install 'langchain-tiered-router[otel]'``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..errors import ConfigError
from ..types import money
from .record import RoutingRecord
from .sinks import Sink

__all__ = ["OTelSink", "record_attributes"]

_NS = 1_000_000_000


def _trace_api():
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigError("the otel sink needs OpenTelemetry: pip install 'langchain-tiered-router[otel]'",
                          path="kind") from None
    return trace


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    """OTel attributes cannot be None or Decimal: money is the decimal string every other
    form of the record holds (``0.00000063``, never ``6.3E-7``)."""
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        out[key] = money(value) if isinstance(value, Decimal) else (
            value if isinstance(value, (str, bool, int, float)) else str(value))
    return out


def record_attributes(record: RoutingRecord) -> dict[str, Any]:
    return _clean({
        "gen_ai.system": "aws.bedrock",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": record.attempts[0]["model_id"] if record.attempts else record.model_id,
        "gen_ai.response.model": record.model_id,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "tiered_router.request_id": record.request_id,
        "tiered_router.session_id": record.session_id,
        "tiered_router.integration": record.integration,
        "tiered_router.policy": record.policy,
        "tiered_router.start_tier": record.start_tier,
        "tiered_router.tier": record.tier,
        "tiered_router.escalated": record.escalated,
        "tiered_router.attempts": len(record.attempts),
        "tiered_router.flagged": record.flagged,
        "tiered_router.cost_usd": record.cost_usd,
        "tiered_router.baseline_tier": record.baseline_tier,
        "tiered_router.baseline_cost_usd": record.baseline_cost_usd,
        "tiered_router.savings_usd": record.savings_usd,
        "tiered_router.shadow_status": record.shadow_status,
        "tiered_router.shadow_score": record.shadow_score,
        "tiered_router.shadow_cost_usd": record.shadow_cost_usd,
        "tiered_router.cache_read_tokens": record.cache_read_tokens,
        "tiered_router.cache_write_tokens": record.cache_write_tokens,
    })


def _attempt_attributes(attempt: dict[str, Any]) -> dict[str, Any]:
    return _clean({
        "gen_ai.system": "aws.bedrock",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": attempt.get("model_id"),
        "gen_ai.usage.input_tokens": attempt.get("input_tokens"),
        "gen_ai.usage.output_tokens": attempt.get("output_tokens"),
        "tiered_router.tier": attempt.get("tier"),
        "tiered_router.outcome": attempt.get("outcome"),
        "tiered_router.gate_passed": attempt.get("gate_passed"),
        "tiered_router.gate_reason": attempt.get("gate_reason"),
        "tiered_router.cost_usd": attempt.get("cost_usd"),
        "tiered_router.retries": attempt.get("retries"),
        "tiered_router.error_kind": attempt.get("error_kind"),
    })


class OTelSink(Sink):
    """Writes spans to ``tracer_provider`` (default: the global one)."""

    def __init__(self, tracer_provider: Any = None):
        trace = _trace_api()
        self._trace = trace
        self._tracer = trace.get_tracer("langchain_tiered_router", tracer_provider=tracer_provider)

    def write(self, record: RoutingRecord) -> None:
        from opentelemetry.trace import Status, StatusCode

        start = int(record.ts * _NS)
        end = start + int(record.latency_ms * 1_000_000)
        name = f"chat {record.model_id or record.baseline_model_id}"
        span = self._tracer.start_span(name, kind=self._trace.SpanKind.CLIENT, start_time=start,
                                       attributes=record_attributes(record))
        if record.error:
            span.set_status(Status(StatusCode.ERROR, record.error))
        context = self._trace.set_span_in_context(span)
        at = start
        for attempt in record.attempts:
            length = int(float(attempt.get("latency_ms") or 0.0) * 1_000_000)
            child = self._tracer.start_span(f"chat {attempt.get('model_id')}", context=context,
                                            kind=self._trace.SpanKind.CLIENT, start_time=at,
                                            attributes=_attempt_attributes(attempt))
            if attempt.get("error"):
                child.set_status(Status(StatusCode.ERROR, str(attempt["error"])))
            at += length
            child.end(end_time=min(at, end) if end > start else at)
        span.end(end_time=max(end, at))
