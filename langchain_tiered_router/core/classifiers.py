"""Classifiers predict the starting tier of a request before any answer exists.

Three kinds: keyword/length rules (free, instant), a trained text model loaded from a
file (``tiered-router calibrate`` writes it; sub-millisecond on CPU), and an LLM that
the cheapest tier answers with a tier name (one priced call).

A decision costs the same at any prompt length: rules look for their keywords in the
head and the tail of the text (``KEYWORD_HEAD_CHARS`` + ``KEYWORD_TAIL_CHARS``), as the
trained model reads a bounded view of it; length rules read the whole length.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

from .errors import ConfigError, TierCallError
from .tiers import Ladder
from .types import AskFn, RouteRequest

__all__ = ["TierChoice", "Classifier", "RulesClassifier", "Rule", "TrainedClassifier", "LLMClassifier",
           "KEYWORD_HEAD_CHARS", "KEYWORD_TAIL_CHARS"]

# Where keyword rules look: a question is asked at the start of a turn or after the long
# context it comes with, so the first and the last characters of it.
log = logging.getLogger("langchain_tiered_router")

KEYWORD_HEAD_CHARS = 8_000
KEYWORD_TAIL_CHARS = 4_000


@dataclass
class TierChoice:
    tier: str
    reason: str
    score: float | None = None


class Classifier(ABC):
    """Predicts a tier name for a request."""

    name: str = "classifier"

    @abstractmethod
    def classify(self, request: RouteRequest, ladder: Ladder, ask: AskFn | None) -> TierChoice:
        ...


@dataclass
class Rule:
    tier: str
    keywords: Sequence[str] = ()
    min_chars: int | None = None
    max_chars: int | None = None
    _each: list[tuple[str, str, re.Pattern[str]]] = field(default_factory=list, init=False, repr=False,
                                                          compare=False)

    def __post_init__(self) -> None:
        self._each = [(original, w, token_pattern(w)) for original, w in ((k, k.casefold()) for k in self.keywords)]

    def matches(self, text: str) -> str | None:
        return self._match(len(text), _Lowered(text))

    def _match(self, n: int, lowered: "_Lowered") -> str | None:
        if self.min_chars is not None and n < self.min_chars:
            return None
        if self.max_chars is not None and n > self.max_chars:
            return None
        if not self._each:
            return f"length {n}"
        view = lowered.view
        for original, word, pattern in self._each:  # the first listed keyword found is named
            if _found(view, word, pattern):
                return f"keyword {original!r}"
        return None


class _Lowered:
    """The lower-cased keyword view of one text, made once for all the rules that need it."""

    def __init__(self, text: str):
        self.text = text
        self._view: str | None = None

    @property
    def view(self) -> str:
        if self._view is None:
            self._view = _keyword_view(self.text).casefold()  # "STRASSE" finds "straße"
        return self._view


# Occurrences of a keyword checked one by one before one regex scan takes over the rest.
_CANDIDATES = 16


# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, CJK, kana,
# half-width katakana, and the CJK planes. Their letters bound no word.
_UNSPACED = ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\uf900-\ufaff\uff66-\uff9f"
             "\U00020000-\U0003ffff")
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
_SPACED_WORD = f"[^\\W{_UNSPACED}]"  # a letter, digit or _ of a spaced script


def token_pattern(word: str) -> re.Pattern[str]:
    """``word`` as a whole token: not inside a longer word ("prove" not in "improve").
    Only a letter or digit of a script written with spaces makes a boundary, on either
    side: ``\\b`` on both ends never matched ``C++``, ``.NET`` or ``why?`` (no word
    boundary after a ``+`` that a space follows), a Chinese keyword in unspaced text, nor
    "python" in "用Python写"."""
    left = f"(?<!{_SPACED_WORD})" if _spaced_word_char(word[:1]) else ""
    right = f"(?!{_SPACED_WORD})" if _spaced_word_char(word[-1:]) else ""
    return re.compile(left + re.escape(word) + right)


def _spaced_word_char(ch: str) -> bool:
    """A letter, digit or ``_`` of a script that separates words with spaces."""
    return bool(ch) and (ch.isalnum() or ch == "_") and not _UNSPACED_CHAR.match(ch)


def _found(view: str, word: str, pattern: re.Pattern[str]) -> bool:
    """Whether ``pattern`` (``word`` as a whole token, ``token_pattern``) occurs in ``view``.

    A regex match can only start where the literal ``word`` does, so ``str.find`` (tens
    of times faster than a regex scan of the same text) finds the candidates and the
    pattern is tried at each; a word that occurs often inside other words ("prove" in
    "improve") hands the rest of the text to one scan, so the cost stays bounded."""
    at = view.find(word)
    for _ in range(_CANDIDATES):
        if at < 0:
            return False
        if pattern.match(view, at):
            return True
        at = view.find(word, at + 1)
    return at >= 0 and pattern.search(view, at) is not None


def _keyword_view(text: str) -> str:
    """The part of a text keyword rules read: its head and its tail."""
    if len(text) <= KEYWORD_HEAD_CHARS + KEYWORD_TAIL_CHARS:
        return text
    return text[:KEYWORD_HEAD_CHARS] + "\n" + text[-KEYWORD_TAIL_CHARS:]


class RulesClassifier(Classifier):
    """First matching rule wins; otherwise ``default_tier`` (the cheapest by default)."""

    name = "rules"

    def __init__(self, rules: Sequence[Rule], default_tier: str | None = None):
        self.rules = list(rules)
        self.default_tier = default_tier

    def classify(self, request, ladder, ask=None) -> TierChoice:
        text = request.text
        lowered = _Lowered(text)
        for i, rule in enumerate(self.rules):
            why = rule._match(len(text), lowered)
            if why:
                return TierChoice(rule.tier, f"rules[{i}]: {why}")
        return TierChoice(self.default_tier or ladder.cheapest.name, "rules: no rule matched")


class TrainedClassifier(Classifier):
    """A model file from ``tiered-router calibrate``; loaded once, on first use.

    ``threshold`` overrides the calibrated exchange rate lambda (quality per unit of
    predicted cost): lower starts more requests on stronger tiers."""

    name = "trained"

    def __init__(self, path: str, threshold: float | None = None):
        self.path = path
        self.threshold = threshold
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from .model_file import load_routing_model

            model = load_routing_model(self.path)
            if not model.quality or not model.uses_classifier:
                # a cascade's file has prompt heads too, but its operating point (lambda) was
                # certified for escalations, not for start decisions
                raise ConfigError(f"{self.path} holds a {model.strategy} model, which was not calibrated to pick a "
                                  "start tier; use it with policy: {kind: auto, path: ...}")
            self._model = model
        return self._model

    def classify(self, request, ladder, ask=None) -> TierChoice:
        tier, reason, score = self.model.choose_start(request.text, ladder, self.threshold)  # checks the ladder
        return TierChoice(tier, reason, score)


_LLM_PROMPT = (
    "Decide which model tier should answer the request below. Tiers, cheapest first: {tiers}. "
    "Pick the cheapest tier that will answer it correctly: simple lookups, extraction and "
    "classification need the cheapest; multi-step reasoning, maths, code and long writing need "
    "stronger tiers. Reply with the tier name only.\n\nREQUEST:\n{request}\n\nTIER:"
)


class LLMClassifier(Classifier):
    """Asks a (cheap) tier for a tier name; an unreadable reply, or a call that failed
    after its retries, starts at ``default_tier`` (the cheapest by default): the
    classifier only saves money, it must not cost the request its answer."""

    name = "llm"

    def __init__(self, tier: str | None = None, prompt: str | None = None, default_tier: str | None = None):
        self.tier = tier
        self.prompt = prompt or _LLM_PROMPT
        self.default_tier = default_tier

    def classify(self, request, ladder, ask=None) -> TierChoice:
        if ask is None:
            raise RuntimeError("the LLM classifier needs the engine's ask function")
        tier = self.tier or ladder.cheapest.name
        try:
            reply = ask("classifier", tier, self._prompt(request, ladder))
        except TierCallError as exc:  # retried as a tier call is; the request goes on without a label
            return self._without_label(request, ladder, tier, exc)
        return self.parse(reply.text, ladder, self.default_tier)

    async def aclassify(self, request, ladder, aask) -> TierChoice:
        """``classify`` on an event loop: the call made with ``aask`` (the backend's own
        pool, its tier's timeout and the request's deadline)."""
        tier = self.tier or ladder.cheapest.name
        try:
            reply = await aask("classifier", tier, self._prompt(request, ladder))
        except TierCallError as exc:
            return self._without_label(request, ladder, tier, exc)
        return self.parse(reply.text, ladder, self.default_tier)

    def _prompt(self, request, ladder) -> str:
        return self.prompt.format(tiers=", ".join(ladder.names), request=request.text)

    def _without_label(self, request, ladder, tier: str, exc: TierCallError) -> TierChoice:
        start, kind = self.default_tier or ladder.cheapest.name, getattr(exc, "kind", type(exc).__name__)
        log.warning("the LLM classifier's call on tier %s failed (%s); request %s starts at %s",
                    tier, kind, request.request_id, start)
        return TierChoice(start, f"llm: classifier call failed ({kind}): {str(exc)[:120]}")

    @staticmethod
    def parse(text: str, ladder: Ladder, default_tier: str | None = None) -> TierChoice:
        """The tier the reply names, as whole words ("pyramid" is not "mid", "cheapest" not
        "cheap", "large" not the end of "x-large"): the name it opens with (the prompt asks
        for the name alone: "mid (cheap is too weak)"), else the last it names (a model
        that reasons first concludes: "Not cheap. This needs frontier")."""
        folded = text.casefold()
        spans = [(m.start(), m.end(), name) for name in ladder.names
                 for m in token_pattern(name.casefold()).finditer(folded)]
        # a name inside another's span is part of that name
        hits = sorted((a, b, n) for a, b, n in spans
                      if not any(a2 <= a and b <= b2 and (a2, b2) != (a, b) for a2, b2, _ in spans))
        if not hits:
            # the reason is recorded whatever store_text says: no word of the reply, which
            # tends to restate the request
            return TierChoice(default_tier or ladder.cheapest.name,
                              f"llm: unreadable label (a {len(text)}-character reply naming no tier)")
        first = hits[0]
        opening = not folded[:first[0]].strip(" \t\n`'\"*:.-([")
        name = first[2] if opening else hits[-1][2]
        return TierChoice(name, f"llm: said {name!r}")
