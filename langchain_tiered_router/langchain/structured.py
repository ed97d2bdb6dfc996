"""Structured output by a forced tool call: the gate that judges it and the parser that reads it.

The gate judges what the parser will return, so an answer the user gets parsed is not
escalated and one that would fail to parse is:

* arguments a model sent as JSON strings (``{"items": "[...]"}``) are decoded before
  both, as langchain-aws's own structured-output parsers do;
* a pydantic schema is judged by pydantic (``"42"`` is an ``int`` there), not by the
  stricter JSON schema LangChain derives from it for the tool;
* a TypedDict's ``Optional`` fields may be ``null``: LangChain's tool schema drops the
  ``None`` from them (it only marks them not required), and the parser returns a
  ``null`` unchanged.

The request's built-in check of tool calls (``core.tool_calls.ToolCallGate``) leaves the
structured-output tool's arguments to this gate (``judged_tools``), so the two never
disagree.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, Mapping, Sequence

from langchain_core.exceptions import OutputParserException
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel
from typing_extensions import is_typeddict

from ..core.gates import Gate, GateState, JsonSchemaGate, PydanticGate
from ..core.json_answer import unstringify_args
from ..core.types import GateVerdict
from .tool_readers import allow_null, nullable_typeddict_fields

__all__ = ["StructuredToolGate", "ParsedTextGate", "schema_gate", "structured_parser", "judged_tools", "native_output"]


class StructuredToolGate(Gate):
    """``inner`` judges the first tool call's arguments as the structured-output parser
    will read them (array and object arguments sent as JSON strings decoded)."""

    def __init__(self, inner: Gate, tool_name: str, properties: Mapping[str, Any] | None):
        self.inner = inner
        self.tool_name = tool_name
        self.properties = dict(properties or {})
        self.name = inner.name
        self.bounded = inner.bounded

    def judge(self, state: GateState) -> GateVerdict:
        calls = state.answer.tool_calls
        if calls and isinstance(calls[0].get("args"), dict):
            args = calls[0]["args"]
            fixed = unstringify_args(args, self.properties)
            if fixed is not args:
                answer = dataclasses.replace(state.answer, tool_calls=[{**calls[0], "args": fixed}, *calls[1:]])
                state = dataclasses.replace(state, answer=answer)
        return self.inner.judge(state)


class ParsedTextGate(Gate):
    """The answer's text must be what ``parser`` reads (the whole text as JSON, or a
    fenced block), then ``inner`` judges it. The schema gates find a JSON value inside
    prose; LangChain's JSON parsers do not, so without this check an answer the user's
    parser rejects would be served instead of escalated."""

    def __init__(self, inner: Gate, parser: Any):
        self.inner = inner
        self.parser = parser
        self.name = inner.name
        self.bounded = inner.bounded

    def judge(self, state: GateState) -> GateVerdict:
        try:
            self.parser.parse(state.answer.text)
        except OutputParserException as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return GateVerdict(False, "the answer's text is not the JSON the structured output's parser reads",
                               gate=self.name, detail=first[:300])
        return self.inner.judge(state)


def _parameters(tool: Mapping[str, Any]) -> dict[str, Any]:
    return dict(tool["function"].get("parameters") or {})


def schema_gate(schema: Any, tool: dict[str, Any] | None = None) -> StructuredToolGate:
    """The gate for a structured-output schema, judged on the first tool call's arguments
    as the parser reads them: pydantic for a pydantic class, else the tool's JSON schema
    (a TypedDict's ``Optional`` fields nullable)."""
    tool = tool or convert_to_openai_tool(schema)
    name, parameters = tool["function"]["name"], _parameters(tool)
    properties = parameters.get("properties") or {}
    inner: Gate
    if isinstance(schema, type) and hasattr(schema, "model_validate"):
        inner = PydanticGate(schema, source="tool_args")
    else:
        if is_typeddict(schema):
            parameters = allow_null(parameters, nullable_typeddict_fields(schema))
        inner = JsonSchemaGate(parameters, source="tool_args", name=f"json_schema:{name}")
    return StructuredToolGate(inner, name, properties)


def judged_tools(gates: Sequence[Gate]) -> set[str]:
    """The tools whose arguments a structured-output gate among ``gates`` judges."""
    return {g.tool_name for g in gates if isinstance(g, StructuredToolGate)}


def _unstringified(result: list[Generation], properties: Mapping[str, Any] | None) -> list[Generation]:
    if not properties:
        return result
    out: list[Generation] = []
    for generation in result:
        message = getattr(generation, "message", None)
        calls = getattr(message, "tool_calls", None) or []
        args = [unstringify_args(c["args"], properties) if isinstance(c.get("args"), dict) else c.get("args")
                for c in calls]
        if isinstance(generation, ChatGeneration) and any(a is not c.get("args") for a, c in zip(args, calls)):
            fixed = [{**c, "args": a} for c, a in zip(calls, args)]
            generation = type(generation)(message=message.model_copy(update={"tool_calls": fixed}),
                                          generation_info=generation.generation_info)
        out.append(generation)
    return out


class _Unstringifying(BaseModel):
    """A tools parser that reads array and object arguments sent as JSON strings.

    Its final parse of an answer that calls no tool raises ``OutputParserException``.
    The ladder escalates such an answer (it fails the schema gate), so one reaches the
    parser only when every tier answered in text and it was served flagged; typically
    tiers that cannot be forced to call a tool (a Claude model thinking, DeepSeek
    reasoning), where ``ChatBedrockConverse`` raises the same. For a model it can force,
    plain's parser returns None there; the ladder raises, naming the served tier and its
    flag, rather than hand a flagged miss over as None. Partial parses (a stream) are
    untouched."""

    schema_properties: dict[str, Any] | None = None
    tool_name: str = ""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        if not partial:
            message = getattr(result[0], "message", None) if result else None
            if message is not None and not getattr(message, "tool_calls", None):
                routing = (getattr(message, "response_metadata", None) or {}).get("routing") or {}
                flagged = f", flagged: {routing.get('flag_reason')}" if routing.get("flagged") else ""
                raise OutputParserException(f"the answer calls no tool (structured output needs a call of "
                                            f"{self.tool_name!r}): served by {routing.get('tier', '?')}{flagged}")
        return super().parse_result(_unstringified(result, self.schema_properties), partial=partial)  # type: ignore[misc]


class _UnstringifyingPydanticToolsParser(_Unstringifying, PydanticToolsParser):
    pass


class _UnstringifyingJsonOutputKeyToolsParser(_Unstringifying, JsonOutputKeyToolsParser):
    pass


def structured_parser(schema: Any, tool: Mapping[str, Any]) -> Any:
    """The parser of the forced tool call's arguments: the pydantic object, else the dict."""
    properties, name = _parameters(tool).get("properties") or None, tool["function"]["name"]
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        return _UnstringifyingPydanticToolsParser(tools=[schema], first_tool_only=True, schema_properties=properties,
                                                  tool_name=name)
    return _UnstringifyingJsonOutputKeyToolsParser(key_name=name, first_tool_only=True, schema_properties=properties,
                                                   tool_name=name)


# -- method="json_schema": Bedrock's own structured output (outputConfig.textFormat) ------

def native_output(schema: Any) -> tuple[dict[str, Any], Gate, Any]:
    """(the ``output_config`` langchain-aws sends, the gate that judges the text answer,
    the parser) for ``with_structured_output(method="json_schema")``: Bedrock constrains
    the answer's text to the schema; a tier whose text still does not parse escalates."""
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        json_schema, name = schema.model_json_schema(), schema.__name__
        description = schema.__doc__ or name
        gate: Gate = PydanticGate(schema, source="text", name="structured_output")
        parser: Any = _RoutedPydanticOutputParser(pydantic_object=schema)
    elif isinstance(schema, dict):
        json_schema = copy.deepcopy(schema)
        name = str(schema.get("title", schema.get("name", "output_schema")))
        description = str(schema.get("description", name))
        gate = JsonSchemaGate(json_schema, source="text", name="structured_output", strict_keywords=False)
        parser = _RoutedJsonOutputParser()
    else:  # as ChatBedrockConverse: a TypedDict or a function has no schema Bedrock takes here
        raise ValueError(f"Unsupported schema type: {type(schema)}. Expected a Pydantic model class or a dict.")
    gate = ParsedTextGate(gate, parser)
    _closed_objects(json_schema)
    config = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
        "schema": json.dumps(json_schema, ensure_ascii=False), "name": name, "description": description}}}}
    return config, gate, parser


class _SaysTheRoute:
    """A parser whose failure on a routed answer says which tier served it and whether
    it was flagged: with ``on_exhausted: flag`` an answer no tier could give as JSON is
    served flagged, and the parser's error alone ("Invalid json output") hid that."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        try:
            return super().parse_result(result, partial=partial)  # type: ignore[misc]
        except OutputParserException as exc:
            message = getattr(result[0], "message", None) if result and not partial else None
            routing = (getattr(message, "response_metadata", None) or {}).get("routing") or {}
            if not routing:
                raise
            flagged = f", flagged: {routing.get('flag_reason')}" if routing.get("flagged") else ""
            said = str(exc).split("\nFor troubleshooting", 1)[0].rstrip()  # LangChain adds its link again
            raise OutputParserException(f"{said} (served by {routing.get('tier', '?')}{flagged})",
                                        llm_output=exc.llm_output) from exc


class _RoutedJsonOutputParser(_SaysTheRoute, JsonOutputParser):
    pass


class _RoutedPydanticOutputParser(_SaysTheRoute, PydanticOutputParser):
    pass


def _closed_objects(schema: Any) -> None:
    """Bedrock's structured output needs ``additionalProperties: false`` on every object."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _closed_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed_objects(value)
