"""What LiteLLM's logs, spend and limits see of one request routed on the proxy.

LiteLLM logs the request the client sent (model ``tiered``) through that request's
logging object, attributed to the calling key, team and user. The tier calls the
provider makes for it are ``no-log`` (``LiteLLMRouterBackend(log_tier_calls=False)``),
so the callbacks an operator configured, and the spend log, see one event per request,
and that event carries everything the routing spent:

* the routed cost (every attempt, failed-gate ones included, and every routing call),
  once: a served request's ``response_cost``; for a streamed or failed request the
  logging object's finalized cost, which LiteLLM's failure log bills like a served one,
  so a request whose ladder is exhausted still charges the caller;
* the tokens of every attempt and routing call as the request's ``usage``, so key and
  team TPM limits and usage dashboards count what was spent;
* ``routing_decision``, LiteLLM's own field for a router's choice (which model served,
  which tier, whether it escalated), beside the whole record in
  ``spend_logs_metadata.tiered_router``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import litellm
from litellm.litellm_core_utils.llm_cost_calc.finalization import finalize_cost

from langchain_tiered_router.core import RoutingResult

from ._response import routing_summary

__all__ = ["routed_usage", "routing_decision", "publish_route", "mark_routed", "bill_on_logging_object",
           "cost_breakdown"]


def routed_usage(result: RoutingResult) -> litellm.Usage:
    """Every attempt's and routing call's tokens, in LiteLLM's convention (cached tokens
    are part of ``prompt_tokens``), with the detail objects a deployment's usage has
    (OpenAI clients read ``completion_tokens_details.reasoning_tokens``): reasoning tokens
    as the attempts' replies counted them (0 where none did), the rest text."""
    total = result.total_usage
    prompt = total.input_tokens + total.cache_read_tokens + total.cache_write_tokens
    reasoning = min(total.output_tokens, sum(_reasoning_tokens(a.answer.raw) for a in result.attempts
                                              if a.answer is not None))
    return litellm.Usage(prompt_tokens=prompt, completion_tokens=total.output_tokens,
                         total_tokens=prompt + total.output_tokens,
                         prompt_tokens_details={"cached_tokens": total.cache_read_tokens,
                                                "text_tokens": total.input_tokens},
                         completion_tokens_details={"reasoning_tokens": reasoning,
                                                    "text_tokens": total.output_tokens - reasoning},
                         cache_read_input_tokens=total.cache_read_tokens,
                         cache_creation_input_tokens=total.cache_write_tokens)


def _reasoning_tokens(raw: Any) -> int:
    """The reasoning tokens a LiteLLM reply's usage reports; 0 when it reports none."""
    details = getattr(getattr(raw, "usage", None), "completion_tokens_details", None)
    value = getattr(details, "reasoning_tokens", None)
    return value if isinstance(value, int) and value > 0 else 0


def routing_decision(result: RoutingResult, proxy_model: str | None) -> dict[str, Any]:
    """LiteLLM's ``StandardLoggingRoutingDecision`` fields that describe this routing.

    Its ``router_type`` and ``cause`` are closed lists of LiteLLM's own routers and are
    left out; so is ``savings_baseline_model``, from which LiteLLM would compute a
    savings figure of its own (the record's ``savings_usd`` is the one to read)."""
    decision: dict[str, Any] = {
        "router_model_name": proxy_model or "tiered_router",
        "escalated": result.escalated,
        "signals": [f"{a.tier}:{a.outcome}" for a in result.attempts],
    }
    if result.served is not None:
        decision["tier"] = decision["tier_label"] = result.served.tier
        decision["routed_model"] = result.model_id
    return decision


def publish_route(result: RoutingResult, metadata: dict, proxy_model: str | None) -> dict[str, Any]:
    """The record into the request's LiteLLM metadata (its spend logs and callbacks carry
    it as ``spend_logs_metadata.tiered_router``) and LiteLLM's ``routing_decision``;
    returns the record."""
    summary = routing_summary(result)
    spend = metadata.get("spend_logs_metadata")
    metadata["spend_logs_metadata"] = {**(spend if isinstance(spend, dict) else {}), "tiered_router": summary}
    metadata["routing_decision"] = routing_decision(result, proxy_model)
    return summary


def mark_routed(response: Any, result: RoutingResult, summary: dict[str, Any]) -> Any:
    """The served response as the client gets it and LiteLLM logs it: the record, every
    attempt's tokens (what key and team TPM limits count) and the routed cost in LiteLLM's
    own float field; an unknown cost is left to LiteLLM, never 0."""
    setattr(response, "tiered_router", summary)
    response.usage = routed_usage(result)
    hidden = dict(getattr(response, "_hidden_params", None) or {})
    hidden["tiered_router"] = summary
    if result.cost_usd is not None:
        hidden["response_cost"] = float(result.cost_usd)
    else:
        hidden.pop("response_cost", None)
    response._hidden_params = hidden
    return response


def bill_on_logging_object(logging_obj: Any, result: RoutingResult) -> None:
    """Make the request's own log carry the routed cost and tokens, whatever becomes of it:
    LiteLLM then bills a failed request (its failure log) and a streamed one (whose cost
    it cannot compute for the ``tiered_router`` model) like a served one. An unknown cost
    is left to LiteLLM, never reported as 0."""
    cost = result.cost_usd
    if logging_obj is None or cost is None:
        return
    amount = float(cost)
    logging_obj.record_partial_usage_for_failure(routed_usage(result), amount)
    logging_obj.record_finalized_cost(finalize_cost(amount, cost_breakdown(result)))


def cost_breakdown(result: RoutingResult) -> dict[str, Any] | None:
    """LiteLLM's ``CostBreakdown`` of the routed cost: every attempt's and routing call's
    input, output and cache costs at the ladder's prices, summed (LiteLLM's
    ``x-litellm-response-cost-input``/``-output`` headers and the spend log's
    ``cost_breakdown`` read it). ``None`` when a call's tier or price is not the
    ladder's, or the parts do not add up to the routed cost: no breakdown beats a
    wrong one."""
    ladder, cost = result.ladder, result.cost_usd
    if ladder is None or cost is None:
        return None
    totals = dict.fromkeys(("input", "output", "cache_read", "cache_write"), Decimal(0))
    for call in (*result.attempts, *result.aux_calls):
        if not call.cost_usd:
            continue  # a failed call, which Bedrock does not bill
        tier = ladder[call.tier] if call.tier in ladder else None
        parts = tier.price.parts(call.usage) if tier is not None and tier.price is not None else None
        if parts is None:
            return None
        for key, value in parts.items():
            totals[key] += value
    if abs(sum(totals.values()) - cost) > Decimal("1e-12"):
        return None
    return {"input_cost": float(totals["input"]), "output_cost": float(totals["output"]),
            "cache_read_cost": float(totals["cache_read"]), "cache_creation_cost": float(totals["cache_write"]),
            "total_cost": float(cost), "original_cost": float(cost), "discount_amount": 0.0,
            "margin_total_amount": 0.0, "margin_percent": 0.0}
