"""Trained routers: a prompt classifier and a cascade verifier, run with numpy alone.

Both are a logistic regression over hashed text features (word 1-2-grams, character
4-grams, a few length and number counts). Training uses scikit-learn (the ``ml`` extra,
imported only in ``train_scorer``); the saved file is a plain ``.npz`` (no pickle) that
the runtime loads with numpy and scores in well under a millisecond on a CPU.

* classifier: p = P(the cheap tier's answer is wrong | prompt) -> start at the strong
  tier when p > threshold.
* verifier (FrugalGPT-style scorer): p = P(the cheap answer is right | prompt, answer)
  -> escalate when p < threshold.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .arithmetic import evaluate_arithmetic
from .errors import ConfigError
from .gates import Gate, GateState
from .types import GateVerdict

__all__ = ["Featurizer", "Scorer", "RouterModel", "load_router_model", "save_router_model", "train_scorer",
           "VerifierGate"]

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_HEDGE = re.compile(r"\b(assume|assuming|approximately|not sure|unclear|cannot|can't|guess|maybe|perhaps)\b")


def _h(token: str, dims: int) -> int:
    return zlib.crc32(token.encode("utf-8")) & (dims - 1)


@dataclass(frozen=True)
class Featurizer:
    """Hashed sparse features of a prompt (and, for a verifier, an answer)."""

    dims: int = 2 ** 17
    char_n: int = 4

    @property
    def n_dense(self) -> int:
        return 10

    @property
    def width(self) -> int:
        return self.dims + self.n_dense

    def _text(self, text: str, prefix: str, counts: dict[int, float]) -> None:
        lowered = text.lower()
        words = _WORD.findall(lowered)
        grams = [prefix + w for w in words] + [f"{prefix}{a} {b}" for a, b in zip(words, words[1:])]
        squeezed = " ".join(lowered.split())
        grams += [f"{prefix}#{squeezed[i:i + self.char_n]}" for i in range(max(0, len(squeezed) - self.char_n + 1))]
        for gram in grams:
            j = _h(gram, self.dims)
            counts[j] = counts.get(j, 0.0) + 1.0

    def _dense(self, prompt: str, answer: str | None) -> list[float]:
        numbers = _NUMBER.findall(prompt)
        out = [math.log1p(len(prompt)) / 8, len(numbers) / 10, prompt.count("?") / 3,
               sum(c.isdigit() for c in prompt) / max(1, len(prompt))]
        if answer is None:
            return out + [0.0] * 6
        checked, wrong, last = _check_calculations(answer)
        a_numbers = [_num(n) for n in _NUMBER.findall(answer)]
        final = a_numbers[-1] if a_numbers else None
        follows = final is not None and last is not None and abs(final - last) <= 1e-6 * max(1.0, abs(final))
        # scaled up: a handful of dense signals must not drown in thousands of n-grams
        return out + [3 * float(wrong > 0), 3 * float(follows), 3 * float(checked == 0),
                      len(_HEDGE.findall(answer.lower())), 3 * float(final is None), math.log1p(len(answer)) / 8]

    def row(self, prompt: str, answer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        counts: dict[int, float] = {}
        self._text(prompt, "p:", counts)
        if answer is not None:
            self._text(answer, "a:", counts)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        val = np.log1p(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        norm = np.linalg.norm(val)
        if norm:
            val /= norm
        dense = np.asarray(self._dense(prompt, answer))
        return (np.concatenate([idx, np.arange(self.dims, self.width)]), np.concatenate([val, dense]))


def _num(text: str) -> float:
    try:
        return float(text.replace(",", "").rstrip("."))
    except ValueError:
        return math.nan


_ANNOTATED = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_INLINE = re.compile(r"((?:-?\d[\d,]*(?:\.\d+)?\s*[-+*/x]\s*)+-?\d[\d,]*(?:\.\d+)?)\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)")


def _check_calculations(answer: str) -> tuple[int, int, float | None]:
    """(calculations checked, wrong ones, last computed value) in a worked answer."""
    checked = wrong = 0
    last = None
    for expr, claimed in _ANNOTATED.findall(answer) + _INLINE.findall(answer):
        value, said = evaluate_arithmetic(expr), _num(claimed.strip().lstrip("$"))
        if value is None or math.isnan(said):
            continue
        checked += 1
        wrong += abs(value - said) > 1e-6 * max(1.0, abs(said)) + 1e-9
        last = said
    return checked, wrong, last


@dataclass
class Scorer:
    """Logistic regression weights over a ``Featurizer``'s columns."""

    featurizer: Featurizer
    weights: np.ndarray
    bias: float

    def score(self, prompt: str, answer: str | None = None) -> float:
        idx, val = self.featurizer.row(prompt, answer)
        z = float(self.weights[idx] @ val) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def score_many(self, prompts: Sequence[str], answers: Sequence[str | None] | None = None) -> np.ndarray:
        answers = answers if answers is not None else [None] * len(prompts)
        return np.array([self.score(p, a) for p, a in zip(prompts, answers)])


def train_scorer(prompts: Sequence[str], labels: Sequence[float], answers: Sequence[str | None] | None = None,
                 *, featurizer: Featurizer | None = None, c: float = 4.0) -> Scorer:
    """Fit P(label = 1 | features). Needs scikit-learn (``pip install 'langchain-tiered-router[ml]'``)."""
    try:
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("training needs scikit-learn: pip install 'langchain-tiered-router[ml]'") from exc
    featurizer = featurizer or Featurizer()
    answers = answers if answers is not None else [None] * len(prompts)
    rows = [featurizer.row(p, a) for p, a in zip(prompts, answers)]
    indptr = np.concatenate([[0], np.cumsum([len(r[0]) for r in rows])])
    matrix = csr_matrix((np.concatenate([r[1] for r in rows]), np.concatenate([r[0] for r in rows]), indptr),
                        shape=(len(rows), featurizer.width))
    y = np.asarray(labels, dtype=float) >= 0.5
    if y.all() or not y.any():  # one class only: a constant scorer
        prior = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
        return Scorer(featurizer, np.zeros(featurizer.width), math.log(prior / (1 - prior)))
    model = LogisticRegression(C=c, solver="liblinear", max_iter=2000)
    model.fit(matrix, y)
    return Scorer(featurizer, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


@dataclass
class RouterModel:
    """A trained router as saved by ``tiered-router calibrate``."""

    kind: str  # "classifier" | "verifier"
    scorer: Scorer
    threshold: float
    cheap_tier: str
    strong_tier: str
    meta: dict[str, Any] = field(default_factory=dict)

    def choose_tier(self, text: str, tier_names: Sequence[str], threshold: float | None = None
                    ) -> tuple[str, float]:
        """Classifier: the strong tier when P(cheap is wrong) > threshold, else the cheap one."""
        if self.kind != "classifier":
            raise ConfigError(f"a {self.kind} model cannot pick a start tier; use it as a 'verifier' gate")
        for name in (self.cheap_tier, self.strong_tier):
            if name not in tier_names:
                raise ConfigError(f"the trained model routes to tier {name!r}, which the ladder does not have")
        score = self.scorer.score(text)
        limit = self.threshold if threshold is None else threshold
        return (self.strong_tier if score > limit else self.cheap_tier), score

    def verify(self, prompt: str, answer: str) -> float:
        """Verifier: P(the answer is right)."""
        if self.kind != "verifier":
            raise ConfigError(f"a {self.kind} model cannot verify answers; use it as a trained classifier")
        return self.scorer.score(prompt, answer)


def save_router_model(model: RouterModel, path: str | Path) -> Path:
    path = Path(path)
    f = model.scorer.featurizer
    header = {"format": "tiered-router-model/1", "kind": model.kind, "threshold": model.threshold,
              "cheap_tier": model.cheap_tier, "strong_tier": model.strong_tier, "dims": f.dims,
              "char_n": f.char_n, "bias": model.scorer.bias, "meta": model.meta}
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
        np.savez_compressed(fh, header=np.array(json.dumps(header)), weights=model.scorer.weights.astype(np.float32))
    return path


def load_router_model(path: str | Path) -> RouterModel:
    """Load a ``.npz`` written by ``save_router_model`` (numpy only, no pickle)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            weights = data["weights"].astype(np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"cannot load router model {path}: {exc}") from None
    if header.get("format") != "tiered-router-model/1":
        raise ConfigError(f"{path} is not a tiered-router model file")
    featurizer = Featurizer(int(header["dims"]), int(header["char_n"]))
    if weights.shape != (featurizer.width,):
        raise ConfigError(f"{path}: weights do not match the feature width")
    return RouterModel(header["kind"], Scorer(featurizer, weights, float(header["bias"])), float(header["threshold"]),
                       header["cheap_tier"], header["strong_tier"], header.get("meta", {}))


class VerifierGate(Gate):
    """Passes when a trained verifier rates the answer right with P >= threshold."""

    def __init__(self, path: str, *, threshold: float | None = None):
        self.model = load_router_model(path)
        if self.model.kind != "verifier":
            raise ConfigError(f"{path} holds a {self.model.kind}, not a verifier", path="path")
        self.threshold = self.model.threshold if threshold is None else threshold
        self.name = f"verifier:{Path(path).name}"

    def judge(self, state: GateState) -> GateVerdict:
        p = self.model.verify(state.question, state.answer.text)
        passed = p >= self.threshold
        return self._verdict(passed, f"P(right) {p:.3f} {'>=' if passed else '<'} {self.threshold:.3f}", p)
