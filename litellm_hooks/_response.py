"""What the client sees of the routing: response headers and a ``tiered_router`` field."""

from __future__ import annotations

from typing import Any

from langchain_tiered_router.core import RoutingResult

__all__ = ["routing_headers", "routing_summary", "HEADER_PREFIX"]

HEADER_PREFIX = "x-tiered-router-"


def _money(value: Any) -> str:
    return "unknown" if value is None else str(value)


def routing_summary(result: RoutingResult, *, streamed_through: bool = False) -> dict[str, Any]:
    """The routing fields as put in the response, LiteLLM's logging metadata and headers."""
    meta = result.to_metadata()
    meta["streamed_through"] = streamed_through
    if streamed_through:
        # Only the start is decided yet: the stream's tokens, and so its cost, come later
        # (to the telemetry sink, and to LiteLLM's own log line of the tier's call).
        meta.update(tier=result.start_tier, cost_usd=None, baseline_cost_usd=None, savings_usd=None)
        return meta
    meta["cost_usd"] = None if result.cost_usd is None else str(result.cost_usd)
    meta["baseline_cost_usd"] = None if result.baseline_cost_usd is None else str(result.baseline_cost_usd)
    meta["savings_usd"] = None if result.savings_usd is None else str(result.savings_usd)
    return meta


def routing_headers(result: RoutingResult, *, streamed_through: bool = False) -> dict[str, str]:
    """Headers the proxy adds to the response. A stream passed straight through is
    described as routed (its cost is only known when it ends)."""
    tier = result.tier or result.start_tier
    headers = {
        f"{HEADER_PREFIX}tier": tier,
        f"{HEADER_PREFIX}start-tier": result.start_tier,
        f"{HEADER_PREFIX}escalated": str(result.escalated).lower(),
        f"{HEADER_PREFIX}flagged": str(result.flagged).lower(),
        f"{HEADER_PREFIX}request-id": result.request_id,
        f"{HEADER_PREFIX}policy": result.policy,
    }
    if streamed_through:
        headers[f"{HEADER_PREFIX}streamed-through"] = "true"
    else:
        headers[f"{HEADER_PREFIX}attempts"] = ",".join(f"{a.tier}:{a.outcome}" for a in result.attempts)
        headers[f"{HEADER_PREFIX}cost-usd"] = _money(result.cost_usd)
        headers[f"{HEADER_PREFIX}baseline-cost-usd"] = _money(result.baseline_cost_usd)
    if result.served is not None and result.model_id:
        headers[f"{HEADER_PREFIX}model-id"] = result.model_id
    # Header values must be latin-1; reasons can hold anything.
    return {k: v.encode("latin-1", "replace").decode("latin-1") for k, v in headers.items() if v}
