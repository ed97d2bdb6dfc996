"""How the caller's code will read a bound tool's arguments, so a tool call is judged by it.

Every tool call is checked against its tool before it is served (``core.tool_calls``).
The JSON schema LangChain sends is stricter than what reads the call afterwards, and an
answer failed on that difference escalates for nothing, at a dearer tier's price:

* a ``BaseTool`` (what an agent's ``ToolNode`` runs) and a pydantic class (what
  ``PydanticToolsParser`` builds) validate with pydantic, which takes ``"42"`` for an
  ``int``: they are judged by that pydantic model;
* a plain function is made a tool the same way by ``ToolNode``: judged by its schema;
* a TypedDict's ``Optional`` fields may be ``null``: LangChain's tool schema drops the
  ``None`` from them (it only marks them not required), and the parser returns a
  ``null`` unchanged.

Other tools (dicts, Bedrock ``toolSpec``) are judged by the schema they give.

``bind_tools`` keeps each tool's reader beside the tool dict it binds (``remember``), by
that dict's identity, not among the binding's kwargs: those are serialised with the
chain (``dumps``), and a function there made every ``bind_tools`` chain unloadable. A
request finds its tools' readers by the dicts it carries (``readers_of``); a copy (a
chain loaded from its dump) is judged by the schema sent.
"""

from __future__ import annotations

import threading
import types
import typing
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping, Sequence

from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ValidationError
from typing_extensions import is_typeddict

__all__ = ["remember", "readers_of", "allow_null", "nullable_typeddict_fields"]

# id(bound tool dict) -> (that dict, its name, its reader), oldest first; bounded, since an
# application may bind anew on every call (a reader forgotten: judged by the schema sent)
_KEPT = 4096
_READERS: OrderedDict[int, tuple[Any, str, Any]] = OrderedDict()
_LOCK = threading.Lock()


def remember(tools: Sequence[Any], bound: Sequence[Any]) -> None:
    """Keep the reader of each tool ``bind_tools`` was given beside the dict it binds."""
    for tool, sent in zip(tools, bound):
        try:
            read = _reader(tool)
        except Exception:  # noqa: BLE001 - a tool LangChain cannot read here: judged by the schema sent
            read = None
        if read is None or read[1] is None:
            continue
        with _LOCK:
            _READERS[id(sent)] = (sent, *read)
            while len(_READERS) > _KEPT:
                _READERS.popitem(last=False)


def readers_of(tools: Any) -> dict[str, Any] | None:
    """Tool name -> reader, for the bound tool dicts a request carries (``None``: none)."""
    if not isinstance(tools, (list, tuple)) or not _READERS:
        return None
    out = {}
    for tool in tools:
        kept = _READERS.get(id(tool))
        if kept is not None and kept[0] is tool:  # the very dict: an id is reused once its dict is gone
            out[kept[1]] = kept[2]
    return out or None


def _reader(tool: Any) -> tuple[str, Any] | None:
    if isinstance(tool, BaseTool):
        return tool.name, _validates(tool.tool_call_schema)
    if isinstance(tool, type) and issubclass(tool, BaseModel):
        return convert_to_openai_tool(tool)["function"]["name"], _validates(tool)
    if is_typeddict(tool):
        sent = convert_to_openai_tool(tool)["function"]
        return sent["name"], allow_null(dict(sent.get("parameters") or {}), nullable_typeddict_fields(tool))
    if callable(tool) and isinstance(tool, (types.FunctionType, types.MethodType)):
        made = as_tool(tool)
        sent = convert_to_openai_tool(tool)["function"]["name"]
        return (sent, _validates(made.tool_call_schema)) if made.name == sent else None
    return None


def _validates(schema: Any) -> Callable[[dict[str, Any]], str | None] | None:
    """A check by a pydantic model (v2): the first error's place and message, never a value."""
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None

    def check(args: dict[str, Any]) -> str | None:
        try:
            schema.model_validate(args)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
            if not errors:
                return f"schema violation: the arguments fail {schema.__name__}"
            where = ".".join(map(str, errors[0].get("loc") or ()))
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return f"schema violation{f' at {where}' if where else ''}: {errors[0].get('msg', 'invalid')}{more}"[:300]
        return None

    return check


def allow_null(parameters: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """``parameters`` with each of ``fields`` also accepting ``null``."""
    properties = dict(parameters.get("properties") or {})
    for name in fields:
        if isinstance(properties.get(name), Mapping):
            properties[name] = {"anyOf": [properties[name], {"type": "null"}]}
    return {**parameters, "properties": properties}


def nullable_typeddict_fields(schema: Any) -> set[str]:
    """The fields of a TypedDict whose annotation admits ``None``."""
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # noqa: BLE001 - an annotation that cannot be resolved: judged as LangChain wrote it
        return set()
    unions = (typing.Union, types.UnionType)
    return {name for name, hint in hints.items()
            if typing.get_origin(hint) in unions and type(None) in typing.get_args(hint)}
