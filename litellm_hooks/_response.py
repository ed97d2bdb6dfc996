"""What the client sees of the routing: response headers and a ``tiered_router`` field.

The field (and LiteLLM's ``spend_logs_metadata.tiered_router``) is the routing record
itself (``routing_dict``: the one serialised form, money as decimal strings).
"""

from __future__ import annotations

from typing import Any

from langchain_tiered_router.core import RoutingResult
from langchain_tiered_router.core.telemetry.record import routing_dict
from langchain_tiered_router.core.types import money

__all__ = ["gates_refused", "routing_headers", "routing_summary", "HEADER_PREFIX"]

HEADER_PREFIX = "x-tiered-router-"


def routing_summary(result: RoutingResult) -> dict[str, Any]:
    """The routing record, as put in the response and LiteLLM's logging metadata."""
    return routing_dict(result)


def gates_refused(result: RoutingResult) -> bool:
    """A route that ended unserved because no tier's answer passed its gates (under
    ``on_exhausted: raise``): a retry of the same request pays the ladder again."""
    called = [a for a in result.attempts if a.outcome != "skipped"]
    return result.served is None and result.current_tier is None and bool(called) and \
        called[-1].outcome == "gate_failed"


def routing_headers(result: RoutingResult) -> dict[str, str]:
    """Headers the proxy adds to the response. A stream whose tier is still sending
    (no gate on it) is described by the tier streaming; its cost comes at the end."""
    streaming = result.served is None and result.current_tier is not None
    tier = result.tier or result.current_tier  # none: nothing was served (a failed route names no tier)
    headers = {
        f"{HEADER_PREFIX}tier": tier,
        f"{HEADER_PREFIX}start-tier": result.start_tier,
        f"{HEADER_PREFIX}escalated": str(result.escalated or (tier is not None and tier != result.start_tier)).lower(),
        f"{HEADER_PREFIX}flagged": str(result.flagged).lower(),
        f"{HEADER_PREFIX}request-id": result.request_id,
        f"{HEADER_PREFIX}policy": result.policy,
    }
    if streaming:
        headers[f"{HEADER_PREFIX}streamed-through"] = "true"
    else:
        headers[f"{HEADER_PREFIX}attempts"] = ",".join(f"{a.tier}:{a.outcome}" for a in result.attempts)
        headers[f"{HEADER_PREFIX}cost-usd"] = money(result.cost_usd) or "unknown"
        headers[f"{HEADER_PREFIX}baseline-cost-usd"] = money(result.baseline_cost_usd) or "unknown"
    if result.served is not None and result.model_id:
        headers[f"{HEADER_PREFIX}model-id"] = result.model_id
    if gates_refused(result):
        # OpenAI's and Anthropic's SDKs retry a 5xx twice by default, each retry paying
        # the whole ladder again; this header (theirs) tells them not to
        headers["x-should-retry"] = "false"
    # Header values must be latin-1; reasons can hold anything.
    return {k: v.encode("latin-1", "replace").decode("latin-1") for k, v in headers.items() if v}
