"""Tool-calling turns: what kind of turn an answer is, and the check every tool call gets.

An agent's model call either calls tools or answers in text, and the two are judged
apart (``gates`` judge text answers, ``tool_gates`` tool calls). Before any configured
tool gate, each call of a tool-calling turn is checked against the tool it names, as
the request bound it: the name must be a bound tool and the arguments a JSON object
valid against that tool's schema. A cheap tier that calls ``get_weather`` with
``{"city": 7}`` fails here and escalates; one that calls it well is served.

Integrations put the bound tools on ``RouteRequest.tools`` with ``tool_schemas``, which
reads the tool formats they carry: OpenAI's (``{"type": "function", "function": {...}}``,
what LangChain's ``bind_tools`` and LiteLLM send), Bedrock Converse's ``toolSpec`` and
Anthropic's ``input_schema``. An integration that knows how the caller's code will read
a tool's arguments (LangChain runs a tool's pydantic model, which takes ``"42"`` for an
``int``) gives that tool a ``readers`` entry instead: a relaxed schema, or an
``ArgumentCheck``, so an answer that code would accept is not escalated for nothing.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable, Iterable, Literal, Mapping

from .errors import ConfigError
from .gates import Gate, GateState
from .json_schema import describe_error, schema_validator
from .types import GateVerdict, TierAnswer

__all__ = ["TurnKind", "TURN_KINDS", "turn_kind", "tool_schemas", "ArgumentCheck", "ToolCallGate", "ForcedToolGate",
           "forced_tool"]

log = logging.getLogger("langchain_tiered_router")

TurnKind = Literal["text", "tool_call"]
TURN_KINDS: tuple[TurnKind, ...] = ("text", "tool_call")

# A tool's arguments judged as the caller's code reads them: why they fail (a place and
# a message, never a value), or None when they pass.
ArgumentCheck = Callable[[dict[str, Any]], "str | None"]

_UNREADABLE = "?"  # the key under which tools whose name could not be read are counted


def turn_kind(answer: TierAnswer) -> TurnKind:
    """``tool_call`` when the answer calls a tool (with or without text beside it), else ``text``."""
    return "tool_call" if answer.tool_calls else "text"


def _one_tool(tool: Any) -> tuple[str, Any] | None:
    """(name, argument schema or None) of one tool in any format integrations carry."""
    if not isinstance(tool, Mapping):
        return None
    if isinstance(tool.get("function"), Mapping):  # OpenAI
        fn = tool["function"]
        return (fn["name"], fn.get("parameters")) if isinstance(fn.get("name"), str) else None
    if isinstance(tool.get("toolSpec"), Mapping):  # Bedrock Converse
        spec = tool["toolSpec"]
        schema = spec.get("inputSchema")
        schema = schema.get("json") if isinstance(schema, Mapping) else None
        return (spec["name"], schema) if isinstance(spec.get("name"), str) else None
    if isinstance(tool.get("name"), str):  # Anthropic, or a plain {name, parameters}
        return tool["name"], tool.get("input_schema", tool.get("parameters"))
    return None


def tool_schemas(tools: Iterable[Any] | None, judged_elsewhere: Iterable[str] = (),
                 readers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Tool name -> the JSON schema of its arguments (``None`` when the tool gives none,
    or when it is in ``judged_elsewhere``: a gate of the request judges its arguments as
    the caller will read them, a structured-output parser's leniency included), or its
    entry in ``readers`` (a schema or an ``ArgumentCheck``) when it has one.

    A tool whose format is not known here is counted under ``"?"``: a call naming a tool
    that is not listed is then not failed, since it may be that one."""
    out: dict[str, Any] = {}
    skip = set(judged_elsewhere)
    for tool in tools or ():
        if isinstance(tool, Mapping) and "cachePoint" in tool:
            continue  # Bedrock's marker that caches the tool definitions before it: no tool
        read = _one_tool(tool)
        if read is None:
            out[_UNREADABLE] = None
        else:
            name, schema = read
            if name in skip:
                out[name] = None
            elif readers and readers.get(name) is not None:
                out[name] = readers[name]
            else:
                out[name] = schema if isinstance(schema, Mapping) else None
    return out


_CACHED_SCHEMA_CHARS = 64_000  # larger schemas are compiled per check: a client cannot fill the cache


def _compile(schema_json: str) -> Any:
    """A validator for a bound tool's schema. It is the client's schema: its vendor
    keywords are its business, its patterns run on RE2. One that cannot be compiled
    leaves the arguments unchecked (Bedrock refuses such a tool before any answer exists)."""
    try:
        return schema_validator(json.loads(schema_json), strict_keywords=False, path="tool")
    except ConfigError as exc:
        log.warning("a bound tool's schema cannot be checked (%s); its calls' arguments are not validated", exc)
        return None


_cached_compile = functools.lru_cache(maxsize=256)(_compile)  # an agent binds the same tools on every call


def _validator(schema: Any) -> Any:
    try:
        schema_json = json.dumps(schema, sort_keys=True, default=str)
    except (RecursionError, TypeError, ValueError):
        log.warning("a bound tool's schema cannot be read; its calls' arguments are not validated")
        return None
    return _cached_compile(schema_json) if len(schema_json) <= _CACHED_SCHEMA_CHARS else _compile(schema_json)


class ToolCallGate(Gate):
    """Every tool call names a bound tool and its arguments validate against that tool's schema.

    The reason names the tool (one the request bound) and where its arguments broke the
    schema, never the arguments' values; those are in the detail."""

    bounded = True
    name = "tool_args"

    def __init__(self, tools: Mapping[str, Any]):
        self.tools = dict(tools)
        self._open = _UNREADABLE in self.tools

    def _check(self, name: str) -> Any:
        schema = self.tools.get(name)
        return None if schema is None else _validator(schema)

    def judge(self, state: GateState) -> GateVerdict:
        calls = state.answer.tool_calls
        for i, call in enumerate(calls):
            name = call.get("name")
            if not isinstance(name, str) or name not in self.tools:
                if self._open:
                    continue
                return self._verdict(False, f"tool call {i} names no bound tool "
                                            f"(bound: {', '.join(sorted(self.tools))[:200]})",
                                     detail=f"tool call {i} names {str(name)[:200]!r}")
            args = call.get("args")
            if not isinstance(args, dict):
                return self._verdict(False, f"tool call {i} ({name}): the arguments are not a JSON object",
                                     detail=f"tool call {i} ({name}): arguments {str(args)[:500]!r}")
            check = self.tools.get(name)
            if callable(check):
                try:
                    reason = check(args)
                except Exception as exc:  # noqa: BLE001 - a reader that throws rejects the call, as it would
                    reason = f"the arguments cannot be read ({type(exc).__name__})"
                if reason:
                    return self._verdict(False, f"tool call {i} ({name}): {reason}",
                                         detail=f"tool call {i} ({name}): {reason}")
                continue
            validator = self._check(name)
            if validator is None:
                continue
            errors = sorted(validator.iter_errors(args), key=lambda e: list(map(str, e.absolute_path)))
            if errors:
                reason, detail = describe_error(errors[0])
                return self._verdict(False, f"tool call {i} ({name}): {reason}",
                                     detail=f"tool call {i} ({name}): {detail}")
        return self._verdict(True, f"{len(calls)} tool call{'s' if len(calls) != 1 else ''} valid")


class ForcedToolGate(Gate):
    """The caller forced a tool call (``tool_choice`` "any" or a tool's name): a text
    answer fails, and so does a call of another tool than the named one. A tier whose
    model cannot force tools is still asked (it may call the tool anyway); when it
    answers in text, the request escalates to a tier that can force it, as the caller's
    chain expects a tool call and never a text."""

    bounded = True
    name = "tool_choice"

    def __init__(self, tool: str | None = None):
        self.tool = tool

    def judge(self, state: GateState) -> GateVerdict:
        calls = state.answer.tool_calls
        if not calls:
            wanted = f"a call of {self.tool}" if self.tool else "a tool call"
            return self._verdict(False, f"tool_choice requires {wanted}; the answer is text")
        if self.tool is not None and not any(c.get("name") == self.tool for c in calls):
            return self._verdict(False, f"tool_choice requires a call of {self.tool[:100]}; the answer calls "
                                        f"{', '.join(str(c.get('name'))[:100] for c in calls)[:300]}")
        return self._verdict(True)


def forced_tool(choice: Any) -> tuple[bool, str | None]:
    """(whether ``tool_choice`` forces a tool call, the tool it names if any), for the
    shapes callers send: "any" / "required", a tool's name, Converse's ``{"any": {}}`` /
    ``{"tool": {"name": ...}}``, OpenAI's ``{"type": "function", "function": {"name": ...}}``."""
    if isinstance(choice, str):
        if choice in ("auto", "none", ""):
            return False, None
        return (True, None) if choice in ("any", "required") else (True, choice)
    if isinstance(choice, Mapping):
        if "any" in choice:
            return True, None
        tool = choice.get("tool")
        if isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
            return True, tool["name"]
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return True, function["name"]
    return False, None
