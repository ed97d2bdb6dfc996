"""The telemetry record: one per routed request, the one serialised form of a routing.

The same record, built once from a ``RoutingResult``, is what ``TieredChatBedrock`` puts
in ``response_metadata["routing"]``, what the LiteLLM proxy returns in its
``tiered_router`` field and logging metadata, and what every sink writes
(``to_json_dict``). Money is ``Decimal`` here and a decimal string in every serialised
form, so sums stay exact. Prompt and answer text are kept only with ``store_text``.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from ..types import RouteRequest, RoutingResult, _bounded, money

__all__ = ["RoutingRecord", "PendingRecord", "record_from_result", "routing_dict", "record_json", "MONEY_FIELDS", "built", "logged_json"]

MONEY_FIELDS = ("cost_usd", "baseline_cost_usd", "savings_usd", "shadow_cost_usd")
# an attempt whose call failed: a transport escalation when the next attempt is another tier
_FAILED_CALL = frozenset(("transport_error", "malformed", "skipped", "error"))


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
    shadow_input_tokens: int | None = None  # the baseline's shadow call (judge calls not included)
    shadow_output_tokens: int | None = None

    @property
    def shadowed(self) -> bool:
        return self.shadow_status == "done" and self.shadow_score is not None

    @property
    def time_iso(self) -> str:
        return _dt.datetime.fromtimestamp(self.ts, _dt.timezone.utc).isoformat()

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types; money as strings so no precision is lost.

        Copied field by field (attempts and routing calls are already plain dicts):
        ``dataclasses.asdict`` deep-copies every value and cost 90 % of a sink's time."""
        out = self.json_view()
        out["attempts"] = [_copy_plain(a) for a in self.attempts]
        out["aux_calls"] = [_copy_plain(c) for c in self.aux_calls]
        out["metadata"] = _copy_plain(self.metadata)
        return out

    def json_view(self) -> dict[str, Any]:
        """``to_json_dict`` without copying the nested lists and dicts: for serialising
        at once (the sinks), never for handing out."""
        out = dict(self.__dict__)  # the fields, in order (a plain dataclass: no slots)
        for key in MONEY_FIELDS:
            if out[key] is not None:
                out[key] = money(out[key])  # 0.00000007, as the sinks write it, never 7E-8
        return out

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> "RoutingRecord":
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}  # newer writers may add fields
        for key in MONEY_FIELDS:
            if data.get(key) is not None:
                data[key] = Decimal(str(data[key]))
        return cls(**data)


def _copy_plain(value: Any) -> Any:
    """A copy of nested dicts and lists of JSON values (what ``asdict`` made of them)."""
    if isinstance(value, dict):
        return {k: _copy_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_plain(v) for v in value]
    return value


def record_from_result(result: RoutingResult, request: RouteRequest | None = None, *,
                       integration: str | None = None, store_text: bool = False) -> RoutingRecord:
    """The record of one routing. ``request`` defaults to the one the engine routed;
    ``integration`` to the request's ``metadata["integration"]``.

    A sink's writer builds one for every request; ``routing_dict`` hands out the same
    fields as JSON."""
    return RoutingRecord(**_record_fields(result, request, integration, store_text))


def _record_fields(result: RoutingResult, request: RouteRequest | None, integration: str | None,
                   store_text: bool, as_json: bool = False) -> dict[str, Any]:
    """The record's fields, every call of the request read once (not once per derived
    property of the result); with ``as_json`` money is already its decimal string.

    One pass over the attempts: this runs on the request path (``routing_dict``), where
    every loop and temporary costs three times what it costs in a warm loop."""
    request = request if request is not None else result.request
    meta = request.metadata if request is not None else {}
    served = result.served
    attempts, aux_calls = result.attempts, result.aux_calls
    tokens_in = tokens_out = cache_read = cache_write = 0
    cost: Decimal | None = Decimal(0)
    quality = transport = gate_errors = 0
    dicts = []
    last = len(attempts) - 1
    for i, a in enumerate(attempts):  # every attempt: tokens, cost, escalation counts, its dict
        usage = a.usage
        tokens_in += usage.input_tokens
        tokens_out += usage.output_tokens
        cache_read += usage.cache_read_tokens
        cache_write += usage.cache_write_tokens
        cost = None if cost is None or a.cost_usd is None else cost + a.cost_usd
        outcome = a.outcome
        if i < last and attempts[i + 1].tier != a.tier:  # escalated from this attempt
            if outcome == "gate_failed":
                quality += 1
            elif outcome in _FAILED_CALL:
                transport += 1
        verdict = a.verdict
        if verdict is not None and verdict.error:
            gate_errors += 1
        dicts.append(a.to_dict(store_text))
    aux = []
    for c in aux_calls:  # routing's own calls: in the totals, and listed
        usage = c.usage
        tokens_in += usage.input_tokens
        tokens_out += usage.output_tokens
        cache_read += usage.cache_read_tokens
        cache_write += usage.cache_write_tokens
        cost = None if cost is None or c.cost_usd is None else cost + c.cost_usd
        aux.append({"purpose": c.purpose, "tier": c.tier, "model_id": c.model_id, "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens, "cost_usd": money(c.cost_usd),
                    "latency_ms": round(c.latency_ms, 3), "retries": c.retries,
                    **({"unfinished": True} if c.unfinished else {}),
                    **({"error": c.error, "error_kind": c.error_kind} if c.error is not None else {})})
    baseline = result.baseline_cost_usd
    savings = None if cost is None or baseline is None else baseline - cost  # result.savings_usd, once
    if attempts:
        first = attempts[0].tier
        escalated = attempts[-1].tier != result.start_tier or any(a.tier != first for a in attempts)
    else:
        escalated = False
    if as_json:
        cost, baseline, savings = money(cost), money(baseline), money(savings)
    answer = served.answer if (store_text and served is not None) else None
    session = result.session_id
    return {  # every field of RoutingRecord, in its order: ``routing_dict`` hands this dict out
        "request_id": result.request_id,
        "ts": result.started_at,
        "session_id": session if session is None or isinstance(session, str) else str(session),  # a UUID: text
        "policy": result.policy,
        "integration": integration or str(meta.get("integration") or "core"),
        "start_tier": result.start_tier,
        "start_reason": result.start_reason,
        "tier": served.tier if served is not None else None,
        "model_id": result.model_id,
        "escalated": escalated,
        "quality_escalations": quality,
        "transport_escalations": transport,
        "flagged": result.flagged,
        "flag_reason": _bounded(result.flag_reason),
        "error": _bounded(result.error) if served is None else None,
        "attempts": dicts,
        "aux_calls": aux,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "cost_usd": cost,
        "baseline_tier": result.baseline_tier,
        "baseline_model_id": result.baseline_model_id,
        "baseline_cost_usd": baseline,
        "savings_usd": savings,
        "latency_ms": round(result.latency_ms, 3),
        "prompt_text": request.text if (store_text and request is not None) else None,
        "answer_text": answer.text if answer else None,
        "shadow_score": None,
        "shadow_cost_usd": None,
        "metadata": {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))} if meta else {},
        "shadow_status": None,
        "shadow_comparator": None,
        "shadow_answer_text": None,
        "shadow_error": None,
        "gate_errors": gate_errors,
        "shadow_input_tokens": None,
        "shadow_output_tokens": None,
    }


class PendingRecord:
    """A record not built yet: what the request path hands a background sink, which
    builds it on its writer thread, so telemetry costs a request one enqueue. The result
    is final when the engine's observers see it. Each ``build`` makes the record anew
    (a store turns it into its row at once and lets it go: records held for a whole
    batch cost the garbage collector more than building them)."""

    __slots__ = ("result", "request", "store_text")

    def __init__(self, result: RoutingResult, request: RouteRequest | None, store_text: bool):
        self.result, self.request, self.store_text = result, request, store_text

    @property
    def request_id(self) -> str:
        return self.result.request_id

    def build(self) -> RoutingRecord:
        return record_from_result(self.result, self.request, store_text=self.store_text)


def built(record: "RoutingRecord | PendingRecord") -> RoutingRecord:
    """The record itself, building a pending one."""
    return record.build() if isinstance(record, PendingRecord) else record


def logged_json(record: "RoutingRecord | PendingRecord") -> str:
    """The record's JSON for a log line that must carry it (a drop, a failed write), or
    a placeholder naming the request when the record cannot be built or serialised (a
    bug): logging it must never raise."""
    try:
        return record_json(built(record))
    except Exception as exc:  # noqa: BLE001
        return f"<record {getattr(record, 'request_id', '?')} could not be built or serialised: {exc!r}>"


def routing_dict(result: RoutingResult) -> dict[str, Any]:
    """The record as plain JSON (money as decimal strings): ``response_metadata["routing"]``
    and the proxy's ``tiered_router`` field. Text is never in it.

    Built on the request path, so straight from the fields: no record made and copied."""
    return _record_fields(result, None, None, False, as_json=True)


def record_json(record: RoutingRecord | dict[str, Any]) -> str:
    """The record as one line of JSON that any database and log handler can encode.

    orjson when it is installed (20x faster than ``json``: the writer's main cost);
    text orjson refuses (a lone surrogate) goes through ``json`` as ASCII escapes, which
    keep it exact."""
    if _orjson is not None:
        try:  # a record as the dataclass it is: orjson reads its fields in order, Decimal by str
            return _orjson.dumps(record, default=_plain).decode("utf-8")
        except TypeError:
            pass
    data = record.json_view() if isinstance(record, RoutingRecord) else record
    return json.dumps(data, ensure_ascii=True, default=_plain, separators=(",", ":"))


def _plain(value: Any) -> str:
    """What JSON has no type for: money as a plain decimal string (``money``), else ``str``."""
    return money(value) if isinstance(value, Decimal) else str(value)


try:  # optional speed-up; json is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency, kept optional here
    _orjson = None
