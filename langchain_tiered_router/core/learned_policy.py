"""Run a trained routing model in the engine: a start-tier classifier, an escalation
gate, and ``policy: {kind: auto}``, which serves whatever strategy ``calibrate`` chose.

The gates a strategy brings are scoped to the tiers they judge: the learned escalation
gate and the confidence gate sit below the top tier (there is nowhere to escalate from
the top, so they must not flag its answers), the consistency gate on the second tier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .answers import agree
from .classifiers import Classifier, TierChoice
from .confidence import answer_confidence
from .errors import ConfigError
from .gates import Gate, GateState
from .learned import RoutingModel
from .model_file import load_routing_model
from .policies import Policy
from .split import split_shares, split_step, split_unit
from .tiers import Ladder, Tier
from .types import GateVerdict, RouteRequest, TierAnswer

__all__ = ["LearnedStart", "LearnedEscalationGate", "ConsistencyGate", "ScopedConfidenceGate", "LearnedPolicy",
           "previous_answer"]


def previous_answer(state: GateState) -> TierAnswer | None:
    """The answer of the tier just below, when this request climbed from it."""
    below = state.tier.index - 1
    for tier_name, answer in reversed(state.previous):
        if tier_name == below:
            return answer
    return None


class LearnedStart(Classifier):
    """The tier with the best predicted quality for its predicted cost."""

    name = "trained"

    def __init__(self, model: RoutingModel, lam: float | None = None):
        self.model = model
        self.lam = lam

    def classify(self, request: RouteRequest, ladder: Ladder, ask=None) -> TierChoice:
        tier, reason, score = self.model.choose_start(request.text, ladder, self.lam)
        return TierChoice(tier, reason, score)


class LearnedEscalationGate(Gate):
    """Passes an answer unless going one tier up is predicted to be worth its cost."""

    bounded = True  # reads bounded views of the texts: judged inline

    def __init__(self, model: RoutingModel, lam: float | None = None, name: str = "trained_escalation"):
        self.model = model
        self.lam = lam
        self.name = name

    def judge(self, state: GateState) -> GateVerdict:
        ladder = state.ladder
        if ladder is None:
            raise RuntimeError("the trained escalation gate needs the engine's ladder")
        previous = previous_answer(state)
        escalate, reason, q_here = self.model.should_escalate(
            state.tier.name, state.question, state.answer.text, ladder=ladder, logprobs=state.answer.logprobs,
            previous=previous.text if previous is not None else None, lam=self.lam)
        return self._verdict(not escalate, reason, q_here)


class ScopedConfidenceGate(Gate):
    """The answer's own confidence (self-rating, abstention) below ``threshold`` fails."""

    bounded = True

    def __init__(self, threshold: float, name: str = "confidence"):
        self.threshold = threshold
        self.name = name

    def judge(self, state: GateState) -> GateVerdict:
        value, source = answer_confidence(state.answer)
        if value is None:
            return self._verdict(True, "no confidence signal (passes)")
        passed = value >= self.threshold
        return self._verdict(passed, f"{source} confidence {value:.2f} {'>=' if passed else '<'} "
                                     f"{self.threshold:.2f}", value)


class ConsistencyGate(Gate):
    """Asks ``tier`` the same request for a second opinion (a priced routing call) and
    passes when both replies reach the same final answer (``core.answers``)."""

    def __init__(self, tier: str, *, name: str | None = None):
        self.tier = tier
        self.name = name or f"consistency:{tier}"

    def _verdict_for(self, state: GateState, other: TierAnswer) -> GateVerdict:
        same = agree(state.answer.text, other.text)
        return self._verdict(same, f"final answer {'agrees' if same else 'differs'} with {self.tier}'s")

    def _known(self, state: GateState) -> TierAnswer | None:
        """The reference tier's answer to this request, when the request already has one:
        its own attempt there (a ladder that passed through it), or this gate's earlier
        call for another attempt. Asked once per request, not once per attempt judged."""
        if self.tier != state.tier.name:
            for index, answer in reversed(state.previous):
                if state.ladder is not None and state.ladder[index].name == self.tier:
                    return answer
        return _second_opinions(state.request).get(self.tier)

    def judge(self, state: GateState) -> GateVerdict:
        other = self._known(state)
        if other is None:
            if state.ask is None:
                raise RuntimeError("the consistency gate needs the engine's ask function")
            other = _second_opinions(state.request)[self.tier] = state.ask("consistency", self.tier, state.request)
        return self._verdict_for(state, other)

    async def ajudge(self, state: GateState) -> GateVerdict:
        if state.aask is None:
            return await super().ajudge(state)
        other = self._known(state)
        if other is None:
            other = await state.aask("consistency", self.tier, state.request)
            _second_opinions(state.request)[self.tier] = other
        return self._verdict_for(state, other)


def _second_opinions(request: Any) -> dict[str, TierAnswer]:
    """The consistency calls' answers of one request, by tier (kept on the request object,
    out of its fields: never recorded)."""
    return request.__dict__.setdefault("_second_opinions", {})


class LearnedPolicy(Policy):
    """``policy: {kind: auto, path: model.npz}``: the strategy ``calibrate`` chose."""

    def __init__(self, model: RoutingModel, max_escalations: int = 2):
        super().__init__(max_escalations)
        self.model = model
        self.name = f"auto:{model.strategy}"
        self._start = LearnedStart(model) if model.uses_classifier else None
        self._escalate = LearnedEscalationGate(model) if model.uses_cascade else None
        self._confidence = (ScopedConfidenceGate(model.threshold) if model.strategy == "confidence"
                            and model.threshold is not None else None)
        self._consistency = ConsistencyGate(model.tiers[0]) if model.strategy == "consistency" else None

    @classmethod
    def from_file(cls, path: str | Path, ladder: Ladder, max_escalations: int | None = None) -> "LearnedPolicy":
        """The file's strategy at the escalation depth it was certified with; a config
        that asks for another depth (``max_escalations``, None: not set) is refused, since
        the certified promise does not hold for what that would serve."""
        model = load_routing_model(path)
        model.check_ladder(ladder)
        model.check_certified_for(ladder)
        model.warm(ladder)
        certified = model.max_escalations
        if certified is not None:
            top = len(ladder) - 1
            if max_escalations is not None and min(max_escalations, top) != min(certified, top):
                raise ConfigError(f"{path} was calibrated with max_escalations {certified}, and its promise holds at "
                                  f"that depth; the config asks for {max_escalations}: calibrate again with it, or "
                                  "leave max_escalations out of the policy")
            max_escalations = certified
        return cls(model, 2 if max_escalations is None else max_escalations)

    def choose_start(self, request, ladder, ask=None) -> TierChoice:
        m = self.model
        if self._start is not None:
            return self._start.classify(request, ladder)
        if m.strategy == "baseline":
            return TierChoice(ladder.baseline.name, "auto: no strategy saved money at the target; baseline tier")
        if m.strategy == "tier":
            return TierChoice(str(m.start_tier), f"auto: every request on {m.start_tier}")
        if m.strategy == "consistency":
            return TierChoice(ladder[1].name, f"auto: consistency check against {ladder[0].name}")
        if m.strategy == "split":
            path, at = m.split_path, float(m.split_at or 0.0)
            tier = path[split_step(at, split_unit(request.text), len(path))]
            mix = ", ".join(f"{name} {share:.0%}" for name, share in split_shares(path, at).items() if share > 0)
            return TierChoice(tier, f"auto: traffic split ({mix}) by a hash of the prompt")
        return TierChoice(ladder.cheapest.name, f"auto: {m.strategy} from the cheapest tier")

    def extra_gates(self, tier: Tier | None = None) -> list[Gate]:
        if tier is None:
            raise ConfigError("the auto policy's gates depend on the tier")
        if tier.index >= len(self.model.tiers) - 1:
            return []
        if self._escalate is not None:
            return [self._escalate]
        if self._confidence is not None:
            return [self._confidence]
        if self._consistency is not None and tier.index == 1:
            return [self._consistency]
        return []
