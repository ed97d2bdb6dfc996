"""The one routing metric, used everywhere in the project.

cost of a request  = every model call made for it (an escalated cascade pays each tier
                     it touched; routing's own calls pay theirs)
baseline cost      = the baseline tier alone on the same request
savings            = 1 - sum(cost) / sum(baseline cost)
quality            = mean score of the answer served;  parity = quality / baseline quality
PGR(x)             = (quality - q_cheap) / (q_strong - q_cheap) at x = share of calls to the
                     strong tier; APGR = area under PGR(x) for x in [0, 1]; CPT(p) = the least
                     x with PGR >= p (RouteLLM's definitions, Ong et al. 2024)

Costs are summed from per-call ``Decimal`` prices and held as floats here: the metrics
are ratios, and a sweep over thousands of thresholds wants arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

__all__ = ["TierTable", "Point", "Curve", "summarize_run", "score_curve", "random_curve", "oracle_point",
           "apgr", "cpt", "curve_auc", "bootstrap_parity_ci", "bootstrap_counts", "parity_lower_bounds",
           "random_savings_at", "savings", "parity"]


def savings(cost: float, baseline_cost: float) -> float:
    """1 - sum(cost) / sum(baseline cost): the savings figure of the harness and the report."""
    return float(1 - cost / baseline_cost)


def parity(quality: float, baseline_quality: float) -> float:
    """quality of the served answers / quality of the baseline's answers on the same requests."""
    return float(quality / baseline_quality)


@dataclass
class TierTable:
    """Per item: score and cost of the cheap and the strong (baseline) tier."""

    q_cheap: np.ndarray
    q_strong: np.ndarray
    c_cheap: np.ndarray
    c_strong: np.ndarray

    @property
    def n(self) -> int:
        return len(self.q_cheap)

    def subset(self, idx: np.ndarray) -> "TierTable":
        return TierTable(self.q_cheap[idx], self.q_strong[idx], self.c_cheap[idx], self.c_strong[idx])


@dataclass
class Point:
    strong_share: float  # share of requests that reached the strong tier
    quality: float
    cost: float  # total

    def parity(self, table: TierTable) -> float:
        return self.quality / table.q_strong.mean()

    def savings(self, table: TierTable) -> float:
        return 1 - self.cost / table.c_strong.sum()


@dataclass
class Curve:
    points: list[Point]


def summarize_run(table: TierTable, served_strong: np.ndarray, paid_cheap: np.ndarray,
                  extra_cost: np.ndarray | None = None) -> dict[str, float]:
    """Savings, quality and parity of one concrete set of routing decisions."""
    quality = np.where(served_strong, table.q_strong, table.q_cheap)
    cost = np.where(paid_cheap, table.c_cheap, 0.0) + np.where(served_strong, table.c_strong, 0.0)
    if extra_cost is not None:
        cost = cost + extra_cost
    base_q = table.q_strong.mean()
    return {
        "n": int(table.n),
        "quality": float(quality.mean()),
        "baseline_quality": float(base_q),
        "parity": float(quality.mean() / base_q) if base_q else float("nan"),
        "savings": float(1 - cost.sum() / table.c_strong.sum()),
        "strong_share": float(served_strong.mean()),
        "cost_usd": float(cost.sum()),
        "baseline_cost_usd": float(table.c_strong.sum()),
    }


def score_curve(table: TierTable, scores: np.ndarray, *, cascade: bool) -> tuple[np.ndarray, Curve]:
    """Every operating point of a scoring router: the k highest scores go to the strong
    tier, k = 0..n. A cascade pays the cheap call on every request; a classifier only
    where it serves cheap. Returns the order (highest score first) and the curve."""
    order = np.argsort(-scores, kind="stable")
    d_quality = (table.q_strong - table.q_cheap)[order]
    quality = (table.q_cheap.sum() + np.concatenate([[0.0], np.cumsum(d_quality)])) / table.n
    if cascade:
        cost = table.c_cheap.sum() + np.concatenate([[0.0], np.cumsum(table.c_strong[order])])
    else:
        cost = table.c_cheap.sum() + np.concatenate([[0.0], np.cumsum((table.c_strong - table.c_cheap)[order])])
    share = np.arange(table.n + 1) / table.n
    return order, Curve([Point(float(s), float(q), float(c)) for s, q, c in zip(share, quality, cost)])


def random_curve(table: TierTable, steps: int = 101) -> Curve:
    """The random mix: each request goes to the strong tier with probability x."""
    qc, qs = table.q_cheap.mean(), table.q_strong.mean()
    cc, cs = table.c_cheap.sum(), table.c_strong.sum()
    return Curve([Point(x, (1 - x) * qc + x * qs, (1 - x) * cc + x * cs) for x in np.linspace(0, 1, steps)])


def random_savings_at(table: TierTable, parity: float) -> float:
    """Savings of the random mix that reaches ``parity`` in expectation."""
    qc, qs = table.q_cheap.mean(), table.q_strong.mean()
    target = parity * qs
    x = 1.0 if qs == qc else float(np.clip((target - qc) / (qs - qc), 0, 1))
    cost = (1 - x) * table.c_cheap.sum() + x * table.c_strong.sum()
    return float(1 - cost / table.c_strong.sum())


def oracle_point(table: TierTable) -> Point:
    """Serve cheap exactly when its answer is at least as good as the strong one's."""
    strong = table.q_strong > table.q_cheap
    quality = np.where(strong, table.q_strong, table.q_cheap).mean()
    cost = np.where(strong, table.c_strong, table.c_cheap).sum()
    return Point(float(strong.mean()), float(quality), float(cost))


def _pgr(table: TierTable, quality: np.ndarray) -> np.ndarray:
    qc, qs = table.q_cheap.mean(), table.q_strong.mean()
    return (quality - qc) / (qs - qc) if qs != qc else np.zeros_like(quality)


def apgr(table: TierTable, curve: Curve) -> float:
    x = np.array([p.strong_share for p in curve.points])
    pgr = _pgr(table, np.array([p.quality for p in curve.points]))
    order = np.argsort(x, kind="stable")
    return float(np.trapezoid(pgr[order], x[order]))


def cpt(table: TierTable, curve: Curve, pgr_target: float) -> float | None:
    """Least share of strong calls at which PGR reaches ``pgr_target`` (None if never)."""
    x = np.array([p.strong_share for p in curve.points])
    pgr = _pgr(table, np.array([p.quality for p in curve.points]))
    hit = x[pgr >= pgr_target - 1e-12]
    return float(hit.min()) if hit.size else None


def curve_auc(table: TierTable, curve: Curve) -> float:
    """Area under parity vs. cost (as a share of the all-baseline cost), on [0, 1]."""
    pts = sorted(curve.points, key=lambda p: p.cost)
    x = np.array([p.cost for p in pts]) / table.c_strong.sum()
    y = np.array([p.quality for p in pts]) / table.q_strong.mean()
    x = np.concatenate([[0.0], x, [max(1.0, x[-1])]])
    y = np.concatenate([[y[0]], y, [y[-1]]])
    keep = x <= 1.0
    return float(np.trapezoid(y[keep], x[keep]))


def bootstrap_parity_ci(served_quality: np.ndarray, baseline_quality: np.ndarray, *, resamples: int = 2000,
                        level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Paired percentile bootstrap of quality(served) / quality(baseline) over items."""
    rng = np.random.default_rng(seed)
    n = len(served_quality)
    ratios = []
    for start in range(0, resamples, 250):
        idx = rng.integers(0, n, size=(min(250, resamples - start), n))
        ratios.append(served_quality[idx].sum(axis=1) / np.maximum(baseline_quality[idx].sum(axis=1), 1e-12))
    r = np.concatenate(ratios)
    alpha = (1 - level) / 2
    return float(np.quantile(r, alpha)), float(np.quantile(r, 1 - alpha))


def bootstrap_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """How often each item appears in each resample (resamples x n), for fast sweeps."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def parity_lower_bounds(q0: np.ndarray, q1: np.ndarray, q_base: np.ndarray, order: np.ndarray,
                        counts: np.ndarray, *, level: float = 0.95, widen: float = 2 ** 0.5) -> np.ndarray:
    """A one-sided lower bound of parity at every k of a sweep (the k first in ``order``
    take quality ``q1``, the rest ``q0``), from bootstrap ``counts``.

    ``widen`` stretches the bound away from the bootstrap mean: sqrt(2) covers the
    noise of an unseen sample as well as that of the calibration sample.
    """
    base = counts @ q_base
    start = counts @ q0
    gains = counts[:, order] * (q1 - q0)[order]
    sums = np.concatenate([start[:, None], start[:, None] + np.cumsum(gains, axis=1)], axis=1)
    ratios = sums / np.maximum(base[:, None], 1e-12)
    centre = ratios.mean(axis=0)
    return centre - widen * (centre - np.quantile(ratios, 1 - level, axis=0))
