"""Tier requests are checked against typed principals; session pins belong to one caller
and never grant a tier the caller may not request; an unknown tier is the caller's error."""

from __future__ import annotations

import pytest

from langchain_tiered_router.core import (ConfigError, MemoryPinStore, RouteRequest, TierAnswer, TierNotAllowedError,
                                          Usage)
from langchain_tiered_router.core.access import pin_key
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.errors import UnknownTierRequestError
from langchain_tiered_router.core.testing import ScriptedBackend


def answer(text: str) -> TierAnswer:
    return TierAnswer(text=text, usage=Usage(100, 20))


def router(config: dict, pins: MemoryPinStore | None = None, records: list | None = None):
    observers = [lambda result, request, backend: records.append(result)] if records is not None else []
    return build_router(config, observers=observers, pin_store=pins, sleep=lambda s: None)


@pytest.mark.parametrize("entry", ["ops-team", "team-ops", "group:ops", "team:", "team:  "])
def test_an_untyped_principal_is_a_config_error_naming_the_typed_forms(base_config, entry):
    base_config["access"] = {"allow_tier_request": ["*", entry]}
    with pytest.raises(ConfigError) as info:
        build_router(base_config, telemetry=False)
    assert info.value.path == "access.allow_tier_request[1]"
    assert "'team:" in str(info.value) and "'key_alias:" in str(info.value) and "'user:" in str(info.value)


@pytest.mark.parametrize("entry, says", [("team: ops", "write 'team:ops'"), ("team:ops ", "write 'team:ops'"),
                                         ("user:*", "is no wildcard")])
def test_a_principal_that_could_never_match_is_a_config_error(base_config, entry, says):
    base_config["access"] = {"allow_tier_request": [entry]}
    with pytest.raises(ConfigError, match=says) as info:
        build_router(base_config, telemetry=False)
    assert info.value.path == "access.allow_tier_request[0]"


@pytest.mark.parametrize("principals, allowed", [
    (("team:ops",), True),
    (("key_alias:ops", "team:app"), False),  # a key *aliased* ops in another team
    (("user:ops", "team:app"), False),  # a user *called* ops
    (("team_alias:ops",), False),
    ((), False),
])
def test_principal_kinds_never_match_each_other(base_config, principals, allowed):
    base_config["access"] = {"allow_tier_request": ["team:ops"]}
    r = router(base_config)
    backend = ScriptedBackend({"*": answer('{"total": 1}')})
    request = RouteRequest("x", requested_tier="frontier", principals=principals)
    if allowed:
        assert r.route(request, backend).tier == "frontier"
    else:
        with pytest.raises(TierNotAllowedError):
            r.route(request, backend)
        assert backend.calls == []


def test_a_pin_belongs_to_the_caller_that_made_it(base_config):
    pins = MemoryPinStore()
    r = router(base_config, pins)
    backend = ScriptedBackend({"cheap": answer("no json"), "mid": answer('{"total": 1}')})
    first = r.route(RouteRequest("turn 1", session_id="s1", principals=("team:app", "user:alice")), backend)
    assert first.tier == "mid"
    backend.script["cheap"] = answer('{"total": 2}')
    same = r.route(RouteRequest("turn 2", session_id="s1", principals=("user:alice", "team:app")), backend)
    assert same.start_reason == "pinned by session s1" and same.tier == "mid"
    other = r.route(RouteRequest("turn 2", session_id="s1", principals=("team:app", "user:bob")), backend)
    assert other.start_tier == "cheap" and other.start_reason != "pinned by session s1"
    anonymous = r.route(RouteRequest("turn 2", session_id="s1"), backend)
    assert anonymous.start_tier == "cheap"
    # the store holds the session under the caller's hashed scope, never the identity itself
    assert all("alice" not in key for key in pins._pins)


def test_a_pin_never_grants_a_tier_the_caller_may_no_longer_request(base_config):
    pins = MemoryPinStore()
    backend = ScriptedBackend({"*": answer('{"total": 1}')})
    ops = ("team:ops",)
    base_config["access"] = {"allow_tier_request": ["team:ops"]}
    requested = router(base_config, pins).route(RouteRequest("x", session_id="s", requested_tier="frontier",
                                                             principals=ops), backend)
    assert requested.tier == "frontier"
    again = router(base_config, pins).route(RouteRequest("y", session_id="s", principals=ops), backend)
    assert again.start_reason == "pinned by session s" and again.tier == "frontier"
    # the team loses the right to ask: its requested pin no longer starts it on the frontier tier
    base_config["access"] = {"allow_tier_request": []}
    revoked = router(base_config, pins).route(RouteRequest("z", session_id="s", principals=ops), backend)
    assert revoked.start_tier == "cheap" and revoked.tier == "cheap"
    # a pin the router earned by escalating (no request) keeps the conversation where it was served
    backend.script.update({"cheap": answer("no json")})
    escalated = router(base_config, pins).route(RouteRequest("a", session_id="e", principals=ops), backend)
    assert escalated.tier == "mid"
    backend.script.update({"cheap": answer('{"total": 1}')})
    kept = router(base_config, pins).route(RouteRequest("b", session_id="e", principals=ops), backend)
    assert kept.start_reason == "pinned by session e" and kept.tier == "mid"
    assert pins.get(pin_key("e", ops)) == "mid" and pins.get(pin_key("s", ops)) == "cheap"


@pytest.mark.parametrize("asked, hint", [("ultra", None), ("FRONTIER", "frontier"), ("x" * 10_000, None)])
def test_an_unknown_tier_request_is_the_callers_error_with_the_ladders_names(base_config, asked, hint):
    base_config["access"] = {"allow_tier_request": ["*"]}
    records: list = []
    backend = ScriptedBackend({"*": answer('{"total": 1}')})
    with pytest.raises(UnknownTierRequestError) as info:
        router(base_config, records=records).route(RouteRequest("x", requested_tier=asked), backend)
    assert info.value.tiers == ["cheap", "mid", "frontier"]
    assert "the ladder has cheap, mid, frontier" in str(info.value) and len(str(info.value)) < 300
    if hint:
        assert f"did you mean {hint!r}" in str(info.value)
    assert backend.calls == [] and records and records[0].error.startswith("UnknownTierRequestError")


def test_a_forbidden_caller_learns_nothing_about_the_ladder(base_config):
    base_config["access"] = {"allow_tier_request": ["team:ops"]}
    with pytest.raises(TierNotAllowedError):
        router(base_config).route(RouteRequest("x", requested_tier="ultra", principals=("team:app",)),
                                  ScriptedBackend({"*": answer("{}")}))


def test_a_pin_lasts_ttl_from_the_sessions_last_use(base_config):
    """The TTL counted from when the pin was set and an unchanged pin was never written
    again: a conversation still going after ``ttl_s`` fell back to the cheap tier (and its
    warm cache) mid-conversation."""
    now = [0.0]
    pins = MemoryPinStore(ttl_s=10, clock=lambda: now[0])
    r = router(base_config, pins)
    backend = ScriptedBackend({"cheap": answer("no json"), "mid": answer('{"total": 1}')})
    assert r.route(RouteRequest("turn 1", session_id="s"), backend).tier == "mid"
    backend.script["cheap"] = answer('{"total": 2}')  # cheap would serve now: only the pin keeps mid
    for t in (6.0, 12.0, 18.0):  # each within ttl_s of the last request, all past 10 s from the first
        now[0] = t
        turn = r.route(RouteRequest(f"turn at {t}", session_id="s"), backend)
        assert turn.start_reason == "pinned by session s" and turn.tier == "mid"
    now[0] = 28.5  # idle longer than ttl_s: the pin has expired
    assert r.route(RouteRequest("later", session_id="s"), backend).start_tier == "cheap"
