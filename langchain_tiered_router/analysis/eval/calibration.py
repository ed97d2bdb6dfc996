"""Calibrate routing strategies to a parity target and keep the one that saves most.

1. Features of every calibration item, heads fitted per fold, out-of-fold predictions.
2. For each strategy, its operating points (safest first) replayed on those predictions;
   Learn-then-Test certifies the longest prefix whose parity promise holds. The strategies
   share ``delta`` (weighted Bonferroni, so the promise survives picking the best of
   them): the one the predictions alone expect to save most at the target (no labels
   read) is tested at ``(1 - SPARE) * delta``, the others split ``SPARE * delta``. An
   even split would charge every strategy for the ones that cannot win.
3. Among certified points, the one with the best lower bound on savings; a strategy
   whose bound, taken over all its certified points at once, is not above zero is never
   shipped: "no routing" (every request on the baseline tier, savings 0, parity 1) is
   the fallback, and the output says why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ...core.features import FeatureSpec
from ...core.learned import RoutingModel, per_token_rates
from ...core.tiers import Ladder
from .bounds import CLT_MIN_N, fixed_sequence, reject, resolve, savings_and_se, z_of
from .data import EvalDataError, EvalItem
from .metrics import LadderTable, summarize_run, target_text
from .strategies import RecordedSignals, ScoreStrategy, SplitStrategy, Strategy, strategies_for
from .training import Heads, Predictions, TrainingData, crossfit, predict, select_c

__all__ = ["Calibration", "Candidate", "calibrate", "ladder_table", "AUTO", "POLICIES", "SPARE", "guarantee_text",
           "expected_savings", "split_delta"]

# "cheaper": everything on one tier that costs less than the baseline. It is also the
# end of every learned strategy's sequence, but a fixed sequence stops at its first
# failure: where two tiers are about as good and disagree on many requests, every mix of
# them is a noisy bet whose bound fails long before the end, and the tier alone is one
# test. First in the tuple, so it is the favourite on a tie of expected savings (at the
# target, every strategy whose end the predictions accept expects what it saves).
AUTO = ("baseline", "cheaper", "classifier", "cascade", "blend", "confidence")
# Not "split": tried in auto on every data set and ladder of the benchmark, it was never
# the one kept, and its share of delta widened the others' margins.
# The share of delta left to the strategies the predictions do not favour: enough that a
# wrong favourite still leaves the others testable, small enough that the favourite is
# tested near the full delta.
SPARE = 0.2
POLICIES = {"auto": AUTO, "classifier": ("baseline", "classifier"), "cascade": ("baseline", "cascade"),
            "blend": ("baseline", "blend"), "confidence": ("baseline", "confidence"),
            "consistency": ("baseline", "consistency"), "split": ("baseline", "split"), "tiers": ("baseline", "tiers"),
            "none": ("baseline",)}


def ladder_table(items: Sequence[EvalItem], ladder: Ladder) -> LadderTable:
    """Scores and per-request costs (priced as ``Decimal``, held as float) of every tier."""
    names = ladder.names
    q = np.array([[i.outcomes[t].score for t in names] for i in items], dtype=np.float64)
    c = np.zeros(q.shape)
    for k, tier in enumerate(ladder):
        for n, item in enumerate(items):
            o = item.outcomes[tier.name]
            cost = tier.cost(o.usage)
            if cost is None:
                raise ValueError(f"tier {tier.name!r} has no price; set price: in the router config")
            c[n, k] = float(cost)
    table = LadderTable(names, q, c, ladder.baseline.index)
    base = ladder.baseline.name
    if table.n and table.c_base.sum() <= 0:
        raise EvalDataError(f"the baseline tier {base!r} costs $0 on this data (a zero price, or no tokens "
                            "recorded): savings against it are undefined; give it its price and the token counts")
    if table.n and table.q_base.sum() <= 0:
        raise EvalDataError(f"the baseline tier {base!r} scores 0 on every one of these {table.n} requests: parity "
                            "(quality / the baseline's quality) is undefined; check the labels, or make the tier "
                            "that answers well the baseline")
    return table


@dataclass
class Candidate:
    """One strategy's calibration: every operating point tried and the one kept."""

    strategy: Strategy
    params: np.ndarray
    certified: int  # how many leading operating points passed
    chosen: int | None  # index into params, None when nothing was certified
    cal: dict[str, float] = field(default_factory=dict)  # OOF metrics at the chosen point
    savings_lb: float = float("-inf")  # at the chosen point, at this strategy's delta
    savings_lb_all: float = float("-inf")  # the same, simultaneous over every kept point: above 0 to ship
    delta: float = 0.0  # this strategy's share of the calibration's delta
    expected_savings: float | None = None  # at the target, by the predictions alone

    @property
    def name(self) -> str:
        return self.strategy.name

    @property
    def param(self) -> float | None:
        return None if self.chosen is None else float(self.params[self.chosen])


@dataclass
class Calibration:
    target_parity: float
    delta: float
    bound: str
    candidates: list[Candidate]
    chosen: Candidate
    model: RoutingModel
    notes: list[str]
    tested: int  # m, the strategies whose points were tested
    c: dict[str, float] | None
    favourite: str | None = None  # tested at (1 - SPARE) * delta
    folds: int = 10
    heads: Heads = field(repr=False, default_factory=Heads)
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    cost_scale: float = 1.0

    @property
    def routes(self) -> bool:
        """False when the calibration fell back to "no routing"."""
        return self.chosen.name != "baseline"

    def guarantee(self) -> str:
        if not self.routes:  # nothing statistical is promised: the baseline is the reference itself
            if self.target_parity <= 1:
                return (f"every request stays on the baseline tier: parity is 1.00 by construction, at or above "
                        f"the target {target_text(self.target_parity)}")
            return (f"no strategy reached parity {target_text(self.target_parity)}; every request stays on the "
                    "baseline tier (parity 1.00, below the target)")
        return guarantee_text(self.target_parity, self.delta, self.bound, self.tested, self.favourite, self.folds)


def guarantee_text(target: float, delta: float, bound: str, tested: int, favourite: str | None = None,
                   folds: int = 10) -> str:
    how = {"wsr": "betting (WSR) test, valid at any sample size", "clt": "one-sided normal bound"}[bound]
    if tested > 1 and favourite:
        split = (f"weighted Bonferroni over {tested} strategies tried: {favourite}, the one the predictions "
                 f"expected to save most, at {1 - SPARE:.0%} of delta, the others sharing the rest")
    else:
        split = f"Bonferroni over {tested} strategies tried"
    return (f"with probability >= {1 - delta:.0%} over the calibration sample, expected parity on traffic like it "
            f"is >= {target_text(target)} (Learn-then-Test: {how}, fixed sequence over each strategy's operating "
            f"points, {split}; decisions cross-fitted over {folds} folds, and each request served by the fold heads "
            "fitted without its fold, as certified)")


def expected_savings(strategy: Strategy, params: np.ndarray, preds: Predictions, table: LadderTable,
                     signals: RecordedSignals, target: float) -> float | None:
    """The savings the predictions alone expect at the target: the cheapest point whose
    predicted parity (predicted quality served over the baseline tier's) reaches it.
    No label is read, so it may steer the split of delta without spending any."""
    base = float(preds.quality[:, table.base].mean())
    if base <= 0:
        return None
    best = None
    for p in params:
        expected = strategy.expected_quality(preds, table, p)
        if expected is None:
            return None
        if expected.mean() >= target * base:
            _, cost = strategy.simulate(preds, table, signals, p)
            saved = float(1 - cost.sum() / table.c_base.sum())
            best = saved if best is None else max(best, saved)
    return best


# Operating points replayed and tested together: the sequence stops at its first failure,
# and memory stays at CHUNK x requests however fine the grid and large the data.
CHUNK = 64
# Fewer requests than this moved off the baseline tier: a point no test tells from it.
MIN_MOVED = 10


def certify(cand: Candidate, preds: Predictions | None, table: LadderTable, signals: RecordedSignals,
            target: float, delta: float, bound: str) -> None:
    """Test ``cand``'s points in order at ``delta`` (fixed sequence: the kept prefix ends at
    the first failure) and choose the kept point with the best savings lower bound.

    Whether the strategy saves at all is judged on a bound that holds for every kept
    point at once (Bonferroni over them, ``savings_lb_all``): the best of hundreds of
    per-point bounds is biased up, and a cascade whose edge is a few requests stopping
    early lost money on held-out halves when shipped on it."""
    s, params = cand.strategy, cand.params
    kept: list[tuple[int, float, float]] = []  # (index, savings, its standard error)
    for first in range(0, len(params), CHUNK):
        runs = [s.simulate(preds, table, signals, p) for p in params[first:first + CHUNK]]
        # Which points are tested is read off the decisions alone (no label), so the
        # sequence stays fixed in advance: a point that moves a few requests off the
        # baseline tier (1 to MIN_MOVED - 1) is left out; no test tells it from the
        # baseline (at target 1 the normal bound needs four gains and no loss), and its
        # failure stopped the sequence before any point worth shipping.
        moved = [int((served != table.base).sum()) for served, _ in runs]
        tested = [g for g, m in enumerate(moved) if m == 0 or m >= MIN_MOVED]
        if not tested:
            continue
        losses = np.stack([target * table.q_base - table.served_quality(runs[g][0]) for g in tested])
        # A point that serves the baseline tier on every request (a sequence's safe end)
        # is the baseline there: the sequence goes on past it untested (tested, its loss
        # at target 1 was 0 for every request, never shown below 0, and the sequence
        # stopped: at target 1.0 nothing could be certified). Untested, it is not kept:
        # on other requests the same decision rule may route some elsewhere.
        baseline = np.array([target <= 1 and moved[g] == 0 for g in tested])
        passed = fixed_sequence(baseline | reject(losses, delta, bound, high=max(target, 1e-9)))
        kept += [(first + g, *savings_and_se(runs[g][1], table.c_base)) for j, g in enumerate(tested[:passed])
                 if not baseline[j]]
        cand.certified = first + (tested[passed] if passed < len(tested) else len(runs))
        if passed < len(tested):
            break
    if not kept:
        return
    z_one, z_all = z_of(delta), z_of(delta / len(kept))
    bounds = [(saved - z_one * se, i, saved - z_all * se) for i, saved, se in kept]  # (its own, index, over all)
    cand.savings_lb, cand.chosen, cand.savings_lb_all = max([b for b in bounds if b[2] > 0] or bounds)
    cand.cal = summarize_run(table, *s.simulate(preds, table, signals, params[cand.chosen]))


def split_delta(delta: float, expected: Sequence[float | None], *, bonferroni: bool = True
                ) -> tuple[list[float], int | None]:
    """Each tested strategy's share of ``delta`` and the favourite's index: ``(1 - SPARE)``
    to the one expected to save most (the first on a tie), the rest evenly; an even split
    when nothing is expected of any."""
    m = len(expected)
    if not bonferroni or m <= 1:
        return [delta] * m, None
    known = [(e, -i) for i, e in enumerate(expected) if e is not None]
    if not known:
        return [delta / m] * m, None
    favourite = -max(known)[1]
    return [delta * (1 - SPARE) if i == favourite else delta * SPARE / (m - 1) for i in range(m)], favourite


def _strategy_model(candidate: Candidate, heads: Heads, ladder: Ladder, spec: FeatureSpec, cost_scale: float,
                    max_escalations: int, meta: dict[str, Any]) -> RoutingModel:
    s = candidate.strategy
    model = RoutingModel("baseline", ladder.names, ladder.baseline.name, spec, cost_scale=cost_scale,
                         max_escalations=max_escalations, meta=meta)
    if s.name == "baseline" or isinstance(s, ScoreStrategy):
        return model  # an outside router is measured here, never shipped in our model file
    if s.name.startswith("all:"):
        model.strategy, model.start_tier = "tier", s.name[4:]
        return model
    model.strategy = s.name
    if s.name == "confidence":
        model.threshold = candidate.param
        return model
    if s.name == "consistency":
        return model
    if isinstance(s, SplitStrategy):
        model.split_path = [ladder.names[k] for k in s.path]
        model.split_at = candidate.param
        return model
    model.lam = float(candidate.param or 0.0)
    cascade = s.name in ("cascade", "blend")
    _take_heads(model, heads, cascade)
    model.members = [_take_heads(dataclasses.replace(model, members=[]), member, cascade) for member in heads.members]
    return model


def _take_heads(model: RoutingModel, heads: Heads, cascade: bool) -> RoutingModel:
    """``model`` with the prompt heads of ``heads`` (and the answer heads, for a cascade)."""
    model.quality, model.out_tokens = dict(heads.quality), dict(heads.out_tokens)
    if cascade:
        model.stay, model.up = dict(heads.stay), dict(heads.up)
    return model


def _routes_otherwise(cand: Candidate, shipped: Predictions, table: LadderTable, signals: RecordedSignals,
                      target_parity: float, bound: str) -> str | None:
    """Why the model ``calibrate`` would ship for ``cand`` is not the one certified, or None.

    The operating point is certified on cross-fitted decisions (each request judged by
    fold heads that never saw it). The shipped model judges each request by its fold's
    member, which on the calibration requests are those very decisions; where the
    prompts do not fill every fold it ships the fold heads' mean, which, where the heads
    carry little signal, sits in a narrow band the certified threshold sends all or none
    of to a cheaper tier. So the shipped heads are replayed on the calibration requests
    at the chosen point, and must pass the same two tests there: its parity test and a
    savings bound above zero. A check that can only refuse: the promise stays the
    cross-fitted one."""
    served, cost = cand.strategy.simulate(shipped, table, signals, cand.param)
    run = summarize_run(table, served, cost)
    savings, se = savings_and_se(cost, table.c_base)
    losses = (target_parity * table.q_base - table.served_quality(served))[None, :]
    if savings - z_of(cand.delta) * se > 0 and reject(losses, cand.delta, bound, high=max(target_parity, 1e-9))[0]:
        return None
    return (f"{cand.name}: not shipped: the model it would ship (the fold heads' mean) does not route the "
            f"calibration requests as its cross-fitted decisions were certified: {run['savings']:.1%} cheaper at "
            f"{run['parity']:.1%} parity there (certified {cand.cal.get('savings', float('nan')):.1%} at "
            f"{cand.cal.get('parity', float('nan')):.1%})")


def calibrate(items: Sequence[EvalItem], ladder: Ladder, target_parity: float, *, policy: str = "auto",
              delta: float = 0.05, bound: str = "auto", spec: FeatureSpec | None = None,
              max_escalations: int | None = None, c: dict[str, float] | float | None = None,
              data: TrainingData | None = None, bonferroni: bool = True, extra: Sequence[Strategy] = (),
              folds: int = 10,
              progress: Callable[[str, float], None] = lambda msg, frac: None) -> Calibration:
    """Fit, certify and choose; ``progress(message, fraction done)`` reports as it goes.

    ``data``: the features of exactly ``items``, when already read (benchmarks reuse them)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    spec = spec or FeatureSpec()
    bound = resolve(bound, len(items))
    max_escalations = len(ladder) - 1 if max_escalations is None else max_escalations
    table = ladder_table(items, ladder)
    signals = RecordedSignals.read(items, ladder.names)
    has_answers = all(i.outcomes[t].response for i in items for t in ladder.names[:-1])
    strategies, notes = strategies_for(POLICIES[policy], table, signals, has_answers=has_answers,
                                       max_escalations=max_escalations)
    strategies += list(extra)  # outside routers, calibrated and measured like ours
    learned = [s for s in strategies if s.learned]
    cascade = any(s.needs_answers and s.learned for s in strategies)
    cost_scale = float(table.c_base.mean())

    total = len(items) * (1 + (2 * len(ladder) - 3 if cascade else 0))
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if done[0] % 50 == 0 or done[0] == total:
            progress(f"reading features of {len(items)} requests", 0.4 * done[0] / max(1, total))

    heads, preds = Heads(), None
    progress(f"reading features of {len(items)} requests", 0.0)
    if learned:
        if data is None or data.spec != spec or (cascade and not data.has_answers):
            data = TrainingData.build(items, ladder.names, spec, with_answers=cascade, progress=tick)
        if c is None:
            progress("choosing the regularisation", 0.40)
            c = select_c(data, progress=lambda k, n: progress(f"choosing the regularisation ({k} of {n} tried)",
                                                                0.40 + 0.05 * k / n))
        elif not isinstance(c, dict):
            c = {"prompt": float(c), "answer": float(c)}
        folds_done = [0]

        def fold_progress(msg: str) -> None:
            progress(f"cross-fitting: {msg}", 0.45 + 0.45 * folds_done[0] / folds)
            folds_done[0] += 1

        preds, heads = crossfit(data, items, ladder, cost_scale, c, cascade=cascade, k=folds,
                              progress=fold_progress)
    tested = [s for s in strategies if s.name != "baseline"]
    grids = {s.name: s.params(preds) for s in strategies}
    expected = [expected_savings(s, grids[s.name], preds, table, signals, target_parity) if preds is not None
                else None for s in tested]
    split, top = split_delta(delta, expected, bonferroni=bonferroni)
    shares = dict(zip((s.name for s in tested), split))
    favourite = None if top is None else tested[top].name
    candidates = []
    for step, s in enumerate(strategies):
        progress(f"certifying operating points: {s.name} ({step + 1} of {len(strategies)} strategies)",
                 0.90 + 0.10 * step / len(strategies))
        params = grids[s.name]
        if s.name == "baseline":
            run = s.simulate(preds, table, signals, params[0])
            candidates.append(Candidate(s, params, 1, 0, summarize_run(table, *run), savings_lb=0.0,
                                        savings_lb_all=0.0, delta=delta))
            continue
        per_test = shares[s.name]
        cand = Candidate(s, params, 0, None, delta=per_test, expected_savings=expected[tested.index(s)])
        certify(cand, preds, table, signals, target_parity, per_test, bound)
        candidates.append(cand)
    viable = [cand for cand in candidates if cand.chosen is not None and cand.name != "baseline"
              and cand.savings_lb_all > 0]
    if preds is not None and not heads.members and any(cand.strategy.learned for cand in viable):
        # (with members, the shipped decisions on these requests are the certified ones)
        shipped = predict(heads, data, np.arange(data.n), ladder, cost_scale)
        for cand in [cand for cand in viable if cand.strategy.learned]:
            why = _routes_otherwise(cand, shipped, table, signals, target_parity, bound)
            if why is not None:
                viable.remove(cand)
                notes.append(why)
    baseline = next(cand for cand in candidates if cand.name == "baseline")
    best = max(viable, key=lambda cand: cand.savings_lb) if viable else baseline
    if not viable:
        notes.append(f"nothing saves at parity {target_text(target_parity)} with confidence on this data: "
                     "every request stays on the baseline tier (savings 0 %, parity 100 %)")
        if len(items) < CLT_MIN_N:
            notes.append(f"{len(items)} calibration requests are few for a {1 - delta:.0%} promise (the betting "
                         f"bound is used below {CLT_MIN_N}); a few hundred more labelled requests would help")
    meta = {"target_parity": target_parity, "delta": delta, "bound": bound, "n": len(items), "c": c,
            "rates": per_token_rates(ladder),  # the prices the promise was certified at
            "folds": folds, "favourite": favourite, "strategies_tried": [cand.name for cand in candidates],
            "guarantee": guarantee_text(target_parity, delta, bound, len(tested), favourite, folds)}
    model = _strategy_model(best, heads, ladder, spec, cost_scale, max_escalations, meta)
    progress("done", 1.0)
    return Calibration(target_parity, delta, bound, candidates, best, model, notes, len(tested), c, favourite,
                       folds, heads, spec, cost_scale)
