"""OpenTelemetry spans for routed requests, following the GenAI semantic conventions.

One INTERNAL span per request (``route <policy>``, ``gen_ai.operation.name`` ``route``)
holding the router's own fields under ``tiered_router.*`` (the routed totals among
them), and under it one ``chat <model>`` CLIENT span per real model call: each attempt
and each routing call (classifier, self-grade, judge: the record's ``aux_calls``). Only
the model-call spans carry ``gen_ai.usage.*``, so summing them over ``chat`` spans counts
every token once; ``gen_ai.usage.input_tokens`` includes the cached prompt tokens, which
are also given as ``gen_ai.usage.cache_read.input_tokens`` and
``gen_ai.usage.cache_creation.input_tokens`` (the record's ``input_tokens`` does not
include them: ``tiered_router.input_tokens`` keeps its meaning). A tier skipped without
being called (its circuit open) is an event on the request span, not a failed call.

Spans are written after the fact with the request's real start time and duration, so a
sink never sits in the request path. Within the request the calls are laid out in
order (classifier calls, the attempts, then the other routing calls) with their real
durations; the record keeps no finer timing. The SDK is optional:
``pip install 'langchain-tiered-router[otel]'``.
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
_PROVIDER = "aws.bedrock"
_ROUTE = "route"  # the request span's operation: a routing, not a model call
_CHAT = "chat"
_BEFORE_ATTEMPTS = frozenset(("classifier",))  # routing calls made before the first attempt


def _semconv_names() -> dict[str, str]:
    """The attribute names, from the installed semantic-conventions package where it
    defines them (older releases lack the newer names), else the same strings."""
    import importlib

    def module(name: str) -> Any:
        try:
            return importlib.import_module(f"opentelemetry.semconv.{name}")
        except ImportError:
            return None

    gen_ai, error = module("_incubating.attributes.gen_ai_attributes"), module("attributes.error_attributes")
    names = {  # key: (module, constant, the name itself)
        "SYSTEM": (gen_ai, "GEN_AI_SYSTEM", "gen_ai.system"),
        "PROVIDER": (gen_ai, "GEN_AI_PROVIDER_NAME", "gen_ai.provider.name"),
        "OPERATION": (gen_ai, "GEN_AI_OPERATION_NAME", "gen_ai.operation.name"),
        "REQUEST_MODEL": (gen_ai, "GEN_AI_REQUEST_MODEL", "gen_ai.request.model"),
        "FINISH_REASONS": (gen_ai, "GEN_AI_RESPONSE_FINISH_REASONS", "gen_ai.response.finish_reasons"),
        "INPUT_TOKENS": (gen_ai, "GEN_AI_USAGE_INPUT_TOKENS", "gen_ai.usage.input_tokens"),
        "OUTPUT_TOKENS": (gen_ai, "GEN_AI_USAGE_OUTPUT_TOKENS", "gen_ai.usage.output_tokens"),
        "CACHE_READ": (gen_ai, "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS", "gen_ai.usage.cache_read.input_tokens"),
        "CACHE_WRITE": (gen_ai, "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS", "gen_ai.usage.cache_creation.input_tokens"),
        "ERROR_TYPE": (error, "ERROR_TYPE", "error.type"),
    }
    return {key: getattr(mod, constant, fallback) for key, (mod, constant, fallback) in names.items()}


_A = _semconv_names()


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
            value if isinstance(value, (str, bool, int, float, tuple)) else str(value))
    return out


def _error_type(record: RoutingRecord) -> str:
    """What failed a request: the last failed call's kind, else the last outcome (every
    answer rejected), else the conventions' ``_OTHER``."""
    for attempt in reversed(record.attempts):
        if attempt.get("error_kind"):
            return str(attempt["error_kind"])
    return str(record.attempts[-1].get("outcome") or "_OTHER") if record.attempts else "_OTHER"


def record_attributes(record: RoutingRecord) -> dict[str, Any]:
    """The request span's attributes: no ``gen_ai.usage.*`` (its calls' spans carry them)."""
    return _clean({
        _A["OPERATION"]: _ROUTE,
        _A["PROVIDER"]: _PROVIDER,
        _A["SYSTEM"]: _PROVIDER,  # deprecated name, kept for older backends
        _A["ERROR_TYPE"]: _error_type(record) if record.error else None,
        "tiered_router.request_id": record.request_id,
        "tiered_router.session_id": record.session_id,
        "tiered_router.integration": record.integration,
        "tiered_router.policy": record.policy,
        "tiered_router.start_tier": record.start_tier,
        "tiered_router.tier": record.tier,
        "tiered_router.model_id": record.model_id,
        "tiered_router.escalated": record.escalated,
        "tiered_router.attempts": len(record.attempts),
        "tiered_router.aux_calls": len(record.aux_calls),
        "tiered_router.flagged": record.flagged,
        "tiered_router.input_tokens": record.input_tokens,
        "tiered_router.output_tokens": record.output_tokens,
        "tiered_router.cache_read_tokens": record.cache_read_tokens,
        "tiered_router.cache_write_tokens": record.cache_write_tokens,
        "tiered_router.cost_usd": record.cost_usd,
        "tiered_router.baseline_tier": record.baseline_tier,
        "tiered_router.baseline_model_id": record.baseline_model_id,
        "tiered_router.baseline_cost_usd": record.baseline_cost_usd,
        "tiered_router.savings_usd": record.savings_usd,
        "tiered_router.shadow_status": record.shadow_status,
        "tiered_router.shadow_score": record.shadow_score,
        "tiered_router.shadow_cost_usd": record.shadow_cost_usd,
    })


def _usage(call: dict[str, Any]) -> dict[str, Any]:
    """``gen_ai.usage.*`` of one call: input tokens with the cached ones (the record's
    counts are disjoint, as Bedrock reports them)."""
    read, write = int(call.get("cache_read_tokens") or 0), int(call.get("cache_write_tokens") or 0)
    return {
        _A["INPUT_TOKENS"]: int(call.get("input_tokens") or 0) + read + write,
        _A["OUTPUT_TOKENS"]: call.get("output_tokens"),
        _A["CACHE_READ"]: read or None,
        _A["CACHE_WRITE"]: write or None,
    }


def _attempt_attributes(attempt: dict[str, Any]) -> dict[str, Any]:
    stop = attempt.get("stop_reason")
    return _clean({
        _A["OPERATION"]: _CHAT,
        _A["PROVIDER"]: _PROVIDER,
        _A["SYSTEM"]: _PROVIDER,
        _A["REQUEST_MODEL"]: attempt.get("model_id"),
        **_usage(attempt),
        _A["FINISH_REASONS"]: (str(stop),) if stop else None,
        _A["ERROR_TYPE"]: (attempt.get("error_kind") or attempt.get("outcome")) if attempt.get("error") else None,
        "tiered_router.tier": attempt.get("tier"),
        "tiered_router.outcome": attempt.get("outcome"),
        "tiered_router.gate_passed": attempt.get("gate_passed"),
        "tiered_router.gate_reason": attempt.get("gate_reason"),
        "tiered_router.cost_usd": attempt.get("cost_usd"),
        "tiered_router.retries": attempt.get("retries"),
        "tiered_router.error_kind": attempt.get("error_kind"),
        "tiered_router.cache_hit": attempt.get("cache_hit") or None,
    })


def _aux_attributes(call: dict[str, Any]) -> dict[str, Any]:
    return _clean({
        _A["OPERATION"]: _CHAT,
        _A["PROVIDER"]: _PROVIDER,
        _A["SYSTEM"]: _PROVIDER,
        _A["REQUEST_MODEL"]: call.get("model_id"),
        **_usage(call),
        "tiered_router.purpose": call.get("purpose"),
        "tiered_router.tier": call.get("tier"),
        "tiered_router.cost_usd": call.get("cost_usd"),
        "tiered_router.retries": call.get("retries"),
        "tiered_router.unfinished": call.get("unfinished"),
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
        span = self._tracer.start_span(f"{_ROUTE} {record.policy}", kind=self._trace.SpanKind.INTERNAL,
                                       start_time=start, attributes=record_attributes(record))
        if record.error:
            span.set_status(Status(StatusCode.ERROR, record.error))
        context = self._trace.set_span_in_context(span)
        at = start

        def call_span(attributes: dict[str, Any], latency_ms: Any, error: Any) -> None:
            nonlocal at
            clip = (lambda t: min(t, end)) if end > start else (lambda t: t)  # laid out past the end: kept in it
            child = self._tracer.start_span(f"{_CHAT} {attributes.get(_A['REQUEST_MODEL'])}", context=context,
                                            kind=self._trace.SpanKind.CLIENT, start_time=clip(at),
                                            attributes=attributes)
            if error:
                child.set_status(Status(StatusCode.ERROR, str(error)))
            at += int(float(latency_ms or 0.0) * 1_000_000)
            child.end(end_time=clip(at))

        before = [c for c in record.aux_calls if c.get("purpose") in _BEFORE_ATTEMPTS]
        after = [c for c in record.aux_calls if c.get("purpose") not in _BEFORE_ATTEMPTS]
        for call in before:
            call_span(_aux_attributes(call), call.get("latency_ms"), call.get("error"))
        for attempt in record.attempts:
            if attempt.get("cache_hit"):  # answered from a response cache: no model call, no tokens spent
                span.add_event("tiered_router.cache_hit", timestamp=at, attributes=_clean({
                    "tiered_router.tier": attempt.get("tier"), "tiered_router.model_id": attempt.get("model_id"),
                    "tiered_router.outcome": attempt.get("outcome")}))
                continue
            if attempt.get("outcome") == "skipped":  # never called: not a model call, let alone a failed one
                span.add_event("tiered_router.tier_skipped", timestamp=at, attributes=_clean({
                    "tiered_router.tier": attempt.get("tier"), "tiered_router.model_id": attempt.get("model_id"),
                    "tiered_router.reason": attempt.get("error_kind"), "tiered_router.detail": attempt.get("error"),
                }))
                continue
            call_span(_attempt_attributes(attempt), attempt.get("latency_ms"), attempt.get("error"))
        for call in after:
            call_span(_aux_attributes(call), call.get("latency_ms"), call.get("error"))
        span.end(end_time=end if end > start else at)
