"""Recorded answers, replayed by prompt text.

A replay file is JSONL; each line is a record of one prompt and what each tier (or
model id) answered when it was recorded::

    {"id": "q1", "prompt": "...", "outcomes": {"cheap": {"response": "...",
     "input_tokens": 12, "output_tokens": 30}}}

Lookup is by exact prompt text, then by the text with whitespace collapsed, so a
recorded prompt still matches after a template re-wraps its lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ._errors import ScriptError

__all__ = ["Recorded", "ReplayIndex"]


@dataclass(frozen=True)
class Recorded:
    """One recorded outcome: the answer text and, when known, its token counts."""

    response: str
    input_tokens: int | None = None
    output_tokens: int | None = None


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class ReplayIndex:
    """Recorded outcomes of one file, indexed by prompt."""

    def __init__(self, records: list[tuple[str, dict[str, Recorded]]]):
        self._exact: dict[str, dict[str, Recorded]] = {}
        self._loose: dict[str, dict[str, Recorded]] = {}
        for prompt, outcomes in records:
            self._exact.setdefault(prompt, outcomes)
            self._loose.setdefault(_normalise(prompt), outcomes)

    @classmethod
    def load(cls, path: Path) -> "ReplayIndex":
        """Read a recorded-outcomes JSONL file with the eval harness's reader (grades are
        not needed); a bad line is a ``ScriptError`` naming its line number."""
        from ..analysis.eval.data import EvalDataError, load_outcomes

        try:
            items = load_outcomes(path, labelled=False)
        except EvalDataError as exc:
            where = f"line {exc.line}" if exc.line is not None else ""
            raise ScriptError(f"bad replay record: {exc}", path=where, source=str(path)) from exc
        return cls([(item.prompt, {tier: Recorded(o.response or "", None if o.estimated_tokens else o.input_tokens,
                                                  None if o.estimated_tokens else o.output_tokens)
                                   for tier, o in item.outcomes.items()}) for item in items])

    def lookup(self, prompt: str, key: str) -> Recorded | None:
        """The outcome recorded under ``key`` for this prompt, if any."""
        outcomes = self._exact.get(prompt) or self._loose.get(_normalise(prompt))
        return outcomes.get(key) if outcomes else None

    def __len__(self) -> int:
        return len(self._exact)
