"""Plausible tool arguments from a JSON schema and the user's words.

No model behind the emulator, so a tool call's arguments are synthesised: numbers in
the user's message fill integer/number fields in order, quoted phrases fill string
fields in order (a short placeholder once they run out), booleans are true, enums
take their first value, arrays get one item, objects recurse. Required fields are
filled; when a schema names none, every property is. ``$ref`` into ``$defs`` and
``anyOf``/``oneOf`` (first non-null branch) are followed.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["synthesise_arguments", "mentioned_tool"]

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
# A quote must open after start/space/bracket and close before space/punctuation/end,
# so the apostrophe in "what's" does not open a quoted phrase.
_QUOTED = re.compile(r"""(?:^|(?<=[\s(\[{:,]))(?:'([^']+)'|"([^"]+)"|“([^”]+)”|`([^`]+)`)(?=$|[\s).,;:!?\]}])""")
_MAX_DEPTH = 8


class _Words:
    def __init__(self, text: str):
        self.numbers = [float(m) for m in _NUMBER.findall(text)]
        self.strings = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    for _ in range(_MAX_DEPTH):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node: Any = root
            for part in ref[2:].split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            schema = node
            continue
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            schema = non_null[0] if non_null else options[0]
            continue
        if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
            continue
        return schema
    return {}


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind:
        return str(kind)
    if "properties" in schema:
        return "object"
    return "string"


def _number(schema: dict[str, Any], words: _Words, integer: bool) -> float | int:
    if words.numbers:
        value = words.numbers.pop(0)
    else:
        value = schema.get("default", 1)
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(low, (int, float)) and value < low:
        value = low + (1 if "exclusiveMinimum" in schema else 0)
    if isinstance(high, (int, float)) and value > high:
        value = high - (1 if "exclusiveMaximum" in schema else 0)
    return int(value) if integer or float(value).is_integer() else value


def _value(schema: Any, root: dict[str, Any], words: _Words, name: str, depth: int) -> Any:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = _type_of(schema)
    if kind in ("integer", "number"):
        return _number(schema, words, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        if depth >= _MAX_DEPTH:
            return []
        return [_value(schema.get("items", {}), root, words, name, depth + 1)]
    if kind == "object":
        if depth >= _MAX_DEPTH:
            return {}
        return _object(schema, root, words, depth + 1)
    return words.strings.pop(0) if words.strings else f"example {name}".strip()


def _object(schema: dict[str, Any], root: dict[str, Any], words: _Words, depth: int) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    required = schema.get("required")
    names = [n for n in properties if required is None or n in required]
    return {n: _value(properties[n], root, words, n, depth) for n in names}


def synthesise_arguments(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """Arguments for a tool whose input schema is ``schema``, drawn from ``text``."""
    root = schema if isinstance(schema, dict) else {}
    resolved = _resolve(root, root)
    return _object(resolved, root, _Words(text), 0)


_FILLER_WORDS = {"get", "set", "my", "tool", "run", "do", "call", "fn", "func", "function", "the"}


def _words_of(text: str) -> set[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return {w for w in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if w}


def mentioned_tool(names: list[str], text: str) -> str | None:
    """The tool the user names: its full name, or every meaningful word of it.

    ``get_weather`` is mentioned by "what is the weather"; among several, the longest
    full-name match wins, so ``magic_function_no_args`` beats ``magic_function``.
    """
    lowered = text.lower()
    full = [n for n in names if n and n.lower() in lowered]
    if full:
        return max(full, key=len)
    text_words = _words_of(text)
    for name in names:
        meaningful = {w for w in _words_of(name) if w not in _FILLER_WORDS and len(w) >= 3}
        if meaningful and meaningful <= text_words:
            return name
    return None
