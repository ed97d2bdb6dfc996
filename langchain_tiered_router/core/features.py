"""What a learned router reads: features of a prompt, and of an answer a tier gave to it.

Three families, each switchable (``FeatureSpec``) so the benchmark can say which help
on which data:

* ``tokens``: counts of the tokenizer's unigrams and bigrams, hashed into a fixed
  space (the lexical signal: "integral", "JSON", a subject header);
* ``embedding``: the mean static token vector (``core.embedding``): meaning that
  carries to tasks the router never saw;
* ``signals``: a few numbers a reader would look at: lengths, digits, LaTeX, code;
  for an answer, whether it states a final answer, hedges or abstains, loops, rates its
  own confidence, gets its own arithmetic wrong, and agrees with the previous tier.

Every text is read through a bounded view (its head and its tail), so a decision costs
the same for a 1k- and a 100k-character prompt.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .answers import agree, final_answer
from .arrays import distinct_counts, unit
from .arithmetic import evaluate_arithmetic
from .confidence import logprob_confidence, self_rating
from .embedding import load_embedding

__all__ = ["FeatureSpec", "FeatureRow", "bounded_view", "prompt_row", "answer_row", "prompt_signals",
           "answer_signals", "PROMPT_SIGNALS", "ANSWER_SIGNALS"]

PROMPT_SIGNALS = ("log_chars", "digit_share", "numbers", "questions", "lines", "latex", "code", "braces")
ANSWER_SIGNALS = ("log_chars", "length_ratio", "repetition", "hedges", "abstains", "no_final_answer",
                  "valid_json", "calc_checked", "calc_wrong", "answer_follows_calc", "self_rating",
                  "has_self_rating", "logprob_conf", "has_logprobs", "has_previous", "agrees_previous",
                  "prompt_numbers_used", "final_is_integer")

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# The same matches without the sign, which only ever extends a match to the left: as
# many of them, found three times faster (the optional sign is tried at every position).
_UNSIGNED_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_HEDGE = re.compile(r"\b(assum\w*|approximately|not sure|unclear|cannot|can't|guess|maybe|perhaps|unsure|"
                    r"might|possibly|i think|wait|actually|mistake|re-?evaluate|recheck|let me re\w*)\b")
_ABSTAIN = re.compile(r"(i don't know|i do not know|cannot be determined|not enough information|unable to "
                      r"(?:answer|determine|solve)|\[\[escalate\]\]|i'm not sure|i am not sure)", re.IGNORECASE)
_ANNOTATED = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_INLINE = re.compile(r"((?:-?\d[\d,]*(?:\.\d+)?\s*[-+*/x]\s*)+-?\d[\d,]*(?:\.\d+)?)\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)")
_P1, _P2, _P3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)
_SHIFT = np.uint64(20)


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature families a model uses and how texts are bounded; saved with the model."""

    tokens: bool = True
    embedding: bool = True
    signals: bool = True
    hash_dims: int = 2 ** 16
    head_chars: int = 2_000
    tail_chars: int = 1_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSpec":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def dense_layout(self, with_answer: bool) -> list[tuple[str, int]]:
        """The dense block's parts in order: ("embedding" | "signals", width)."""
        parts: list[tuple[str, int]] = []
        for signals in ((PROMPT_SIGNALS, ANSWER_SIGNALS) if with_answer else (PROMPT_SIGNALS,)):
            if self.embedding:
                parts.append(("embedding", load_embedding().dims))
            if self.signals:
                parts.append(("signals", len(signals)))
        return parts

    def dense_width(self, with_answer: bool) -> int:
        return sum(width for _, width in self.dense_layout(with_answer))


@dataclass
class FeatureRow:
    """Sparse hashed counts (indices, values) and a dense block, for one text or pair."""

    idx: np.ndarray
    val: np.ndarray
    dense: np.ndarray
    _stacked: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def stacked(self, width: int, dense_width: int) -> tuple[np.ndarray, np.ndarray]:
        """The row as indices and values into a weight matrix whose rows are ``width``
        sparse features, then ``dense_width`` dense columns, then a bias (value 1): one
        gather reads every weight it needs (``learned.HeadStack``, whose owner checks that
        ``width`` is the hashing's). Two numpy calls, made once per layout; a dense block
        of another width fails the product that reads it."""
        key = (width, dense_width)
        out = self._stacked.get(key)
        if out is None:  # heads without sparse (or dense) weights ignore that part of the row
            tail = _STACKED_TAILS.get(key)
            if tail is None:
                tail = _STACKED_TAILS[key] = np.arange(width, width + dense_width + 1, dtype=np.int64)
            out = self._stacked[key] = (
                np.concatenate((self.idx, tail)) if width else tail,
                np.concatenate(((self.val, self.dense, _ONE) if width else (self.dense, _ONE)) if dense_width
                               else ((self.val, _ONE) if width else (_ONE,))))
        return out


# per layout: the indices of the dense columns and of the bias
_STACKED_TAILS: dict[tuple[int, int], np.ndarray] = {}
_ONE = np.ones(1, dtype=np.float64)


def bounded_view(text: str, head: int, tail: int) -> str:
    """The first ``head`` and last ``tail`` characters: what a decision may read."""
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n...\n" + text[-tail:] if tail else text[:head]


def _hashed_tokens(ids: np.ndarray, salt: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Unigram and bigram counts of token ids, hashed into ``dims`` (a power of two).

    A unigram's key is ``(id * P1 + salt * P3) >> 20``, a bigram's
    ``(a * P1 ^ b * P2 ^ (salt + 1) * P3) >> 20``, both modulo 2**64 and masked to
    ``dims``; written in place into one array, in a third of the numpy calls."""
    if ids.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    unigram_salt, bigram_salt, mask = _hash_constants(salt, dims)
    u = ids.astype(np.uint64)
    n = u.size
    keys = np.empty(2 * n - 1, np.uint64)
    spread = u * _P1  # uint64 arrays wrap around silently (only numpy scalars warn)
    np.add(spread, unigram_salt, out=keys[:n])
    bigrams = keys[n:]
    np.multiply(u[1:], _P2, out=bigrams)
    bigrams ^= spread[:-1]
    bigrams ^= bigram_salt
    keys >>= _SHIFT
    keys &= mask  # below dims: int64 reads the same values
    idx, counts = distinct_counts(keys.view(np.int64))
    return idx, unit(np.log1p(counts).astype(np.float32))


@functools.lru_cache(maxsize=64)
def _hash_constants(salt: int, dims: int) -> tuple[np.uint64, np.uint64, np.uint64]:
    """``salt * P3``, ``(salt + 1) * P3`` modulo 2**64, and the mask of ``dims``."""
    return (np.uint64(salt * int(_P3) % 2**64), np.uint64((salt + 1) * int(_P3) % 2**64),
            np.uint64(dims - 1))


def _digits(text: str) -> int:
    """How many characters are digits (``str.isdigit``), counted in C: the ASCII digits,
    then each distinct non-ASCII character that is a digit (superscripts, other scripts)."""
    count = sum(map(text.count, "0123456789"))
    if not text.isascii():
        count += sum(text.count(c) for c in set(text) if not c.isascii() and c.isdigit())
    return count


def _numbers(text: str, at_most: int) -> int:
    """How many numbers the text holds, counted up to ``at_most`` (a bounded view: one
    ``findall`` in C costs less than stopping early in Python)."""
    return min(len(_UNSIGNED_NUMBER.findall(text)), at_most)


def prompt_signals(text: str) -> list[float]:
    n = max(1, len(text))
    return [math.log1p(len(text)) / 8, _digits(text) / n,
            _numbers(text, 50) / 10, min(text.count("?"), 9) / 3,
            math.log1p(text.count("\n")) / 4, min(text.count("\\"), 100) / 20,
            float("```" in text or "def " in text or "{\n" in text), float("{" in text and "}" in text)]


def _repetition(text: str) -> float:
    words = text.split()
    if len(words) < 20:
        return 0.0
    grams = [" ".join(words[i:i + 4]) for i in range(len(words) - 3)]
    return 1 - len(set(grams)) / len(grams)


def _calculations(answer: str) -> tuple[int, int, float | None]:
    """(calculations checked, wrong ones, last computed value) in a worked answer."""
    checked = wrong = 0
    last = None
    for expr, claimed in _ANNOTATED.findall(answer) + _INLINE.findall(answer):
        value = evaluate_arithmetic(expr)
        try:
            said = float(claimed.strip().lstrip("$").replace(",", "").rstrip("."))
        except ValueError:
            continue
        if value is None:
            continue
        checked += 1
        wrong += abs(value - said) > 1e-6 * max(1.0, abs(said)) + 1e-9
        last = said
    return checked, wrong, last


def _valid_json(text: str) -> float:
    start, end = text.find("{"), text.rfind("}")
    if not 0 <= start < end:
        return 0.0
    try:
        json.loads(text[start:end + 1])
    except ValueError:
        return 0.0
    return 1.0


def answer_signals(prompt: str, answer: str, *, logprobs: list[float] | None = None,
                   previous: str | None = None) -> list[float]:
    """Generic signals of a reply's quality; ``answer`` is already a bounded view."""
    lowered = answer.lower()
    final = final_answer(answer)
    checked, wrong, last = _calculations(answer)
    numbers = _NUMBER.findall(answer)
    try:
        last_number = float(numbers[-1].replace(",", "")) if numbers else None
    except ValueError:
        last_number = None
    follows = last is not None and last_number is not None and abs(last - last_number) <= 1e-6 * max(1.0, abs(last))
    rating = self_rating(answer)
    conf = logprob_confidence(logprobs)
    return [math.log1p(len(answer)) / 8, (math.log1p(len(answer)) - math.log1p(len(prompt))) / 4,
            3 * _repetition(answer), min(len(_HEDGE.findall(lowered)), 20) / 3,
            3 * float(bool(_ABSTAIN.search(answer))), 3 * float(final is None), _valid_json(answer),
            float(checked > 0), 3 * float(wrong > 0), 3 * float(follows),
            rating if rating is not None else 0.0, float(rating is not None),
            conf if conf is not None else 0.0, float(conf is not None),
            float(previous is not None), 3 * float(previous is not None and agree(answer, previous)),
            _numbers_used(prompt, numbers), float(final is not None and _is_integer(final))]


def _numbers_used(prompt: str, answer_numbers: list[str]) -> float:
    """The share of the prompt's distinct numbers that the answer works with."""
    given = {n.replace(",", "") for n in _NUMBER.findall(prompt)}
    if not given:
        return 1.0
    used = {n.replace(",", "") for n in answer_numbers}
    return len(given & used) / len(given)


def _is_integer(final: str) -> bool:
    try:
        return float(final).is_integer()
    except ValueError:
        return False


def _text_block(spec: FeatureSpec, text: str, salt: int) -> tuple[tuple[np.ndarray, np.ndarray], list[np.ndarray], str]:
    view = bounded_view(text, spec.head_chars, spec.tail_chars)
    sparse: tuple[np.ndarray, np.ndarray] = (np.empty(0, np.int64), np.empty(0, np.float32))
    dense: list[np.ndarray] = []
    if spec.tokens or spec.embedding:
        emb = load_embedding()
        ids = emb.token_ids(view)
        if spec.tokens:
            sparse = _hashed_tokens(ids, salt, spec.hash_dims)
        if spec.embedding:
            dense.append(emb.pool(ids))
    return sparse, dense, view


def prompt_row(spec: FeatureSpec, prompt: str, dense_dtype: Any = np.float32) -> FeatureRow:
    """``dense_dtype`` float64 gives the run time's rows: the same values, in the type of
    the weights they meet (float32 keeps training matrices small)."""
    (idx, val), dense, view = _text_block(spec, prompt, 1)
    if spec.signals:
        dense.append(np.asarray(prompt_signals(view), dtype=np.float32))
    return FeatureRow(idx, val, np.concatenate(dense, dtype=dense_dtype) if dense else np.empty(0, dense_dtype))


def answer_row(spec: FeatureSpec, prompt: str, answer: str, *, logprobs: list[float] | None = None,
               previous: str | None = None, prompt_features: FeatureRow | None = None) -> FeatureRow:
    """The prompt's features (``prompt_features`` when already read) followed by the
    answer's (and its agreement with ``previous``)."""
    p = prompt_features if prompt_features is not None else prompt_row(spec, prompt)
    (idx, val), dense, view = _text_block(spec, answer, 7)
    if spec.signals:
        prev = bounded_view(previous, spec.head_chars, spec.tail_chars) if previous is not None else None
        dense.append(np.asarray(answer_signals(bounded_view(prompt, spec.head_chars, spec.tail_chars), view,
                                               logprobs=logprobs, previous=prev), dtype=np.float32))
    both_idx = np.concatenate([p.idx, idx])
    both_val = np.concatenate([p.val, val])
    if both_idx.size and np.unique(both_idx).size != both_idx.size:  # prompt and answer hashed into one bucket
        merged, inverse = np.unique(both_idx, return_inverse=True)
        both_val = np.bincount(inverse, weights=both_val).astype(np.float32)
        both_idx = merged
    return FeatureRow(both_idx, both_val, np.concatenate([p.dense, *dense]))
