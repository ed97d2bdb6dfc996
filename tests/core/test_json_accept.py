"""The JSON-schema gate's compiled accept-check never accepts what jsonschema refuses,
and accepts what it allows on the schemas it models (else it would save nothing)."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_tiered_router.core.gates import GateState, JsonSchemaGate
from langchain_tiered_router.core.json_accept import accept_check
from langchain_tiered_router.core.json_schema import schema_validator
from langchain_tiered_router.core.tiers import Tier
from langchain_tiered_router.core.types import RouteRequest, TierAnswer

DRAFTS = [None, "http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-07/schema#",
          "https://json-schema.org/draft/2020-12/schema"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.0, 1.0, 2.5, -1.5, 3.0]),
                    st.sampled_from(["", "a", "ab", "abc", "x" * 5]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "b", "c", "total"]), inner, max_size=4)),
    max_leaves=12)
types = st.sampled_from(["string", "number", "integer", "boolean", "null", "object", "array"])


def schemas(draft4: bool) -> st.SearchStrategy:
    def node(children: st.SearchStrategy) -> st.SearchStrategy:
        if not draft4:  # from draft 6 on, true and false are schemas too
            children = st.one_of(st.booleans(), children)
        return st.fixed_dictionaries({}, optional={
            "type": st.one_of(types, st.lists(types, min_size=1, max_size=3, unique=True)),
            "properties": st.dictionaries(st.sampled_from(["a", "b", "c", "total"]), children, max_size=3),
            "required": st.lists(st.sampled_from(["a", "b", "total"]), min_size=1, max_size=2, unique=True),
            "additionalProperties": st.one_of(st.booleans(), children),
            "items": children,
            "enum": st.lists(scalars, min_size=1, max_size=3, unique=True),
            "minimum": st.integers(-3, 3), "maximum": st.sampled_from([0, 2, 4.5]),
            "minLength": st.integers(0, 3), "maxLength": st.integers(0, 4),
            "minItems": st.integers(0, 2), "maxItems": st.integers(0, 3),
            "minProperties": st.integers(0, 2), "maxProperties": st.integers(0, 3),
            "title": st.just("an annotation"), "format": st.just("email"),
        })

    base = st.fixed_dictionaries({}, optional={"type": types, "minimum": st.integers(-2, 2)})
    return st.recursive(base, node, max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_check_accepts_only_what_jsonschema_accepts(data):
    draft = data.draw(st.sampled_from(DRAFTS))
    schema = data.draw(schemas(draft4=draft is not None and "04" in draft))
    if draft:
        schema = {"$schema": draft, **schema}
    jsonschema.validators.validator_for(schema).check_schema(schema)
    check = accept_check(schema)
    assert check is not None, schema  # every keyword drawn here is modelled
    validator = schema_validator(schema)
    for value in data.draw(st.lists(values, min_size=1, max_size=8)):
        valid = validator.is_valid(value)
        accepted = check(value)
        assert not (accepted and not valid), (schema, value)
        # enum compares value and type; jsonschema also takes 1 for 1.0: the only gap
        if valid and not accepted:
            assert "enum" in str(schema), (schema, value)


@pytest.mark.parametrize("schema", [
    {"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}},
    {"anyOf": [{"type": "string"}, {"type": "number"}]},
    {"type": "string", "pattern": "^a"},
    {"type": "array", "items": [{"type": "string"}]},
    {"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 3, "exclusiveMaximum": True},
    {"properties": {"a": {"not": {"type": "null"}}}},
    {"enum": [[1, 2]]},
    {"$schema": "http://json-schema.org/draft-03/schema#", "type": "any"},
])
def test_schemas_it_does_not_model_are_left_to_jsonschema(schema):
    assert accept_check(schema) is None


def test_the_gate_gives_the_same_verdicts_with_and_without_the_check():
    schema = {"type": "object", "required": ["total"], "additionalProperties": False,
              "properties": {"total": {"type": "number", "minimum": 0}, "note": {"type": "string", "maxLength": 5}}}
    gate = JsonSchemaGate(schema)
    assert gate.accepts is not None
    slow = JsonSchemaGate(schema)
    slow.accepts = None
    tier = Tier("cheap", "m", None)
    answers = ['{"total": 12}', '{"total": -1}', '{"total": "12"}', '{"total": 1, "note": "toolong"}',
               '{"total": 1, "extra": 2}', '[]', 'not json', '{"note": "x"}', '{"total": 3.5, "note": ""}']
    for text in answers:
        state = GateState(RouteRequest("q"), TierAnswer(text), tier)
        fast, full = gate.judge(state), slow.judge(state)
        assert (fast.passed, fast.reason, fast.detail) == (full.passed, full.reason, full.detail), text
