"""Who may force a tier, through a real LiteLLM proxy with real keys (the proxy's custom
auth, ``proxy_auth.py``): typed principals against the identity the proxy authenticated,
session pins scoped to the caller, and an unknown tier answered 400 with the ladder's names.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import openai
import pytest

from ._proc import litellm_proxy
from .conftest import CHEAP, FRONTIER, INVOICE_SCHEMA, MID, proxy_config, router_yaml

pytestmark = pytest.mark.proxy

JSON_GATE = [{"kind": "json_schema", "schema": INVOICE_SCHEMA}]
KEYS = ("sk-ops", "sk-app", "sk-alias-lookalike", "sk-user-lookalike")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, emulator) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("proxy-access")
    team = router_yaml(work / "team.yaml", gates=JSON_GATE, telemetry={"sinks": []},
                       access={"allow_tier_request": ["team:ops-team"], "on_forbidden": "reject"})
    alias = router_yaml(work / "alias.yaml", gates=JSON_GATE, telemetry={"sinks": []},
                        access={"allow_tier_request": ["key_alias:ops-team"], "on_forbidden": "reject"})
    anyone = router_yaml(work / "anyone.yaml", gates=JSON_GATE, telemetry={"sinks": []},
                         access={"allow_tier_request": ["*"]})
    config = proxy_config(emulator.url, {"tiered": team, "tiered-alias": alias, "tiered-open": anyone},
                          master_key="sk-ops", custom_auth="tests.litellm.proxy_auth.user_api_key_auth")
    with litellm_proxy(config, work) as running:
        yield running


@pytest.fixture(scope="module")
def clients(proxy) -> dict[str, openai.OpenAI]:
    return {key: openai.OpenAI(base_url=proxy["url"], api_key=key, max_retries=0, timeout=60) for key in KEYS}


def ask(client: openai.OpenAI, text: str, model: str = "tiered", **kwargs: Any):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs)
    return raw.parse(), raw.headers


def frontier(**extra: str) -> dict[str, Any]:
    return {"extra_headers": {"x-tiered-router-tier": "frontier", **extra}}


def test_the_team_itself_may_force_the_frontier_tier(clients, emulator):
    emulator.clear_requests()
    response, headers = ask(clients["sk-ops"], "extract the invoice total", **frontier())
    assert headers["x-tiered-router-tier"] == "frontier"
    assert response.model_extra["tiered_router"]["start_reason"] == "requested by the caller"
    assert [r.model_id for r in emulator.requests] == [FRONTIER]


@pytest.mark.parametrize("key", ["sk-alias-lookalike", "sk-user-lookalike", "sk-app"])
def test_a_look_alike_of_the_team_is_refused(clients, emulator, key):
    """A key *aliased* ops-team, or a user *called* ops-team, is not the team ops-team."""
    emulator.clear_requests()
    with pytest.raises(openai.PermissionDeniedError) as info:
        ask(clients[key], "extract the invoice total", **frontier())
    body = json.dumps(info.value.body)
    assert "tier_not_allowed" in body and "team:app-team" in body
    assert emulator.requests == []


def test_identity_fields_sent_by_the_client_are_not_believed(clients, emulator):
    emulator.clear_requests()
    forged = {"user_api_key_team_id": "ops-team", "user_api_key_alias": "ops-key", "user_api_key_user_id": "ops-user",
              "tier": "frontier"}
    with pytest.raises(openai.PermissionDeniedError):
        ask(clients["sk-app"], "extract the invoice total", extra_body={"metadata": forged})
    assert emulator.requests == []


def test_a_key_alias_principal_matches_the_alias_only(clients):
    _, headers = ask(clients["sk-alias-lookalike"], "extract the invoice total", model="tiered-alias", **frontier())
    assert headers["x-tiered-router-tier"] == "frontier"
    with pytest.raises(openai.PermissionDeniedError):  # the team ops-team has no key aliased ops-team
        ask(clients["sk-ops"], "extract the invoice total", model="tiered-alias", **frontier())
    with pytest.raises(openai.PermissionDeniedError):  # nor is a user called ops-team that key alias
        ask(clients["sk-user-lookalike"], "extract the invoice total", model="tiered-alias", **frontier())


def test_a_pin_made_by_one_caller_never_starts_another_callers_request(clients, emulator):
    session = {"x-session-id": "shared-session"}
    _, first = ask(clients["sk-ops"], "extract the invoice total", **frontier(**session))
    assert first["x-tiered-router-tier"] == "frontier"
    _, again = ask(clients["sk-ops"], "and the invoice date?", extra_headers=session)
    assert again["x-tiered-router-start-tier"] == "frontier"  # the caller's own pin holds
    emulator.clear_requests()
    _, other = ask(clients["sk-app"], "and the invoice date?", extra_headers=session)
    assert other["x-tiered-router-start-tier"] == "cheap"  # same session id, another key: no pin
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]


def test_an_escalation_pin_stays_with_its_caller(clients, emulator):
    session = {"x-session-id": "escalated-session"}
    _, first = ask(clients["sk-app"], "extract the invoice total", extra_headers=session)
    assert first["x-tiered-router-tier"] == "mid"
    _, mine = ask(clients["sk-app"], "the invoice again", extra_headers=session)
    assert mine["x-tiered-router-start-tier"] == "mid"
    _, theirs = ask(clients["sk-alias-lookalike"], "the invoice again", extra_headers=session)
    assert theirs["x-tiered-router-start-tier"] == "cheap"


@pytest.mark.parametrize("asked", ["ultra", "FRONTIER"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_unknown_tier_is_a_400_naming_the_ladder(clients, emulator, asked, stream):
    emulator.clear_requests()
    with pytest.raises(openai.BadRequestError) as info:
        response = clients["sk-app"].chat.completions.create(
            model="tiered-open", messages=[{"role": "user", "content": "extract the invoice total"}],
            extra_headers={"x-tiered-router-tier": asked}, stream=stream)
        if stream:
            list(response)
    assert info.value.status_code == 400
    body = json.dumps(info.value.body)
    assert "unknown_tier" in body and "cheap, mid, frontier" in body
    if asked == "FRONTIER":
        assert "did you mean" in body
    assert emulator.requests == []


def test_a_clients_schema_the_router_cannot_run_is_a_400(clients, emulator):
    emulator.clear_requests()
    schema = {"type": "object", "properties": {"total": {"type": "string", "pattern": "(a)\\1"}}}
    with pytest.raises(openai.BadRequestError) as info:
        ask(clients["sk-app"], "extract the invoice total", model="tiered-open",
            response_format={"type": "json_schema", "json_schema": {"name": "invoice", "schema": schema}})
    assert "bad_response_format" in json.dumps(info.value.body) and "RE2" in json.dumps(info.value.body)
    assert emulator.requests == []

