"""Policies decide where a request starts and what, beyond the gates, escalates it.

A policy reads one ``RouteRequest`` and the ladder and returns a ``TierChoice``; the
engine then walks up the ladder while gates fail, at most ``max_escalations`` times.
The three kinds blend: a cascade or a confidence policy may take a classifier to pick
its starting rung, so a classifier serves the bulk and gates catch the borderline.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from .classifiers import Classifier, LLMClassifier, TierChoice
from .gates import ConfidenceGate, Gate
from .tiers import Ladder, Tier
from .types import AAskFn, AskFn, RouteRequest

__all__ = ["Policy", "CascadePolicy", "ClassifierPolicy", "ConfidencePolicy"]


class Policy(ABC):
    """Where to start; ``extra_gates`` are gates the policy itself brings."""

    name: str = "policy"

    def __init__(self, max_escalations: int = 2):
        self.max_escalations = max_escalations

    @abstractmethod
    def choose_start(self, request: RouteRequest, ladder: Ladder, ask: AskFn | None) -> TierChoice:
        ...

    async def achoose_start(self, request: RouteRequest, ladder: Ladder, ask: AskFn | None,
                            aask: AAskFn | None) -> TierChoice:
        """``choose_start`` on an event loop: a model call made with ``aask``, else the sync
        choice on a thread when it calls a model, inline when it does not."""
        if self.calls_model_to_start:
            return await asyncio.to_thread(self.choose_start, request, ladder, ask)
        return self.choose_start(request, ladder, ask)

    def extra_gates(self, tier: Tier | None = None) -> list[Gate]:
        """Gates the policy brings for answers of ``tier``."""
        return []

    @property
    def calls_model_to_start(self) -> bool:
        """True when choosing the start costs a model call (an LLM classifier)."""
        return False


class _StartsWithClassifier(Policy):
    def __init__(self, max_escalations: int = 2, classifier: Classifier | None = None,
                 start_tier: str | None = None):
        super().__init__(max_escalations)
        self.classifier = classifier
        self.start_tier = start_tier

    def choose_start(self, request, ladder, ask=None) -> TierChoice:
        if self.classifier is not None:
            return self.classifier.classify(request, ladder, ask)
        tier = self.start_tier or ladder.cheapest.name
        return TierChoice(tier, "cascade: start at the cheapest tier" if tier == ladder.cheapest.name
                          else f"configured start tier {tier!r}")

    async def achoose_start(self, request, ladder, ask=None, aask=None) -> TierChoice:
        # the LLM classifier's call made with ``aask`` (the backend's own pool, timed), unless
        # a subclass decides otherwise (its ``choose_start`` or ``classify`` runs as on the sync path)
        if aask is not None and type(self).choose_start is _StartsWithClassifier.choose_start \
                and isinstance(self.classifier, LLMClassifier) \
                and type(self.classifier).classify is LLMClassifier.classify:
            return await self.classifier.aclassify(request, ladder, aask)
        return await super().achoose_start(request, ladder, ask, aask)

    @property
    def calls_model_to_start(self) -> bool:
        return self.classifier is not None and self.classifier.name == "llm"


class CascadePolicy(_StartsWithClassifier):
    """Start cheap (or where a classifier says), escalate when a gate fails."""

    name = "cascade"


class ClassifierPolicy(_StartsWithClassifier):
    """Serve the tier the classifier predicts; configured gates still escalate."""

    name = "classifier"

    def __init__(self, classifier: Classifier, max_escalations: int = 2):
        super().__init__(max_escalations, classifier)


class ConfidencePolicy(_StartsWithClassifier):
    """Escalate when the answer signals doubt (self-rating, sentinel, logprobs)."""

    name = "confidence"

    def __init__(self, gate: ConfidenceGate | None = None, max_escalations: int = 2,
                 classifier: Classifier | None = None, start_tier: str | None = None):
        super().__init__(max_escalations, classifier, start_tier)
        self.gate = gate or ConfidenceGate()

    def extra_gates(self, tier: Tier | None = None) -> list[Gate]:
        return [self.gate]
