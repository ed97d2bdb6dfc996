"""Read a model's own signal of doubt from its answer.

Three signals, each returning a confidence in [0, 1] or ``None`` when absent:
a self-rating written in the answer ("Confidence: 0.4", "confidence 40%"), an
abstention sentinel ("[[ESCALATE]]", "I don't know") which means 0, and the mean
token probability exp(mean logprob) where the model returns logprobs.
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Sequence

from .types import TierAnswer

__all__ = ["self_rating", "sentinel", "logprob_confidence", "answer_confidence", "DEFAULT_SENTINELS"]

# The word, a short gap, the number. The gap is checked apart (``_GAP``): one bounded,
# lazy run per occurrence, so no answer, however written, makes the search backtrack
# through combinations of optional parts.
_RATING = re.compile(
    r"(?<![^\W_])(?<![^\W_]_)confidence(?P<gap>[^\d\n]{0,40}?)(?:\([^()\n]{0,24}\)(?P<after>[^\d\n]{0,24}?))?"
    r"(?P<value>\d{1,3}(?:[.,]\d+)?|\.\d+)(?P<exponent>[eE][-+]?\d{1,3}\b)?"
    r"\s{0,4}(?:(?P<percent>%)|(?:/|out\s{1,4}of)\s{0,4}(?P<scale>\d{1,3})\b)?",
    re.IGNORECASE)
# what may stand between: spaces and Markdown (``**Confidence:** 0.3``, ``Confidence:
# `0.3` ``), "level", "score" or "rating", a colon or equals sign, "is"; a scale in
# brackets (``Confidence (0-1): 0.3``) is skipped
_GAP = re.compile(r"[\s*_`]*(?:(?:level|score|rating)[\s*_`]*)?[:=\-]?[\s*_`]*(?:is\b[\s*_`]*)?", re.IGNORECASE)
# what models write for an apostrophe besides ASCII's: "I don’t know" abstains as "I don't know" does
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "\uff07": "'"})


def self_rating(text: str) -> float | None:
    """The answer's self-rating, scaled to [0, 1]: "0.4", "40%", "4/5", "7 out of 10",
    "0,4" (a decimal comma); a bare number above 1 is read out of 10 (or of 100 above 10).

    A fenced code block is not read (``confidence = 0.95`` in a snippet is the code's),
    nor a word that only ends in "confidence" (``min_confidence=0.9``). With several ratings the lowest counts: a rating the answer
    quotes or restates ("the format Confidence: 10/10") never raises its own. A rating
    past its scale (11/10, 150 %, 999) is no rating."""
    values = []
    for found in _RATING.finditer(_FENCED.sub(" ", text)):
        gap, after = found.group("gap"), found.group("after")
        if _GAP.fullmatch(gap) and (after is None or _GAP.fullmatch(after)):
            value = _scaled(found)
            if value is not None:
                values.append(value)
    return min(values) if values else None


def _scaled(m: re.Match[str]) -> float | None:
    value = float(m.group("value").replace(",", ".") + (m.group("exponent") or ""))  # "1e-9": about 0, not 1
    scale = int(m.group("scale")) if m.group("scale") else None
    if m.group("percent"):
        value /= 100
    elif scale is not None:
        if scale == 0:
            return None
        value /= scale
    elif value > 1:
        value = value / 10 if value <= 10 else value / 100
    return value if 0.0 <= value <= 1.0 else None


# code the answer quotes: a sentinel there is the code's (a program that prints "I don't
# know", a constant named "[[ESCALATE]]"), not the model abstaining
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
# a rating may sit in inline code ("Confidence: `0.3`"); a fenced block is a program's
_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)


def sentinel(text: str, sentinels: Iterable[str]) -> float | None:
    """0 when the answer abstains with one of the sentinels (case and the apostrophe's
    form aside), else ``None``. Code blocks and inline code are not read."""
    lowered = _CODE.sub(" ", text).translate(_APOSTROPHES).casefold()
    return 0.0 if any(s.translate(_APOSTROPHES).casefold() in lowered for s in sentinels if s) else None


def logprob_confidence(logprobs: Sequence[float] | None) -> float | None:
    """exp(mean logprob): the geometric-mean probability of the answer's tokens. A value
    that is no log-probability (NaN, infinite, above 0) is left out: a NaN spread through
    a trained verifier's sum and passed every answer."""
    usable = [min(0.0, lp) for lp in logprobs or () if isinstance(lp, (int, float)) and math.isfinite(lp)
              and lp <= 1e-6]
    if not usable:
        return None
    return math.exp(sum(usable) / len(usable))


# The abstentions a confidence signal reads by default: the ``confidence`` gate's default
# ``sentinels``, and the only ones the calibrated confidence strategy and the eval harness
# read, so a strategy is measured on the signal it will act on.
DEFAULT_SENTINELS = ("[[ESCALATE]]", "I don't know", "I am not sure")


def answer_confidence(answer: TierAnswer, signal: str = "any",
                      sentinels: Iterable[str] = DEFAULT_SENTINELS) -> tuple[float | None, str]:
    """The answer's confidence by ``signal`` (``any`` takes the lowest found) and its source."""
    found: list[tuple[float, str]] = []
    if signal in ("any", "sentinel"):
        value = sentinel(answer.text, sentinels)
        if value is not None:
            found.append((value, "sentinel"))
    if signal in ("any", "self_rating"):
        value = self_rating(answer.text)
        if value is not None:
            found.append((value, "self_rating"))
    if signal in ("any", "logprobs"):
        value = logprob_confidence(answer.logprobs)
        if value is not None:
            found.append((value, "logprobs"))
    if not found:
        return None, "none"
    return min(found)
