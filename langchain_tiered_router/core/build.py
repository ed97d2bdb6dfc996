"""Build the runtime router (ladder, policy, gates, pins, telemetry) from a config.

The one place where config names become objects, so a bad reference is reported
once, with its key path.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Sequence

from . import config as C
from .classifiers import Classifier, LLMClassifier, Rule, RulesClassifier, TrainedClassifier
from .engine import Observer, Router
from .errors import ConfigError
from .gates import (AllOf, AnyOf, ConfidenceGate, Gate, JsonSchemaGate, PydanticGate, RegexGate, RuleGate,
                    SelfGradeGate, import_object)
from .pinning import MemoryPinStore, PinStore, RedisPinStore
from .policies import CascadePolicy, ClassifierPolicy, ConfidencePolicy, Policy
from .tiers import Ladder

log = logging.getLogger("langchain_tiered_router")

__all__ = ["build_router", "build_gate", "build_gates", "build_policy", "build_classifier", "build_pin_store"]


def build_gate(cfg: Any, ladder: Ladder, path: str = "gates") -> Gate:
    try:
        return _build_gate(cfg, ladder, path)
    except ConfigError as exc:
        if exc.path.startswith(path):
            raise
        raise ConfigError(str(exc).split(": ", 1)[-1], path=f"{path}.{exc.path}" if exc.path else path) from None


def _takes_question_and_answer(fn: Any) -> bool:
    """Whether ``fn(question, answer)`` binds (a callable whose signature Python cannot
    read, some builtins' and classes', is taken on trust): one that cannot failed every
    request's gate on every tier, paying the whole ladder each time."""
    try:
        inspect.signature(fn).bind("question", "answer")
    except TypeError:
        return False
    except ValueError:  # no signature to read
        pass
    return True


def _build_gate(cfg: Any, ladder: Ladder, path: str) -> Gate:
    if isinstance(cfg, C.JsonSchemaGateConfig):
        return JsonSchemaGate(cfg.json_schema, source=cfg.source, embedded=cfg.embedded)
    if isinstance(cfg, C.PydanticGateConfig):
        model = import_object(cfg.model, path="model")
        if not hasattr(model, "model_validate"):
            raise ConfigError(f"{cfg.model!r} is not a pydantic model", path="model")
        return PydanticGate(model, source=cfg.source, embedded=cfg.embedded)
    if isinstance(cfg, C.RegexGateConfig):
        return RegexGate(cfg.pattern, must_match=cfg.must_match, ignore_case=cfg.ignore_case)
    if isinstance(cfg, C.RuleGateConfig):
        fn = import_object(cfg.function, path="function")
        if not callable(fn):
            raise ConfigError(f"{cfg.function!r} is not callable", path="function")
        if not _takes_question_and_answer(fn):
            raise ConfigError(f"{cfg.function!r} cannot be called as fn(question, answer): a rule gate calls it "
                              "with the request's text and the answer's", path="function")
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
            # its call returns a coroutine, never a verdict: every answer failed, the whole ladder paid
            raise ConfigError(f"{cfg.function!r} is async: a rule gate calls it and reads its result (True/False, "
                              "or (bool, reason)); define it with def (gates run off the event loop, with a time "
                              "budget, on the async paths too)", path="function")
        return RuleGate(fn)
    if isinstance(cfg, C.SelfGradeGateConfig):
        return SelfGradeGate(cfg.grader_tier or ladder.cheapest.name, threshold=cfg.threshold, prompt=cfg.prompt)
    if isinstance(cfg, C.ConfidenceGateConfig):
        return ConfidenceGate.from_config(cfg)
    if isinstance(cfg, C.VerifierGateConfig):
        from .learned_policy import LearnedEscalationGate
        from .model_file import load_routing_model

        try:
            model = load_routing_model(cfg.path)
        except ConfigError as exc:
            raise ConfigError(str(exc), path="path") from None
        if not model.stay:
            raise ConfigError(f"{cfg.path} holds a {model.strategy} model with no cascade heads; "
                              "calibrate with --policy cascade or blend", path="path")
        model.check_ladder(ladder)
        model.warm(ladder)
        return LearnedEscalationGate(model, cfg.threshold, name=f"verifier:{cfg.path.rsplit('/', 1)[-1]}")
    if isinstance(cfg, C.ConsistencyGateConfig):
        from .learned_policy import ConsistencyGate

        return ConsistencyGate(ladder[cfg.tier].name)
    if isinstance(cfg, C.AllGateConfig):
        return AllOf([build_gate(g, ladder, f"{path}.gates[{i}]") for i, g in enumerate(cfg.gates)])
    if isinstance(cfg, C.AnyGateConfig):
        return AnyOf([build_gate(g, ladder, f"{path}.gates[{i}]") for i, g in enumerate(cfg.gates)])
    raise ConfigError(f"unknown gate {cfg!r}", path=path)


def build_gates(cfgs: Sequence[Any], ladder: Ladder, path: str = "gates") -> list[Gate]:
    return [build_gate(g, ladder, f"{path}[{i}]") for i, g in enumerate(cfgs)]


def build_classifier(cfg: C.ClassifierConfig, ladder: Ladder | None = None) -> Classifier:
    if cfg.kind == "rules":
        return RulesClassifier([Rule(r.tier, r.keywords, r.min_chars, r.max_chars) for r in cfg.rules],
                               cfg.default_tier)
    if cfg.kind == "trained":
        assert cfg.path is not None
        classifier = TrainedClassifier(cfg.path, cfg.threshold)
        try:
            # loaded (and checked against the ladder) now: a missing or unusable file, or one
            # trained for other tiers, fails here, not on every request
            model = classifier.model
            if ladder is not None:
                model.check_ladder(ladder)
                model.warm(ladder)  # each fold member's plan for this ladder, not on its first request
        except ConfigError as exc:
            raise ConfigError(str(exc), path="policy.classifier.path") from None
        return classifier
    return LLMClassifier(cfg.llm_tier, cfg.prompt, cfg.default_tier)


def build_policy(cfg: C.PolicyConfig, ladder: Ladder | None = None) -> Policy:
    if cfg.kind == "auto":
        from .learned_policy import LearnedPolicy

        if ladder is None or cfg.path is None:
            raise ConfigError("an auto policy needs 'path' and the ladder", path="policy.path")
        try:
            asked = cfg.max_escalations if "max_escalations" in cfg.model_fields_set else None
            return LearnedPolicy.from_file(cfg.path, ladder, asked)
        except ConfigError as exc:
            raise ConfigError(str(exc), path="policy.path") from None
    classifier = build_classifier(cfg.classifier, ladder) if cfg.classifier else None
    if cfg.kind == "classifier":
        if classifier is None:
            raise ConfigError("a classifier policy needs 'classifier'", path="policy.classifier")
        return ClassifierPolicy(classifier, cfg.max_escalations)
    if cfg.kind == "confidence":
        gate = ConfidenceGate.from_config(cfg.confidence or C.ConfidenceGateConfig(kind="confidence"))
        return ConfidencePolicy(gate, cfg.max_escalations, classifier, cfg.start_tier)
    return CascadePolicy(cfg.max_escalations, classifier, cfg.start_tier)


def build_pin_store(cfg: C.PinningConfig, ladder: Ladder | None = None) -> PinStore | None:
    """``ladder``: the pins' tiers; a shared store keeps each ladder's pins apart."""
    if not cfg.enabled:
        return None
    if cfg.backend == "redis":
        if not cfg.redis_url:
            raise ConfigError("a redis pin store needs 'redis_url'", path="pinning.redis_url")
        return RedisPinStore(cfg.redis_url, cfg.ttl_s, cfg.key_prefix,
                             ladder_id=ladder.fingerprint() if ladder is not None else "")
    return MemoryPinStore(cfg.max_sessions, cfg.ttl_s)


def build_router(config: Any, *, observers: Sequence[Observer] | None = None, pin_store: PinStore | None = None,
                 telemetry: bool = True, **kwargs: Any) -> Router:
    """A ``Router`` from a ``RouterConfig`` (or a dict / YAML path).

    ``observers`` replaces the telemetry built from ``config.telemetry``; pass
    ``telemetry=False`` for none.
    """
    source = str(config) if isinstance(config, (str, Path)) else None
    config = C.load_config(config)
    source = source or config._source
    try:
        return _build_router(config, observers, pin_store, telemetry, kwargs)
    except ConfigError as exc:  # raised past validation (a gate's import, a model file): name the file too
        raise (exc.in_file(source) if source else exc) from exc.__cause__


def _build_router(config: Any, observers: Sequence[Observer] | None, pin_store: PinStore | None, telemetry: bool,
                  kwargs: dict[str, Any]) -> Router:
    ladder = Ladder.from_config(config)
    ladder.warn_if_out_of_order()
    gates = build_gates(config.gates, ladder)
    tier_gates = {t.name: build_gates(t.gates, ladder, f"tiers[{i}].gates")
                  for i, t in enumerate(config.tiers) if t.gates is not None}
    tool_gates = build_gates(config.tool_gates, ladder, "tool_gates")
    tier_tool_gates = {t.name: build_gates(t.tool_gates, ladder, f"tiers[{i}].tool_gates")
                       for i, t in enumerate(config.tiers) if t.tool_gates is not None}
    if observers is None:
        observers = []
        if telemetry:
            from .telemetry import build_observers

            observers = build_observers(config, ladder)
    if "breaker" not in kwargs:
        from .circuit import build_circuit_breaker

        kwargs["breaker"] = build_circuit_breaker(config.circuit,
                                                  {t.name: f"{t.model_id}@{config.region_name}" for t in ladder})
    return Router(
        ladder, build_policy(config.policy, ladder), gates, tier_gates=tier_gates, tool_gates=tool_gates, tier_tool_gates=tier_tool_gates,
        on_exhausted=config.on_exhausted,
        retry=config.retry, deadline_s=config.transport.deadline_s,
        pin_store=pin_store if pin_store is not None else build_pin_store(config.pinning, ladder),
        observers=observers,
        allow_tier_request=config.access.allow_tier_request or (),
        on_forbidden=config.access.on_forbidden, gate_timeout_s=config.gate_timeout_s, **kwargs,
    )
