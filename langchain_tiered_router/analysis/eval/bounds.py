"""Statistical tests behind the calibration's promise (Learn-then-Test).

The promise is about parity: ``E[q_served] >= target * E[q_baseline]``. Per item, the
paired loss ``L = target * q_baseline - q_served`` has mean <= 0 exactly when the
promise holds, so each operating point is a hypothesis ``H0: E[L] > 0`` to reject with
the calibration data (Angelopoulos et al., "Learn then Test", 2021). Two tests:

* ``wsr``: betting (Waudby-Smith & Ramdas, 2023). A bettor stakes against ``H0`` item by
  item; under ``H0`` the wealth is a nonnegative supermartingale, so wealth >= 1/delta
  has probability <= delta (Ville). Valid at every sample size for losses bounded in
  [-1, target]; it pays for that with a wider margin on small samples. The wealth is
  averaged over random item orders (an average of e-values is an e-value).
* ``clt``: a one-sided normal bound on the mean loss. Valid as the sample grows;
  tighter, and the margin most routers in the literature use.
* ``auto`` (the default): ``clt`` from ``CLT_MIN_N`` calibration requests, ``wsr`` below.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["reject_wsr", "reject_clt", "reject", "fixed_sequence", "savings_lower_bound", "savings_and_se", "METHODS", "z_of",
           "resolve", "CLT_MIN_N"]

METHODS = ("auto", "wsr", "clt")
# Below this many calibration requests the normal approximation of a mean of 0/1 losses
# is not to be trusted (on 72 MT-Bench items it let a test half fall to 0.90 parity):
# ``auto`` uses the betting test there, the normal bound above.
CLT_MIN_N = 300


def resolve(method: str, n: int) -> str:
    """The test ``method`` stands for at ``n`` calibration requests."""
    if method == "auto":
        return "clt" if n >= CLT_MIN_N else "wsr"
    if method not in METHODS:
        raise ValueError(f"unknown bound {method!r}; use one of {', '.join(METHODS)}")
    return method


def z_of(delta: float) -> float:
    """The one-sided normal quantile: P(Z > z) = delta."""
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(mid / math.sqrt(2)) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def reject_clt(losses: np.ndarray, delta: float) -> np.ndarray:
    """Per row of ``losses`` (hypotheses x items): reject ``E[L] > 0`` at level ``delta``."""
    n = losses.shape[1]
    mean = losses.mean(axis=1)
    sd = losses.std(axis=1, ddof=1) if n > 1 else np.full(losses.shape[0], np.inf)
    return mean + z_of(delta) * sd / math.sqrt(n) < 0


def reject_wsr(losses: np.ndarray, delta: float, *, high: float, orders: int = 16, seed: int = 0) -> np.ndarray:
    """Betting test of ``E[L] > 0`` for losses in [-1, ``high``], per row, at level ``delta``."""
    g, n = losses.shape
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(n) for _ in range(orders)])  # (B, n)
    log_wealth = np.zeros((g, orders))
    mean = np.zeros((g, orders))
    var = np.full((g, orders), ((1 + high) / 2) ** 2)  # a prior variance: half the range, squared
    count = 1.0
    cap = 0.5 / high  # stake at most half of what keeps the wealth positive
    scale = 2 * math.log(1 / delta) / n
    for i in range(n):
        x = losses[:, perms[:, i]]  # (g, B)
        stake = np.minimum(np.sqrt(scale / np.maximum(var, 1e-12)), cap)
        log_wealth += np.log1p(-stake * x)
        count += 1
        new_mean = mean + (x - mean) / count
        var = var + ((x - mean) * (x - new_mean) - var) / count
        mean = new_mean
    wealth = np.exp(np.clip(log_wealth, -700, 700)).mean(axis=1)
    return wealth >= 1 / delta


def reject(losses: np.ndarray, delta: float, method: str, *, high: float) -> np.ndarray:
    if method == "clt":
        return reject_clt(losses, delta)
    if method == "wsr":
        return reject_wsr(losses, delta, high=high)
    raise ValueError(f"unknown bound {method!r}; use one of {', '.join(METHODS)}")


def fixed_sequence(rejected: np.ndarray) -> int:
    """How many hypotheses, tested in their order, are rejected before the first that is
    not: testing in a fixed order needs no correction for the number tested."""
    failed = np.flatnonzero(~rejected)
    return int(failed[0]) if failed.size else int(rejected.size)


def savings_lower_bound(cost: np.ndarray, baseline_cost: np.ndarray, delta: float) -> float:
    """One-sided lower bound of 1 - E[cost] / E[baseline cost] (normal, delta method)."""
    savings, se = savings_and_se(cost, baseline_cost)
    return savings - z_of(delta) * se


def savings_and_se(cost: np.ndarray, baseline_cost: np.ndarray) -> tuple[float, float]:
    """1 - E[cost] / E[baseline cost] and its standard error (delta method); an infinite
    error below two requests."""
    n = len(cost)
    savings = float(1 - cost.sum() / baseline_cost.sum())
    if n < 2:
        return savings, math.inf
    influence = (baseline_cost - cost - savings * baseline_cost) / baseline_cost.mean()
    return savings, float(influence.std(ddof=1) / math.sqrt(n))
