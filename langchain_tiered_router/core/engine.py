"""The router engine: choose a start tier, call, judge, escalate, finish, record.

The escalation loop is written once, as a generator that yields effects (choose the
start, call a tier, judge an answer, sleep) and receives their results. Four drivers
carry the effects out: ``route`` with blocking calls, ``aroute`` with awaits, and
``stream`` / ``astream``, which read each tier's answer as a stream and pass its
chunks on to the caller while no gate needs the whole answer. A streamed attempt is
the same effect as a called one; its state knows whether output has already gone to
the caller, so retries, escalation before the first chunk, pricing (a stream cut
after some output included) and the record exist once, for every integration.

Only a failed tier call (``TierCallError``) is an attempt failure; anything else is a
bug and propagates, after the attempt is recorded. Whatever happens, the finished
``RoutingResult`` reaches every observer (telemetry sinks, the shadow sampler) before
the caller sees the exception, or the rest of the answer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, AsyncIterator, Callable, Generator, Iterator, Sequence

from .access import may_request, parse_principal, pin_key
from .backends import Backend, TierStream, estimated_answer
from .circuit import CircuitBreaker
from .classifiers import TierChoice
from .config import RetryConfig
from .clocks import call_clock
from .deadline import call_timeout, deadline_error, routing_call_for, stamp_deadline, time_left
from .errors import (GateFailed, LadderExhaustedError, MalformedReplyError, ModelLimitError, TierCallError,
                     TierNotAllowedError, TransportError, UnknownTierRequestError)
from .gate_budget import DEFAULT_TIMEOUT_S, ajudge_within, judge_within
from .gates import AllOf, Gate, GateState, safe_ajudge, safe_judge
from .pinning import PinStore, PinStoreUnavailable, decode_pin, encode_pin
from .policies import Policy
from .pricing import Usage, estimate_tokens, lookup_price
from .redact import redact_secrets
from .store_calls import call_off_loop, may_stall
from .tiers import Ladder, Tier
from .tool_calls import TURN_KINDS, ToolCallGate, TurnKind, turn_kind
from .types import Attempt, AuxCall, GateVerdict, RouteRequest, RoutingResult, TierAnswer

__all__ = ["Router", "Observer", "RoutedStream", "AsyncRoutedStream"]

log = logging.getLogger("langchain_tiered_router")

Observer = Callable[[RoutingResult, RouteRequest, Backend], None]

_NOTHING = Decimal(0)
# a tier call that failed (its retries spent): escalated or raised by ``retry.on_exhausted``
_FAILED_CALLS = frozenset(("transport_error", "malformed"))


def _passed_over_outage(result: RoutingResult) -> bool:
    """Whether the served tier was reached past a tier that failed to answer (a failed
    call, an open circuit, the deadline): such a request does not move its session's pin,
    or one short outage would keep the conversation on a dearer tier for good."""
    served = result.served
    for attempt in result.attempts:
        if attempt is served:
            return False
        if attempt.outcome in _FAILED_CALLS or attempt.outcome == "skipped":
            return True
    return False


class _ConsumerClosed(RuntimeError):
    """Thrown into the loop when the caller stops reading a stream: the attempt and the
    route are recorded, then the close goes on."""


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        # its message, when there is one, names a cancel scope and a task by memory address
        return "CancelledError: the caller cancelled the request"
    name = "RuntimeError" if isinstance(exc, _ConsumerClosed) else type(exc).__name__
    return redact_secrets(f"{name}: {exc}")  # recorded and logged: a URL's password in a provider's message is not


def _error_kind(exc: BaseException) -> str:
    """An attempt's ``error_kind`` for an exception that ended it: its type's name, or
    ``consumer_closed`` when the caller stopped reading (never a private class's name)."""
    return "consumer_closed" if isinstance(exc, _ConsumerClosed) else type(exc).__name__


# Effects the loop yields; the drivers carry them out.
@dataclass
class _Call:
    tier: Tier
    request: RouteRequest
    stream: bool = False  # read through ``Backend.stream``
    live: bool = False  # the chunks go to the caller as they arrive (no gate on this tier)
    emitted: bool = False  # set by the driver: output of this call reached the caller
    partial: TierAnswer | None = None  # set by the driver when a stream broke after output
    in_flight: bool = False  # handed to the backend and not yet answered or failed
    consumer_s: float = 0.0  # time its live chunks spent with the caller: not the tier's latency


@dataclass
class _Judge:
    gate: Gate
    state: GateState


@dataclass
class _Sleep:
    seconds: float


@dataclass
class _Choose:
    request: RouteRequest


@dataclass
class _Store:
    """A call to a store that is failing (``store_calls``): on an event loop it runs on a
    worker thread."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]


PINNED_REASON = "pinned by session"  # a start reason: the session's pin chose the tier

# Stop reasons that mean a guardrail, not the model, wrote the answer (Bedrock's
# Converse; LiteLLM's OpenAI-shaped ``content_filter``).
GUARDRAIL_STOPS = frozenset({"guardrail_intervened", "content_filter"})


def guardrail_verdict(answer: TierAnswer) -> GateVerdict | None:
    """The verdict on an answer a Bedrock guardrail wrote in the model's place: served as
    given, since the same guardrail answers on every tier and escalating would pay each
    tier for its message (live and batch alike); None for a model's own answer."""
    if answer.stop_reason not in GUARDRAIL_STOPS:
        return None
    return GateVerdict(True, "a guardrail intervened: its answer is served as given", "guardrail")


class Router:
    """Routes requests up a tier ladder. Framework-free; integrations pass a ``Backend``."""

    def __init__(
        self,
        ladder: Ladder,
        policy: Policy,
        gates: Sequence[Gate] = (),
        *,
        tier_gates: dict[str, Sequence[Gate]] | None = None,
        tool_gates: Sequence[Gate] = (),
        tier_tool_gates: dict[str, Sequence[Gate]] | None = None,
        on_exhausted: str = "flag",
        retry: RetryConfig | None = None,
        pin_store: PinStore | None = None,
        observers: Sequence[Observer] = (),
        allow_tier_request: Sequence[str] = ("*",),
        on_forbidden: str = "reject",
        gate_timeout_s: float | None = DEFAULT_TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Any] = asyncio.sleep,
        breaker: CircuitBreaker | None = None,
        deadline_s: float | None = None,
    ):
        if on_exhausted not in ("flag", "raise"):
            raise ValueError("on_exhausted must be 'flag' or 'raise'")
        self.ladder = ladder
        self.policy = policy
        self.gates = list(gates)
        self.tier_gates = {k: list(v) for k, v in (tier_gates or {}).items()}
        self.tool_gates = list(tool_gates)
        self.tier_tool_gates = {k: list(v) for k, v in (tier_tool_gates or {}).items()}
        self.on_exhausted = on_exhausted
        self.retry = retry or RetryConfig()
        self.pin_store = pin_store
        self.observers = list(observers)
        self.allow_tier_request = {parse_principal(p, path=f"access.allow_tier_request[{i}]")
                                   for i, p in enumerate(allow_tier_request)}
        self.on_forbidden = on_forbidden
        self.gate_timeout_s = gate_timeout_s  # each judgement's budget (core.gate_budget); None: no limit
        self._sleep = sleep
        self._asleep = asleep
        self.breaker = breaker  # per-tier circuit breaker (circuit.py)
        self.deadline_s = deadline_s  # a request's whole time budget (deadline.py)

    # -- gates -------------------------------------------------------------------

    def gates_for(self, tier: Tier, request: RouteRequest, turn: TurnKind = "text") -> Gate | None:
        """The gate of ``tier``'s answers of one kind (``core.tool_calls.turn_kind``).

        A text answer: the tier's ``gates`` (else the top-level ones), the policy's own
        gates and the request's. A tool-calling answer: each call checked against its
        bound tool, then the tier's ``tool_gates`` (else the top-level ones) and the
        request's ``tool_gates``."""
        if turn == "tool_call":
            gates = [ToolCallGate(request.tools)] if request.tools else []
            gates += self.tier_tool_gates.get(tier.name, self.tool_gates)
            gates += request.tool_gates
        else:
            gates = list(self.tier_gates.get(tier.name, self.gates))
            gates += self.policy.extra_gates(tier) + list(request.gates)
        if not gates:
            return None
        return gates[0] if len(gates) == 1 else AllOf(gates)

    def judges(self, tier: Tier, request: RouteRequest) -> bool:
        """True when some gate would judge ``tier``'s answer, whichever kind it turns out
        to be: its stream must then be read whole before any of it reaches the caller."""
        return any(self.gates_for(tier, request, turn) is not None for turn in TURN_KINDS)

    def streams_through(self, request: RouteRequest) -> bool:
        """True when no gate needs the whole answer, so every tier's stream passes straight through."""
        return not any(self.judges(t, request) for t in self.ladder)

    def _backoff(self, exc: TierCallError, retries: int, request: RouteRequest) -> float | None:
        """The wait before retrying a tier after ``exc``, or None when it must not be
        retried: its kind is not retried, the retries are spent, or the server asks for a
        longer wait than ``max_backoff_s`` or the deadline leaves. The tier's circuit is
        asked after this (``_retry_delay``)."""
        kind = exc.kind if isinstance(exc, TransportError) else "malformed"
        if kind not in self.retry.retry_on or retries >= self.retry.max_retries:
            return None
        after = exc.retry_after_s if isinstance(exc, TransportError) else None
        if after is not None and after > self.retry.max_backoff_s:
            return None
        delay = self.retry.delay(retries + 1, after)
        left = time_left(request)
        if left is not None and delay >= left:
            return None
        return delay

    @staticmethod
    def _ask_store(store: Any, fn: Callable[..., Any], *args: Any) -> Generator[Any, Any, Any]:
        """``fn(*args)``, a call to ``store``: yielded as an effect while the store is failing
        (the async driver runs it off the event loop), else called here."""
        if may_stall(store):
            return (yield _Store(fn, args))
        return fn(*args)

    def _retry_delay(self, exc: TierCallError, retries: int, tier: Tier, request: RouteRequest
                     ) -> Generator[Any, Any, float | None]:
        """``_backoff``'s wait, or None when the tier's circuit has just opened."""
        delay = self._backoff(exc, retries, request)
        if delay is not None and self.breaker is not None and \
                not (yield from self._ask_store(self.breaker, self.breaker.allow, tier.name)):
            return None
        return delay

    def _record_call(self, tier: Tier, ok: bool) -> Generator[Any, Any, None]:
        if self.breaker is not None:
            yield from self._ask_store(self.breaker, self.breaker.record, tier.name, ok)

    def _circuit_open(self, tier: str) -> Generator[Any, Any, bool]:
        """Whether ``tier``'s circuit is open; a breaker that cannot say (its Redis is down) is
        read as closed, as its ``allow`` reads an outage: the request goes on."""
        try:
            return (yield from self._ask_store(self.breaker, self.breaker.state, tier)) == "open"
        except _ConsumerClosed:
            raise
        except Exception:  # noqa: BLE001 - the breaker's store is down: not a reason to fail the request
            return False

    def _blocked(self, tier: Tier, request: RouteRequest) -> Generator[Any, Any, tuple[str, str] | None]:
        """Why ``tier`` is not called at all: the deadline passed, or its circuit is open."""
        left = time_left(request)
        if left is not None and left <= 0:
            return "deadline", f"skipped: the request's deadline ({self.deadline_s}s) passed"
        if self.breaker is not None and not (yield from self._ask_store(self.breaker, self.breaker.allow, tier.name)):
            return "circuit_open", (f"skipped: the circuit for tier {tier.name} is open after "
                                    f"{self.breaker.failures} transport failures in a row")
        return None

    # -- the loop, once ------------------------------------------------------------

    def _new_result(self, request: RouteRequest) -> RoutingResult:
        stamp_deadline(request, self.deadline_s)
        base = self.ladder.baseline
        return RoutingResult(request_id=request.request_id, policy=self.policy.name, baseline_tier=base.name,
                             baseline_model_id=base.model_id, start_tier="", start_reason="",
                             session_id=request.session_id, request=request, ladder=self.ladder)

    def _choose_start(self, request: RouteRequest, result: RoutingResult) -> Generator[Any, Any, Tier]:
        choice: TierChoice | None
        if request.requested_tier and self._may_request(request):
            if request.requested_tier not in self.ladder:
                raise UnknownTierRequestError(request.requested_tier, self.ladder.names)
            choice = TierChoice(self.ladder[request.requested_tier].name, "requested by the caller")
            result.start_requested = True
        else:
            choice = yield from self._pinned(request, result)
            if choice is None:
                choice = yield _Choose(request)
        tier = self.ladder[choice.tier]
        result.start_tier, result.start_reason = tier.name, choice.reason
        return tier

    def _pinned(self, request: RouteRequest, result: RoutingResult) -> Generator[Any, Any, TierChoice | None]:
        """The session's pin for this caller; a pin the caller's own tier request made
        counts only while the caller may still request tiers."""
        if self.pin_store is None or not request.session_id:
            return None
        try:
            pin = decode_pin((yield from self._ask_store(self.pin_store, self.pin_store.get,
                                                         pin_key(request.session_id, request.principals))))
        except _ConsumerClosed:
            raise
        except PinStoreUnavailable:  # logged by the store, once in a while
            result.pin_kept = True
            return None
        except Exception:  # noqa: BLE001 - a pin store outage must not fail the request: the policy starts it
            log.exception("session pin store failed")
            result.pin_kept = True
            return None
        if pin is None or pin[0] not in self.ladder:
            return None
        tier, requested = pin
        if requested and not may_request(self.allow_tier_request, request.principals):
            return None
        if self.breaker is not None and (yield from self._circuit_open(tier)):
            # the pinned tier is down: the policy starts the request (a pin keeps a prompt
            # cache warm; it must not turn one tier's outage into the session's)
            log.info("request %s: session %s is pinned to tier %s, whose circuit is open; the policy starts it",
                     request.request_id, request.session_id, tier)
            result.pin_kept = True  # for when the tier is back
            return None
        result.start_requested = requested
        return TierChoice(tier, f"{PINNED_REASON} {request.session_id}")

    def _may_request(self, request: RouteRequest) -> bool:
        if may_request(self.allow_tier_request, request.principals):
            return True
        who = ", ".join(p for p in request.principals if not p.startswith("key:")) or "(anonymous)"  # no key hash
        message = f"caller {who} may not request tier {str(request.requested_tier)[:80]!r}"
        if self.on_forbidden == "reject":
            raise TierNotAllowedError(message, tier=request.requested_tier or "", caller=request.caller or who)
        log.warning("%s; routing it normally", message)
        request.metadata["ignored_tier_request"] = str(request.requested_tier)[:80]
        return False

    def _attempt(self, tier: Tier, request: RouteRequest, result: RoutingResult, streaming: bool
                 ) -> Generator[Any, Any, Attempt]:
        attempt = Attempt(tier=tier.name, model_id=tier.model_id)
        live = streaming and not self.judges(tier, request)
        started = time.perf_counter()
        result.current_tier = tier.name
        call: _Call | None = None
        consumer_s = 0.0  # of the tries before ``call``
        try:
            blocked = yield from self._blocked(tier, request)
            if blocked is not None:
                attempt.outcome, attempt.error_kind, attempt.error = "skipped", blocked[0], blocked[1]
                return attempt
            spent: list[TierAnswer] = []  # what retried tries that broke mid-stream had produced
            while True:
                if call is not None and call.partial is not None:
                    spent.append(call.partial)
                consumer_s += call.consumer_s if call is not None else 0.0
                call = _Call(tier, request, stream=streaming, live=live)
                try:
                    call.in_flight = True
                    answer = yield call
                except TransportError as exc:
                    call.in_flight = False
                    if exc.billed_anyway and call.partial is None:
                        call.partial = estimated_answer("", request.text, tier.model_id)  # its input, estimated
                    for _ in range(exc.calls):  # a backend that retried by itself made several (or none the tier's)
                        yield from self._record_call(tier, False)
                    call.emitted = call.emitted or exc.delivered
                    delay = None if call.emitted else (yield from self._retry_delay(exc, attempt.retries, tier, request))
                    if delay is not None:
                        self._note_retry(attempt, exc, exc.kind)
                        yield _Sleep(delay)
                        continue
                    attempt.outcome, attempt.error, attempt.error_kind = "transport_error", redact_secrets(str(exc)), exc.kind
                    attempt.exception = exc
                    self._charge_partial(attempt, tier, call, spent)
                except MalformedReplyError as exc:
                    call.in_flight = False
                    yield from self._record_call(tier, True)  # the tier is up; its reply was unreadable
                    if exc.usage is not None and call.partial is None:  # but it said what it used: billed
                        call.partial = TierAnswer(text="", usage=exc.usage, model_id=tier.model_id)
                    call.emitted = call.emitted or exc.delivered
                    delay = None if call.emitted else (yield from self._retry_delay(exc, attempt.retries, tier, request))
                    if delay is not None:
                        self._note_retry(attempt, exc, "malformed")
                        yield _Sleep(delay)
                        continue
                    attempt.outcome, attempt.error, attempt.error_kind = "malformed", redact_secrets(str(exc)), "malformed"
                    attempt.exception = exc
                    self._charge_partial(attempt, tier, call, spent)
                except TierCallError as exc:  # a tier call failed in a way no retry mends
                    call.in_flight = False
                    call.emitted = call.emitted or exc.delivered
                    yield from self._record_call(tier, True)
                    cause = exc.cause or exc
                    attempt.outcome, attempt.error = "error", redact_secrets(str(exc))
                    attempt.error_kind = exc.kind if isinstance(exc, ModelLimitError) else type(cause).__name__
                    attempt.exception = exc
                    self._charge_partial(attempt, tier, call, spent)
                else:
                    call.in_flight = False
                    yield from self._record_call(tier, True)
                    attempt.answer, attempt.cache_hit = answer, answer.cache_hit
                    if answer.retried:  # retried below the engine (its kinds unknown here)
                        attempt.retries += answer.retried
                        attempt.retried_on += ["unknown"] * answer.retried
                    self._bill(attempt, tier, [*spent, answer])
                    attempt.emitted = call.emitted
                return attempt
        except BaseException as exc:  # not an attempt failure: recorded, then it propagates
            attempt.outcome, attempt.error, attempt.error_kind = "error", _error_text(exc), _error_kind(exc)
            attempt.exception = exc if isinstance(exc, Exception) else None
            if call is not None:  # a consumer that left mid-stream: what was produced is billed
                if call.in_flight and call.partial is None and (isinstance(exc, _ConsumerClosed)
                                                                or not isinstance(exc, Exception)):
                    # a cancelled ainvoke: it runs on at Bedrock, billed on its input, estimated
                    call.partial = estimated_answer("", request.text, tier.model_id)
                self._charge_partial(attempt, tier, call, spent)
            raise
        finally:
            # the tier's time: a live stream's chunks waiting on a slow reader are not
            consumer_s += call.consumer_s if call is not None else 0.0
            attempt.latency_ms = (time.perf_counter() - started - consumer_s) * 1000
            result.attempts.append(attempt)
            result.current_tier = None

    @staticmethod
    def _note_retry(attempt: Attempt, exc: Exception, kind: str) -> None:
        attempt.retries += 1
        attempt.retried_on.append(kind)
        attempt.retried_errors.append(exc)

    def _charge_partial(self, attempt: Attempt, tier: Tier, call: _Call, spent: list[TierAnswer]) -> None:
        """A failed attempt is billed for what its streams produced before they broke."""
        attempt.emitted = call.emitted
        answers = [*spent, call.partial] if call.partial is not None else spent
        if answers:
            self._bill(attempt, tier, answers)

    def _bill(self, attempt: Attempt, tier: Tier, answers: list[TierAnswer]) -> None:
        """The attempt's tokens and cost: every try of it that produced something."""
        usage, cost, estimated = answers[0].usage, self._price(tier, answers[0]), answers[0].usage_estimated
        for answer in answers[1:]:
            usage, estimated = usage + answer.usage, estimated or answer.usage_estimated
            price = self._price(tier, answer)
            cost = None if cost is None or price is None else cost + price
        attempt.usage, attempt.cost_usd, attempt.usage_estimated = usage, cost, estimated

    def _price(self, tier: Tier, answer: TierAnswer):
        if answer.cache_hit:  # the model was not called: its tokens are the cached reply's, not billed
            return _NOTHING
        return _call_cost(tier, answer.model_id, answer.usage)

    def _steps(self, request: RouteRequest, result: RoutingResult, streaming: bool = False
               ) -> Generator[Any, Any, RoutingResult]:
        tier = yield from self._choose_start(request, result)
        quality_steps = 0
        pinned = tier if result.start_reason.startswith(PINNED_REASON) else None
        while True:
            attempt = yield from self._attempt(tier, request, result, streaming)
            above = self.ladder.above(tier)
            if attempt.answer is None:
                if attempt.emitted:
                    why = ("its error reached the caller" if getattr(attempt.exception, "delivered", False)
                           else "output was streamed")
                    result.error = f"tier {tier.name} failed after {why}; it cannot be retried: {attempt.error}"
                    break
                if attempt.outcome == "skipped" and attempt.error_kind == "circuit_open" and above:
                    tier = above
                    continue
                if attempt.outcome in _FAILED_CALLS and self.retry.on_exhausted == "escalate" and above:
                    tier = above  # a failed call, its retries spent: not a verdict on quality
                    continue
                if attempt.outcome == "error" and attempt.error_kind in self.retry.escalate_on and above:
                    tier = above  # a larger model may take what this one refused
                    continue
                if pinned is not None and (attempt.outcome in _FAILED_CALLS or attempt.outcome == "skipped") \
                        and self.retry.on_exhausted == "escalate":
                    # the session's tier and every one above it failed to answer: the policy
                    # starts the request below them, as it would without the pin (once)
                    choice = yield _Choose(request)
                    below, pinned = self.ladder[choice.tier], None
                    if below.index < self.ladder[result.start_tier].index:
                        tier = below
                        continue
                break
            attempt.turn = turn_kind(attempt.answer)
            gate = self.gates_for(tier, request, attempt.turn)
            guarded = guardrail_verdict(attempt.answer)
            if guarded is not None:
                attempt.verdict = guarded
            elif gate is None:
                attempt.verdict = GateVerdict(True, "no gate (streamed through)" if attempt.emitted else "no gate", "")
            else:
                previous = [(self.ladder[a.tier].index, a.answer) for a in result.attempts[:-1] if a.answer is not None]
                try:
                    attempt.verdict = yield _Judge(gate, GateState(request, attempt.answer, tier, previous=previous,
                                                                   ladder=self.ladder))
                except BaseException as exc:  # the request ended (a cancel) while its answer was judged
                    attempt.outcome, attempt.error_kind = "error", _error_kind(exc)
                    attempt.error = f"ended while its answer was judged: {_error_text(exc)}"
                    raise
            if attempt.verdict.passed:
                result.served = attempt
                break
            attempt.outcome = "gate_failed"
            if above is None or quality_steps >= self.policy.max_escalations:
                break
            quality_steps += 1
            tier = above
        return (yield from self._finish(request, result))

    def _finish(self, request: RouteRequest, result: RoutingResult) -> Generator[Any, Any, RoutingResult]:
        if result.served is None:
            answered = [a for a in result.attempts if a.answer is not None]
            last = result.attempts[-1]
            if answered and self.on_exhausted == "flag" and not last.emitted:
                result.served = answered[-1]
                result.flagged = True
                reason = answered[-1].verdict.reason if answered[-1].verdict else ""
                if last.answer is None:  # the ladder ended on a failed call, not on a gate
                    log.warning("request %s: tier %s failed (%s); serving %s's gate-failed answer, flagged",
                                request.request_id, last.tier, last.error, answered[-1].tier)
                    reason = f"{reason}; then tier {last.tier} failed: {last.error}"
                result.flag_reason = f"no tier passed the gates; serving {answered[-1].tier}'s answer ({reason})"
            else:
                result.error = result.error or last.error or (last.verdict.reason if last.verdict else "failed")
        self._set_baseline_cost(result)
        if result.served is not None and self.pin_store is not None and request.session_id \
                and not result.pin_kept and not _passed_over_outage(result):
            try:
                key, pin = pin_key(request.session_id, request.principals), encode_pin(result.served.tier,
                                                                                       result.start_requested)
                # also when unchanged: a pin lasts ttl_s from the session's last use
                yield from self._ask_store(self.pin_store, self.pin_store.set, key, pin)
            except _ConsumerClosed:
                raise
            except PinStoreUnavailable:
                pass  # logged by the store
            except Exception:  # noqa: BLE001 - a pin store outage must not fail the request
                log.exception("session pin store failed")
        return result

    def _set_baseline_cost(self, result: RoutingResult) -> None:
        """What the baseline tier costs on this request: its own call's usage when the
        request called it and it answered (priced, even if its answer failed a gate or a
        cache answered it), else the request's input and the served answer's output. A
        request nothing answered but that was billed (a stream cut after its output) is
        priced on its last billed attempt's usage, so its spend is set against a baseline
        in the report, not left out of it."""
        baseline = self.ladder.baseline
        own = next((a for a in reversed(result.attempts) if a.tier == baseline.name and a.answer is not None
                    and not a.usage_estimated), None)
        source = own or result.served or next((a for a in reversed(result.attempts) if a.answer is not None), None)
        if source is None:
            source = next((a for a in reversed(result.attempts) if a.cost_usd and a.usage != _NO_USAGE), None)
        if source is None:
            return
        # its own call at what answered it (a prompt-router baseline bills the model it
        # invoked, not the placeholder price its ARN needs to load)
        result.baseline_cost_usd = (_call_cost(baseline, own.answer.model_id, own.usage)
                                    if own is not None and own.answer is not None else baseline.cost(source.usage))

    def _exhausted_error(self, result: RoutingResult) -> LadderExhaustedError:
        errors: list[Exception] = []
        for a in result.attempts:
            errors.extend(a.retried_errors)  # each retry's error, before the attempt's last
            if a.outcome == "skipped":
                errors.append(TransportError(a.error or "skipped", tier=a.tier, model_id=a.model_id,
                                             kind=a.error_kind or "other"))
            elif a.outcome == "gate_failed" and a.verdict is not None:
                errors.append(GateFailed(a.verdict.reason, tier=a.tier, model_id=a.model_id, gate=a.verdict.gate))
            elif a.outcome == "transport_error":
                errors.append(a.exception if isinstance(a.exception, TransportError) else
                              TransportError(a.error or "", tier=a.tier, model_id=a.model_id,
                                             kind=a.error_kind or "other"))
            else:
                errors.append(a.exception if isinstance(a.exception, TierCallError) else
                              TierCallError(a.error or a.outcome, tier=a.tier, model_id=a.model_id,
                                            cause=a.exception))
        tiers = " -> ".join(a.tier for a in result.attempts)
        return LadderExhaustedError(f"no tier produced an acceptable answer ({tiers}): {result.error}",
                                    errors, result)

    # -- routing's own calls: priced, recorded, retried like tier calls ---------------------

    def _aux_ended(self, result: RoutingResult, key: object, purpose: str, tier: Tier, answer: TierAnswer | None,
                   started: float, retries: int, cut: int = 0, failure: BaseException | None = None) -> None:
        """A routing call ended: into the record with what it cost, unless its request had
        already ended (``_close`` billed it as unfinished; the record must not change).
        ``cut``: its tries given up on at a timeout while Bedrock had them, billed on the
        prompt's estimated input tokens as an attempt's are (output unknown: unfinished).
        ``failure``: the error it ended on, recorded with what it cost (nothing, unless cut):
        a grader whose tier was down left no trace of the call."""
        with _AUX_LOCK:
            entry = result.aux_in_flight.pop(key, None)
            if entry is None:
                log.debug("routing call %s on tier %s ended after request %s; billed in its record as unfinished",
                          purpose, tier.name, result.request_id)
                return
            elapsed_ms = (time.perf_counter() - started) * 1000
            if cut:
                prompt = entry[2]
                usage = Usage(input_tokens=cut * estimate_tokens(prompt.text if isinstance(prompt, RouteRequest)
                                                                 else prompt))
                result.aux_calls.append(AuxCall(purpose, tier.name, tier.model_id, usage, tier.cost(usage),
                                                elapsed_ms, retries, unfinished=True))
            if answer is not None:
                result.aux_calls.append(AuxCall(purpose, tier.name, answer.model_id or tier.model_id, answer.usage,
                                                self._price(tier, answer), elapsed_ms, retries))
            elif failure is not None and not cut:
                kind = getattr(failure, "kind", None) if isinstance(failure, TierCallError) else None
                if not isinstance(kind, str):  # as an attempt's error_kind: throttled, model_unavailable...
                    kind = "malformed" if isinstance(failure, MalformedReplyError) else _error_kind(failure)
                usage = getattr(failure, "usage", None)  # an unreadable reply's tokens are billed
                cost = Decimal(0) if usage is None else _call_cost(tier, tier.model_id, usage)
                result.aux_calls.append(AuxCall(purpose, tier.name, tier.model_id, usage or Usage(), cost, elapsed_ms,
                                                retries, error=redact_secrets(str(failure))[:300], error_kind=kind))

    def _aux_backoff(self, exc: TierCallError, retries: int, result: RoutingResult) -> float | None:
        """A routing call is retried as a tier call is (``_backoff``: the kinds in
        ``retry_on``, ``max_backoff_s``, the deadline; then the circuit); never a reply that
        already reached the caller, nor a failure no retry mends."""
        if not isinstance(exc, (TransportError, MalformedReplyError)) or exc.delivered:
            return None
        request = result.request if result.request is not None else RouteRequest(text="")
        return self._backoff(exc, retries, request)

    def _ask_fns(self, backend: Backend, result: RoutingResult):
        """``ask``/``aask`` for classifiers and graders: the same retry policy as a tier call."""

        def ask(purpose: str, tier_name: str, prompt: str | RouteRequest) -> TierAnswer:
            tier, started, retries, cut = self.ladder[tier_name], time.perf_counter(), 0, 0
            key = _aux_started(result, purpose, tier, prompt, started)
            answer, failure = None, None
            try:
                while True:
                    try:
                        if isinstance(prompt, RouteRequest):
                            answer = backend.call(tier, prompt)
                        else:
                            with routing_call_for(result.request):  # the request's deadline bounds it
                                answer = backend.ask(tier, prompt)
                        break
                    except TierCallError as exc:
                        cut += _cut_off_at_tier(exc)
                        delay = self._aux_backoff(exc, retries, result)
                        if delay is None or (self.breaker is not None and not self.breaker.allow(tier.name)):
                            raise
                        retries += 1
                        self._sleep(delay)
            except Exception as exc:
                failure = exc
                raise
            finally:
                self._aux_ended(result, key, purpose, tier, answer, started, retries, cut, failure)
            return answer

        async def aask(purpose: str, tier_name: str, prompt: str | RouteRequest) -> TierAnswer:
            tier, started, retries, cut = self.ladder[tier_name], time.perf_counter(), 0, 0
            key = _aux_started(result, purpose, tier, prompt, started)
            answer = None
            try:
                while True:
                    try:
                        answer = await self._timed_aux(backend, tier, prompt, result.request)
                        break
                    except TierCallError as exc:
                        cut += _cut_off_at_tier(exc)
                        delay = self._aux_backoff(exc, retries, result)
                        if delay is None or (self.breaker is not None and not await self._aallow(tier)):
                            raise
                        retries += 1
                        await self._asleep(delay)
            except asyncio.CancelledError:
                # Cancelled mid-call (a gate's budget ran out): Bedrock still bills the call,
                # which stays in flight for ``_close`` to bill as unfinished, as ``ask``'s
                # thread does when its budget runs out; one still waiting for a worker
                # thread was never sent, and costs nothing.
                if not backend.sent_last_call():
                    if cut:  # its earlier tries Bedrock had are billed, unfinished
                        self._aux_ended(result, key, purpose, tier, None, started, retries, cut)
                    else:
                        with _AUX_LOCK:
                            result.aux_in_flight.pop(key, None)
                raise
            except BaseException as exc:
                self._aux_ended(result, key, purpose, tier, answer, started, retries, cut,
                                exc if isinstance(exc, Exception) else None)
                raise
            self._aux_ended(result, key, purpose, tier, answer, started, retries, cut)
            return answer

        return ask, aask

    async def _aallow(self, tier: Tier) -> bool:
        """The circuit's ``allow`` for a routing call on the event loop."""
        assert self.breaker is not None
        if may_stall(self.breaker):
            return bool(await call_off_loop(self.breaker.allow, tier.name))
        return self.breaker.allow(tier.name)

    @staticmethod
    async def _timed_aux(backend: Backend, tier: Tier, prompt: str | RouteRequest,
                         request: RouteRequest | None) -> TierAnswer:
        """One routing call, timed as a tier call is: the tier's timeout from when it is
        sent, within the request's deadline (a classifier's or a grader's call that
        outlives the deadline is given up, and the request goes on without it)."""
        timed = request if request is not None else RouteRequest(text="")
        limit = None if backend.times_its_calls else call_timeout(tier, timed)
        call = backend.acall(tier, prompt) if isinstance(prompt, RouteRequest) else backend.aask(tier, prompt)
        if limit is None:
            return await call
        try:
            async with asyncio.timeout(limit) as timer:
                with call_clock(timer, tier, timed):
                    return await call
        except TimeoutError:
            raise deadline_error(tier, timed, limit, sent=backend.sent_last_call()) from None

    # -- drivers: sync ------------------------------------------------------------------

    def _run(self, steps: Generator, backend: Backend, result: RoutingResult) -> Generator[Any, None, None]:
        """Carry out the effects; yields the chunks of live streams as they arrive."""
        ask, aask = self._ask_fns(backend, result)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = steps.throw(error) if error is not None else steps.send(value)
            except StopIteration:
                return
            value, error = None, None
            try:
                if isinstance(effect, _Call):
                    if effect.stream:
                        value = yield from self._read(effect, backend)
                    else:
                        value = backend.call(effect.tier, effect.request)
                elif isinstance(effect, _Judge):
                    effect.state.ask, effect.state.aask = ask, aask
                    gate, state = effect.gate, effect.state
                    value = judge_within(lambda: safe_judge(gate, state), gate, self.gate_timeout_s)
                elif isinstance(effect, _Choose):
                    value = self.policy.choose_start(effect.request, self.ladder, ask)
                elif isinstance(effect, _Sleep):
                    self._sleep(effect.seconds)
                elif isinstance(effect, _Store):
                    value = effect.fn(*effect.args)
            except GeneratorExit:
                error = _ConsumerClosed("stream closed by the consumer")
            except Exception as exc:  # noqa: BLE001 - handed back to the loop, which decides
                error = exc

    def _read(self, call: _Call, backend: Backend) -> Generator[Any, None, TierAnswer]:
        stream = backend.stream(call.tier, call.request, live=call.live)
        chunks: list[Any] = []
        held: list[Any] = []
        source = stream.chunks()
        try:
            for chunk in source:
                chunks.append(chunk)
                if call.live:
                    for out in self._pass(call, stream, chunk, held):
                        handed = time.perf_counter()
                        yield out
                        call.consumer_s += time.perf_counter() - handed
                if not call.emitted and (left := time_left(call.request)) is not None and left <= 0:
                    raise deadline_error(call.tier, call.request, None)
            return self._answer(stream, chunks)
        except TierCallError:
            call.partial = self._partial(call, stream, chunks)
            raise
        except BaseException:
            self._keep_partial(call, stream, chunks)
            raise
        finally:
            source.close()

    @staticmethod
    def _partial(call: _Call, stream: TierStream, chunks: list[Any]) -> TierAnswer | None:
        """What a stream that broke had produced, to price: Bedrock bills the tokens it
        generated, whether they reached the caller or were held for a gate. None when no
        output came (or its chunks cannot be read)."""
        if not call.emitted and not any(stream.has_output(c) for c in chunks):
            return None
        try:
            return stream.answer(chunks, complete=False)
        except Exception:  # noqa: BLE001 - unreadable chunks: the attempt stays unpriced
            log.exception("could not read the answer of an interrupted stream")
            return None

    @classmethod
    def _keep_partial(cls, call: _Call, stream: TierStream, chunks: list[Any]) -> None:
        """The stream stopped because its consumer left: what it had produced is billed."""
        if call.partial is None:
            call.partial = cls._partial(call, stream, chunks)

    @staticmethod
    def _pass(call: _Call, stream: TierStream, chunk: Any, held: list[Any]) -> list[Any]:
        """What to send on now: nothing while only metadata has come (a retry stays
        invisible), then the held chunks and every chunk after them."""
        if not call.emitted and not stream.has_output(chunk):
            held.append(chunk)
            return []
        out = [*held, chunk] if not call.emitted else [chunk]
        held.clear()
        call.emitted = True
        return out

    @staticmethod
    def _answer(stream: TierStream, chunks: list[Any]) -> TierAnswer:
        answer = stream.answer(chunks)
        if answer.chunks is None:
            answer.chunks = chunks
        return answer

    def _lifecycle(self, request: RouteRequest, backend: Backend, result: RoutingResult, streaming: bool
                   ) -> Generator[Any, None, None]:
        started = time.perf_counter()
        try:
            yield from self._run(self._steps(request, result, streaming), backend, result)
        except _ConsumerClosed as exc:
            result.error = result.error or _error_text(exc)
            raise GeneratorExit from None
        except BaseException as exc:
            result.error = result.error or _error_text(exc)
            raise
        finally:
            self._close(result, request, backend, started)

    def route(self, request: RouteRequest, backend: Backend) -> RoutingResult:
        """Route one request; raises ``LadderExhaustedError`` when nothing can be served."""
        result = self._new_result(request)
        for _ in self._lifecycle(request, backend, result, streaming=False):
            pass
        return self._outcome(result)

    def stream(self, request: RouteRequest, backend: Backend) -> "RoutedStream":
        """Route one request, reading each attempt as a stream (``Backend.stream``).

        Iterate it for the served answer's chunks: straight from the tier while no gate
        needs the whole answer, else the served attempt's chunks once it passed.
        ``.result`` is the routing, complete once the iteration ends.
        """
        result = self._new_result(request)
        return RoutedStream(result, self._streamed(request, backend, result))

    def _streamed(self, request: RouteRequest, backend: Backend, result: RoutingResult) -> Iterator[Any]:
        yield from self._lifecycle(request, backend, result, streaming=True)
        self._outcome(result)
        yield from self._replay(result)

    @staticmethod
    def _replay(result: RoutingResult) -> list[Any]:
        """The served answer's chunks, unless they went to the caller live."""
        served = result.served
        if served is None or served.emitted or served.answer is None:
            return []
        return list(served.answer.chunks or [served.answer])

    # -- drivers: async -----------------------------------------------------------------

    async def _arun(self, steps: Generator, backend: Backend, result: RoutingResult) -> AsyncIterator[Any]:
        ask, aask = self._ask_fns(backend, result)
        value: Any = None
        error: BaseException | None = None
        interrupted: BaseException | None = None
        while True:
            try:
                effect = steps.throw(error) if error is not None else steps.send(value)
            except StopIteration:
                return
            except _ConsumerClosed:
                if interrupted is not None:
                    raise interrupted from None
                raise
            value, error = None, None
            try:
                if isinstance(effect, _Call):
                    if effect.stream:
                        out: list[Any] = []
                        reader = self._aread(effect, backend, out)
                        try:
                            async for chunk in reader:
                                yield chunk
                        finally:
                            await reader.aclose()  # type: ignore[attr-defined]
                        value = out[0]
                    else:
                        limit = None if backend.times_its_calls else call_timeout(effect.tier, effect.request)
                        if limit is None:
                            value = await backend.acall(effect.tier, effect.request)
                        else:
                            try:
                                async with asyncio.timeout(limit) as timer:
                                    with call_clock(timer, effect.tier, effect.request):
                                        value = await backend.acall(effect.tier, effect.request)
                            except TimeoutError:
                                effect.partial = backend.answer_cut_off()  # its callbacks ran past the time
                                raise _timed_out(effect, backend, limit) from None
                elif isinstance(effect, _Judge):
                    effect.state.ask, effect.state.aask = ask, aask
                    gate, state = effect.gate, effect.state
                    value = await ajudge_within(lambda: safe_ajudge(gate, state), gate, self.gate_timeout_s)
                elif isinstance(effect, _Choose):
                    value = await self.policy.achoose_start(effect.request, self.ladder, ask, aask)
                elif isinstance(effect, _Sleep):
                    await self._asleep(effect.seconds)
                elif isinstance(effect, _Store):
                    value = await call_off_loop(effect.fn, *effect.args)
            except (GeneratorExit, asyncio.CancelledError) as exc:
                interrupted = exc
                if isinstance(effect, _Call):
                    if not backend.sent_last_call():
                        effect.in_flight = False  # cancelled before it left the backend's queue: not billed
                    elif not effect.stream and effect.partial is None:
                        effect.partial = backend.answer_cut_off()  # it came: billed as it came
                error = _ConsumerClosed(f"stream closed by the consumer ({type(exc).__name__})"
                                        if isinstance(exc, asyncio.CancelledError) else "stream closed by the consumer")
            except Exception as exc:  # noqa: BLE001
                error = exc

    async def _aread(self, call: _Call, backend: Backend, out: list[Any]) -> AsyncIterator[Any]:
        stream = backend.stream(call.tier, call.request, live=call.live)
        chunks: list[Any] = []
        held: list[Any] = []
        source = stream.achunks()
        try:
            while True:
                # until output reaches the caller, each chunk must come within the call's
                # timeout; a stream that is flowing to the caller is not cut
                limit = None if call.emitted or backend.times_its_calls else call_timeout(call.tier, call.request)
                try:
                    if limit is None:
                        chunk = await source.__anext__()
                    else:
                        async with asyncio.timeout(limit) as timer:
                            with call_clock(timer, call.tier, call.request):
                                chunk = await source.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise _timed_out(call, backend, limit) from None
                chunks.append(chunk)
                if call.live:
                    for item in self._pass(call, stream, chunk, held):
                        handed = time.perf_counter()
                        yield item
                        call.consumer_s += time.perf_counter() - handed
            out.append(self._answer(stream, chunks))
        except TierCallError:
            call.partial = self._partial(call, stream, chunks)
            raise
        except BaseException:
            self._keep_partial(call, stream, chunks)
            raise
        finally:
            await source.aclose()  # type: ignore[attr-defined]

    async def _alifecycle(self, request: RouteRequest, backend: Backend, result: RoutingResult, streaming: bool
                          ) -> AsyncIterator[Any]:
        started = time.perf_counter()
        run = self._arun(self._steps(request, result, streaming), backend, result)
        try:
            async for chunk in run:
                yield chunk
        except GeneratorExit:
            await run.aclose()  # type: ignore[attr-defined]  # records the interrupted attempt
            result.error = result.error or "RuntimeError: stream closed by the consumer"
            raise
        except BaseException as exc:
            result.error = result.error or _error_text(exc)
            raise
        finally:
            self._close(result, request, backend, started)

    async def aroute(self, request: RouteRequest, backend: Backend) -> RoutingResult:
        result = self._new_result(request)
        async for _ in self._alifecycle(request, backend, result, streaming=False):
            pass
        return self._outcome(result)

    def astream(self, request: RouteRequest, backend: Backend) -> "AsyncRoutedStream":
        result = self._new_result(request)
        loop: list[asyncio.AbstractEventLoop] = []  # the loop it is read on, once it is
        watch: list[weakref.finalize] = []
        chunks = self._astreamed(request, backend, result, loop, watch)
        # a stream left open on an event loop closed without ``shutdown_asyncgens`` is never
        # closed: its record is written when it is collected
        finalizer = weakref.finalize(chunks, self._close_abandoned, result, request, backend, time.perf_counter(),
                                     loop)
        finalizer.atexit = False
        watch.append(finalizer)
        return AsyncRoutedStream(result, chunks)

    def _close_abandoned(self, result: RoutingResult, request: RouteRequest, backend: Backend, started: float,
                         loop: list[asyncio.AbstractEventLoop]) -> None:
        """The record of a stream collected unclosed, once it had begun routing, on a loop
        that is closed (a loop still open closes the stream itself, later: its ``finally``
        writes the record): the call it had in flight runs on at Bedrock and is billed on
        the prompt's estimated input tokens, as a cancelled one is."""
        if result.closed or not (result.attempts or result.current_tier) or (loop and not loop[0].is_closed()):
            return
        why = "RuntimeError: stream abandoned: collected unclosed after its event loop closed"
        if result.current_tier is not None:
            tier = self.ladder[result.current_tier]
            attempt = Attempt(tier=tier.name, model_id=tier.model_id, outcome="error", error=why,
                              error_kind="RuntimeError")
            self._bill(attempt, tier, [TierAnswer("", Usage(input_tokens=estimate_tokens(request.text)),
                                                  tier.model_id, usage_estimated=True)])
            result.attempts.append(attempt)
            result.current_tier = None
        result.error = result.error or why
        self._close(result, request, backend, started)

    async def _astreamed(self, request: RouteRequest, backend: Backend, result: RoutingResult,
                         loop: list[asyncio.AbstractEventLoop], watch: list[weakref.finalize]) -> AsyncIterator[Any]:
        loop.append(asyncio.get_running_loop())
        lifecycle = self._alifecycle(request, backend, result, streaming=True)
        try:
            async for chunk in lifecycle:
                yield chunk
        finally:
            try:
                await lifecycle.aclose()  # type: ignore[attr-defined]
            finally:
                # closed here, its record written: nothing for the watch on its collection to
                # do. Left registered, the watch held the result, whose stored exception's
                # traceback reached the frames holding this stream: never collected, a
                # cancelled ``astream`` kept its whole request alive
                for finalizer in watch:
                    finalizer.detach()
        self._outcome(result)
        for chunk in self._replay(result):
            yield chunk

    def _outcome(self, result: RoutingResult) -> RoutingResult:
        if result.served is None:
            raise self._exhausted_error(result)
        return result

    # -- telemetry ---------------------------------------------------------------

    def _close(self, result: RoutingResult, request: RouteRequest, backend: Backend, started: float) -> None:
        result.latency_ms = (time.perf_counter() - started) * 1000
        if result.aux_in_flight:
            _bill_unfinished(result)
        result.closed = True
        if result.served is None and result.error is None and result.attempts:
            result.error = result.attempts[-1].error
        if result.baseline_cost_usd is None:  # a request its caller ended (a stream left, a task
            self._set_baseline_cost(result)  # cancelled) never reached ``_finish``, but was billed
        for observer in self.observers:
            try:
                observer(result, request, backend)
            except Exception:  # noqa: BLE001 - telemetry never fails a request
                log.exception("routing observer %r failed", observer)

    def add_observer(self, observer: Observer) -> None:
        self.observers.append(observer)


_NO_USAGE = Usage()


def _call_cost(tier: Tier, model_id: str | None, usage: Usage):
    """What Bedrock bills for a call of ``tier`` that ``model_id`` answered. A prompt router
    answered with another model: Bedrock bills that model's price where the router runs (an
    ARN's region). The tier's price (a router ARN has no price in the map, so loading needs
    one) stands where that model's is unknown."""
    if model_id and model_id != tier.model_id:
        region = (tier.model_id.split(":")[3] or None) if tier.model_id.startswith("arn:") else None
        price = lookup_price(model_id, region=region)
        if price is not None:
            return price.cost(usage)
    return tier.cost(usage)


_AUX_LOCK = threading.Lock()  # a routing call's end against its request's (rare: graders, classifiers)


def _timed_out(call: _Call, backend: Backend, limit: float | None) -> TransportError:
    """The timeout of an async call the engine timed; one the backend had not sent yet
    (queued on its pool) is not the tier's doing, and does not count against its circuit."""
    return deadline_error(call.tier, call.request, limit, sent=backend.sent_last_call())


def _cut_off_at_tier(exc: TierCallError) -> int:
    """1 for a try given up on at a timeout while Bedrock had it (it runs on, billed)."""
    return int(isinstance(exc, TransportError) and exc.billed_anyway)


def _aux_started(result: RoutingResult, purpose: str, tier: Tier, prompt: str | RouteRequest,
                 started: float) -> object:
    key = object()
    with _AUX_LOCK:
        result.aux_in_flight[key] = (purpose, tier, prompt, started)
    return key


def _bill_unfinished(result: RoutingResult) -> None:
    """Routing calls still running as their request ends (a grader past its gate's
    budget): Bedrock bills them, so the record does, on the prompt's estimated input
    tokens; their output is not known yet and is left out."""
    now = time.perf_counter()
    with _AUX_LOCK:
        for purpose, tier, prompt, started in result.aux_in_flight.values():
            text = prompt.text if isinstance(prompt, RouteRequest) else prompt
            usage = Usage(input_tokens=estimate_tokens(text))
            result.aux_calls.append(AuxCall(purpose, tier.name, tier.model_id, usage, tier.cost(usage),
                                            (now - started) * 1000, unfinished=True))
        result.aux_in_flight.clear()


class RoutedStream:
    """A routed request read as a stream: iterate for the served answer's chunks;
    ``result`` is the routing so far (complete when the iteration has ended)."""

    def __init__(self, result: RoutingResult, chunks: Iterator[Any]):
        self.result = result
        self._chunks = chunks

    def __iter__(self) -> Iterator[Any]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()  # type: ignore[attr-defined]


class AsyncRoutedStream:
    """The async ``RoutedStream``."""

    def __init__(self, result: RoutingResult, chunks: AsyncIterator[Any]):
        self.result = result
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._chunks

    async def aclose(self) -> None:
        await self._chunks.aclose()  # type: ignore[attr-defined]
