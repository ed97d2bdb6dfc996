"""Reading the structured value out of an answer: one reader for gates, parsers and comparators.

An answer is input from a model, so reading it is bounded: at most ``MAX_JSON_CHARS``
characters, at most ``MAX_CANDIDATES`` places tried for an embedded value (each a
linear C-speed decode from that offset, with no copy of the text), and at most
``MAX_DEPTH`` levels of nesting. 1 MB of ``{`` is refused in milliseconds, not
parsed in quadratic time.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from .types import TierAnswer

__all__ = ["extract_json", "structured_value", "check_depth", "unstringify_args", "MAX_JSON_CHARS", "MAX_DEPTH"]

MAX_JSON_CHARS = 1_000_000
MAX_CANDIDATES = 32
MAX_FENCES = 8
MAX_DEPTH = 100

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_OPENER = re.compile(r"[{\[]")
def _no_constant(name: str) -> Any:
    """NaN and Infinity are Python's JSON, not JSON: ``{"total": NaN}`` passed ``type: number``."""
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


class _TooDeep(ValueError):
    pass


def check_depth(value: Any, limit: int = MAX_DEPTH) -> Any:
    """``value`` if it nests at most ``limit`` levels (checked without recursion), else ``ValueError``."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                raise _TooDeep(f"JSON nested deeper than {limit} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value


def _decode(text: str, start: int = 0, whole: bool = False) -> Any:
    try:
        value = _DECODER.decode(text) if whole else _DECODER.raw_decode(text, start)[0]
    except RecursionError:
        raise _TooDeep("JSON nested too deeply to read") from None
    if len(text) - start <= MAX_DEPTH or text.count("{", start) + text.count("[", start) <= MAX_DEPTH:
        return value  # too few brackets to nest deeper: no walk over the value (the usual answer)
    return check_depth(value)


def extract_json(text: str, *, embedded: bool = True) -> Any:
    """The JSON value in an answer: the whole text, a fenced block, or the first {...}/[...].

    ``embedded=False`` reads it as a JSON parser of a model's answer does (LangChain's
    ``JsonOutputParser``): the whole text, a fenced block, or a value the text starts
    with (a note after it ignored), never one after prose: a gate that passed
    ``Sure! {...}`` served an answer the client's parser then refused."""
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"answer of {len(text)} characters is too long to read as JSON (limit {MAX_JSON_CHARS})")
    text = text.strip()
    try:
        return _decode(text, whole=True)
    except _TooDeep:
        raise
    except ValueError:
        pass
    for n, match in enumerate(_FENCE.finditer(text)):
        if n >= MAX_FENCES:
            break
        try:
            return _decode(match.group(1).strip(), whole=True)
        except _TooDeep:
            raise
        except ValueError:
            continue
    if not embedded:
        if text.startswith("```"):  # a fence never closed (the answer cut short), as the parser reads it
            text = text[3:]
            text = (text[4:] if text[:4].lower() == "json" else text).lstrip()
        if text[:1] not in ("{", "["):
            if _OPENER.search(text) is None:
                raise ValueError("no JSON value in the answer")
            raise ValueError("no JSON at the start of the answer nor in a fenced block (JSON after prose is not "
                             "what a JSON parser reads)")
        try:
            return _decode(text, 0)
        except _TooDeep:
            raise
        except ValueError:
            raise ValueError("the JSON the answer starts with does not parse") from None
    for n, match in enumerate(_OPENER.finditer(text)):
        if n >= MAX_CANDIDATES:
            break
        try:
            return _decode(text, match.start())
        except _TooDeep:
            raise
        except ValueError:
            continue
    raise ValueError("no JSON value in the answer")


def structured_value(answer: TierAnswer, source: str = "auto", *, embedded: bool = True) -> Any:
    """The value a structured gate judges: the first tool call's arguments (``tool_args``,
    or ``auto`` when the answer has tool calls), else the JSON in the text (``extract_json``)."""
    if source == "tool_args" or (source == "auto" and answer.tool_calls):
        if not answer.tool_calls:
            raise ValueError("the answer has no tool call")
        return check_depth(answer.tool_calls[0].get("args", {}))
    return extract_json(answer.text, embedded=embedded)


_DECLARED = {"array": list, "object": dict}


def unstringify_args(args: dict[str, Any], properties: Mapping[str, Any] | None) -> dict[str, Any]:
    """Tool-call arguments with each array or object that the model sent as a JSON string
    decoded; ``args`` itself when nothing needed it.

    Some models (Claude on Bedrock among them) send ``{"items": "[{...}]"}`` for an array
    argument; langchain-aws's structured-output parsers decode such values, so a gate that
    judges what the parser will return decodes them too. A value wrapped in an object
    under its own key (``{"items": [...]}``) is unwrapped; a string that decodes to
    anything else stays as it was, for the schema to judge."""
    if not properties:
        return args
    fixed: dict[str, Any] | None = None
    for key, value in args.items():
        declared = properties.get(key)
        if not isinstance(value, str) or not isinstance(declared, dict):
            continue
        kinds = declared.get("type")
        wanted = tuple(_DECLARED[k] for k in ((kinds,) if isinstance(kinds, str) else kinds or ()) if k in _DECLARED)
        if not wanted or len(value) > MAX_JSON_CHARS or value.lstrip()[:1] not in ("[", "{"):
            continue
        try:
            loaded = _decode(value.strip(), whole=True)
        except ValueError:
            continue
        if not isinstance(loaded, wanted) and isinstance(loaded, dict) and isinstance(loaded.get(key), wanted):
            loaded = loaded[key]
        if isinstance(loaded, wanted):
            fixed = dict(args) if fixed is None else fixed
            fixed[key] = loaded
    return args if fixed is None else fixed
