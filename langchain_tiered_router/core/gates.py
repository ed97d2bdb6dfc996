"""Quality gates: each judges one tier's answer and says pass or fail, with a reason.

A gate is one small object with one method, ``judge(state) -> GateVerdict``. Gates
combine with ``&`` and ``|``. A gate that raises is a failed gate whose reason names
the exception (``safe_judge``), never a crashed request; since that is a bug in the
gate, it is also logged (with its traceback, once per gate object and exception type) and
counted (``GateVerdict.error``, ``RoutingResult.gate_errors``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import jsonschema

from .config import ConfidenceGateConfig, SelfGradeGateConfig
from .confidence import answer_confidence
from .errors import ConfigError
from .json_answer import extract_json, structured_value
from .tiers import Tier
from .types import AAskFn, AskFn, AuxCall, GateVerdict, RouteRequest, TierAnswer

__all__ = [
    "GateState", "Gate", "AllOf", "AnyOf", "JsonSchemaGate", "PydanticGate", "RegexGate",
    "RuleGate", "SelfGradeGate", "ConfidenceGate", "safe_judge", "safe_ajudge", "extract_json",
    "import_object",
]

log = logging.getLogger("langchain_tiered_router")


@dataclass
class GateState:
    """What a gate reads: the request, the tier's answer, and a way to ask a tier.

    ``ask`` is the engine's, so a grader's own call is priced and recorded with the
    request (``aux_calls``).
    """

    request: RouteRequest
    answer: TierAnswer
    tier: Tier
    ask: AskFn | None = None
    aask: AAskFn | None = None
    aux_calls: list[AuxCall] = field(default_factory=list)
    previous: list[tuple[int, TierAnswer]] = field(default_factory=list)  # (tier index, answer) of earlier attempts
    ladder: Any = None  # the engine's Ladder, for gates that price the tiers above

    @property
    def question(self) -> str:
        return self.request.text


class Gate(ABC):
    """Judges one answer. Subclasses override ``judge``; async gates also ``ajudge``.

    ``blocking``: whether ``judge`` may take long (a rule that does I/O, a model call), so
    that ``ajudge`` runs it in a thread. The built-in checks of the answer's form are
    microseconds of CPU, less than the thread hop itself, and run inline."""

    name: str = "gate"
    blocking: bool = True

    @abstractmethod
    def judge(self, state: GateState) -> GateVerdict:
        ...

    async def ajudge(self, state: GateState) -> GateVerdict:
        if not self.blocking:
            return self.judge(state)
        return await asyncio.to_thread(self.judge, state)

    def __and__(self, other: "Gate") -> "Gate":
        return AllOf([self, other])

    def __or__(self, other: "Gate") -> "Gate":
        return AnyOf([self, other])

    def _verdict(self, passed: bool, reason: str = "", score: float | None = None) -> GateVerdict:
        return GateVerdict(passed, reason or ("ok" if passed else "failed"), self.name, score)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


_logged_lock = threading.Lock()


def _exception_verdict(gate: Gate, exc: BaseException) -> GateVerdict:
    error = f"{type(exc).__name__}: {exc}"
    with _logged_lock:
        seen = gate.__dict__.setdefault("_raised", set())  # per gate object: a new router logs anew
        first = type(exc).__name__ not in seen
        seen.add(type(exc).__name__)
    if first:  # a bug in a gate: its traceback once, the count on every record
        log.error("gate %s raised %s; it fails the answer (counted as gate_errors)", gate.name, error,
                  exc_info=exc)
    return GateVerdict(False, f"gate raised {error}", gate.name, error=error)


def safe_judge(gate: Gate, state: GateState) -> GateVerdict:
    """Judge, turning an exception inside the gate into a failed verdict."""
    try:
        verdict = gate.judge(state)
    except Exception as exc:  # noqa: BLE001 - a gate must never crash a request
        return _exception_verdict(gate, exc)
    return verdict if isinstance(verdict, GateVerdict) else GateVerdict(bool(verdict), "", gate.name)


async def safe_ajudge(gate: Gate, state: GateState) -> GateVerdict:
    try:
        verdict = await gate.ajudge(state)
    except Exception as exc:  # noqa: BLE001
        return _exception_verdict(gate, exc)
    return verdict if isinstance(verdict, GateVerdict) else GateVerdict(bool(verdict), "", gate.name)


class AllOf(Gate):
    """Passes when every gate passes; stops at the first failure."""

    def __init__(self, gates: Sequence[Gate]):
        self.gates = [g for gate in gates for g in (gate.gates if isinstance(gate, AllOf) else [gate])]
        self.name = " & ".join(g.name for g in self.gates)

    def judge(self, state: GateState) -> GateVerdict:
        for gate in self.gates:
            verdict = safe_judge(gate, state)
            if not verdict.passed:
                return verdict
        return self._verdict(True, "all passed")

    async def ajudge(self, state: GateState) -> GateVerdict:
        for gate in self.gates:
            verdict = await safe_ajudge(gate, state)
            if not verdict.passed:
                return verdict
        return self._verdict(True, "all passed")


class AnyOf(Gate):
    """Passes when one gate passes; the reason lists every failure otherwise."""

    def __init__(self, gates: Sequence[Gate]):
        self.gates = [g for gate in gates for g in (gate.gates if isinstance(gate, AnyOf) else [gate])]
        self.name = " | ".join(g.name for g in self.gates)

    def _fold(self, verdicts: Iterable[GateVerdict]) -> GateVerdict:
        reasons = []
        for verdict in verdicts:
            if verdict.passed:
                return verdict
            reasons.append(f"{verdict.gate}: {verdict.reason}")
        return self._verdict(False, "; ".join(reasons))

    def judge(self, state: GateState) -> GateVerdict:
        return self._fold(safe_judge(g, state) for g in self.gates)

    async def ajudge(self, state: GateState) -> GateVerdict:
        verdicts = []
        for gate in self.gates:
            verdict = await safe_ajudge(gate, state)
            verdicts.append(verdict)
            if verdict.passed:
                break
        return self._fold(verdicts)


# ---- structural gates ----------------------------------------------------------------

class JsonSchemaGate(Gate):
    """The answer (or its first tool call's arguments) must validate against a JSON schema."""

    blocking = False

    def __init__(self, schema: dict[str, Any], *, source: str = "auto", name: str = "json_schema"):
        try:
            validator_cls = jsonschema.validators.validator_for(schema)
            validator_cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"not a valid JSON schema: {exc.message}", path="schema") from None
        self.validator = validator_cls(schema)
        self.source = source
        self.name = name

    def judge(self, state: GateState) -> GateVerdict:
        try:
            value = structured_value(state.answer, self.source)
        except ValueError as exc:
            return self._verdict(False, str(exc))
        errors = sorted(self.validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            return self._verdict(False, f"schema violation at {where}: {err.message}")
        return self._verdict(True, "valid JSON")


class PydanticGate(Gate):
    """The answer (or its first tool call's arguments) must parse as a pydantic model."""

    blocking = False

    def __init__(self, model: type, *, source: str = "auto", name: str | None = None):
        self.model = model
        self.source = source
        self.name = name or f"pydantic:{model.__name__}"

    def judge(self, state: GateState) -> GateVerdict:
        try:
            value = structured_value(state.answer, self.source)
        except ValueError as exc:
            return self._verdict(False, str(exc))
        from pydantic import ValidationError

        try:
            self.model.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(root)"
            return self._verdict(False, f"{self.model.__name__} invalid at {loc}: {first['msg']}")
        return self._verdict(True, f"valid {self.model.__name__}")


class RegexGate(Gate):
    """The answer must match ``pattern`` (or must not, with ``must_match=False``)."""

    blocking = False

    def __init__(self, pattern: str, *, must_match: bool = True, ignore_case: bool = False, name: str | None = None):
        try:
            self.pattern = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise ConfigError(f"bad regex {pattern!r}: {exc}", path="pattern") from None
        self.must_match = must_match
        self.name = name or f"regex:{pattern}"

    def judge(self, state: GateState) -> GateVerdict:
        found = self.pattern.search(state.answer.text) is not None
        if found == self.must_match:
            return self._verdict(True, "matched" if found else "absent as required")
        return self._verdict(False, "pattern not found" if self.must_match else "forbidden pattern found")


class RuleGate(Gate):
    """A business rule: ``fn(question, answer_text)`` returns bool or (bool, reason)."""

    def __init__(self, fn: Callable[[str, str], Any], *, name: str | None = None):
        self.fn = fn
        self.name = name or f"rule:{getattr(fn, '__name__', 'rule')}"

    def judge(self, state: GateState) -> GateVerdict:
        out = self.fn(state.question, state.answer.text)
        if isinstance(out, tuple):
            passed, reason = bool(out[0]), str(out[1])
        else:
            passed, reason = bool(out), ""
        return self._verdict(passed, reason)


_GRADE_PROMPT = (
    "You are a strict grader. Rate how well the ANSWER answers the QUESTION, from 0 "
    "(wrong or useless) to 10 (fully correct and complete). Reply with the number only.\n\n"
    "QUESTION:\n{question}\n\nANSWER:\n{answer}\n\nSCORE:"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class SelfGradeGate(Gate):
    """A cheap tier scores the answer 0-10 against the question; passes at >= threshold.

    The grader's call is a real model call: it is priced and recorded with the request.
    """

    def __init__(self, grader_tier: str, *, threshold: float = SelfGradeGateConfig.model_fields["threshold"].default,
                 prompt: str | None = None):
        self.grader_tier = grader_tier
        self.threshold = threshold
        self.prompt = prompt or _GRADE_PROMPT
        self.name = f"self_grade:{grader_tier}"

    def _prompt(self, state: GateState) -> str:
        return self.prompt.format(question=state.question, answer=state.answer.text)

    def _score(self, reply: TierAnswer) -> GateVerdict:
        m = _NUMBER.search(reply.text)
        if not m:
            return self._verdict(False, f"grader gave no score: {reply.text[:80]!r}")
        score = min(10.0, float(m.group()))
        passed = score >= self.threshold
        return self._verdict(passed, f"grade {score:g} {'>=' if passed else '<'} {self.threshold:g}", score)

    def judge(self, state: GateState) -> GateVerdict:
        if state.ask is None:
            raise RuntimeError("self-grade needs the engine's ask function")
        return self._score(state.ask("self_grade", self.grader_tier, self._prompt(state)))

    async def ajudge(self, state: GateState) -> GateVerdict:
        if state.aask is None:
            return await super().ajudge(state)
        return self._score(await state.aask("self_grade", self.grader_tier, self._prompt(state)))


_CONFIDENCE = ConfidenceGateConfig(kind="confidence")  # the defaults live in the config model


class ConfidenceGate(Gate):
    """Fails when the answer's own confidence is below ``threshold``."""

    blocking = False

    def __init__(self, *, threshold: float = _CONFIDENCE.threshold, signal: str = _CONFIDENCE.signal,
                 sentinels: Sequence[str] = tuple(_CONFIDENCE.sentinels), missing: str = _CONFIDENCE.missing):
        self.threshold = threshold
        self.signal = signal
        self.sentinels = list(sentinels)
        self.missing = missing
        self.name = f"confidence:{signal}"

    @classmethod
    def from_config(cls, cfg: ConfidenceGateConfig) -> "ConfidenceGate":
        return cls(threshold=cfg.threshold, signal=cfg.signal, sentinels=cfg.sentinels, missing=cfg.missing)

    def judge(self, state: GateState) -> GateVerdict:
        value, source = answer_confidence(state.answer, self.signal, self.sentinels)
        if value is None:
            return self._verdict(self.missing == "pass", f"no confidence signal ({self.missing} when missing)")
        passed = value >= self.threshold
        return self._verdict(passed, f"{source} confidence {value:.2f} {'>=' if passed else '<'} {self.threshold:.2f}",
                             value)


def import_object(ref: str, *, path: str = "") -> Any:
    """Import ``package.module:attr`` (or ``package.module.attr``) for config references."""
    module_name, _, attr = ref.partition(":") if ":" in ref else ref.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"expected 'package.module:name', got {ref!r}", path=path)
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {ref!r}: {exc}", path=path) from None
    return obj

