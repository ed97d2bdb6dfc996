"""A compiled check that accepts the answers a JSON schema certainly allows.

jsonschema walks a schema through generic machinery: about 13 µs for ``{"total": 12}``
against a three-keyword schema, a tenth of the CPU a routed request adds to a Bedrock call.
Most gate schemas use a few keywords (``type``, ``properties``, ``required``, bounds,
``enum``); ``accept_check`` turns such a schema into nested closures, once.

The check is one-sided: ``True`` means jsonschema would find no error, ``False`` means
"ask jsonschema", which decides and describes the failure. Anything the check does not
model (``$ref``, combinators, patterns, tuple ``items``, draft-4 boolean bounds, a value
that is not a JSON type) makes it answer ``False`` or makes ``accept_check`` return
``None``, so a gate's verdict never depends on this module, only its speed.
"""

from __future__ import annotations

from typing import Any, Callable

import jsonschema

from .json_schema import DRAFTS, assertion_keywords

__all__ = ["accept_check"]

Check = Callable[[Any], bool]

# The keywords the check models. Keys no draft asserts (annotations, ``$defs``, vendor
# keys) are ignored, as jsonschema ignores them; so is ``format``, which asserts nothing
# without a format checker and ``schema_validator`` gives none (give it one, and
# ``format`` must leave this set). Any other keyword ``assertion_keywords`` names makes the
# schema unsupported.
_SUPPORTED = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "minProperties",
    "maxProperties", "format",
})
_SCALARS = (str, int, float, bool, type(None))


def _is_int(value: Any, draft4: bool) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return not draft4 and isinstance(value, float) and value.is_integer()


def _type_check(names: Any, draft4: bool) -> Check | None:
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    tests: list[Check] = []
    for name in names:
        if name == "string":
            tests.append(lambda v: isinstance(v, str))
        elif name == "object":
            tests.append(lambda v: isinstance(v, dict))
        elif name == "array":
            tests.append(lambda v: isinstance(v, list))
        elif name == "boolean":
            tests.append(lambda v: isinstance(v, bool))
        elif name == "null":
            tests.append(lambda v: v is None)
        elif name == "number":
            tests.append(_number)
        elif name == "integer":
            tests.append(lambda v: _is_int(v, draft4))
        else:
            return None
    if len(tests) == 1:
        return tests[0]
    return lambda v: any(t(v) for t in tests)


def _member_check(options: list[Any]) -> Check | None:
    """Scalars only, equal in value and in type (jsonschema's ``1 == 1.0`` and nested
    values are left to it)."""
    if not all(isinstance(o, _SCALARS) for o in options):
        return None
    allowed = {(type(o), o) for o in options}
    return lambda v: isinstance(v, _SCALARS) and (type(v), v) in allowed


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compile(schema: Any, draft4: bool, depth: int) -> Check | None:
    if schema is True:
        return lambda v: True
    if schema is False:
        return lambda v: False
    if not isinstance(schema, dict) or depth > 32:
        return None
    known = assertion_keywords()
    if any(key in known and key not in _SUPPORTED for key in schema):
        return None
    if draft4 and ("const" in schema or isinstance(schema.get("exclusiveMinimum"), bool)
                   or isinstance(schema.get("exclusiveMaximum"), bool)):
        return None
    checks: list[Check] = []
    if "type" in schema:
        check = _type_check(schema["type"], draft4)
        if check is None:
            return None
        checks.append(check)
    for key in ("enum", "const"):
        if key in schema:
            options = schema[key] if key == "enum" else [schema[key]]
            check = _member_check(options) if isinstance(options, list) else None
            if check is None:
                return None
            checks.append(check)
    bounds = [(k, schema[k]) for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in schema]
    if bounds:
        if not all(_number(b) for _, b in bounds):
            return None
        low = max((b for k, b in bounds if k == "minimum"), default=None)
        high = min((b for k, b in bounds if k == "maximum"), default=None)
        xlow = schema.get("exclusiveMinimum")
        xhigh = schema.get("exclusiveMaximum")
        checks.append(lambda v: not _number(v) or ((low is None or v >= low) and (high is None or v <= high)
                                                 and (xlow is None or v > xlow) and (xhigh is None or v < xhigh)))
    for key, kind, cmp in (("minLength", str, 1), ("maxLength", str, -1), ("minItems", list, 1),
                           ("maxItems", list, -1), ("minProperties", dict, 1), ("maxProperties", dict, -1)):
        if key in schema:
            n = schema[key]
            if not _is_int(n, False):
                return None
            if cmp > 0:
                checks.append(lambda v, kind=kind, n=n: not isinstance(v, kind) or len(v) >= n)
            else:
                checks.append(lambda v, kind=kind, n=n: not isinstance(v, kind) or len(v) <= n)
    object_check = _object_check(schema, draft4, depth)
    if object_check is False:
        return None
    if object_check is not None:
        checks.append(object_check)
    if "items" in schema:
        item = _compile(schema["items"], draft4, depth + 1)
        if item is None:  # a list of schemas (tuple validation) or an unsupported one
            return None
        checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def _object_check(schema: dict, draft4: bool, depth: int) -> Check | None | bool:
    """The object keywords' check; ``None`` when there are none, ``False`` when unsupported."""
    if not any(k in schema for k in ("properties", "required", "additionalProperties")):
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list) \
            or not all(isinstance(r, str) for r in required):
        return False
    compiled: dict[str, Check] = {}
    for name, sub in properties.items():
        check = _compile(sub, draft4, depth + 1)
        if check is None:
            return False
        compiled[name] = check
    extra: Check | None = None
    if "additionalProperties" in schema:
        extra = _compile(schema["additionalProperties"], draft4, depth + 1)
        if extra is None:
            return False
    items = tuple(compiled.items())

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for name in required:
            if name not in v:
                return False
        for name, sub in items:
            if name in v and not sub(v[name]):
                return False
        if extra is not None:
            for key, value in v.items():
                if key not in compiled and not extra(value):
                    return False
        return True

    return check


def accept_check(schema: Any) -> Check | None:
    """The accept-check of ``schema`` (read under the draft its ``$schema`` names, the
    latest without one, as jsonschema reads it), or ``None`` when the schema uses what the
    check does not model: jsonschema then does it all."""
    cls = jsonschema.validators.validator_for(schema)
    if cls not in DRAFTS:
        return None
    return _compile(schema, cls is jsonschema.Draft4Validator, 0)
