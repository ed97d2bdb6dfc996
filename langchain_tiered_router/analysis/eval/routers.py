"""Routers the harness trains and calibrates: classifier, cascade verifier, and blends.

Each turns items into one score per item (higher = more in need of the strong tier)
and says what each choice costs and serves, so a single sweep finds every operating
point and the calibration picks one.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...core.learned import RouterModel, Scorer, train_scorer
from .data import EvalItem
from .metrics import TierTable

__all__ = ["Choices", "LearnedRouter", "ClassifierRouter", "VerifierRouter", "BlendRouter", "ROUTERS", "folds_of"]


@dataclass
class Choices:
    """Per item: cost and quality when served cheap (0) or sent to the strong tier (1)."""

    cost0: np.ndarray
    cost1: np.ndarray
    q0: np.ndarray
    q1: np.ndarray


def folds_of(items: Sequence[EvalItem], k: int) -> np.ndarray:
    """Stable fold numbers from sha256 of the prompt (the same split on every run)."""
    return np.array([int(hashlib.sha256(i.prompt.encode()).hexdigest()[:8], 16) % k for i in items])


class LearnedRouter(ABC):
    name: str = "router"
    cascade: bool = False  # True when the cheap tier is always called first
    needs_answers: bool = False

    def __init__(self, cheap: str, strong: str):
        self.cheap, self.strong = cheap, strong

    @abstractmethod
    def fit(self, items: Sequence[EvalItem]) -> "LearnedRouter":
        ...

    @abstractmethod
    def scores(self, items: Sequence[EvalItem]) -> np.ndarray:
        ...

    def choices(self, items: Sequence[EvalItem], table: TierTable, *, out_of_fold: bool = False) -> Choices:
        """What serving cheap (0) or strong (1) costs per item; ``out_of_fold`` uses the
        decisions of the cross-validation models rather than the final one's."""
        extra = table.c_cheap if self.cascade else 0.0
        return Choices(table.c_cheap, table.c_strong + extra, table.q_cheap, table.q_strong)

    def pays_cheap(self, items: Sequence[EvalItem], to_strong: np.ndarray) -> np.ndarray:
        """Which requests call the cheap tier when ``to_strong`` go up."""
        return np.ones(len(items), dtype=bool) if self.cascade else ~to_strong

    def cv_scores(self, items: Sequence[EvalItem], k: int = 5) -> np.ndarray:
        """Out-of-fold scores: each item scored by a model that never saw it. The fold
        models are kept: ``average_folds`` turns them into the final model."""
        folds = folds_of(items, k)
        out = np.zeros(len(items))
        self.fold_models: list[LearnedRouter] = []
        for f in range(k):
            train = [it for it, g in zip(items, folds) if g != f]
            held = [i for i, g in enumerate(folds) if g == f]
            if not held:
                continue
            model = type(self)(self.cheap, self.strong).fit(train)
            self.fold_models.append(model)
            out[held] = model.scores([items[i] for i in held])
        return out

    def average_folds(self) -> "LearnedRouter":
        """The final model: the mean of the fold models' weights (linear models average
        into one). Its scores sit on the same scale as the out-of-fold scores that
        chose the threshold, which a model refit on all the data would not."""
        self.scorer = _mean_scorer([m.scorer for m in self.fold_models])
        return self

    @abstractmethod
    def to_models(self, threshold: float, meta: dict) -> dict[str, RouterModel]:
        """The file(s) that route production traffic like this router at ``threshold``."""


def _mean_scorer(scorers: Sequence[Scorer]) -> Scorer:
    return Scorer(scorers[0].featurizer, np.mean([s.weights for s in scorers], axis=0),
                  float(np.mean([s.bias for s in scorers])))


class ClassifierRouter(LearnedRouter):
    """P(the cheap tier is wrong | prompt): decides before any call."""

    name = "classifier"

    def fit(self, items):
        self.scorer: Scorer = train_scorer([i.prompt for i in items],
                                           [1.0 - i.outcomes[self.cheap].score for i in items])
        return self

    def scores(self, items):
        return self.scorer.score_many([i.prompt for i in items])

    def to_models(self, threshold, meta):
        return {"classifier": RouterModel("classifier", self.scorer, threshold, self.cheap, self.strong, meta)}


class VerifierRouter(LearnedRouter):
    """1 - P(the cheap answer is right | prompt, answer): a FrugalGPT-style scorer that
    decides, after the cheap call, whether to escalate."""

    name = "verifier"
    cascade = True
    needs_answers = True

    def fit(self, items):
        self.scorer = train_scorer([i.prompt for i in items], [i.outcomes[self.cheap].score for i in items],
                                   [i.outcomes[self.cheap].response or "" for i in items])
        return self

    def scores(self, items):
        return 1.0 - self.scorer.score_many([i.prompt for i in items],
                                            [i.outcomes[self.cheap].response or "" for i in items])

    def to_models(self, threshold, meta):
        # stored as "P(right) >= threshold passes": the gate's own orientation
        return {"verifier": RouterModel("verifier", self.scorer, 1.0 - threshold, self.cheap, self.strong, meta)}


class BlendRouter(LearnedRouter):
    """The classifier sends the clearly hard prompts straight to the strong tier (no
    wasted cheap call); the verifier judges the cheap answer of every other prompt.

    One score orders both: prompts the classifier is sure about come first (sent
    direct), then the rest by the verifier's doubt."""

    name = "blend"
    cascade = True
    needs_answers = True
    direct_share = 0.1  # the share of prompts the classifier may send straight up

    def fit(self, items):
        self.classifier = ClassifierRouter(self.cheap, self.strong).fit(items)
        self.verifier = VerifierRouter(self.cheap, self.strong).fit(items)
        train_scores = self.classifier.scores(items)
        self.direct_cut = float(np.quantile(train_scores, 1 - self.direct_share)) if len(items) else 1.0
        return self

    def _direct(self, items) -> np.ndarray:
        return self.classifier.scores(items) > self.direct_cut

    def scores(self, items):
        direct = self._direct(items)
        return np.where(direct, 2.0, self.verifier.scores(items))  # direct ones rank first

    def choices(self, items, table: TierTable, *, out_of_fold: bool = False) -> Choices:
        direct = self._cv_direct if out_of_fold else self._direct(items)
        cost1 = np.where(direct, table.c_strong, table.c_cheap + table.c_strong)
        return Choices(table.c_cheap, cost1, table.q_cheap, table.q_strong)

    def pays_cheap(self, items, to_strong):
        return ~(to_strong & self._direct(items))

    def cv_scores(self, items, k: int = 5):
        folds = folds_of(items, k)
        out = np.zeros(len(items))
        self._cv_direct = np.zeros(len(items), dtype=bool)
        self.fold_models = []
        for f in range(k):
            train = [it for it, g in zip(items, folds) if g != f]
            held = [i for i, g in enumerate(folds) if g == f]
            if held:
                model = BlendRouter(self.cheap, self.strong).fit(train)
                self.fold_models.append(model)
                subset = [items[i] for i in held]
                out[held] = model.scores(subset)
                self._cv_direct[held] = model._direct(subset)
        return out

    def average_folds(self):
        self.classifier = ClassifierRouter(self.cheap, self.strong)
        self.classifier.scorer = _mean_scorer([m.classifier.scorer for m in self.fold_models])
        self.verifier = VerifierRouter(self.cheap, self.strong)
        self.verifier.scorer = _mean_scorer([m.verifier.scorer for m in self.fold_models])
        self.direct_cut = float(np.mean([m.direct_cut for m in self.fold_models]))
        return self

    def to_models(self, threshold, meta):
        """A trained classifier (start tier) plus a verifier gate on the cheap tier."""
        return {**self.classifier.to_models(self.direct_cut, meta), **self.verifier.to_models(threshold, meta)}


ROUTERS = {"classifier": ClassifierRouter, "verifier": VerifierRouter, "blend": BlendRouter}
