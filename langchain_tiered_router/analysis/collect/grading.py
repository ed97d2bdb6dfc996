"""Grading each tier's answer: against the gold answer where there is one, else against
the reference tier's answer by an LLM judge.

Both use the comparators shadow sampling uses (``core.telemetry.comparators``), so a
label means the same thing offline and in production: a score in [0, 1] of how well an
answer matches the reference. With a gold answer the comparator is ``exact``,
``numeric``, ``json_fields`` or ``llm_judge``; without one the reference tier (the top
tier) scores 1 by definition and every other tier is judged against its answer by
``llm_judge``, whose calls are priced and recorded with the item.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

from ...core.telemetry.comparators import (JUDGE_PROMPT, Comparator, ExactComparator, JsonFieldsComparator,
                                            LLMJudgeComparator, NumericComparator)
from ...core.tiers import Tier
from ...core.types import TierAnswer
from .prompts import PromptItem

__all__ = ["Grader", "JudgeSpend", "COMPARATORS", "make_comparator"]

COMPARATORS = ("exact", "numeric", "json_fields", "llm_judge")
JUDGE_OUTPUT_TOKENS = 8  # "SCORE: 7" and a little more: the estimate before a judge call


def make_comparator(kind: str, judge_tier: str, *, fields: list[str] | None = None,
                    tolerance: float = 1e-6) -> Comparator:
    if kind == "exact":
        return ExactComparator()
    if kind == "numeric":
        return NumericComparator(tolerance)
    if kind == "json_fields":
        return JsonFieldsComparator(fields or [])
    if kind == "llm_judge":
        return LLMJudgeComparator(judge_tier)
    raise ValueError(f"unknown comparator {kind!r}; choose one of {', '.join(COMPARATORS)}")


@dataclass
class JudgeSpend:
    """The judge calls made for one item."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, answer: TierAnswer, cost: Decimal | None) -> None:
        with self._lock:
            self.calls += 1
            self.input_tokens += answer.usage.input_tokens
            self.output_tokens += answer.usage.output_tokens
            self.cost_usd += cost or Decimal(0)


@dataclass
class Grader:
    """How a run grades: ``gold_comparator`` for items with a gold answer, the judge on
    ``reference_tier``'s answer for the rest."""

    gold_comparator: Comparator
    reference_tier: str
    judge_tier: Tier

    @property
    def judge(self) -> LLMJudgeComparator:
        return LLMJudgeComparator(self.judge_tier.name)

    def method(self, item: PromptItem) -> dict[str, Any]:
        """What the item's scores mean; a resumed run must grade the same way."""
        if item.gold is not None:
            out: dict[str, Any] = {"reference": "gold", "comparator": self.gold_comparator.name}
            if self.gold_comparator.name == "llm_judge":
                out["judge_tier"] = self.judge_tier.name
            return out
        return {"reference": self.reference_tier, "comparator": "llm_judge", "judge_tier": self.judge_tier.name}

    def binary(self, item: PromptItem) -> bool:
        return item.gold is None or self.gold_comparator.binary

    def uses_judge(self, item: PromptItem) -> bool:
        return item.gold is None or self.gold_comparator.name == "llm_judge"

    def judge_calls_for(self, item: PromptItem, tiers: list[str]) -> int:
        """Judge calls needed to grade ``tiers`` on this item (the estimate before any call)."""
        if not self.uses_judge(item):
            return 0
        return sum(1 for t in tiers if item.gold is not None or t != self.reference_tier)

    def judge_prompt_chars(self, item: PromptItem, answer_chars: int) -> int:
        reference = len(item.gold) if item.gold is not None else answer_chars
        return len(JUDGE_PROMPT) + len(item.text) + reference + answer_chars

    def grade(self, item: PromptItem, responses: Mapping[str, str], tiers: list[str],
              ask_judge: Callable[[str], TierAnswer]) -> dict[str, float]:
        """Scores of ``tiers`` (their answers in ``responses``, with the reference's)."""
        scores: dict[str, float] = {}
        for tier in tiers:
            if item.gold is not None:
                scores[tier] = float(self.gold_comparator.score(responses[tier], item.gold, item.text, ask_judge))
            elif tier == self.reference_tier:
                scores[tier] = 1.0
            else:
                scores[tier] = float(self.judge.score(responses[tier], responses[self.reference_tier], item.text,
                                                      ask_judge))
        return scores
