"""A trained routing model at run time: which tier to start on, and whether to escalate.

``tiered-router calibrate`` fits it (``analysis/eval``) and writes it as a numpy
``.npz`` (``core.model_file``, no pickle); here it only predicts, with numpy alone.

Every decision is one comparison of expected quality against expected cost, with one
calibrated exchange rate ``lam`` (quality per unit of cost, the cost unit being the
mean baseline request of the calibration data):

* start tier (classifier): the tier ``k`` maximising ``q_k(prompt) - lam * c_k(prompt)``,
  where ``q_k`` is the predicted quality of tier ``k``'s answer and ``c_k`` its predicted
  cost (input tokens estimated from the text, output tokens predicted per tier);
* escalation (cascade), after tier ``j`` answered: go up when
  ``q_up(prompt, answer) - q_stay(prompt, answer) > lam * c_{j+1}(prompt)``. The answer
  (and its agreement with the previous tier's) tells both how good it is and how hard
  the request was, so a request no tier would get right is not escalated for nothing.

The eval harness simulates these same functions on recorded answers, so the parity it
certifies is the parity this code serves.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError
from .features import FeatureRow, FeatureSpec, answer_row, bounded_view, prompt_row
from .pricing import estimate_tokens
from .tiers import Ladder

__all__ = ["LinearHead", "HeadStack", "RoutingModel", "STRATEGIES", "per_token_rates", "predicted_cost", "fold_of"]

log = logging.getLogger("langchain_tiered_router")

# Prompt feature rows kept per model: enough for the requests in flight on one process
# to reuse theirs from step to step, small enough to be nothing in memory (bounded views).
PROMPT_ROWS_CACHED = 64
STRATEGIES = ("baseline", "tier", "classifier", "cascade", "blend", "confidence", "consistency", "split")


def per_token_rates(ladder: Ladder) -> list[tuple[float, float] | None]:
    """Each tier's USD per input and per output token as floats (None: price unknown).
    A predicted cost is a ranking input, not a bill: floats, which the harness and the
    run time both use, instead of the Decimal arithmetic a recorded cost needs."""
    rates: list[tuple[float, float] | None] = []
    for tier in ladder:
        price = tier.price
        known = price is not None and price.known
        rates.append((float(price.input_per_mtok) / 1e6, float(price.output_per_mtok) / 1e6)  # type: ignore
                     if known else None)
    return rates


def _same_rates(then: Any, now: tuple[float, float] | None, tolerance: float = 0.01) -> bool:
    if then is None or now is None:
        return then is None and now is None
    try:
        return all(abs(float(a) - b) <= tolerance * max(abs(b), 1e-15) for a, b in zip(then, now))
    except (TypeError, ValueError):
        return False


def _costs_at_least(rate: Sequence[float] | None, base: Sequence[float] | None) -> bool:
    """Whether per-token ``rate`` is at least ``base``'s on input and on output (unknown: no)."""
    try:
        return rate is not None and base is not None and float(rate[0]) >= float(base[0]) \
            and float(rate[1]) >= float(base[1])
    except (TypeError, ValueError, IndexError):
        return False


def _certified_rates(stored: Any, now: list[tuple[float, float] | None]) -> list[tuple[float, float] | None]:
    """The per-token rates a routing model decides with: those it was calibrated at, where
    its file holds them. Its operating point (lambda) was certified at those prices: weighed
    at new ones, its decisions move away from the point certified (a baseline priced three
    times higher sent 84 % of GSM8K to the cheap tier, not 53 %, at 86 % parity against a
    95 % promise). ``check_certified_for`` warns that the prices moved. A tier the file
    priced no way (or not readably) takes today's."""
    if not isinstance(stored, list) or len(stored) != len(now):
        return now
    rates: list[tuple[float, float] | None] = []
    for then, today in zip(stored, now):
        try:
            pair = (float(then[0]), float(then[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            rates.append(today)
            continue
        rates.append(pair if all(math.isfinite(v) and v >= 0 for v in pair) else today)
    return rates


def fold_of(view: str, folds: int) -> int:
    """The cross-fitting fold of a prompt's bounded view (``features.bounded_view``): the
    calibration puts each request in this fold, and at run time the request is judged by
    the heads of the member fitted without that fold (``RoutingModel.members``)."""
    digest = hashlib.sha256(view.encode("utf-8", "surrogatepass")).hexdigest()
    return int(digest[:8], 16) % folds


def predicted_cost(rate: tuple[float, float] | None, tokens_in: int, tokens_out: float | None,
                   cost_scale: float) -> float:
    """One tier's predicted cost in units of ``cost_scale``; output tokens rounded as billed."""
    if rate is None:
        return math.inf
    out = int(round(tokens_out)) if tokens_out is not None else 0
    return (tokens_in * rate[0] + out * rate[1]) / cost_scale


@dataclass
class LinearHead:
    """``z = sparse[idx] . val + dense . ((x - mean) / scale) + bias``, then the link:
    ``logistic`` -> a probability (a quality), ``log1p`` -> ``exp(z) - 1`` (a token count)."""

    sparse: np.ndarray
    dense: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    bias: float
    link: str = "logistic"

    def raw(self, row: FeatureRow) -> float:
        z = self.bias
        if self.sparse.size and row.idx.size:
            z += float(self.sparse[row.idx] @ row.val)
        if self.dense.size:
            z += float(self.dense @ ((row.dense - self.mean) / self.scale))
        return z

    def predict(self, row: FeatureRow) -> float:
        return self.apply_link(self.raw(row))

    def apply_link(self, z: float) -> float:
        return self.apply_link_of(self.link, z)

    @staticmethod
    def apply_link_of(link: str, z: float) -> float:
        if link == "logistic":
            return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
        return max(0.0, math.expm1(min(z, 20.0)))


class HeadStack:
    """Several heads over the same features, evaluated together in one gather and one
    product.

    Inside a request each numpy call costs 10-40 µs, not the 0.5-3 µs of a warm loop:
    between two HTTP calls its code has left the CPU's caches. So everything linear is
    folded into one weight matrix, features x heads: the sparse weights, then the dense
    weights with the standardisation folded in (``w . (x - m) / s == (w / s) . x - (w / s) . m``),
    then the biases. A row is laid out to match once (``FeatureRow.stacked``: its sparse
    indices, then one index per dense column, then the bias's), and every set of heads
    costs two numpy calls: ``take`` and ``dot``."""

    def __init__(self, heads: Sequence[LinearHead]):
        self.links = [h.link for h in heads]
        self.width = width = max((h.sparse.size for h in heads), default=0)
        dense = max((h.dense.size for h in heads), default=0)
        if any(h.dense.size not in (0, dense) for h in heads):
            raise ConfigError("the heads of one routing decision read dense blocks of different widths")
        self.dense_width = dense
        # rows: sparse features, dense columns, the bias; columns: heads
        self.weights = np.zeros((width + dense + 1, len(heads)), dtype=np.float64)
        for k, h in enumerate(heads):
            self.weights[:h.sparse.size, k] = h.sparse
            bias = h.bias
            if h.dense.size:
                folded = h.dense / h.scale
                self.weights[width:width + dense, k] = folded
                bias -= float(folded @ h.mean)
            self.weights[width + dense, k] = bias

    def raw(self, row: FeatureRow) -> np.ndarray:
        idx, val = row.stacked(self.width, self.dense_width)
        # ``dot``, not ``@``: the same BLAS product without the ufunc dispatch of ``matmul``;
        # ``take``: the rows indexing gives, three times sooner
        return val.dot(self.weights.take(idx, axis=0))

    def predict(self, row: FeatureRow) -> list[float]:
        return [LinearHead.apply_link_of(link, z) for link, z in zip(self.links, self.raw(row).tolist())]


@dataclass
class RoutingModel:
    """What ``calibrate`` chose (``strategy``) and the heads it needs."""

    strategy: str
    tiers: list[str]
    baseline: str
    spec: FeatureSpec
    lam: float = 0.0
    cost_scale: float = 1.0  # USD: the mean baseline cost per request on the calibration data
    quality: dict[str, LinearHead] = field(default_factory=dict)  # per tier, from the prompt
    out_tokens: dict[str, LinearHead] = field(default_factory=dict)  # per tier, from the prompt
    stay: dict[str, LinearHead] = field(default_factory=dict)  # per non-top tier j: quality of j's answer
    up: dict[str, LinearHead] = field(default_factory=dict)  # per non-top tier j: quality of tier j+1's
    start_tier: str | None = None  # strategy "tier"
    threshold: float | None = None  # strategy "confidence"
    split_path: list[str] = field(default_factory=list)  # strategy "split": baseline first (core.split)
    split_at: float | None = None  # strategy "split": the operating point along split_path
    max_escalations: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # The cross-fitted members, one per fold, each with its own heads (and no members):
    # a request is judged by the member fitted without its fold (``fold_of``), so the
    # decisions served are distributed as the cross-fitted ones the calibration certified.
    # (The fold heads' mean, served to every request, sat in a narrow band where the heads
    # carried little signal: the certified threshold sent all or none of it to a tier.)
    # Empty: the model's own heads judge every request.
    members: list["RoutingModel"] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown routing strategy {self.strategy!r}; expected one of {', '.join(STRATEGIES)}")

    def warm(self, ladder: Ladder) -> None:
        """Make what every member's decisions need (their heads stacked for this ladder)
        now, not on the first request each member judges: ten members built one by one
        cost the first requests milliseconds each."""
        names = tuple(ladder.names)
        for holder in self.members or [self]:
            if holder.quality or holder.out_tokens:
                holder._prompt_plan(names)
            if holder.uses_classifier:
                holder._start_plan(ladder)
            for tier in holder.stay:
                if tier in holder.up:
                    holder._stack(("answer", tier), [holder.stay[tier], holder.up[tier]])

    def member_for(self, prompt: str) -> "RoutingModel":
        """The model whose heads judge ``prompt``: its fold's member, else this one."""
        members = self.members
        if not members:
            return self
        return members[fold_of(bounded_view(prompt, self.spec.head_chars, self.spec.tail_chars), len(members))]

    # -- checks against the ladder it runs on ----------------------------------------

    def check_ladder(self, ladder: Ladder) -> None:
        """The tiers the model was trained for must be the ladder's, in the same order."""
        if self._ladder_view(ladder)[0] != tuple(self.tiers):
            raise ConfigError(f"the routing model was trained for tiers {', '.join(self.tiers)}, "
                              f"but the ladder has {', '.join(ladder.names)}")

    def check_certified_for(self, ladder: Ladder) -> None:
        """A model served for its promise (``policy: auto``) must meet the baseline and the
        prices it was certified against: another baseline is a ``ConfigError`` (parity and
        savings are measured against it); prices that moved are logged, and a tier that
        now costs at least the baseline's per token (it can never save) is a ``ConfigError``.
        Files written before prices were stored are not checked for them."""
        if ladder.baseline.name != self.baseline:
            raise ConfigError(f"the routing model was calibrated against baseline tier {self.baseline!r}, but the "
                              f"config's baseline is {ladder.baseline.name!r}: its promise does not hold against "
                              f"another tier; set baseline: {self.baseline}, or calibrate again")
        stored = self.meta.get("rates")
        if not isinstance(stored, list) or len(stored) != len(ladder):
            return
        now = per_token_rates(ladder)
        base, base_then = now[ladder.baseline.index], stored[ladder.baseline.index]
        moved = [t.name for t, then, rate in zip(ladder, stored, now) if not _same_rates(then, rate)]
        for tier, rate, then in zip(ladder, now, stored):
            # a tier that saved against the baseline when certified and no longer can,
            # whichever of the two prices moved (a baseline re-priced below it counts)
            if (tier.name != ladder.baseline.name and (tier.name in moved or ladder.baseline.name in moved)
                    and _costs_at_least(rate, base) and not _costs_at_least(then, base_then)):
                raise ConfigError(f"tier {tier.name!r} now costs at least the baseline tier's price per token, not "
                                  "what the routing model was calibrated at: routing to it cannot save; calibrate "
                                  "again at these prices")
        if moved:
            log.warning("tiers %s are priced otherwise than when the routing model was calibrated: its decisions "
                        "weigh the prices it was calibrated at (its promise was certified at them), and costs are "
                        "billed at today's; calibrate again",
                        ", ".join(moved))

    @property
    def uses_classifier(self) -> bool:
        return self.strategy in ("classifier", "blend")

    @property
    def uses_cascade(self) -> bool:
        return self.strategy in ("cascade", "blend")

    # -- predictions -------------------------------------------------------------------

    def prompt_features(self, prompt: str) -> FeatureRow:
        """The prompt's features, from a small cache keyed by the bounded view: a blend
        reads them to start and again at each escalation, a cascade at each step."""
        rows: dict[str, FeatureRow] = self.__dict__.setdefault("_rows", {})
        key = bounded_view(prompt, self.spec.head_chars, self.spec.tail_chars)
        row = rows.get(key)
        if row is None:
            row = prompt_row(self.spec, prompt, np.float64)  # like the weights: no cast in every product
            if len(rows) >= PROMPT_ROWS_CACHED:
                try:
                    del rows[next(iter(rows))]  # the oldest
                except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                    pass
            rows[key] = row
        return row

    def _stack(self, key: tuple, heads: Sequence[LinearHead]) -> HeadStack:
        stacks = self.__dict__.setdefault("_stacks", {})
        stack = stacks.get(key)
        if stack is None:
            stack = stacks[key] = HeadStack(heads)
        return stack

    def _prompt_predictions(self, row: FeatureRow, ladder: Ladder) -> tuple[list[float], list[float | None]]:
        """Each tier's predicted quality and output tokens (None: no head), in one pass."""
        stack, quality_at, tokens_at = self._prompt_plan(self._ladder_view(ladder)[0])
        values = stack.predict(row)
        return ([0.0 if i is None else values[i] for i in quality_at],
                [None if i is None else values[i] for i in tokens_at])

    def _prompt_plan(self, names: tuple[str, ...]) -> tuple[HeadStack, list[int | None], list[int | None]]:
        """The prompt heads of these tiers stacked, and where each tier's quality and
        output tokens are in the stack's predictions (None: no such head): made once."""
        plans = self.__dict__.setdefault("_prompt_plans", {})
        plan = plans.get(names)
        if plan is None:
            quality = [t for t in names if t in self.quality]
            tokens = [t for t in names if t in self.out_tokens]
            stack = HeadStack([self.quality[t] for t in quality] + [self.out_tokens[t] for t in tokens])
            plan = plans[names] = (stack, [quality.index(t) if t in self.quality else None for t in names],
                                   [len(quality) + tokens.index(t) if t in self.out_tokens else None for t in names])
        return plan

    def _ladder_view(self, ladder: Ladder) -> tuple[tuple[str, ...], list[tuple[float, float] | None]]:
        """The ladder's tier names and per-token rates, kept for the last ladder seen (a
        ladder does not change; a router asks with the same one every request)."""
        cached = self.__dict__.get("_ladder_view_of")
        if cached is None or cached[0] is not ladder:
            rates = _certified_rates(self.meta.get("rates"), per_token_rates(ladder))
            cached = self.__dict__["_ladder_view_of"] = (ladder, (tuple(ladder.names), rates))
        return cached[1]

    def _rates(self, ladder: Ladder) -> list[tuple[float, float] | None]:
        return self._ladder_view(ladder)[1]

    def _costs(self, prompt: str, out_tokens: Sequence[float | None], ladder: Ladder) -> list[float]:
        tokens_in, scale = estimate_tokens(prompt), self.cost_scale
        return [predicted_cost(rate, tokens_in, out, scale) for rate, out in zip(self._rates(ladder), out_tokens)]

    def predicted_costs(self, prompt: str, row: FeatureRow, ladder: Ladder) -> list[float]:
        """Each tier's expected cost for this prompt, in units of ``cost_scale``."""
        if self.members:
            return self.member_for(prompt).predicted_costs(prompt, row, ladder)
        return self._costs(prompt, self._prompt_predictions(row, ladder)[1], ladder)

    def start_values(self, prompt: str, ladder: Ladder) -> tuple[list[float], list[float]]:
        if self.members:
            return self.member_for(prompt).start_values(prompt, ladder)
        q, out = self._prompt_predictions(self.prompt_features(prompt), ladder)
        return q, self._costs(prompt, out, ladder)

    def _start_plan(self, ladder: Ladder) -> tuple[Ladder, tuple[str, ...], HeadStack, tuple]:
        """What a start decision needs of the ladder, made (and the ladder checked) once
        per ladder: its names, the stacked prompt heads, and per tier where its quality
        and output tokens are in the stack's outputs, their links and its rates."""
        self.check_ladder(ladder)
        names, rates = self._ladder_view(ladder)
        stack, quality_at, tokens_at = self._prompt_plan(names)
        links = stack.links
        tiers = tuple((q, None if q is None else links[q], t, None if t is None else links[t], rate)
                      for q, t, rate in zip(quality_at, tokens_at, rates))
        plan = self.__dict__["_start_plan_of"] = (ladder, names, stack, tiers)
        return plan

    def choose_start(self, prompt: str, ladder: Ladder, lam: float | None = None) -> tuple[str, str, float]:
        """(tier, reason, predicted quality of that tier): the tier maximising
        ``q - lam * c`` (``start_values``), ties to the cheaper (the first), as the
        harness's argmax; fails on a ladder the model was not trained for.

        One pass with few Python calls: a decision runs between two HTTP calls, where
        the interpreter's and numpy's code has left the CPU's caches and every call costs
        several times what it costs in a loop."""
        lam = self.lam if lam is None else lam
        if self.members:
            return self.member_for(prompt).choose_start(prompt, ladder, lam)
        plan = self.__dict__.get("_start_plan_of")
        if plan is None or plan[0] is not ladder:
            plan = self._start_plan(ladder)
        _, names, stack, tiers = plan
        z = stack.raw(self.prompt_features(prompt)).tolist()
        tokens_in, scale, link = estimate_tokens(prompt), self.cost_scale, LinearHead.apply_link_of
        best_value, k, q, c = -math.inf, 0, 0.0, 0.0
        for i, (quality_at, quality_link, tokens_at, tokens_link, rate) in enumerate(tiers):
            qi = 0.0 if quality_at is None else link(quality_link, z[quality_at])
            out = None if tokens_at is None else link(tokens_link, z[tokens_at])
            ci = predicted_cost(rate, tokens_in, out, scale)
            value = qi - lam * ci
            if i == 0 or value > best_value:
                best_value, k, q, c = value, i, qi, ci
        return names[k], f"trained: q={q:.3f} cost={c:.3f} (lambda {lam:.4g})", float(q)

    def escalation_values(self, tier: str, prompt: str, answer: str, *, logprobs: Sequence[float] | None = None,
                          previous: str | None = None, ladder: Ladder) -> tuple[float, float, float]:
        """(quality if served here, quality one tier up, cost of the tier up)."""
        if self.members:
            return self.member_for(prompt).escalation_values(tier, prompt, answer, logprobs=logprobs,
                                                             previous=previous, ladder=ladder)
        above = ladder.above(ladder[tier])
        if above is None or tier not in self.stay:
            return 1.0, 0.0, math.inf
        asked = self.prompt_features(prompt)
        row = answer_row(self.spec, prompt, answer, logprobs=list(logprobs) if logprobs else None, previous=previous,
                         prompt_features=asked)
        q_stay, q_up = self._stack(("answer", tier), [self.stay[tier], self.up[tier]]).predict(row)
        cost_up = self.predicted_costs(prompt, asked, ladder)[above.index]
        return q_stay, q_up, float(cost_up)

    def should_escalate(self, tier: str, prompt: str, answer: str, *, ladder: Ladder,
                        logprobs: Sequence[float] | None = None, previous: str | None = None,
                        lam: float | None = None) -> tuple[bool, str, float]:
        """(escalate?, reason, predicted quality of this answer)."""
        lam = self.lam if lam is None else lam
        q_stay, q_up, cost_up = self.escalation_values(tier, prompt, answer, logprobs=logprobs, previous=previous,
                                                       ladder=ladder)
        if math.isinf(cost_up):
            return False, "top tier: nothing to escalate to", q_stay
        go = (q_up - q_stay) > lam * cost_up
        return go, (f"trained: q(here)={q_stay:.3f} q(up)={q_up:.3f} cost(up)={cost_up:.3f} "
                    f"(lambda {lam:.4g})"), q_stay
