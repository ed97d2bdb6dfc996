"""Reading the structured value out of an answer: one reader for gates, parsers and comparators."""

from __future__ import annotations

import json
import re
from typing import Any

from .types import TierAnswer

__all__ = ["extract_json", "structured_value"]

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The JSON value in an answer: the whole text, a fenced block, or the first {...}/[...]."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for block in _FENCE.findall(text):
        try:
            return json.loads(block.strip())
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                return decoder.raw_decode(text[i:])[0]
            except ValueError:
                continue
    raise ValueError("no JSON value in the answer")


def structured_value(answer: TierAnswer, source: str = "auto") -> Any:
    """The value a structured gate judges: the first tool call's arguments (``tool_args``,
    or ``auto`` when the answer has tool calls), else the JSON in the text."""
    if source == "tool_args" or (source == "auto" and answer.tool_calls):
        if not answer.tool_calls:
            raise ValueError("the answer has no tool call")
        return answer.tool_calls[0].get("args", {})
    return extract_json(answer.text)
