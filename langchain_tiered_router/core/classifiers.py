"""Classifiers predict the starting tier of a request before any answer exists.

Three kinds: keyword/length rules (free, instant), a trained text model loaded from a
file (``tiered-router calibrate`` writes it; sub-millisecond on CPU), and an LLM that
the cheapest tier answers with a tier name (one priced call).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

from .errors import ConfigError
from .tiers import Ladder
from .types import AskFn, RouteRequest

__all__ = ["TierChoice", "Classifier", "RulesClassifier", "Rule", "TrainedClassifier", "LLMClassifier"]


@dataclass
class TierChoice:
    tier: str
    reason: str
    score: float | None = None


class Classifier(ABC):
    """Predicts a tier name for a request."""

    name: str = "classifier"

    @abstractmethod
    def classify(self, request: RouteRequest, ladder: Ladder, ask: AskFn | None) -> TierChoice:
        ...


@dataclass
class Rule:
    tier: str
    keywords: Sequence[str] = ()
    min_chars: int | None = None
    max_chars: int | None = None

    def matches(self, text: str) -> str | None:
        n = len(text)
        if self.min_chars is not None and n < self.min_chars:
            return None
        if self.max_chars is not None and n > self.max_chars:
            return None
        if self.keywords:
            lowered = text.lower()
            for word in self.keywords:
                if re.search(rf"\b{re.escape(word.lower())}\b", lowered):
                    return f"keyword {word!r}"
            return None
        return f"length {n}"


class RulesClassifier(Classifier):
    """First matching rule wins; otherwise ``default_tier`` (the cheapest by default)."""

    name = "rules"

    def __init__(self, rules: Sequence[Rule], default_tier: str | None = None):
        self.rules = list(rules)
        self.default_tier = default_tier

    def classify(self, request, ladder, ask=None) -> TierChoice:
        for i, rule in enumerate(self.rules):
            why = rule.matches(request.text)
            if why:
                return TierChoice(rule.tier, f"rules[{i}]: {why}")
        return TierChoice(self.default_tier or ladder.cheapest.name, "rules: no rule matched")


class TrainedClassifier(Classifier):
    """A model file from ``tiered-router calibrate``; loaded once, on first use.

    ``threshold`` overrides the calibrated exchange rate lambda (quality per unit of
    predicted cost): lower starts more requests on stronger tiers."""

    name = "trained"

    def __init__(self, path: str, threshold: float | None = None):
        self.path = path
        self.threshold = threshold
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from .model_file import load_routing_model

            model = load_routing_model(self.path)
            if not model.quality:
                raise ConfigError(f"{self.path} holds a {model.strategy} model, which cannot pick a start tier; "
                                  "use it with policy: {kind: auto, path: ...}")
            self._model = model
        return self._model

    def classify(self, request, ladder, ask=None) -> TierChoice:
        self.model.check_ladder(ladder)
        tier, reason, score = self.model.choose_start(request.text, ladder, self.threshold)
        return TierChoice(tier, reason, score)


_LLM_PROMPT = (
    "Decide which model tier should answer the request below. Tiers, cheapest first: {tiers}. "
    "Pick the cheapest tier that will answer it correctly: simple lookups, extraction and "
    "classification need the cheapest; multi-step reasoning, maths, code and long writing need "
    "stronger tiers. Reply with the tier name only.\n\nREQUEST:\n{request}\n\nTIER:"
)


class LLMClassifier(Classifier):
    """Asks a (cheap) tier for a tier name; an unreadable reply starts at the cheapest."""

    name = "llm"

    def __init__(self, tier: str | None = None, prompt: str | None = None):
        self.tier = tier
        self.prompt = prompt or _LLM_PROMPT

    def classify(self, request, ladder, ask=None) -> TierChoice:
        if ask is None:
            raise RuntimeError("the LLM classifier needs the engine's ask function")
        tier = self.tier or ladder.cheapest.name
        reply = ask("classifier", tier, self.prompt.format(tiers=", ".join(ladder.names), request=request.text))
        return self.parse(reply.text, ladder)

    @staticmethod
    def parse(text: str, ladder: Ladder) -> TierChoice:
        lowered = text.lower()
        hits = [(lowered.find(name.lower()), name) for name in ladder.names if name.lower() in lowered]
        if not hits:
            return TierChoice(ladder.cheapest.name, f"llm: unreadable label {text[:40]!r}")
        return TierChoice(min(hits)[1], f"llm: said {min(hits)[1]!r}")
