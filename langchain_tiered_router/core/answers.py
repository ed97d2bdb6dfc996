"""Read the final answer out of a model's reply, so two replies can be compared.

Models end their work in a few common shapes: a JSON ``"answer"`` field, a LaTeX
``\\boxed{...}``, GSM8K's ``#### 42``, an "Answer: ..." line, or simply a last number.
``final_answer`` takes the last of the most explicit shape present and normalises it
(spacing, ``$``, thousands separators, numbers as floats), so ``agree`` can tell whether
two tiers (or two samples) reached the same result. It reads the text only: no task
knowledge, no grader.
"""

from __future__ import annotations

import re

__all__ = ["final_answer", "agree", "normalise_answer"]

_JSON_QUOTED = re.compile(r'"answer"\s*:\s*"((?:[^"\\]|\\.)*)"')
_JSON_BARE = re.compile(r'"answer"\s*:\s*([^,}\n"][^,}\n]*)')
_HASHES = re.compile(r"####\s*(.+)")
_SAID = re.compile(r"(?:final answer|answer)\s*(?:is\b\s*:?|:)\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_CLAUSE = re.compile(r"\.\s|\.$|;|\n| because | since | so ")
_FRAC = re.compile(r"\\[dt]frac")
_MAX_CHARS = 60_000  # the end of a reply holds its answer; a looping reply is cut here


def normalise_answer(raw: str) -> str:
    text = raw.strip().strip(".").replace("$", "").replace("\\!", "").replace(",", "")
    text = _FRAC.sub(r"\\frac", "".join(text.split())).lower()
    try:
        return repr(float(text))
    except ValueError:
        return text


def _boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start + len("\\boxed{"): i - 1] if depth == 0 else None


def final_answer(text: str | None) -> str | None:
    """The reply's final answer, normalised; ``None`` when the reply has none."""
    return _read(text)[0]


def _read(text: str | None) -> tuple[str | None, bool]:
    """(the final answer, whether the reply states it: an explicit shape or a number, not
    only its last line, which ``final_answer`` falls back to)."""
    if not text:
        return None, False
    text = text[-_MAX_CHARS:]
    for pattern in (_JSON_QUOTED, _JSON_BARE):
        hits = pattern.findall(text)
        if hits:
            return normalise_answer(hits[-1]), True
    boxed = _boxed(text)
    if boxed is not None:
        return normalise_answer(boxed), True
    for pattern in (_HASHES, _SAID):
        hits = pattern.findall(text)
        if hits:
            value = hits[-1][:80]
            return normalise_answer(_said_value(value) if pattern is _SAID else value), True
    numbers = _NUMBER.findall(text)
    if numbers:
        return normalise_answer(numbers[-1]), True
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (normalise_answer(lines[-1][:80]) if lines else None), False


def _said_value(value: str) -> str:
    """What an "Answer: ..." line says: its one number ("18 dollars" is 18), or, when its
    first clause holds several ("1/2", "(2, 3)", "x = 2, y = 3", "3:30"), that clause
    whole: its first number alone made 1/2 and 1/3 the same answer."""
    clause = _CLAUSE.split(value, maxsplit=1)[0]
    numbers = _NUMBER.findall(clause)
    if len(numbers) > 1 and len(clause) <= 40:
        return clause
    found = numbers or _NUMBER.findall(value)
    return found[0] if found else value


def agree(a: str | None, b: str | None) -> bool:
    """Both replies state a final answer (explicitly, or as a number) and it is the same.
    Two replies with neither (two refusals, two "I don't know") do not agree: there is no
    answer to agree on."""
    (fa, stated_a), (fb, stated_b) = _read(a), _read(b)
    return fa is not None and fa == fb and stated_a and stated_b
