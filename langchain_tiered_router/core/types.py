"""The small value types every part of the router passes around."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Awaitable, Callable, Literal

from .access import caller_principals
from .pricing import Usage

__all__ = ["RouteRequest", "TierAnswer", "GateVerdict", "Attempt", "AuxCall", "RoutingResult", "sum_costs",
           "money", "AskFn", "AAskFn"]


def new_request_id() -> str:
    """32 random hex digits, unique per request: a UUID4's randomness without its
    ``os.urandom`` system call on every request. The generator is the router's own,
    seeded from the OS and reseeded in a forked child, so a program's ``random.seed``
    cannot make two processes repeat each other's ids."""
    return f"{_IDS.getrandbits(128):032x}"


_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


@dataclass
class RouteRequest:
    """One request to route, as the core sees it.

    ``text`` is what classifiers and graders read (the conversation flattened);
    ``payload`` is the integration's own request (LangChain messages, a LiteLLM body)
    that only its backend understands. ``principals`` are the caller's typed identities
    (``team:ops``, ``user:alice``) that tier requests are checked against and session
    pins are scoped to; by default they come from ``caller`` (a bare name is a user id).
    ``gates`` judge a text answer, ``tool_gates`` an answer that calls tools, after each
    call is checked against its tool in ``tools`` (``core.tool_calls``).
    """

    text: str  # what classifiers and gates read; integrations build it with ``request_text``
    payload: Any = None
    session_id: str | None = None
    requested_tier: str | None = None
    caller: str | None = None
    principals: tuple[str, ...] = ()
    request_id: str = field(default_factory=lambda: new_request_id())
    metadata: dict[str, Any] = field(default_factory=dict)
    gates: list[Any] = field(default_factory=list)  # per-request gates of text answers (a response_format schema)
    tool_gates: list[Any] = field(default_factory=list)  # per-request gates of tool-calling answers
    tools: dict[str, Any] = field(default_factory=dict)  # bound tools: name -> argument schema (core.tool_calls)
    deadline: float | None = None  # time.monotonic() by which the request must end (set by the engine)

    def __post_init__(self) -> None:
        self.principals = tuple(self.principals) or caller_principals(self.caller)


@dataclass
class TierAnswer:
    """What one tier answered."""

    text: str
    usage: Usage = field(default_factory=Usage)
    model_id: str | None = None  # the model that really answered (prompt routers pick one)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "args", "id"}]
    logprobs: list[float] | None = None
    stop_reason: str | None = None
    raw: Any = None  # the integration's own reply object (ChatGeneration or AIMessage, ModelResponse)
    chunks: list[Any] | None = field(default=None, repr=False)  # a streamed answer's chunks, replayed if served
    usage_estimated: bool = False  # the tier reported no usage (a stream cut short): counts are estimates
    cache_hit: bool = False  # answered by a response cache in front of the model (LiteLLM's): nothing billed
    retried: int = 0  # failed calls the integration itself retried before this answer (LiteLLM's router)


# (purpose, tier name, prompt or the whole request) -> answer; priced by the engine
AskFn = Callable[[str, str, "str | RouteRequest"], TierAnswer]
AAskFn = Callable[[str, str, "str | RouteRequest"], Awaitable[TierAnswer]]


@dataclass
class GateVerdict:
    """A gate's judgement. ``reason`` names where and which rule, never the answer's own
    text, so it may go to telemetry, spans and error messages whatever ``store_text``
    says; ``detail`` may quote the answer and is recorded only with ``store_text``."""

    passed: bool
    reason: str = ""
    gate: str = ""
    score: float | None = None
    error: str | None = None  # the gate raised or timed out (the exception's type): counted in ``gate_errors``
    detail: str | None = None


@dataclass
class AuxCall:
    """A model call made for routing itself: an LLM classifier, a self-grade, a judge."""

    purpose: str
    tier: str
    model_id: str
    usage: Usage
    cost_usd: Decimal | None
    latency_ms: float
    retries: int = 0  # transport errors retried past, by the same policy as tier calls
    # still running when its request ended (a grader past its gate's budget): billed on
    # its prompt's estimated input tokens; what it generates is not known then
    unfinished: bool = False
    # a call that failed (after its retries) and cost nothing: what ended it, as an attempt's
    error: str | None = None
    error_kind: str | None = None


@dataclass
class Attempt:
    """One try of one tier. ``outcome`` tells quality escalations from transport ones."""

    tier: str
    model_id: str
    outcome: Literal["served", "gate_failed", "transport_error", "malformed", "error", "skipped"] = "served"
    answer: TierAnswer | None = None
    verdict: GateVerdict | None = None
    error: str | None = None
    error_kind: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal | None = Decimal(0)
    latency_ms: float = 0.0
    retries: int = 0
    retried_on: list[str] = field(default_factory=list)  # transport error kinds retried past
    emitted: bool = False  # streamed: its output reached the caller as it arrived
    usage_estimated: bool = False  # the tier reported no usage (a stream cut short)
    cache_hit: bool = False  # a response cache answered (``TierAnswer.cache_hit``): priced at 0
    turn: str | None = None  # "text" or "tool_call": which gates judged the answer (None: no answer)
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    retried_errors: list[Exception] = field(default_factory=list, repr=False, compare=False)  # one per retry

    @property
    def gate_passed(self) -> bool | None:
        return None if self.verdict is None else self.verdict.passed

    def to_dict(self, store_text: bool = False) -> dict[str, Any]:
        """Plain JSON; with ``store_text`` the gate reason is the detailed one (it may quote the answer)."""
        verdict, usage = self.verdict, self.usage
        reason = gate = passed = gate_error = None
        if verdict is not None:
            reason = (verdict.detail or verdict.reason) if store_text else verdict.reason
            gate, passed, gate_error = verdict.gate, verdict.passed, verdict.error
        return {
            "tier": self.tier,
            "model_id": self.model_id,
            "outcome": self.outcome,
            "turn": self.turn,
            "gate": gate,
            "gate_passed": passed,
            "gate_reason": reason,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "cost_usd": money(self.cost_usd),
            "usage_estimated": self.usage_estimated,
            "cache_hit": self.cache_hit,
            "emitted": self.emitted,
            "latency_ms": round(self.latency_ms, 3),
            "retries": self.retries,
            "retried_on": list(self.retried_on),
            "error": _bounded(self.error),
            "error_kind": self.error_kind,
            "gate_error": gate_error,
            # why the model stopped (``end_turn``, ``max_tokens``, ``guardrail_intervened``...)
            "stop_reason": self.answer.stop_reason if self.answer is not None else None,
        }


MAX_ERROR_CHARS = 1_000


def _bounded(text: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    """An error message as recorded: a reply that failed to parse can be megabytes."""
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def sum_costs(costs) -> Decimal | None:
    """Sum that stays unknown (``None``) when any part is unknown."""
    total = Decimal(0)
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total


def money(value: Decimal | None) -> str | None:
    """Money as it is serialised everywhere (metadata, headers, sinks): a plain decimal
    string (``0.00000021``, never ``2.1E-7``, which spreadsheets and some JSON readers
    take for text or a float)."""
    return None if value is None else format(value, "f")


@dataclass
class RoutingResult:
    """Everything that happened for one request: the product's unit of telemetry."""

    request_id: str
    policy: str
    baseline_tier: str
    baseline_model_id: str
    start_tier: str
    start_reason: str
    attempts: list[Attempt] = field(default_factory=list)
    aux_calls: list[AuxCall] = field(default_factory=list)
    served: Attempt | None = None
    flagged: bool = False
    flag_reason: str | None = None
    session_id: str | None = None
    started_at: float = field(default_factory=time.time)
    latency_ms: float = 0.0
    baseline_cost_usd: Decimal | None = None
    error: str | None = None  # set when the request ended without an answer
    request: RouteRequest | None = field(default=None, repr=False, compare=False)
    start_requested: bool = field(default=False, compare=False)  # the start tier was the caller's request
    # the session's pin was passed over (its tier's circuit open) or could not be read (the
    # store down): the request must not replace it
    pin_kept: bool = field(default=False, compare=False)
    current_tier: str | None = field(default=None, compare=False)  # the tier being called right now
    closed: bool = field(default=False, compare=False, repr=False)  # ended: its record is being written
    # routing calls under way (``Router._ask_fns``): key -> (purpose, tier, prompt, started)
    aux_in_flight: dict = field(default_factory=dict, compare=False, repr=False)
    # the ladder it was routed on: the prices its calls were billed at (``core.Ladder``)
    ladder: Any = field(default=None, compare=False, repr=False)

    @property
    def gate_errors(self) -> int:
        """Gates that raised instead of judging (each also failed its attempt)."""
        return sum(1 for a in self.attempts if a.verdict is not None and a.verdict.error)

    @property
    def tier(self) -> str | None:
        return self.served.tier if self.served else None

    @property
    def model_id(self) -> str | None:
        if self.served is None:
            return None
        return (self.served.answer.model_id if self.served.answer and self.served.answer.model_id
                else self.served.model_id)

    @property
    def answer(self) -> TierAnswer | None:
        return self.served.answer if self.served else None

    @property
    def escalated(self) -> bool:
        return len({a.tier for a in self.attempts}) > 1 or (
            bool(self.attempts) and self.attempts[-1].tier != self.start_tier)

    @property
    def quality_escalations(self) -> int:
        """Escalations for an answer a gate failed (the last failure escalates nowhere)."""
        tiers = [a.tier for a in self.attempts]
        return sum(1 for i, a in enumerate(self.attempts[:-1]) if a.outcome == "gate_failed" and tiers[i + 1] != a.tier)

    @property
    def transport_escalations(self) -> int:
        """Escalations for a tier that did not answer: transport errors and malformed
        replies (their retries spent), skips (an open circuit) and model limits (a prompt
        over the context window)."""
        tiers = [a.tier for a in self.attempts]
        return sum(1 for i, a in enumerate(self.attempts[:-1])
                   if a.outcome in ("transport_error", "malformed", "skipped", "error") and tiers[i + 1] != a.tier)

    @property
    def cost_usd(self) -> Decimal | None:
        """Every call made for this request: each attempt and each routing call."""
        return sum_costs([a.cost_usd for a in self.attempts] + [c.cost_usd for c in self.aux_calls])

    @property
    def savings_usd(self) -> Decimal | None:
        cost = self.cost_usd
        if cost is None or self.baseline_cost_usd is None:
            return None
        return self.baseline_cost_usd - cost

    @property
    def total_usage(self) -> Usage:
        total = Usage()
        for item in [*self.attempts, *self.aux_calls]:
            total = total + item.usage
        return total
