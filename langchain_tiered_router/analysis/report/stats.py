"""The few statistics the report needs, without SciPy (the parity ratio's paired
bootstrap is the eval harness's, ``analysis.eval.metrics.bootstrap_parity_ci``).

Wilson score interval (binary parity), percentile bootstrap of a mean (graded
scores), the two-proportion z-test and Pearson's chi-square test of homogeneity
(drift). Chi-square p-values use the regularised upper incomplete gamma function.
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["wilson", "bootstrap_mean", "two_proportion_z", "mean_z", "chi_square",
           "chi2_sf", "normal_sf"]

Z95 = 1.959963984540054


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (good at small n and near 0 or 1)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_mean(scores: Sequence[float], *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of a mean."""
    import numpy as np

    values = np.asarray(scores, dtype=float)
    if values.size == 0:
        return (0.0, 1.0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def two_proportion_z(x1: float, n1: int, x2: float, n2: int) -> tuple[float, float]:
    """(z, two-sided p) for H0: p1 == p2, pooled standard error."""
    if n1 <= 0 or n2 <= 0:
        return (0.0, 1.0)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return (0.0, 1.0)
    z = (x2 / n2 - x1 / n1) / se
    return (z, 2 * normal_sf(abs(z)))


def mean_z(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(z, two-sided p) for equal means of graded scores (Welch standard error, large samples)."""
    if len(a) < 2 or len(b) < 2:
        return (0.0, 1.0)
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(va / len(a) + vb / len(b))
    if se == 0:
        return (0.0, 1.0) if ma == mb else (math.inf, 0.0)
    z = (mb - ma) / se
    return (z, 2 * normal_sf(abs(z)))


def chi_square(table: Sequence[Sequence[float]]) -> tuple[float, int, float]:
    """Pearson chi-square test of homogeneity: (statistic, degrees of freedom, p)."""
    rows = [list(r) for r in table]
    cols = [j for j in range(len(rows[0])) if sum(r[j] for r in rows) > 0]
    rows = [[r[j] for j in cols] for r in rows if sum(r[j] for j in cols) > 0]
    if len(rows) < 2 or len(cols) < 2:
        return (0.0, 0, 1.0)
    total = sum(sum(r) for r in rows)
    row_sums = [sum(r) for r in rows]
    col_sums = [sum(r[j] for r in rows) for j in range(len(cols))]
    stat = 0.0
    for i, row in enumerate(rows):
        for j, observed in enumerate(row):
            expected = row_sums[i] * col_sums[j] / total
            stat += (observed - expected) ** 2 / expected
    dof = (len(rows) - 1) * (len(cols) - 1)
    return (stat, dof, chi2_sf(stat, dof))


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for a chi-square variable with ``dof`` degrees of freedom."""
    if x <= 0:
        return 1.0
    return _gammaincc(dof / 2, x / 2)


def _gammaincc(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (series below a+1, continued fraction above)."""
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)
