"""The router engine: choose a start tier, call, judge, escalate, finish, record.

The escalation loop is written once, as a generator that yields effects (call a
tier, judge an answer, sleep) and receives their results; ``route`` drives it with
blocking calls and ``aroute`` with awaits. Whatever happens, the finished
``RoutingResult`` reaches every observer (telemetry sinks, the shadow sampler) before
the caller sees the answer or the exception.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Generator, Sequence

from .backends import Backend
from .classifiers import TierChoice
from .errors import (GateFailed, LadderExhaustedError, MalformedReplyError, TierCallError,
                     TierNotAllowedError, TransportError)
from .gates import AllOf, Gate, GateState, safe_ajudge, safe_judge
from .pinning import PinStore
from .policies import Policy
from .pricing import Usage, lookup_price
from .tiers import Ladder, Tier
from .types import Attempt, AuxCall, GateVerdict, RouteRequest, RoutingResult, TierAnswer

__all__ = ["Router", "RetrySettings", "Observer", "StartedRoute"]

log = logging.getLogger("langchain_tiered_router")

Observer = Callable[[RoutingResult, RouteRequest, Backend], None]


@dataclass
class RetrySettings:
    max_retries: int = 2
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    retry_on: Sequence[str] = ("throttled", "server_error", "timeout", "stream_cut", "connection")
    on_exhausted: str = "escalate"  # or "raise"

    def delay(self, retry: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * (2 ** (retry - 1)))


@dataclass
class StartedRoute:
    """A route whose start tier is chosen but whose call the integration makes itself
    (a classifier-only stream, passed straight through)."""

    request: RouteRequest
    result: RoutingResult
    tier: Tier
    started: float


# Effects the loop yields; the drivers carry them out.
@dataclass
class _Call:
    tier: Tier
    request: RouteRequest


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


class Router:
    """Routes requests up a tier ladder. Framework-free; integrations pass a ``Backend``."""

    def __init__(
        self,
        ladder: Ladder,
        policy: Policy,
        gates: Sequence[Gate] = (),
        *,
        tier_gates: dict[str, Sequence[Gate]] | None = None,
        on_exhausted: str = "flag",
        retry: RetrySettings | None = None,
        pin_store: PinStore | None = None,
        observers: Sequence[Observer] = (),
        allow_tier_request: Sequence[str] = ("*",),
        on_forbidden: str = "reject",
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Any] = asyncio.sleep,
    ):
        if on_exhausted not in ("flag", "raise"):
            raise ValueError("on_exhausted must be 'flag' or 'raise'")
        self.ladder = ladder
        self.policy = policy
        self.gates = list(gates)
        self.tier_gates = {k: list(v) for k, v in (tier_gates or {}).items()}
        self.on_exhausted = on_exhausted
        self.retry = retry or RetrySettings()
        self.pin_store = pin_store
        self.observers = list(observers)
        self.allow_tier_request = set(allow_tier_request)
        self.on_forbidden = on_forbidden
        self._sleep = sleep
        self._asleep = asleep

    @classmethod
    def from_config(cls, config, **overrides) -> "Router":
        from .build import build_router

        return build_router(config, **overrides)

    # -- gates -------------------------------------------------------------------

    def gates_for(self, tier: Tier, request: RouteRequest) -> Gate | None:
        gates = list(self.tier_gates.get(tier.name, self.gates))
        gates += self.policy.extra_gates(tier) + list(request.gates)
        if not gates:
            return None
        return gates[0] if len(gates) == 1 else AllOf(gates)

    def streams_through(self, request: RouteRequest) -> bool:
        """True when no gate needs the whole answer, so a stream can pass straight through."""
        return all(self.gates_for(t, request) is None for t in self.ladder)

    # -- the loop, once ------------------------------------------------------------

    def _new_result(self, request: RouteRequest) -> RoutingResult:
        base = self.ladder.baseline
        return RoutingResult(request_id=request.request_id, policy=self.policy.name, baseline_tier=base.name,
                             baseline_model_id=base.model_id, start_tier="", start_reason="",
                             session_id=request.session_id)

    def _choose_start(self, request: RouteRequest, result: RoutingResult) -> Generator[Any, Any, Tier]:
        choice: TierChoice
        if request.requested_tier and self._may_request(request):
            choice = TierChoice(self.ladder[request.requested_tier].name, "requested by the caller")
        else:
            pinned = self.pin_store.get(request.session_id) if (self.pin_store is not None and request.session_id) else None
            if pinned in self.ladder:
                choice = TierChoice(pinned, f"pinned by session {request.session_id}")
            else:
                choice = yield _Choose(request)
        tier = self.ladder[choice.tier]
        result.start_tier, result.start_reason = tier.name, choice.reason
        return tier

    def _may_request(self, request: RouteRequest) -> bool:
        allowed = "*" in self.allow_tier_request or (request.caller in self.allow_tier_request)
        if allowed:
            return True
        message = (f"caller {request.caller or '(anonymous)'} may not request tier {request.requested_tier!r}")
        if self.on_forbidden == "reject":
            raise TierNotAllowedError(message, tier=request.requested_tier or "", caller=request.caller)
        log.warning("%s; routing it normally", message)
        request.metadata["ignored_tier_request"] = request.requested_tier
        return False

    def _attempt(self, tier: Tier, request: RouteRequest) -> Generator[Any, Any, Attempt]:
        attempt = Attempt(tier=tier.name, model_id=tier.model_id)
        started = time.perf_counter()
        while True:
            try:
                answer = yield _Call(tier, request)
            except TransportError as exc:
                if exc.kind in self.retry.retry_on and attempt.retries < self.retry.max_retries:
                    attempt.retries += 1
                    attempt.retried_on.append(exc.kind)
                    yield _Sleep(self.retry.delay(attempt.retries))
                    continue
                attempt.outcome, attempt.error, attempt.error_kind = "transport_error", str(exc), exc.kind
            except MalformedReplyError as exc:
                attempt.outcome, attempt.error, attempt.error_kind = "malformed", str(exc), "malformed"
            except Exception as exc:  # noqa: BLE001 - recorded, then raised in the group
                cause = exc.cause if isinstance(exc, TierCallError) and exc.cause else exc
                attempt.outcome, attempt.error_kind = "error", type(cause).__name__
                attempt.error = str(exc) if isinstance(exc, TierCallError) else f"{type(exc).__name__}: {exc}"
                attempt.exception = exc
            else:
                attempt.answer = answer
                attempt.usage = answer.usage
                attempt.cost_usd = self._price(tier, answer)
            attempt.latency_ms = (time.perf_counter() - started) * 1000
            return attempt

    def _price(self, tier: Tier, answer: TierAnswer):
        if answer.model_id and answer.model_id != tier.model_id:
            price = lookup_price(answer.model_id)  # a prompt router answered with another model
            if price is not None:
                return price.cost(answer.usage)
        return tier.cost(answer.usage)

    def _steps(self, request: RouteRequest, result: RoutingResult, start: Tier | None = None
               ) -> Generator[Any, Any, RoutingResult]:
        tier = start if start is not None else (yield from self._choose_start(request, result))
        quality_steps = 0
        while True:
            attempt = yield from self._attempt(tier, request)
            result.attempts.append(attempt)
            above = self.ladder.above(tier)
            if attempt.answer is None:
                if attempt.outcome == "transport_error" and self.retry.on_exhausted == "escalate" and above:
                    tier = above
                    continue
                if attempt.outcome == "malformed" and above and quality_steps < self.policy.max_escalations:
                    quality_steps += 1
                    tier = above
                    continue
                break
            gate = self.gates_for(tier, request)
            if gate is None:
                attempt.verdict = GateVerdict(True, "no gate", "")
            else:
                previous = [(self.ladder[a.tier].index, a.answer) for a in result.attempts[:-1] if a.answer is not None]
                attempt.verdict = yield _Judge(gate, GateState(request, attempt.answer, tier, previous=previous,
                                                               ladder=self.ladder))
            if attempt.verdict.passed:
                result.served = attempt
                break
            attempt.outcome = "gate_failed"
            if above is None or quality_steps >= self.policy.max_escalations:
                break
            quality_steps += 1
            tier = above
        return self._finish(request, result)

    def _finish(self, request: RouteRequest, result: RoutingResult) -> RoutingResult:
        if result.served is None:
            answered = [a for a in result.attempts if a.answer is not None]
            last = result.attempts[-1]
            if answered and self.on_exhausted == "flag":
                result.served = answered[-1]
                result.flagged = True
                result.flag_reason = (f"no tier passed the gates; serving {answered[-1].tier}'s answer "
                                      f"({answered[-1].verdict.reason if answered[-1].verdict else ''})")
            else:
                result.error = last.error or (last.verdict.reason if last.verdict else "failed")
        self._set_baseline_cost(result)
        if result.served is not None and self.pin_store is not None and request.session_id:
            try:
                if self.pin_store.get(request.session_id) != result.served.tier:
                    self.pin_store.set(request.session_id, result.served.tier)
            except Exception:  # noqa: BLE001 - a pin store outage must not fail the request
                log.exception("session pin store failed")
        return result

    def _set_baseline_cost(self, result: RoutingResult) -> None:
        source = result.served or next((a for a in reversed(result.attempts) if a.answer is not None), None)
        if source is None:
            return
        u = source.usage
        result.baseline_cost_usd = self.ladder.baseline.cost(
            Usage(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens))

    def _exhausted_error(self, result: RoutingResult) -> LadderExhaustedError:
        errors: list[Exception] = []
        for a in result.attempts:
            if a.outcome == "gate_failed" and a.verdict is not None:
                errors.append(GateFailed(a.verdict.reason, tier=a.tier, model_id=a.model_id, gate=a.verdict.gate))
            elif a.outcome == "transport_error":
                errors.append(TransportError(a.error or "", tier=a.tier, model_id=a.model_id,
                                             kind=a.error_kind or "other"))
            else:
                errors.append(a.exception if isinstance(a.exception, TierCallError) else
                              TierCallError(a.error or a.outcome, tier=a.tier, model_id=a.model_id,
                                            cause=a.exception))
        tiers = " -> ".join(a.tier for a in result.attempts)
        return LadderExhaustedError(f"no tier produced an acceptable answer ({tiers}): {result.error}",
                                    errors, result)

    # -- routing calls (aux): priced and recorded ------------------------------------

    def _aux(self, result: RoutingResult, purpose: str, tier: Tier, answer: TierAnswer, started: float) -> None:
        result.aux_calls.append(AuxCall(purpose, tier.name, answer.model_id or tier.model_id, answer.usage,
                                        self._price(tier, answer), (time.perf_counter() - started) * 1000))

    def _ask_fn(self, backend: Backend, result: RoutingResult):
        def ask(purpose: str, tier_name: str, prompt: str | RouteRequest) -> TierAnswer:
            tier, started = self.ladder[tier_name], time.perf_counter()
            answer = backend.call(tier, prompt) if isinstance(prompt, RouteRequest) else backend.ask(tier, prompt)
            self._aux(result, purpose, tier, answer, started)
            return answer

        async def aask(purpose: str, tier_name: str, prompt: str | RouteRequest) -> TierAnswer:
            tier, started = self.ladder[tier_name], time.perf_counter()
            answer = (await backend.acall(tier, prompt) if isinstance(prompt, RouteRequest)
                      else await backend.aask(tier, prompt))
            self._aux(result, purpose, tier, answer, started)
            return answer

        return ask, aask

    # -- drivers -----------------------------------------------------------------

    def _drive(self, steps: Generator, backend: Backend, result: RoutingResult):
        ask, aask = self._ask_fn(backend, result)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = steps.throw(error) if error is not None else steps.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(effect, _Call):
                    value = backend.call(effect.tier, effect.request)
                elif isinstance(effect, _Judge):
                    effect.state.ask, effect.state.aask = ask, aask
                    value = safe_judge(effect.gate, effect.state)
                elif isinstance(effect, _Choose):
                    value = self.policy.choose_start(effect.request, self.ladder, ask)
                elif isinstance(effect, _Sleep):
                    self._sleep(effect.seconds)
            except Exception as exc:  # noqa: BLE001 - handed back to the loop
                error = exc

    async def _adrive(self, steps: Generator, backend: Backend, result: RoutingResult):
        ask, aask = self._ask_fn(backend, result)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = steps.throw(error) if error is not None else steps.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(effect, _Call):
                    value = await backend.acall(effect.tier, effect.request)
                elif isinstance(effect, _Judge):
                    effect.state.ask, effect.state.aask = ask, aask
                    value = await safe_ajudge(effect.gate, effect.state)
                elif isinstance(effect, _Choose):
                    if self.policy.calls_model_to_start:
                        value = await asyncio.to_thread(self.policy.choose_start, effect.request, self.ladder, ask)
                    else:
                        value = self.policy.choose_start(effect.request, self.ladder, ask)
                elif isinstance(effect, _Sleep):
                    await self._asleep(effect.seconds)
            except Exception as exc:  # noqa: BLE001
                error = exc

    def route(self, request: RouteRequest, backend: Backend) -> RoutingResult:
        """Route one request; raises ``LadderExhaustedError`` when nothing can be served."""
        result, started = self._new_result(request), time.perf_counter()
        try:
            self._drive(self._steps(request, result), backend, result)
        except BaseException as exc:
            result.error = result.error or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._close(result, request, backend, started)
        return self._outcome(result)

    async def aroute(self, request: RouteRequest, backend: Backend) -> RoutingResult:
        result, started = self._new_result(request), time.perf_counter()
        try:
            await self._adrive(self._steps(request, result), backend, result)
        except BaseException as exc:
            result.error = result.error or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._close(result, request, backend, started)
        return self._outcome(result)

    def _outcome(self, result: RoutingResult) -> RoutingResult:
        if result.served is None:
            raise self._exhausted_error(result)
        return result

    # -- streaming straight through ---------------------------------------------------

    def begin(self, request: RouteRequest, backend: Backend) -> StartedRoute:
        """Choose the start tier only; the caller streams from it and calls ``finish``."""
        result, started = self._new_result(request), time.perf_counter()
        try:
            tier = self._drive(self._choose_start(request, result), backend, result)
        except BaseException as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            self._close(result, request, backend, started)
            raise
        return StartedRoute(request, result, tier, started)

    async def abegin(self, request: RouteRequest, backend: Backend) -> StartedRoute:
        result, started = self._new_result(request), time.perf_counter()
        try:
            tier = await self._adrive(self._choose_start(request, result), backend, result)
        except BaseException as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            self._close(result, request, backend, started)
            raise
        return StartedRoute(request, result, tier, started)

    def finish(self, route: StartedRoute, backend: Backend, answer: TierAnswer | None = None,
               error: BaseException | None = None, latency_ms: float = 0.0, *,
               retried_on: Sequence[str] = ()) -> RoutingResult:
        """Record a call the integration made itself (a stream passed straight through).

        ``retried_on`` lists the transport error kinds the integration retried past
        on this tier before it answered or gave up.
        """
        tier, result = route.tier, route.result
        attempt = Attempt(tier=tier.name, model_id=tier.model_id, latency_ms=latency_ms,
                          retries=len(retried_on), retried_on=list(retried_on))
        if answer is not None:
            attempt.answer, attempt.usage, attempt.cost_usd = answer, answer.usage, self._price(tier, answer)
            attempt.verdict = GateVerdict(True, "no gate (streamed through)", "")
        else:
            kind = getattr(error, "kind", None)
            attempt.outcome = "transport_error" if isinstance(error, TransportError) else "error"
            attempt.error, attempt.error_kind = f"{type(error).__name__}: {error}", kind or type(error).__name__
        result.attempts.append(attempt)
        if answer is not None:
            result.served = attempt
        self._finish(route.request, result)
        self._close(result, route.request, backend, route.started)
        return result

    # -- telemetry ---------------------------------------------------------------

    def _close(self, result: RoutingResult, request: RouteRequest, backend: Backend, started: float) -> None:
        result.latency_ms = (time.perf_counter() - started) * 1000
        if result.served is None and result.error is None and result.attempts:
            result.error = result.attempts[-1].error
        for observer in self.observers:
            try:
                observer(result, request, backend)
            except Exception:  # noqa: BLE001 - telemetry never fails a request
                log.exception("routing observer %r failed", observer)

    def add_observer(self, observer: Observer) -> None:
        self.observers.append(observer)


