"""Routing strategies replayed on recorded outcomes: what each would serve and pay.

Each strategy is a family of operating points, ordered from the safest (most quality)
to the riskiest (least cost), and ``simulate`` turns predictions plus one parameter
into the tier served and the cost paid for every item. The simulation is the run-time
decision rule of ``core.learned.RoutingModel`` (or of the gate the strategy becomes),
applied to recorded answers, and a cascade pays every tier it calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...core.answers import agree
from ...core.confidence import answer_confidence
from ...core.split import split_segment, split_step, split_unit
from ...core.types import TierAnswer
from .data import EvalItem
from .metrics import LadderTable
from .training import Predictions

__all__ = ["Strategy", "FixedTier", "ClassifierStrategy", "CascadeStrategy", "BlendStrategy",
           "ConfidenceStrategy", "ConsistencyStrategy", "SplitStrategy", "ScoreStrategy", "RecordedSignals", "LAMBDAS",
           "lambda_grid", "start_breaks", "climb_breaks",
           "strategies_for"]

# lambda: quality per unit of cost (one mean baseline request). Negative values lean to
# the stronger tier (at -inf everything goes up: the safe end of the sequence), 0 is
# predicted quality first, large values save at any price in quality.
_POSITIVE = np.geomspace(1e-4, 1e3, 106)
LAMBDAS = np.concatenate([-_POSITIVE[::-1], [0.0], _POSITIVE])
# How many of the items' own break-even lambdas join the grid: the fixed grid alone is
# too coarse where the decisions flip (one step of it moved 5 % of GSM8K's requests).
GRID_LIMIT = 2000


def lambda_grid(breaks: np.ndarray, limit: int = GRID_LIMIT) -> np.ndarray:
    """``LAMBDAS`` plus a lambda between every two neighbouring break-even points of the
    items (where some request's decision flips): every operating point the predictions can
    tell apart, in order, so the fixed-sequence test steps one request at a time."""
    points = np.unique(breaks[np.isfinite(breaks)])
    if points.size > limit:
        points = np.unique(np.quantile(points, np.linspace(0.0, 1.0, limit)))
    mids = (points[1:] + points[:-1]) / 2
    return np.unique(np.concatenate([LAMBDAS, mids]))


@dataclass
class RecordedSignals:
    """Facts read off the recorded requests and answers (no learning): self-reported
    confidence per tier (NaN when the answer gives none), whether the two cheapest tiers
    agree, and each prompt's draw for a traffic split (``core.split``)."""

    confidence: np.ndarray  # (n, K)
    agree01: np.ndarray | None  # (n,) or None for a one-tier ladder
    unit: np.ndarray  # (n,) in [0, 1): each prompt's split draw

    @classmethod
    def read(cls, items: Sequence[EvalItem], tiers: Sequence[str]) -> "RecordedSignals":
        conf = np.full((len(items), len(tiers)), np.nan)
        for i, item in enumerate(items):
            for k, tier in enumerate(tiers):
                text = item.outcomes[tier].response
                if text:
                    value, _ = answer_confidence(TierAnswer(text))
                    conf[i, k] = np.nan if value is None else value
        agreement = None
        if len(tiers) >= 3 and all(i.outcomes[tiers[0]].response for i in items):
            agreement = np.array([agree(i.outcomes[tiers[0]].response, i.outcomes[tiers[1]].response) for i in items])
        return cls(conf, agreement, np.array([split_unit(i.prompt) for i in items]))


class Strategy(ABC):
    """A family of operating points; ``params`` runs from the safest to the riskiest."""

    name: str = "strategy"
    needs_answers: bool = False  # replaying it needs the lower tiers' answer texts
    learned: bool = True  # uses trained heads

    def __init__(self, max_escalations: int):
        self.max_escalations = max_escalations

    @abstractmethod
    def params(self, preds: Predictions | None = None) -> np.ndarray:
        """The operating points, safest first; learned strategies refine their grid
        where ``preds`` (the cross-fitted predictions) flip decisions."""

    @abstractmethod
    def simulate(self, preds: Predictions, table: LadderTable, signals: RecordedSignals, param: float
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(tier index served, cost paid) per item."""

    def expected_quality(self, preds: Predictions, table: LadderTable, param: float) -> np.ndarray | None:
        """What the predictions alone (no labels) expect each served answer to score;
        None for a strategy the heads do not model."""
        return None


class FixedTier(Strategy):
    """Everything on one tier: "no routing" when it is the baseline."""

    learned = False

    def __init__(self, max_escalations: int, tier: int, tier_name: str, baseline: bool):
        super().__init__(max_escalations)
        self.tier = tier
        self.name = "baseline" if baseline else f"all:{tier_name}"

    def params(self, preds=None):
        return np.array([0.0])

    def simulate(self, preds, table, signals, param):
        served = np.full(table.n, self.tier)
        return served, table.c[:, self.tier].copy()

    def expected_quality(self, preds, table, param):
        return None if preds is None else preds.quality[:, self.tier]


class ClassifierStrategy(Strategy):
    """One call: the tier maximising predicted quality - lambda * predicted cost."""

    name = "classifier"

    def params(self, preds=None):
        return LAMBDAS if preds is None else lambda_grid(start_breaks(preds))

    def start(self, preds: Predictions, lam: float) -> np.ndarray:
        return np.argmax(preds.quality - lam * preds.cost, axis=1)

    def simulate(self, preds, table, signals, param):
        served = self.start(preds, param)
        return served, table.c[np.arange(table.n), served]

    def expected_quality(self, preds, table, param):
        return preds.quality[np.arange(table.n), self.start(preds, param)]


def start_breaks(preds: Predictions) -> np.ndarray:
    """Per item and pair of tiers, the lambda at which the classifier's choice between
    them flips: ``q_a - lam c_a = q_b - lam c_b``."""
    q, c = preds.quality, preds.cost
    out = []
    for a in range(q.shape[1]):
        for b in range(a + 1, q.shape[1]):
            dc = c[:, a] - c[:, b]
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append(np.where(np.abs(dc) > 1e-12, (q[:, a] - q[:, b]) / dc, np.nan))
    return np.concatenate(out) if out else np.array([])


def climb_breaks(preds: Predictions) -> np.ndarray:
    """Per item and step of a cascade, the lambda at which "go up" flips."""
    out = []
    for key, up in preds.up.items():
        j = key[0]
        if j + 1 < preds.cost.shape[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append((up - preds.stay[key]) / preds.cost[:, j + 1])
    return np.concatenate(out) if out else np.array([])


@dataclass
class Walk:
    """Where each item's climb ended: the tier served, what was paid, and the last
    decision taken (tier, had a previous answer, went up; tier -1 when none was)."""

    served: np.ndarray
    cost: np.ndarray
    last_tier: np.ndarray
    last_previous: np.ndarray
    last_up: np.ndarray


def _climb(start: np.ndarray, go_up, table: LadderTable, max_escalations: int) -> Walk:
    """Walk up from ``start`` while ``go_up(tier, has_previous, rows)`` says so; pay every call."""
    rows = np.arange(table.n)
    tier = start.copy()
    cost = table.c[rows, tier].copy()
    steps = np.zeros(table.n, dtype=int)
    last_tier = np.full(table.n, -1)
    last_previous = np.zeros(table.n, dtype=bool)
    last_up = np.zeros(table.n, dtype=bool)
    stopped = np.zeros(table.n, dtype=bool)
    for _ in range(table.k - 1):
        active = (tier < table.k - 1) & (steps < max_escalations) & ~stopped
        if not active.any():
            break
        up = np.zeros(table.n, dtype=bool)
        for j in np.unique(tier[active]):
            for has_previous in (False, True):
                sel = active & (tier == j) & ((tier > start) == has_previous)
                if sel.any():
                    up[sel] = go_up(int(j), has_previous, np.flatnonzero(sel))
                    last_tier[sel], last_previous[sel] = j, has_previous and j > 0
        last_up[active] = up[active]
        stopped |= active & ~up
        tier = tier + up
        steps = steps + up
        cost = cost + np.where(up, table.c[rows, np.minimum(tier, table.k - 1)], 0.0)
    return Walk(tier, cost, last_tier, last_previous, last_up)


class CascadeStrategy(Strategy):
    """Start at the cheapest tier; after each answer, go up one tier when the predicted
    quality gained is worth lambda times the next tier's predicted cost."""

    name = "cascade"
    needs_answers = True

    def params(self, preds=None):
        return LAMBDAS if preds is None else lambda_grid(climb_breaks(preds))

    def _go_up(self, preds: Predictions, lam: float):
        def go(j: int, has_previous: bool, rows: np.ndarray) -> np.ndarray:
            key = (j, has_previous and j > 0)
            return (preds.up[key][rows] - preds.stay[key][rows]) > lam * preds.cost[rows, j + 1]
        return go

    def starts(self, preds: Predictions, table: LadderTable, lam: float) -> np.ndarray:
        return np.zeros(table.n, dtype=int)

    def simulate(self, preds, table, signals, param):
        walk = _climb(self.starts(preds, table, param), self._go_up(preds, param), table, self.max_escalations)
        return walk.served, walk.cost

    def expected_quality(self, preds, table, param):
        """The judged answer's predicted score where the walk stopped on it, the next
        tier's predicted score where it went up last, the prompt's where it never judged."""
        walk = _climb(self.starts(preds, table, param), self._go_up(preds, param), table, self.max_escalations)
        out = preds.quality[np.arange(table.n), walk.served].copy()
        for key in preds.stay:
            sel = (walk.last_tier == key[0]) & (walk.last_previous == key[1])
            out[sel] = np.where(walk.last_up[sel], preds.up[key][sel], preds.stay[key][sel])
        return out


class BlendStrategy(CascadeStrategy):
    """The classifier picks the start tier (skipping cheap calls that would be wasted),
    the cascade rule judges each answer from there; one lambda for both."""

    name = "blend"

    def params(self, preds=None):
        return LAMBDAS if preds is None else lambda_grid(np.concatenate([start_breaks(preds), climb_breaks(preds)]))

    def starts(self, preds, table, lam):
        return np.argmax(preds.quality - lam * preds.cost, axis=1)


class ConfidenceStrategy(Strategy):
    """Escalate while the answer's own confidence (self-rating, abstention sentinel) is
    below a threshold; an answer that states none passes."""

    name = "confidence"
    needs_answers = True
    learned = False

    def __init__(self, max_escalations: int, signals: RecordedSignals):
        super().__init__(max_escalations)
        found = signals.confidence[~np.isnan(signals.confidence)]
        self._params = np.concatenate([[1.01], np.unique(found)[::-1]]) if found.size else np.array([])

    def params(self, preds=None):
        return self._params

    def simulate(self, preds, table, signals, param):
        def go(j, has_previous, rows):
            conf = signals.confidence[rows, j]
            return ~np.isnan(conf) & (conf < param)
        walk = _climb(np.zeros(table.n, dtype=int), go, table, self.max_escalations)
        return walk.served, walk.cost


class ConsistencyStrategy(Strategy):
    """Ask the two cheapest tiers; serve the second's answer when their final answers
    agree, else go up. At run time: start on the second tier with a consistency gate
    that asks the cheapest for a second opinion (priced like any call)."""

    name = "consistency"
    needs_answers = True
    learned = False

    def params(self, preds=None):
        return np.array([0.0])

    def simulate(self, preds, table, signals, param):
        rows = np.arange(table.n)
        agreed = signals.agree01 if signals.agree01 is not None else np.zeros(table.n, bool)
        up = ~agreed & (self.max_escalations >= 1)
        served = np.where(up, 2, 1)
        cost = table.c[:, 0] + table.c[:, 1] + np.where(up, table.c[rows, 2], 0.0)
        return served, cost


class SplitStrategy(Strategy):
    """No signal at all: a fixed mix of tiers, drawn per request by a hash of its text.
    The operating point ``at`` walks the path from the baseline down to the cheapest
    tier (``core.split``); where learned signals do not carry over to a task, this still
    saves about what a random mix saves.

    Certified on the served run like every strategy, the draw included: the draw is
    fixed per prompt, so on a given set of requests its luck does not average out (a
    bound on each request's average over the draw is tighter, and let the held-out
    parity of repeated random splits sink to the target on average)."""

    name = "split"
    learned = False
    STEPS = 200  # operating points per step of the path

    def __init__(self, max_escalations: int, path: Sequence[int]):
        super().__init__(max_escalations)
        self.path = np.asarray(path, dtype=int)

    @classmethod
    def down_from_baseline(cls, max_escalations: int, table: LadderTable) -> "SplitStrategy":
        """The baseline, then each tier below it that costs less than the last one kept."""
        cost = table.c.mean(axis=0)
        path = [table.base]
        for k in range(table.base - 1, -1, -1):
            if cost[k] < cost[path[-1]]:
                path.append(k)
        return cls(max_escalations, path)

    def params(self, preds=None):
        return np.linspace(0.0, len(self.path) - 1.0, self.STEPS * (len(self.path) - 1) + 1)

    def simulate(self, preds, table, signals, param):
        served = self.path[split_step(param, signals.unit, len(self.path))]
        return served, table.c[np.arange(table.n), served]

    def expected_quality(self, preds, table, param):
        """The mix of the tiers' predicted qualities."""
        if len(self.path) == 1:
            return preds.quality[:, self.path[0]]
        segment, x = split_segment(param, len(self.path))
        dear, cheap = self.path[segment], self.path[segment + 1]
        return (1 - x) * preds.quality[:, dear] + x * preds.quality[:, cheap]


class ScoreStrategy(Strategy):
    """Any outside router that scores a request before the call (say LiteLLM's complexity
    router): above a threshold it goes to the baseline tier, else to the cheapest. Lets a
    peer be calibrated and measured exactly like ours."""

    learned = False

    def __init__(self, max_escalations: int, name: str, scores: np.ndarray):
        super().__init__(max_escalations)
        self.name = name
        self.scores = np.asarray(scores, dtype=float)

    def params(self, preds=None):
        # the lowest threshold sends everything up (safest), the highest nothing
        return np.concatenate([[-np.inf], np.unique(self.scores)])

    def simulate(self, preds, table, signals, param):
        served = np.where(self.scores > param, table.base, 0)
        return served, table.c[np.arange(table.n), served]


def strategies_for(names: Sequence[str], table: LadderTable, signals: RecordedSignals, *, has_answers: bool,
                   max_escalations: int) -> tuple[list[Strategy], list[str]]:
    """The strategies to try, and a note for each one the data cannot support."""
    notes: list[str] = []
    out: list[Strategy] = []
    for name in names:
        if name == "baseline":
            out.append(FixedTier(max_escalations, table.base, table.names[table.base], True))
        elif name == "tiers":
            out += [FixedTier(max_escalations, k, table.names[k], False) for k in range(table.k) if k != table.base]
        elif name == "cheaper":  # every tier that costs less than the baseline on this data
            cost = table.c.mean(axis=0)
            out += [FixedTier(max_escalations, k, table.names[k], False) for k in range(table.k)
                    if k != table.base and cost[k] < cost[table.base]]
        elif name in ("cascade", "blend", "confidence", "consistency") and not has_answers:
            notes.append(f"{name}: needs the lower tiers' answer texts, which this data lacks")
        elif name == "classifier":
            out.append(ClassifierStrategy(max_escalations))
        elif name == "split":
            strategy = SplitStrategy.down_from_baseline(max_escalations, table)
            if len(strategy.path) > 1:
                out.append(strategy)
            else:
                notes.append("split: no tier below the baseline costs less")
        elif name == "cascade":
            out.append(CascadeStrategy(max_escalations))
        elif name == "blend":
            out.append(BlendStrategy(max_escalations))
        elif name == "confidence":
            strategy = ConfidenceStrategy(max_escalations, signals)
            if strategy.params().size:
                out.append(strategy)
            else:
                notes.append("confidence: no answer states a confidence or abstains")
        elif name == "consistency":
            if table.k >= 3 and table.base == table.k - 1 and signals.agree01 is not None:
                out.append(ConsistencyStrategy(max_escalations))
            else:
                notes.append("consistency: needs three tiers, the top one the baseline")
        else:
            raise ValueError(f"unknown strategy {name!r}")
    return out, notes
