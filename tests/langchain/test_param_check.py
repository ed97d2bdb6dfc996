"""botocore's check of a call's parameters, skipped by default (Bedrock checks them
again): a valid request is served as before, a parameter botocore cannot serialise
still gets its clear ``ParamValidationError`` before anything is sent, and
``transport.validate_params: true`` gives the check back to every call."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.validate import ParamValidationDecorator

from langchain_tiered_router.core.errors import LadderExhaustedError
from langchain_tiered_router.emulator import BedrockEmulator
from langchain_tiered_router.langchain import TieredChatBedrock, _param_check

from .scripts import INVOICE, INVOICE_JSON, INVOICE_SCHEMA, config

BAD_GUARDRAIL = {"guardrailIdentifier": "g-1", "guardrailVersion": "1", "bogus": 1}


def _routed(emulator: BedrockEmulator, results: list, **transport: Any) -> TieredChatBedrock:
    cfg = config(emulator.url, transport=transport)
    cfg["tiers"][0]["model_kwargs"] = {"guardrail_config": BAD_GUARDRAIL}  # on cheap only
    llm = TieredChatBedrock(config=cfg, telemetry=False)
    llm.router.add_observer(lambda result, request, backend: results.append(result))
    return llm


@pytest.mark.parametrize("validate", [False, True], ids=["default", "validate_params"])
def test_an_unknown_nested_parameter_is_botocores_clear_error_and_never_sent(emulator, validate):
    results: list = []
    llm = _routed(emulator, results, validate_params=validate)
    emulator.clear_requests()
    with pytest.raises(LadderExhaustedError) as raised:
        llm.invoke("hello")
    message = str(raised.value)
    assert "ParamValidationError" in message
    assert 'Unknown parameter in guardrailConfig: "bogus"' in message
    assert emulator.requests == []  # refused before it was sent, as botocore's check does
    (result,) = results
    assert [(a.tier, a.outcome, a.error_kind) for a in result.attempts] == [("cheap", "error", "ParamValidationError")]


def test_valid_requests_are_served_with_the_check_skipped(emulator):
    results: list = []
    llm = TieredChatBedrock(config=config(emulator.url, gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}]),
                            telemetry=False)
    llm.router.add_observer(lambda result, request, backend: results.append(result))
    emulator.clear_requests()
    answer = llm.invoke(INVOICE)  # cheap's prose fails the gate: escalated, every call sent as with the check
    assert json.loads(answer.content) == json.loads(INVOICE_JSON)
    attempts = results[-1].attempts
    assert [(a.tier, a.outcome) for a in attempts][0] == ("cheap", "gate_failed") and attempts[-1].outcome == "served"
    assert [r.model_id for r in emulator.requests] == [a.model_id for a in attempts]
    assert len(attempts) > 1


def test_the_check_runs_on_every_call_only_when_asked(emulator):
    skipped = TieredChatBedrock(config=config(emulator.url), telemetry=False)
    checked = TieredChatBedrock(config=config(emulator.url, transport={"validate_params": True}), telemetry=False)
    assert isinstance(skipped.client._serializer, _param_check._CheckOnFailure)
    assert isinstance(skipped.bedrock_client._serializer, _param_check._CheckOnFailure)
    assert isinstance(checked.client._serializer, ParamValidationDecorator)


def test_a_botocore_that_cannot_be_hooked_keeps_its_check(emulator, monkeypatch):
    monkeypatch.setattr("langchain_tiered_router.langchain.chat_model.check_params_on_failure", lambda client: False)
    llm = TieredChatBedrock(config=config(emulator.url), telemetry=False)
    assert isinstance(llm.client._serializer, ParamValidationDecorator)
    assert llm.invoke("hello").content


def test_a_client_without_a_serializer_is_left_alone():
    class Odd:
        pass

    client = Odd()
    assert _param_check.check_params_on_failure(client) is False
    assert not hasattr(client, "_serializer")


def test_a_failure_the_check_does_not_explain_is_raised_as_it_was():
    class Operation:
        input_shape = None

    class Broken:
        def serialize_to_request(self, parameters, operation_model):
            raise RuntimeError("serialiser bug")

    with pytest.raises(RuntimeError, match="serialiser bug"):
        _param_check._CheckOnFailure(Broken()).serialize_to_request({}, Operation())
