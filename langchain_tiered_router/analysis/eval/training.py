"""Fit the heads of a routing model on recorded outcomes, cross-fitted.

Heads are linear (logistic for a quality, ridge on log tokens for an answer length)
over ``core.features``. Training needs scikit-learn (the ``ml`` extra); the model it
produces runs with numpy alone.

Cross-fitting: the calibration data is cut into folds (by sha256 of the prompt's
bounded view, ``learned.fold_of``); each item gets predictions from heads that never saw
it, and the shipped model keeps the fold heads as its members: a request is judged by
the member of its fold, so the decisions it serves are distributed as the cross-fitted
decisions the calibration certified. (The fold heads' mean, served before, sat in a
narrow band where the heads carried little signal, and a threshold certified on the
cross-fitted spread sent all or none of it to a tier.) Where the prompts do not fill
every fold, the mean judges every request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ...core.features import FeatureSpec, answer_row, bounded_view, prompt_row
from ...core.learned import LinearHead, fold_of, per_token_rates, predicted_cost
from ...core.pricing import estimate_tokens
from ...core.tiers import Ladder
from .data import EvalItem

__all__ = ["Matrix", "TrainingData", "Heads", "Predictions", "crossfit", "folds_of", "predict", "select_c",
           "C_GRID"]

C_GRID = (0.03, 0.3, 3.0)


def folds_of(items: Sequence[EvalItem], k: int, spec: FeatureSpec | None = None) -> np.ndarray:
    """Stable fold numbers from sha256 of the prompt's bounded view (the same split on
    every run): ``learned.fold_of``, which picks the member that judges a request at run time."""
    return _folds_of_texts([i.prompt for i in items], k, spec or FeatureSpec())


def _folds_of_texts(prompts: Sequence[str], k: int, spec: FeatureSpec) -> np.ndarray:
    return np.array([fold_of(bounded_view(p, spec.head_chars, spec.tail_chars), k) for p in prompts], dtype=int)


def _sklearn():
    try:
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression, Ridge
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("training needs scikit-learn: pip install 'langchain-tiered-router[ml]'") from exc
    return sparse, LogisticRegression, Ridge


@dataclass
class Matrix:
    """Rows of features: hashed counts (CSR) and a dense block."""

    sparse: object  # scipy.sparse.csr_matrix (n, hash_dims), or None without token features
    dense: np.ndarray  # (n, D) float32

    @classmethod
    def from_rows(cls, rows, spec: FeatureSpec) -> "Matrix":
        sparse, _, _ = _sklearn()
        n = len(rows)
        csr = None
        if spec.tokens:
            indptr = np.concatenate([[0], np.cumsum([r.idx.size for r in rows])])
            idx = np.concatenate([r.idx for r in rows]) if n else np.empty(0, np.int64)
            val = np.concatenate([r.val for r in rows]) if n else np.empty(0, np.float32)
            csr = sparse.csr_matrix((val.astype(np.float64), idx, indptr), shape=(n, spec.hash_dims))
        dense = np.stack([r.dense for r in rows]).astype(np.float32) if n and rows[0].dense.size else np.zeros((n, 0), np.float32)
        return cls(csr, dense)

    def take(self, idx: np.ndarray) -> "Matrix":
        return Matrix(None if self.sparse is None else self.sparse[idx], self.dense[idx])

    @staticmethod
    def stack(parts: Sequence["Matrix"]) -> "Matrix":
        sparse, _, _ = _sklearn()
        csr = None if parts[0].sparse is None else sparse.vstack([p.sparse for p in parts]).tocsr()
        return Matrix(csr, np.concatenate([p.dense for p in parts]))

    def design(self, mean: np.ndarray, scale: np.ndarray):
        """The matrix a linear model sees: hashed counts, then the standardised dense block."""
        sparse, _, _ = _sklearn()
        dense = (self.dense.astype(np.float64) - mean) / scale
        if self.sparse is None:
            return sparse.csr_matrix(dense)
        return sparse.hstack([self.sparse, sparse.csr_matrix(dense)]).tocsr()


def _standardiser(dense: np.ndarray, layout: Sequence[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Centre every column; scale each signal to unit variance, but each embedding as a
    whole to unit RMS norm: 256 standardised coordinates would outweigh every other
    feature and overfit a few hundred examples, while one unit-norm block stays a single
    voice that the regularisation can turn up when the data supports it."""
    mean = dense.mean(axis=0).astype(np.float64) if dense.size else np.zeros(dense.shape[1])
    scale = np.ones(dense.shape[1])
    start = 0
    for kind, width in layout:
        block = dense[:, start:start + width].astype(np.float64) - mean[start:start + width]
        if kind == "signals":
            std = block.std(axis=0) if block.size else np.ones(width)
            scale[start:start + width] = np.where(std > 1e-6, std, 1.0)
        elif block.size:
            rms = float(np.sqrt((block ** 2).sum(axis=1).mean()))
            scale[start:start + width] = rms if rms > 1e-9 else 1.0
        start += width
    return np.float32(mean).astype(np.float64), np.float32(scale).astype(np.float64)


@dataclass
class TrainingData:
    """Features of every calibration item: its prompt, and each non-top tier's answer
    (with the previous tier's answer beside it, and without, for a cascade that started
    there)."""

    spec: FeatureSpec
    tiers: list[str]
    prompts: Matrix
    answers: dict[tuple[int, bool], Matrix]  # (tier index, has previous) -> rows
    q: np.ndarray  # (n, K)
    out_tokens: np.ndarray  # (n, K)
    prompt_texts: list[str]
    std_prompt: tuple[np.ndarray, np.ndarray] = field(default=None)  # type: ignore[assignment]
    std_answer: tuple[np.ndarray, np.ndarray] = field(default=None)  # type: ignore[assignment]

    @classmethod
    def build(cls, items: Sequence[EvalItem], tiers: Sequence[str], spec: FeatureSpec, *, with_answers: bool,
              progress: Callable[[int], None] = lambda _: None) -> "TrainingData":
        rows = []
        for item in items:
            rows.append(prompt_row(spec, item.prompt))
            progress(1)
        prompts = Matrix.from_rows(rows, spec)
        answers: dict[tuple[int, bool], Matrix] = {}
        if with_answers:
            for j in range(len(tiers) - 1):
                for has_previous in ((False, True) if j else (False,)):
                    block = []
                    for item in items:
                        previous = (item.outcomes[tiers[j - 1]].response or "") if has_previous else None
                        block.append(answer_row(spec, item.prompt, item.outcomes[tiers[j]].response or "",
                                                previous=previous))
                        progress(1)
                    answers[(j, has_previous)] = Matrix.from_rows(block, spec)
        q = np.array([[i.outcomes[t].score for t in tiers] for i in items], dtype=np.float64)
        out = np.array([[i.outcomes[t].output_tokens for t in tiers] for i in items], dtype=np.float64)
        data = cls(spec, list(tiers), prompts, answers, q, out, [i.prompt for i in items])
        data.std_prompt = _standardiser(prompts.dense, spec.dense_layout(with_answer=False))
        if answers:
            data.std_answer = _standardiser(np.concatenate([m.dense for m in answers.values()]),
                                            spec.dense_layout(with_answer=True))
        return data

    @property
    def n(self) -> int:
        return self.q.shape[0]

    @property
    def has_answers(self) -> bool:
        return bool(self.answers)

    def subset(self, idx: np.ndarray) -> "TrainingData":
        """The rows of ``idx``, standardised on those rows alone (as a calibration on
        them would be): features are read once, then shared by many splits."""
        data = TrainingData(self.spec, self.tiers, self.prompts.take(idx),
                            {k: m.take(idx) for k, m in self.answers.items()}, self.q[idx], self.out_tokens[idx],
                            [self.prompt_texts[i] for i in idx])
        data.std_prompt = _standardiser(data.prompts.dense, self.spec.dense_layout(with_answer=False))
        if data.answers:
            data.std_answer = _standardiser(np.concatenate([m.dense for m in data.answers.values()]),
                                            self.spec.dense_layout(with_answer=True))
        return data

    def work_units(self, n_items: int, with_answers: bool) -> int:
        k = len(self.tiers)
        return n_items * (1 + (2 * k - 3 if with_answers and k > 1 else 0))


def _split_head(coef: np.ndarray, bias: float, spec: FeatureSpec, std, link: str) -> LinearHead:
    coef = np.float32(coef).astype(np.float64)  # the precision the model file keeps
    width = spec.hash_dims if spec.tokens else 0
    return LinearHead(coef[:width], coef[width:], std[0], std[1], float(np.float32(bias)), link)


def _fit_quality(matrix: Matrix, y: np.ndarray, std, spec: FeatureSpec, c: float) -> LinearHead:
    """Logistic regression of a score in [0, 1]; a graded score counts as a soft label."""
    _, LogisticRegression, _ = _sklearn()
    sparse, _, _ = _sklearn()
    x = matrix.design(*std)
    width = x.shape[1]
    hard = np.all((y == 0) | (y == 1))
    if y.min() == y.max():
        prior = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
        return _split_head(np.zeros(width), math.log(prior / (1 - prior)), spec, std, "logistic")
    if hard:
        xs, ys, ws = x, y.astype(int), None
    else:  # each row twice: label 1 with weight s, label 0 with weight 1 - s
        xs = sparse.vstack([x, x]).tocsr()
        ys = np.concatenate([np.ones(len(y), int), np.zeros(len(y), int)])
        ws = np.concatenate([y, 1 - y])
    # liblinear: coordinate descent that costs per non-zero, not per hashed dimension; a
    # large intercept_scaling keeps its regularisation of the bias negligible
    model = LogisticRegression(C=c, solver="liblinear", intercept_scaling=10.0, max_iter=1000, tol=1e-5)
    model.fit(xs, ys, sample_weight=ws)
    return _split_head(model.coef_[0], float(model.intercept_[0]), spec, std, "logistic")


def _fit_tokens(matrix: Matrix, tokens: np.ndarray, std, spec: FeatureSpec) -> LinearHead:
    """Ridge regression of log(1 + output tokens) on the dense block (the hashed counts
    add little to a length and cost a lot)."""
    _, _, Ridge = _sklearn()
    width = spec.hash_dims if spec.tokens else 0
    y = np.log1p(tokens)
    if matrix.dense.shape[1] == 0 or np.all(y == y[0]):
        return LinearHead(np.zeros(width), np.zeros(matrix.dense.shape[1]), std[0], std[1], float(y.mean()), "log1p")
    dense = (matrix.dense.astype(np.float64) - std[0]) / std[1]
    model = Ridge(alpha=10.0).fit(dense, y)
    return LinearHead(np.zeros(width), np.float32(model.coef_).astype(np.float64), std[0], std[1],
                      float(np.float32(model.intercept_)), "log1p")


@dataclass
class Heads:
    quality: dict[str, LinearHead] = field(default_factory=dict)
    out_tokens: dict[str, LinearHead] = field(default_factory=dict)
    stay: dict[str, LinearHead] = field(default_factory=dict)
    up: dict[str, LinearHead] = field(default_factory=dict)
    # the fold heads, fold f's fitted without fold f: each request is judged by its fold's
    # (``folds_of``), as at run time (``RoutingModel.members``); empty: these heads judge all
    members: list["Heads"] = field(default_factory=list)

    @staticmethod
    def mean(all_heads: Sequence["Heads"]) -> "Heads":
        """Average fold heads (linear models average into one)."""
        out = Heads()
        for role in ("quality", "out_tokens", "stay", "up"):
            for tier in getattr(all_heads[0], role):
                parts = [getattr(h, role)[tier] for h in all_heads]
                first = parts[0]
                getattr(out, role)[tier] = LinearHead(
                    np.float32(np.mean([p.sparse for p in parts], axis=0)).astype(np.float64),
                    np.float32(np.mean([p.dense for p in parts], axis=0)).astype(np.float64),
                    first.mean, first.scale, float(np.float32(np.mean([p.bias for p in parts]))), first.link)
        return out


def fit_heads(data: TrainingData, idx: np.ndarray, c: dict[str, float], *, cascade: bool) -> Heads:
    heads = Heads()
    prompts = data.prompts.take(idx)
    for k, tier in enumerate(data.tiers):
        heads.quality[tier] = _fit_quality(prompts, data.q[idx, k], data.std_prompt, data.spec, c["prompt"])
        heads.out_tokens[tier] = _fit_tokens(prompts, data.out_tokens[idx, k], data.std_prompt, data.spec)
    if cascade:
        for j in range(len(data.tiers) - 1):
            variants = [data.answers[(j, p)].take(idx) for p in ((False, True) if j else (False,))]
            rows = Matrix.stack(variants)
            reps = len(variants)
            heads.stay[data.tiers[j]] = _fit_quality(rows, np.tile(data.q[idx, j], reps), data.std_answer,
                                                     data.spec, c["answer"])
            heads.up[data.tiers[j]] = _fit_quality(rows, np.tile(data.q[idx, j + 1], reps), data.std_answer,
                                                   data.spec, c["answer"])
    return heads


def _linear(head: LinearHead, matrix: Matrix) -> np.ndarray:
    z = np.full(matrix.dense.shape[0], head.bias)
    if matrix.sparse is not None and head.sparse.size:
        z = z + matrix.sparse @ head.sparse
    if head.dense.size:
        z = z + ((matrix.dense.astype(np.float64) - head.mean) / head.scale) @ head.dense
    if head.link == "logistic":
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
    return np.maximum(0.0, np.expm1(np.minimum(z, 20.0)))


@dataclass
class Predictions:
    """What the heads say about each item, in the units the decisions use."""

    quality: np.ndarray  # (n, K) predicted score of each tier, from the prompt
    cost: np.ndarray  # (n, K) predicted cost of each tier / cost_scale
    stay: dict[tuple[int, bool], np.ndarray] = field(default_factory=dict)  # (j, has previous) -> (n,)
    up: dict[tuple[int, bool], np.ndarray] = field(default_factory=dict)

    def take(self, idx: np.ndarray) -> "Predictions":
        return Predictions(self.quality[idx], self.cost[idx], {k: v[idx] for k, v in self.stay.items()},
                           {k: v[idx] for k, v in self.up.items()})

    @staticmethod
    def place(parts: Sequence[tuple[np.ndarray, "Predictions"]], n: int) -> "Predictions":
        """Reassemble out-of-fold predictions into item order."""
        first = parts[0][1]
        out = Predictions(np.zeros((n, first.quality.shape[1])), np.zeros((n, first.cost.shape[1])),
                          {k: np.zeros(n) for k in first.stay}, {k: np.zeros(n) for k in first.up})
        for idx, p in parts:
            out.quality[idx], out.cost[idx] = p.quality, p.cost
            for k in p.stay:
                out.stay[k][idx], out.up[k][idx] = p.stay[k], p.up[k]
        return out


def predicted_costs(out_tokens: np.ndarray, prompts: Sequence[str], ladder: Ladder, cost_scale: float) -> np.ndarray:
    """Exactly what ``RoutingModel.predicted_costs`` computes at run time, for many items."""
    rates = per_token_rates(ladder)
    costs = np.zeros(out_tokens.shape)
    for i, prompt in enumerate(prompts):
        tokens_in = estimate_tokens(prompt)
        costs[i] = [predicted_cost(rate, tokens_in, float(out), cost_scale) for rate, out in zip(rates, out_tokens[i])]
    return costs


def predict(heads: Heads, data: TrainingData, idx: np.ndarray, ladder: Ladder, cost_scale: float) -> Predictions:
    """What ``heads`` predict for items ``idx``; with members, each item by its fold's member."""
    if heads.members:
        folds = _folds_of_texts([data.prompt_texts[i] for i in idx], len(heads.members), data.spec)
        parts = [(np.flatnonzero(folds == f), predict(member, data, idx[folds == f], ladder, cost_scale))
                 for f, member in enumerate(heads.members) if np.any(folds == f)]
        return Predictions.place(parts, len(idx))
    prompts = data.prompts.take(idx)
    quality = np.stack([_linear(heads.quality[t], prompts) for t in data.tiers], axis=1)
    tokens = np.stack([_linear(heads.out_tokens[t], prompts) for t in data.tiers], axis=1)
    preds = Predictions(quality, predicted_costs(tokens, [data.prompt_texts[i] for i in idx], ladder, cost_scale))
    for key, matrix in data.answers.items():
        if data.tiers[key[0]] in heads.stay:
            rows = matrix.take(idx)
            preds.stay[key] = _linear(heads.stay[data.tiers[key[0]]], rows)
            preds.up[key] = _linear(heads.up[data.tiers[key[0]]], rows)
    return preds


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """Probability that a better item scores above a worse one (ties count half)."""
    order = np.argsort(p, kind="stable")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    for value in np.unique(p):  # average ranks of ties
        tied = p == value
        ranks[tied] = ranks[tied].mean()
    good = y >= 0.5
    n_good, n_bad = int(good.sum()), int((~good).sum())
    if not n_good or not n_bad:
        return 0.5
    return float((ranks[good].sum() - n_good * (n_good + 1) / 2) / (n_good * n_bad))


def _cv_log_loss(matrix: Matrix, y: np.ndarray, std, spec: FeatureSpec, c: float, folds: int,
                 ranking: bool = False) -> float:
    """Cross-validated log loss (lower is better), or with ``ranking`` minus the AUC."""
    fold = np.arange(len(y)) % folds
    total, preds = 0.0, np.zeros(len(y))
    for f in range(folds):
        train, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        head = _fit_quality(matrix.take(train), y[train], std, spec, c)
        p = np.clip(_linear(head, matrix.take(held)), 1e-6, 1 - 1e-6)
        preds[held] = p
        total += float(-(y[held] * np.log(p) + (1 - y[held]) * np.log(1 - p)).sum())
    return -_auc(y, preds) if ranking else total


def select_c(data: TrainingData, *, folds: int = 3,
             progress: Callable[[int, int], None] = lambda done, total: None) -> dict[str, float]:
    """The regularisation with the best cross-validated log loss, for the heads that read
    a prompt and for those that read an answer, judged on the cheapest tier's quality
    (the prediction every strategy leans on). ``progress(done, total)`` after each try."""
    y = data.q[:, 0]
    out = {"prompt": 1.0, "answer": 1.0}
    if y.min() == y.max():
        return out
    total = len(C_GRID) * (2 if (0, False) in data.answers else 1)
    losses = []
    for c in C_GRID:
        losses.append(_cv_log_loss(data.prompts, y, data.std_prompt, data.spec, c, folds))
        progress(len(losses), total)
    out["prompt"] = C_GRID[int(np.argmin(losses))]
    if (0, False) in data.answers:
        # an escalation is a threshold on a score: what matters is how well it ranks answers
        losses = []
        for c in C_GRID:
            losses.append(_cv_log_loss(data.answers[(0, False)], y, data.std_answer, data.spec, c, folds,
                                       ranking=True))
            progress(len(C_GRID) + len(losses), total)
        out["answer"] = C_GRID[int(np.argmin(losses))]
    return out


def crossfit(data: TrainingData, items: Sequence[EvalItem], ladder: Ladder, cost_scale: float, c: dict[str, float], *,
             cascade: bool, k: int = 10, progress: Callable[[str], None] = lambda _: None
             ) -> tuple[Predictions, Heads]:
    """Out-of-fold predictions for every item, and the heads to ship (their members the fold heads)."""
    if len(items) < 2:
        raise ValueError(f"calibration needs at least 2 requests, got {len(items)}")
    folds = folds_of(items, k, data.spec)
    by_hash = np.unique(folds).size == k  # every fold holds requests: each has a member at run time
    if np.unique(folds).size < 2:  # every prompt alike: folds by position, or nothing is held out
        folds = np.arange(len(items)) % k
    parts, fold_heads = [], []
    for f in range(k):
        train, held = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        if held.size == 0 or train.size == 0:
            continue
        progress(f"fitting fold {f + 1} of {k}")
        heads = fit_heads(data, train, c, cascade=cascade)
        fold_heads.append(heads)
        parts.append((held, predict(heads, data, held, ladder, cost_scale)))
    shipped = Heads.mean(fold_heads)
    if by_hash:  # else (few or alike prompts) the mean judges every request, as it always did
        shipped.members = fold_heads
    return Predictions.place(parts, data.n), shipped
