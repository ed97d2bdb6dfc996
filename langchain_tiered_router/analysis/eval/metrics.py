"""The one routing metric, used everywhere in the project.

cost of a request  = every model call made for it (an escalated cascade pays each tier
                     it touched; routing's own calls pay theirs)
baseline cost      = the baseline tier alone on the same request
savings            = 1 - sum(cost) / sum(baseline cost)
quality            = mean score of the answer served;  parity = quality / baseline quality
random mix         = the cheapest random blend of tiers (each request sent to tier k with
                     probability p_k) whose expected quality reaches a parity
oracle             = one call per request, to the cheapest tier whose answer scores at
                     least the baseline's (parity >= 1)
headroom recovered = (savings - random mix's at the same parity) / (oracle's - random mix's)
PGR(x)             = (quality - q_cheapest) / (q_baseline - q_cheapest) at x = share of
                     requests served by the baseline; APGR = area under PGR(x) for x in [0, 1];
                     CPT(p) = the least x with PGR >= p (RouteLLM's definitions, Ong et al. 2024)

Costs are summed from per-call ``Decimal`` prices and held as floats here: the metrics
are ratios, and a sweep over thousands of operating points wants arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["LadderTable", "Point", "summarize_run", "random_savings_at", "oracle_point", "headroom_recovered",
           "target_text", "pgr", "apgr", "cpt", "curve_auc", "best_savings_at", "bootstrap_parity_ci", "savings", "parity"]


def savings(cost: float, baseline_cost: float) -> float:
    """1 - sum(cost) / sum(baseline cost): the savings figure of the harness and the report."""
    return float(1 - cost / baseline_cost)


def parity(quality: float, baseline_quality: float) -> float:
    """quality of the served answers / quality of the baseline's answers on the same requests."""
    return float(quality / baseline_quality)


@dataclass
class LadderTable:
    """Per item and tier (cheapest first): the recorded score and the cost of calling it."""

    names: list[str]
    q: np.ndarray  # (n, K) scores in [0, 1]
    c: np.ndarray  # (n, K) USD
    base: int  # index of the baseline tier

    @property
    def n(self) -> int:
        return int(self.q.shape[0])

    @property
    def k(self) -> int:
        return int(self.q.shape[1])

    @property
    def q_base(self) -> np.ndarray:
        return self.q[:, self.base]

    @property
    def c_base(self) -> np.ndarray:
        return self.c[:, self.base]

    def subset(self, idx: np.ndarray) -> "LadderTable":
        return LadderTable(self.names, self.q[idx], self.c[idx], self.base)

    def served_quality(self, served: np.ndarray) -> np.ndarray:
        return self.q[np.arange(self.n), served]


@dataclass
class Point:
    """One operating point: the share served by the baseline tier, quality, total cost."""

    base_share: float
    quality: float
    cost: float

    def parity(self, table: LadderTable) -> float:
        return self.quality / table.q_base.mean()

    def savings(self, table: LadderTable) -> float:
        return 1 - self.cost / table.c_base.sum()


def summarize_run(table: LadderTable, served: np.ndarray, cost: np.ndarray) -> dict[str, float]:
    """Savings, quality and parity of concrete routing decisions (``served`` tier index and
    ``cost`` paid per request)."""
    quality = table.served_quality(served)
    base_q = table.q_base.mean()
    return {
        "n": int(table.n),
        "quality": float(quality.mean()),
        "baseline_quality": float(base_q),
        "parity": float(quality.mean() / base_q) if base_q else float("nan"),
        "savings": float(1 - cost.sum() / table.c_base.sum()),
        "cost_usd": float(cost.sum()),
        "baseline_cost_usd": float(table.c_base.sum()),
    }


def point_of(table: LadderTable, served: np.ndarray, cost: np.ndarray) -> Point:
    return Point(float(np.mean(served == table.base)), float(table.served_quality(served).mean()), float(cost.sum()))


def random_savings_at(table: LadderTable, parity: float) -> float:
    """Savings of the cheapest random blend of tiers whose expected parity reaches ``parity``.

    Blending two tiers traces a segment between their (cost, quality) points; the best
    blend at a quality lies on the lower hull of those points, so checking every pair is
    exact. If no blend reaches the parity, it is the all-baseline mix (savings 0)."""
    q, c = table.q.mean(axis=0), table.c.sum(axis=0)
    target = parity * q[table.base]
    best = c[table.base]
    for a in range(table.k):
        for b in range(table.k):
            if q[a] >= target:
                best = min(best, c[a])
            elif q[b] > q[a] and q[b] >= target:
                x = (target - q[a]) / (q[b] - q[a])  # share sent to b
                best = min(best, (1 - x) * c[a] + x * c[b])
    return _exact(float(1 - best / table.c_base.sum()))


def target_text(target: float) -> str:
    """A parity target as written: two decimals, more where it has them (0.999 is not 1.00)."""
    return f"{target:.2f}" if abs(target * 100 - round(target * 100)) < 1e-9 else f"{target:.6g}"


def _exact(value: float) -> float:
    """``value`` with the float noise of a ratio of equal sums (-0.0, 6e-16) made 0."""
    return 0.0 if abs(value) < 1e-12 else value


def oracle_served(table: LadderTable) -> np.ndarray:
    """Per request, the cheapest tier whose score is at least the baseline's: cheapest on
    that request's own cost (a cheaper tier that writes five times the tokens can cost
    more), the lower tier on a tie."""
    good_enough = table.q >= table.q_base[:, None] - 1e-12  # the baseline always is
    return np.argmin(np.where(good_enough, table.c, np.inf), axis=1)


def oracle_point(table: LadderTable) -> Point:
    served = oracle_served(table)
    return point_of(table, served, table.c[np.arange(table.n), served])


# Below one point of savings between the random mix and the oracle there is no headroom
# to share: a ratio over it reads -300 % for a router a point from both.
MIN_HEADROOM = 0.01


def headroom_recovered(savings: float, random_savings: float, oracle_savings: float) -> float | None:
    """The share of the oracle's extra savings (over the random mix) that a router found;
    None when the oracle saves less than a point more than the random mix."""
    room = oracle_savings - random_savings
    return None if room < MIN_HEADROOM else _exact(float((savings - random_savings) / room))


def pgr(table: LadderTable, quality: float) -> float:
    qc, qs = table.q[:, 0].mean(), table.q_base.mean()
    return float((quality - qc) / (qs - qc)) if qs != qc else 0.0


def apgr(table: LadderTable, points: Sequence[Point]) -> float:
    """Area under PGR against the baseline share, the curve closed at x = 0 and x = 1 by
    the all-cheapest and all-baseline points (RouteLLM's convention)."""
    xs = [0.0, 1.0] + [p.base_share for p in points]
    ys = [0.0, 1.0] + [pgr(table, p.quality) for p in points]
    order = np.argsort(xs, kind="stable")
    x, y = np.array(xs)[order], np.array(ys)[order]
    return float(np.trapezoid(y, x))


def cpt(table: LadderTable, points: Sequence[Point], target: float) -> float | None:
    """The least baseline share at which PGR reaches ``target`` (None if never)."""
    hits = [p.base_share for p in points if pgr(table, p.quality) >= target - 1e-12]
    return float(min(hits)) if hits else None


def curve_auc(table: LadderTable, points: Sequence[Point]) -> float:
    """Area under parity vs. cost (as a share of the all-baseline cost), on [0, 1]."""
    pts = sorted(points, key=lambda p: p.cost)
    x = np.array([p.cost for p in pts]) / table.c_base.sum()
    y = np.array([p.quality for p in pts]) / table.q_base.mean()
    x = np.concatenate([[0.0], x, [max(1.0, x[-1])]])
    y = np.concatenate([[y[0]], y, [y[-1]]])
    keep = x <= 1.0
    return float(np.trapezoid(y[keep], x[keep]))


def best_savings_at(table: LadderTable, points: Sequence[Point], parity: float) -> float | None:
    """The most any point on a curve saves at ``parity`` or better (read off the curve,
    the way RouteLLM reports its numbers; not a held-out promise)."""
    ok = [p.savings(table) for p in points if p.parity(table) >= parity]
    return float(max(ok)) if ok else None


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
