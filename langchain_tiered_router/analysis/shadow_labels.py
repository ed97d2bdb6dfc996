"""Labelled outcomes from production shadows, for ``tiered-router calibrate --from-db``.

What one shadow-sampled record gives (``shadow_status: done``, text stored with
``telemetry.store_text: true``): a request the router served on a tier below the
baseline, that tier's answer, the baseline tier's shadow answer to the same request and
the comparator's score of the one against the other. As an item of recorded outcomes:

* the served tier: score = the comparator's score, its answer, the served call's tokens;
* the baseline tier: score 1 (it is the reference), its shadow answer and tokens.

What the records cannot tell, and so the labels do not claim:

* any tier other than the served one and the baseline on that request: only a two-tier
  ladder is labelled completely (for more tiers, ``tiered-router collect --from-db`` asks
  every tier the stored prompts);
* requests the router escalated or started on the baseline: they are never shadowed, so
  the labels describe the traffic the router serves below the baseline today (answers
  that already passed its gates), and a calibration's promise is about that traffic;
* whether the baseline itself was right: parity here is agreement with the baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..core.tiers import Ladder
from .eval.data import EvalDataError, EvalItem, Outcome, estimate_tokens

__all__ = ["ShadowLabels", "shadow_labels", "write_outcomes", "LABEL_MEANING", "CANNOT_TELL"]

LABEL_MEANING = ("each record: the answer of the tier that served it, scored by the shadow comparator against the "
                 "baseline tier's shadow answer to the same request (that tier: the score; the baseline: 1, the "
                 "reference)")
CANNOT_TELL = ("what these labels cannot tell: other tiers on these requests; requests the router escalated or "
               "started on the baseline (never shadowed), so the promise below is about the traffic it serves below "
               "the baseline today; whether the baseline itself was right (parity here is agreement with it)")


@dataclass
class ShadowLabels:
    """The labelled items and an account of every record left out."""

    items: list[EvalItem]
    records: int
    shadowed: int
    without_text: int
    served_by: dict[str, int] = field(default_factory=dict)
    comparators: list[str] = field(default_factory=list)
    estimated_baseline_tokens: int = 0  # records from before shadow token counts were recorded
    # shadowed records left out because they describe another ladder: served on a tier
    # this one does not name, or by another model than the tier (or baseline) now calls
    other_tier: dict[str, int] = field(default_factory=dict)
    other_model: dict[str, int] = field(default_factory=dict)  # "tier: the record's model" -> records

    def left_out(self) -> str:
        """Why shadowed records were not labels, in a clause each (empty if none was)."""
        parts = []
        if self.other_tier:
            parts.append(f"{sum(self.other_tier.values()):,} served on a tier this config does not have ("
                         + ", ".join(f"{t} {n:,}" for t, n in sorted(self.other_tier.items())) + ")")
        if self.other_model:
            parts.append(f"{sum(self.other_model.values()):,} answered by another model than this config's tiers call ("
                         + ", ".join(f"{k} {n:,}" for k, n in sorted(self.other_model.items())) + ")")
        if self.without_text:
            parts.append(f"{self.without_text:,} stored no text (set telemetry.store_text: true)")
        return "; ".join(parts)


def _served_attempt(record: Any) -> dict[str, Any]:
    """The record's served attempt (its dict), or an empty one."""
    return next((a for a in reversed(record.attempts or []) if a.get("outcome") == "served"), {})


def shadow_labels(records: Iterable[Any], ladder: Ladder) -> ShadowLabels:
    """Items of recorded outcomes from shadow-sampled records (oldest first)."""
    if len(ladder) != 2:
        raise EvalDataError(
            f"a shadow labels only the tier that served and the baseline; this ladder has {len(ladder)} tiers "
            f"({', '.join(ladder.names)}), and calibration needs every tier's outcome per request. Ask every tier "
            "the stored prompts with tiered-router collect --from-db, then calibrate --data")
    baseline = ladder.baseline.name
    lower = next(t.name for t in ladder if t.name != baseline)
    items: list[EvalItem] = []
    out = ShadowLabels(items, 0, 0, 0)
    comparators: set[str] = set()
    for record in records:
        out.records += 1
        if not record.shadowed or record.tier is None or record.tier == baseline:
            continue
        out.shadowed += 1
        if record.tier != lower:  # served on a tier this ladder does not have (an older config)
            out.other_tier[record.tier] = out.other_tier.get(record.tier, 0) + 1
            continue
        served_attempt = _served_attempt(record)
        # labels of another model's answers (the tier's model changed since) say nothing of this
        # one's; read the tier's configured model from its attempt (``model_id`` is the model
        # that answered, which a prompt-router tier names apart from its ARN)
        changed = [f"{tier}: {recorded}" for tier, recorded, now in (
            (lower, served_attempt.get("model_id") or record.model_id, ladder[lower].model_id),
            (baseline, record.baseline_model_id, ladder.baseline.model_id)) if recorded and recorded != now]
        if changed:
            for key in changed:
                out.other_model[key] = out.other_model.get(key, 0) + 1
            continue
        if not record.prompt_text or record.answer_text is None:
            out.without_text += 1
            continue
        prompt = record.prompt_text
        served_in, served_out = served_attempt.get("input_tokens"), served_attempt.get("output_tokens")
        shadow_text = record.shadow_answer_text or ""
        estimated = record.shadow_output_tokens is None
        out.estimated_baseline_tokens += int(estimated)
        served = Outcome(float(record.shadow_score), record.answer_text,
                         int(served_in) if served_in is not None else estimate_tokens(prompt),
                         int(served_out) if served_out is not None else estimate_tokens(record.answer_text or " "),
                         served_in is None or served_out is None)
        reference = Outcome(1.0, shadow_text or None,
                            int(record.shadow_input_tokens) if record.shadow_input_tokens is not None
                            else estimate_tokens(prompt),
                            int(record.shadow_output_tokens) if record.shadow_output_tokens is not None
                            else estimate_tokens(shadow_text or " "), estimated)
        items.append(EvalItem(str(record.request_id), prompt, {lower: served, baseline: reference}))
        out.served_by[record.tier] = out.served_by.get(record.tier, 0) + 1
        if record.shadow_comparator:
            comparators.add(record.shadow_comparator)
    out.comparators = sorted(comparators)
    return out


def write_outcomes(items: Sequence[EvalItem], path: str | Path, *, source: str = "shadow") -> Path:
    """The items as a recorded-outcomes JSONL file (``eval``, ``estimate`` and ``calibrate`` read it)."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            outcomes = {}
            for tier, o in item.outcomes.items():
                entry: dict[str, Any] = {"score": o.score}
                if not o.estimated_tokens:  # estimated counts are left out: the reader estimates them again
                    entry.update(input_tokens=o.input_tokens, output_tokens=o.output_tokens)
                if o.response is not None:
                    entry["response"] = o.response
                outcomes[tier] = entry
            fh.write(json.dumps({"id": item.id, "prompt": item.prompt, "source": source, "outcomes": outcomes},
                                ensure_ascii=False) + "\n")
    return path
