"""The demo's quality gates: cheap checks that catch malformed answers, not wrong ones.

``check_task`` reads the task from the prompt's instruction (JSON extraction,
one-word classification, number-only answer, a final ``Answer:`` line) and checks
the answer's form. ``check_gsm8k`` is a verifier for recorded GSM8K answers: the
final answer must be a whole number, every ``<<a*b=c>>`` calculator annotation must
be arithmetically right, and the last one must equal the final answer. Both are ``rule`` gates
(``fn(question, answer) -> (passed, reason)``).
"""

from __future__ import annotations

import re

from ..core.arithmetic import evaluate_arithmetic
from ..core.json_answer import extract_json
from ..core.telemetry.comparators import final_number

__all__ = ["check_task", "check_gsm8k"]

_LABELS = {"positive", "negative", "neutral"}


def check_task(question: str, answer: str) -> tuple[bool, str]:
    text = answer.strip()
    if "as JSON" in question:
        try:
            data = extract_json(text)
        except ValueError:
            return False, "not valid JSON"
        if not isinstance(data, dict) or not {"name", "city", "age"} <= set(data):
            return False, "JSON lacks name, city or age"
        if not isinstance(data["age"], int) or not isinstance(data["name"], str) or not isinstance(data["city"], str):
            return False, "JSON fields have the wrong types"
        return True, "valid JSON with the fields asked for"
    if "Classify the sentiment" in question:
        label = text.strip(".").lower()
        return (label in _LABELS, f"label {label!r}" if label in _LABELS else "not exactly one label")
    if "Answer with the number only" in question:
        ok = re.fullmatch(r"-?\d+(?:\.\d+)?", text) is not None
        return ok, "a number" if ok else "not a bare number"
    if "Answer: <number>" in question:
        ok = re.search(r"^Answer:\s*-?\d+(?:\.\d+)?\s*$", text, re.M) is not None
        return ok, "has a final Answer line" if ok else "no final 'Answer: <number>' line"
    return True, "no check for this task"


def check_gsm8k(question: str, answer: str) -> tuple[bool, str]:
    """GSM8K answers are whole numbers reached by the last calculation shown."""
    final = final_number(answer)
    if final is None or not re.search(r"####|answer", answer, re.I):
        return False, "no final answer"
    if final != int(final):
        return False, "final answer is not a whole number"
    results = []
    for expr, value in re.findall(r"<<([^=<>]+)=([^<>]+)>>", answer):
        computed = evaluate_arithmetic(expr)
        claimed = evaluate_arithmetic(value.strip().rstrip(".").lstrip("$"))
        claimed = final_number(value) if claimed is None else claimed
        if computed is None or claimed is None:
            continue
        if abs(computed - claimed) > 1e-6 * max(1.0, abs(claimed)):
            return False, f"arithmetic slip: {expr} is not {value}"
        results.append(computed)
    if not results:
        return False, "no checkable working"
    if abs(final - results[-1]) > 1e-6 * max(1.0, abs(final)):
        return False, "final answer is not the last computed value"
    return True, "final answer follows from checked working"
