"""LangChain's serialisation: a chain holding ``TieredChatBedrock`` goes through
``dumps``/``loads`` and the loaded chain routes on the emulator with the dumped config;
credentials never reach the dumped text; what cannot be dumped is a ``not_implemented``
entry that ``loads`` refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from langchain_core.load import dumps, loads
from langchain_core.prompts import ChatPromptTemplate, HumanMessagePromptTemplate, PromptTemplate
from langchain_core.runnables import RunnableSequence
from pydantic import BaseModel

from langchain_tiered_router.langchain import TieredChatBedrock

from .scripts import CHEAP, INVOICE, INVOICE_JSON, INVOICE_SCHEMA, MID, config

JSON_GATE = [{"kind": "json_schema", "schema": INVOICE_SCHEMA}]
NAMESPACE = ["langchain_tiered_router"]
# the two ways LangChain admits a class outside its own mapping: every class of the chain
# listed, or its core classes and this one
LISTED = {"allowed_objects": [RunnableSequence, ChatPromptTemplate, HumanMessagePromptTemplate, PromptTemplate,
                              TieredChatBedrock], "valid_namespaces": NAMESPACE}
CORE_AND_OURS = {"allowed_objects": "core", "valid_namespaces": NAMESPACE,
                 "additional_import_mappings": {tuple(TieredChatBedrock.lc_id()): tuple(TieredChatBedrock.lc_id())}}
KEYS = {"aws_access_key_id": "AKIAEXAMPLEKEY000042", "aws_secret_access_key": "wJalrXUtnFEMIexampleSecretKey00042",
        "aws_session_token": "IQoJexampleSessionToken00042"}
SECRET_IDS = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
              "aws_session_token": "AWS_SESSION_TOKEN", "api_key": "AWS_BEARER_TOKEN_BEDROCK"}


def prompted(llm: TieredChatBedrock) -> Any:
    return ChatPromptTemplate.from_messages([("human", "{request}")]) | llm


def sure_of_it(question: str, answer: str) -> bool:
    """A business rule, named in the config by its import path."""
    return "I think" not in answer


@pytest.mark.parametrize("admit", [LISTED, CORE_AND_OURS], ids=["listed", "core-and-ours"])
def test_a_loaded_chain_routes_with_the_dumped_config_and_settings(emulator, admit) -> None:
    llm = TieredChatBedrock(config=config(emulator.url, gates=JSON_GATE), telemetry=False, temperature=0.25,
                            max_tokens=300, system=["Answer in JSON."])
    text = dumps(prompted(llm))
    chain = loads(text, **admit)
    model = chain.last
    assert isinstance(model, TieredChatBedrock) and model is not llm
    assert model.config == llm.config and model.router is not llm.router
    assert (model.temperature, model.max_tokens, model.system, model.telemetry) == (0.25, 300, ["Answer in JSON."],
                                                                                   False)
    emulator.clear_requests()
    answer = chain.invoke({"request": INVOICE})
    assert answer.content == INVOICE_JSON
    routing = answer.response_metadata["routing"]
    assert routing["tier"] == "frontier"
    assert [(a["tier"], a["outcome"]) for a in routing["attempts"]] == [
        ("cheap", "gate_failed"), ("mid", "gate_failed"), ("frontier", "served")]
    # the settings went with it: every tier call carried them
    assert {(r.body["inferenceConfig"]["temperature"], r.body["inferenceConfig"]["maxTokens"],
             r.body["system"][0]["text"]) for r in emulator.requests} == {(0.25, 300, "Answer in JSON.")}


def test_a_config_read_from_a_file_is_dumped_inline_with_its_rule_gate(tmp_path, emulator) -> None:
    """A YAML config is dumped as the keys it set, not as its path; a business rule named
    by import path is imported again where the chain is loaded."""
    path = tmp_path / "router.yaml"
    rule = {"kind": "rule", "function": f"{__name__}:sure_of_it"}
    path.write_text(yaml.safe_dump(config(emulator.url, gates=[rule])))
    llm = TieredChatBedrock.from_config(path, telemetry=False)
    text = dumps(prompted(llm))
    assert json.loads(text)["kwargs"]["last"]["kwargs"]["config"] == yaml.safe_load(path.read_text())
    path.unlink()
    chain = loads(text, **LISTED)
    assert chain.last.config == llm.config
    answer = chain.invoke({"request": "What is the capital of France?"})
    assert answer.content == "Paris. Confidence: 0.9"
    assert [(a["tier"], a["outcome"]) for a in answer.response_metadata["routing"]["attempts"]] == [
        ("cheap", "gate_failed"), ("mid", "served")]


def test_a_dump_holds_no_key_material_and_loads_takes_the_keys_from_the_secrets_map(emulator) -> None:
    llm = TieredChatBedrock(config=config(emulator.url), telemetry=False, **KEYS)
    text = dumps(prompted(llm))
    for value in KEYS.values():
        assert value not in text and value[-12:] not in text
    kwargs = json.loads(text)["kwargs"]["last"]["kwargs"]
    assert {name: kwargs[name] for name in KEYS} == {
        name: {"lc": 1, "type": "secret", "id": [SECRET_IDS[name]]} for name in KEYS}
    # the chain loaded where the keys are: its requests are signed with them
    chain = loads(text, secrets_map={SECRET_IDS[name]: value for name, value in KEYS.items()}, **LISTED)
    assert {name: getattr(chain.last, name).get_secret_value() for name in KEYS} == KEYS
    emulator.clear_requests()
    assert chain.invoke({"request": "hello"}).response_metadata["routing"]["tier"] == "cheap"
    headers = emulator.requests[-1].headers
    assert f"Credential={KEYS['aws_access_key_id']}/" in headers["authorization"]
    assert headers["x-amz-security-token"] == KEYS["aws_session_token"]
    # loaded without them, the model has no keys of its own: boto3's credential chain signs
    bare = loads(text, **LISTED).last
    assert all(getattr(bare, name) is None for name in KEYS)


def test_a_dump_holds_no_bedrock_api_key(emulator) -> None:
    """Bedrock API keys are sent as a bearer token, which botocore sends over HTTPS only
    (the emulator serves HTTP): the key is checked on the loaded model, not on a call."""
    token = "ABSKexampleBedrockApiKey00042"
    text = dumps(prompted(TieredChatBedrock(config=config(emulator.url), telemetry=False, api_key=token)))
    assert token not in text and token[-12:] not in text
    assert json.loads(text)["kwargs"]["last"]["kwargs"]["api_key"] == {
        "lc": 1, "type": "secret", "id": ["AWS_BEARER_TOKEN_BEDROCK"]}
    chain = loads(text, secrets_map={"AWS_BEARER_TOKEN_BEDROCK": token}, **LISTED)
    assert chain.last.api_key.get_secret_value() == token


TIER_KEYS = {"aws_access_key_id": "AKIAEXAMPLEKEY000042", "aws_secret_access_key": "hunter2-tier-key"}


@pytest.mark.parametrize("overrides, wheres", [
    ({"pinning": {"enabled": False, "backend": "redis", "redis_url": "redis://:hunter2-pin@127.0.0.1:6379/0"}},
     ["pinning.redis_url"]),
    ({"circuit": {"enabled": False, "backend": "redis", "redis_url": "rediss://ops:hunter2-cb@127.0.0.1:6380?db=1"}},
     ["circuit.redis_url"]),
    ({"telemetry": {"sinks": [{"kind": "postgres", "dsn": "host=127.0.0.1 user=router password=hunter2-dsn"}]}},
     ["telemetry.sinks[0].dsn"]),
    ({"tiers": [{"name": "cheap", "model_id": CHEAP}, {"name": "mid", "model_id": MID, "model_kwargs": TIER_KEYS}]},
     ["tiers[1].model_kwargs.aws_access_key_id", "tiers[1].model_kwargs.aws_secret_access_key"]),
], ids=["pin-store", "circuit", "postgres-dsn", "tier-kwargs"])
def test_a_credential_in_the_config_stays_out_of_the_dump_and_loads_refuses_it(emulator, overrides, wheres) -> None:
    llm = TieredChatBedrock(config=config(emulator.url, **overrides), telemetry=False)
    assert llm.invoke("hello").response_metadata["routing"]["tier"] == "cheap"  # LangChain dumped it on this call
    text = dumps(prompted(llm))
    assert "hunter2" not in text and TIER_KEYS["aws_access_key_id"] not in text
    for where in wheres:
        assert f"the router config's {where} holds a credential, which a dump must not carry" in text
    with pytest.raises(NotImplementedError, match=re.escape(f"{wheres[0]} holds a credential")):
        loads(text, **LISTED)
    # asked to drop what it cannot load, LangChain loads the model without the credential
    chain = loads(text, ignore_unserializable_fields=True, **LISTED)
    assert chain.invoke({"request": "hello"}).response_metadata["routing"]["tier"] == "cheap"


def a_business_rule(question: str, answer: str) -> bool:
    return True


@pytest.mark.parametrize("change, why", [
    (lambda cfg: cfg.gates.append(a_business_rule),
     "the router config's gates[0] is a function, which no config file can hold"),
    (lambda cfg: setattr(cfg.retry, "max_retries", 99),
     "the router config does not load back from its JSON form: retry.max_retries"),
], ids=["a-callable-gate", "an-unchecked-value"])
def test_a_config_changed_after_its_validation_is_not_dumped(emulator, change, why) -> None:
    """A value set on the config object after it was checked (a Python callable appended
    as a gate, a number out of range) never reached the router; the dump says so."""
    llm = TieredChatBedrock(config=config(emulator.url), telemetry=False)
    change(llm.config)
    text = dumps(llm)
    assert why in text
    with pytest.raises(NotImplementedError, match="doesn't implement serialization"):
        loads(text, **LISTED)


class Invoice(BaseModel):
    total: float
    currency: str


@pytest.mark.parametrize("schema", [Invoice, {"title": "Invoice", **INVOICE_SCHEMA}], ids=["pydantic", "json-schema"])
def test_a_structured_output_model_dumps_but_does_not_load(emulator, schema) -> None:
    """``with_structured_output`` binds its schema as a gate, a live object: the dump holds
    a ``not_implemented`` entry for it, as LangChain writes any value it cannot serialise."""
    llm = TieredChatBedrock(config=config(emulator.url), telemetry=False)
    text = dumps(llm.with_structured_output(schema))
    binding = json.loads(text)["kwargs"]["first"]["kwargs"]
    assert binding["bound"]["type"] == "constructor"  # the model itself dumps
    assert binding["kwargs"]["tiered_gates"][0]["type"] == "not_implemented"
    with pytest.raises(NotImplementedError, match="doesn't implement serialization"):
        loads(text, **CORE_AND_OURS)
