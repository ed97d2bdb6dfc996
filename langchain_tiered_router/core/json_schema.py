"""JSON schemas from configs and clients: checked at load, run without backtracking,
and described without quoting the answer.

* ``schema_validator`` checks the schema against its draft's metaschema, rejects
  keywords no draft defines (``raquired`` would silently make a weaker gate), and
  returns a validator whose ``pattern``, ``patternProperties`` and
  ``additionalProperties`` run on RE2 (``core.patterns``), never on Python's ``re``.
* ``describe_error`` names where the answer failed and which rule, from the schema
  alone (``schema violation at total: expected type 'number'``); the message that
  quotes the answer's value is kept apart, for telemetry that stores text.
"""

from __future__ import annotations

import difflib
import functools
import json
from typing import Any, Iterator

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import ValidationError

from .errors import ConfigError
from .patterns import compile_pattern

__all__ = ["schema_validator", "describe_error", "known_keywords", "assertion_keywords", "DRAFTS"]

# Keywords that hold annotations or structure rather than assertions; with every
# draft's assertion keywords, what a schema may contain.
_ANNOTATIONS = {
    "$schema", "$id", "id", "$ref", "$defs", "definitions", "$comment", "$anchor", "$dynamicAnchor",
    "$dynamicRef", "$recursiveAnchor", "$recursiveRef", "$vocabulary", "title", "description", "default",
    "examples", "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding", "contentSchema",
    "then", "else", "nullable", "discriminator", "example",
}
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
_SCHEMA_ONE = ("additionalProperties", "additionalItems", "contains", "propertyNames", "not", "if", "then", "else",
               "unevaluatedItems", "unevaluatedProperties", "contentSchema", "items")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAX_NODES = 20_000
_MAX_DEPTH = 64


# The drafts whose keywords a gate's schema may use.
DRAFTS = (jsonschema.Draft4Validator, jsonschema.Draft6Validator, jsonschema.Draft7Validator,
          jsonschema.Draft201909Validator, jsonschema.Draft202012Validator)


@functools.lru_cache(maxsize=1)
def assertion_keywords() -> frozenset[str]:
    """Every keyword some draft of jsonschema asserts."""
    return frozenset(name for cls in DRAFTS for name in cls.VALIDATORS)


@functools.lru_cache(maxsize=1)
def known_keywords() -> frozenset[str]:
    """Every keyword of every draft jsonschema knows, and the annotation keywords."""
    return assertion_keywords() | _ANNOTATIONS


def _subschemas(schema: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    for key in _SCHEMA_MAPS:
        value = schema.get(key)
        if isinstance(value, dict):
            for name, sub in value.items():
                yield f"{path}.{key}.{name}", sub
    for key in _SCHEMA_ONE:
        if isinstance(schema.get(key), dict):
            yield f"{path}.{key}", schema[key]
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                yield f"{path}.{key}[{i}]", sub
    deps = schema.get("dependencies")
    if isinstance(deps, dict):
        for name, sub in deps.items():
            if isinstance(sub, dict):
                yield f"{path}.dependencies.{name}", sub


def _check_keywords(schema: Any, path: str) -> None:
    """Every key at a schema position must be a keyword; vendor keys start with ``x-``."""
    known = known_keywords()
    stack, seen, patterns, unevaluated = [(path, schema, 0)], 0, False, False
    while stack:
        where, node, depth = stack.pop()
        seen += 1
        if seen > _MAX_NODES or depth > _MAX_DEPTH:
            raise ConfigError(f"schema larger than {_MAX_NODES} subschemas or deeper than {_MAX_DEPTH}", path=where)
        if not isinstance(node, dict):
            continue
        for key in node:
            if not isinstance(key, str) or key in known or key.startswith("x-"):
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown JSON-schema keyword {key!r}{hint}; it would be ignored, making the gate "
                              "weaker than written (vendor keywords start with 'x-')", path=f"{where}.{key}")
        if isinstance(node.get("pattern"), str):
            compile_pattern(node["pattern"], path=f"{where}.pattern")
        if isinstance(node.get("patternProperties"), dict):
            patterns = True
            for pattern in node["patternProperties"]:
                compile_pattern(pattern, path=f"{where}.patternProperties")
        unevaluated = unevaluated or "unevaluatedProperties" in node
        stack.extend((sub_path, sub, depth + 1) for sub_path, sub in _subschemas(node, where))
    if patterns and unevaluated:
        raise ConfigError("unevaluatedProperties together with patternProperties is not supported (the "
                          "validator would run those patterns with Python's backtracking re)", path=path)


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _matches_any(patterns: Any, name: str) -> bool:
    return any(compile_pattern(p).search(name) for p in patterns)


def _re2_pattern_properties(validator: Any, pattern_properties: dict, instance: Any, schema: dict
                            ) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        regex = compile_pattern(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _re2_additional_properties(validator: Any, additional: Any, instance: Any, schema: dict
                               ) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [k for k in instance if k not in declared and not (patterns and _matches_any(patterns, k))]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(k) for k in sorted(extras, key=str))
        yield ValidationError(f"Additional properties are not allowed ({names} unexpected)")


def schema_validator(schema: Any, *, strict_keywords: bool = True, path: str = "schema") -> Any:
    """A validator for ``schema`` whose patterns run on RE2; a ``ConfigError`` for a schema
    that is invalid, names an unknown keyword (with ``strict_keywords``) or a pattern RE2 cannot run."""
    if not isinstance(schema, dict):
        raise ConfigError(f"a JSON schema must be a mapping, got {type(schema).__name__}", path=path)
    if "$schema" in schema and not isinstance(schema["$schema"], str):  # jsonschema reads it as a URI
        raise ConfigError(f"$schema must be the URI of a JSON Schema draft, got {type(schema['$schema']).__name__}",
                          path=f"{path}.$schema")
    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        raise ConfigError(f"not a valid JSON schema: {exc.message[:200]}",
                          path=f"{path}.{where}" if where else path) from None
    except RecursionError:
        raise ConfigError("JSON schema nested too deeply", path=path) from None
    if strict_keywords:
        _check_keywords(schema, path)
    else:
        _check_keywords_patterns_only(schema, path)
    extended = jsonschema.validators.extend(cls, {"pattern": _re2_pattern,
                                                  "patternProperties": _re2_pattern_properties,
                                                  "additionalProperties": _re2_additional_properties})
    return extended(schema, registry=_offline_registry(schema, cls, path))


def _refuse_retrieval(uri: str) -> Any:
    # jsonschema would fetch a remote ``$ref`` over HTTP on every judgement
    raise referencing.exceptions.NoSuchResource(ref=uri)


def _offline_registry(schema: dict[str, Any], cls: Any, path: str) -> referencing.Registry:
    """The schema's own resources and nothing fetched; a ``$ref`` it cannot resolve
    offline is a ``ConfigError`` now, not a failure of every answer later. References
    under a nested ``$id`` resolve against that id and are left to the validator."""
    spec = referencing.jsonschema.specification_with(str(cls.META_SCHEMA.get("$schema", "")),
                                                    default=referencing.jsonschema.DRAFT202012)
    try:
        root = referencing.Resource.from_contents(schema, default_specification=spec)
        registry = referencing.Registry(retrieve=_refuse_retrieval).with_resource(root.id() or "", root).crawl()
    except Exception as exc:  # noqa: BLE001 - an $id or $anchor the library cannot take
        raise ConfigError(f"JSON schema resources unusable: {str(exc)[:200]}", path=path) from None
    resolver = registry.resolver(base_uri=root.id() or "")
    stack: list[tuple[str, Any, bool]] = [(path, schema, True)]
    while stack:
        where, node, is_root = stack.pop()
        if isinstance(node, dict):
            if not is_root and isinstance(node.get("$id"), str):
                continue
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except referencing.exceptions.Unresolvable as exc:
                    remote = "" if ref.startswith("#") else " (remote references are never fetched)"
                    raise ConfigError(f"$ref {ref[:120]!r} cannot be resolved within the schema{remote}: "
                                      f"{type(exc).__name__}", path=f"{where}.$ref") from None
            stack.extend((f"{where}.{k}", v, False) for k, v in node.items() if k not in ("enum", "const"))
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", v, False) for i, v in enumerate(node))
    return registry


def _check_keywords_patterns_only(schema: Any, path: str) -> None:
    """For a client's schema: unknown keywords are the client's business; patterns must still run on RE2."""
    stack = [(path, schema, 0)]
    while stack:
        where, node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ConfigError(f"schema deeper than {_MAX_DEPTH}", path=where)
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("pattern"), str):
            compile_pattern(node["pattern"], path=f"{where}.pattern")
        for pattern in node.get("patternProperties") or {}:
            compile_pattern(pattern, path=f"{where}.patternProperties")
        if "unevaluatedProperties" in node and "patternProperties" in json.dumps(schema, default=str):
            raise ConfigError("unevaluatedProperties together with patternProperties is not supported", path=where)
        stack.extend((p, sub, depth + 1) for p, sub in _subschemas(node, where))


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_error(err: ValidationError) -> tuple[str, str]:
    """``(reason, detail)``: the reason names the answer's path and the schema's rule, from
    the schema alone (an answer's own keys show as ``*``); the detail is jsonschema's
    message, which quotes the answer's value."""
    schema_names = {p for p in err.absolute_schema_path if isinstance(p, str)}
    parts = [str(p) if isinstance(p, int) or p in schema_names else "*" for p in err.absolute_path]
    where = "/".join(parts) or "(root)"
    keyword, value = err.validator, err.validator_value
    if keyword == "type":
        rule = f"expected type {_short(value)}"
    elif keyword == "required" and isinstance(value, list) and isinstance(err.instance, dict):
        missing = [p for p in value if p not in err.instance]
        rule = f"missing required {', '.join(_short(p) for p in missing) or _short(value)}"
    elif keyword == "additionalProperties" and value is False:
        rule = "has properties the schema does not allow (additionalProperties: false)"
    elif keyword in ("enum", "const"):
        rule = f"not an allowed value ({keyword}: {_short(value)})"
    else:
        rule = f"fails {keyword} {_short(value)}"
    return f"schema violation at {where}: {rule}", f"schema violation at {where}: {err.message}"
