"""What a collect run will ask, and what it should cost, before anything is sent.

For each prompt: the tiers still missing from the output file (a rerun asks only those),
plus the reference tier when the prompt has no gold answer and the reference's answer
is not there yet. The cost estimate counts input tokens as ceil(characters / 4) and
assumes ``assume_output_tokens`` per answer, but never more than the tier's
``max_tokens`` (no answer is longer, and the estimate must not pass the upper bound);
judge calls are estimated the same way. The upper bound uses each tier's
``max_tokens`` (none when a tier sets no cap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping, Sequence

from ...core.pricing import Usage
from ...core.tiers import Ladder, Tier
from .errors import OutcomesFileError
from .grading import JUDGE_OUTPUT_TOKENS, Grader
from .prompts import PromptItem

__all__ = ["Job", "Plan", "make_plan", "tokens_of"]


@dataclass
class Job:
    """One prompt's work: the tiers to ask and the tiers to grade."""

    item: PromptItem
    ask: list[Tier]
    grade: list[str]
    existing: dict[str, Any] | None
    estimate_usd: Decimal
    judge_calls: int
    order: tuple[str, ...] = ()  # the ladder's tier names, cheapest first

    def sort(self, names) -> list[str]:
        return sorted(names, key=lambda n: (self.order.index(n) if n in self.order else len(self.order), n))


@dataclass
class Plan:
    jobs: list[Job]
    done: int  # prompts already complete in the output file
    calls: int
    judge_calls: int
    input_tokens: int
    assume_output_tokens: int
    estimate_usd: Decimal
    upper_usd: Decimal | None  # every answer at its tier's max_tokens; None when a tier has no cap
    added_reference: int = 0  # prompts without gold whose reference tier is asked though not in --tiers
    by_tier: dict[str, int] = field(default_factory=dict)
    capped: dict[str, int] = field(default_factory=dict)  # tiers whose max_tokens is below the assumption

    @property
    def gold(self) -> int:
        return sum(1 for j in self.jobs if j.item.gold is not None)


def tokens_of(chars: int) -> int:
    """ceil(characters / 4), at least 1: the estimate before a call."""
    return max(1, -(-chars // 4))


def _cost(tier: Tier, usage: Usage) -> Decimal:
    cost = tier.cost(usage)
    if cost is None:  # the config check refuses unpriced tiers; never count one as free
        raise ValueError(f"tier {tier.name!r} has no price; set price: in the router config")
    return cost


def make_plan(items: Sequence[PromptItem], done: Mapping[str, dict[str, Any]], ladder: Ladder, tiers: Sequence[str],
              grader: Grader, assume_output_tokens: int) -> Plan:
    jobs: list[Job] = []
    complete = calls = judge_calls = input_tokens = added = 0
    estimate, upper = Decimal(0), Decimal(0)
    has_upper = all(t.params.get("max_tokens") for t in ladder)
    by_tier: dict[str, int] = {}
    capped: dict[str, int] = {}
    longest = max(int(t.params["max_tokens"]) for t in ladder) if has_upper else 0

    def assumed(tier: Tier) -> int:
        cap = tier.params.get("max_tokens")
        if cap and int(cap) < assume_output_tokens:
            capped[tier.name] = int(cap)
            return int(cap)
        return assume_output_tokens

    for item in items:
        existing = done.get(item.id)
        have = set((existing or {}).get("outcomes", {}))
        if existing is not None and have:
            recorded = existing.get("grading")
            if recorded is not None and {k: recorded.get(k) for k in grader.method(item)} != grader.method(item):
                raise OutcomesFileError(
                    f"item {item.id!r} in the output file was graded {recorded.get('comparator')} against "
                    f"{recorded.get('reference')}; this run grades {grader.method(item)['comparator']} against "
                    f"{grader.method(item)['reference']}: give another --out")
        wanted = [t for t in tiers if t not in have]
        if item.gold is None and grader.reference_tier not in have and grader.reference_tier not in wanted:
            wanted.append(grader.reference_tier)
            added += 1
        if not wanted:
            complete += 1
            continue
        ask = [ladder[t] for t in ladder.names if t in wanted]
        grade = [t.name for t in ask]
        if item.gold is None and grader.reference_tier in grade:
            grade = sorted(set(grade) | (have - {grader.reference_tier}), key=ladder.names.index)
        tokens_in = tokens_of(item.chars)
        cost = Decimal(0)
        for tier in ask:
            cost += _cost(tier, Usage(tokens_in, assumed(tier)))
            if has_upper:
                upper += _cost(tier, Usage(tokens_in, int(tier.params["max_tokens"])))
            by_tier[tier.name] = by_tier.get(tier.name, 0) + 1
        n_judge = grader.judge_calls_for(item, grade)
        judged = min(assume_output_tokens, longest) if has_upper else assume_output_tokens
        judge_in = tokens_of(grader.judge_prompt_chars(item, 4 * judged))
        cost += n_judge * _cost(grader.judge_tier, Usage(judge_in, JUDGE_OUTPUT_TOKENS))
        if has_upper and n_judge:
            judge_upper = tokens_of(grader.judge_prompt_chars(item, 4 * longest))
            upper += n_judge * _cost(grader.judge_tier, Usage(judge_upper, JUDGE_OUTPUT_TOKENS))
        jobs.append(Job(item, ask, grade, existing, cost, n_judge, tuple(ladder.names)))
        calls += len(ask)
        judge_calls += n_judge
        input_tokens += tokens_in * len(ask)
        estimate += cost
    return Plan(jobs, complete, calls, judge_calls, input_tokens, assume_output_tokens, estimate,
                upper if has_upper else None, added, by_tier, capped)
