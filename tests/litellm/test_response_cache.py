"""LiteLLM's response cache (``litellm_settings.cache``) in front of a tiered model.

A cache hit calls no model and LiteLLM bills it at 0. One-pass, each tier call is cached
on its own, so a repeated request is routed again over cached answers: the route must
cost what was billed, nothing, on the caller and in the record. On the provider's path
LiteLLM caches the routed answer whole and the router is not asked. A proxy of its own:
the cache would answer the other modules' repeated prompts."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, Iterator

import httpx
import pytest

from ._proc import litellm_proxy
from .conftest import CHEAP, INVOICE_SCHEMA, MID, complete_jsonl, proxy_config, router_yaml, settled_jsonl

pytestmark = pytest.mark.proxy


@pytest.fixture(scope="module", params=["provider", "one_pass"])
def proxy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, emulator) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("cache")
    cascade = router_yaml(work / "cascade.yaml", gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}],
                          telemetry={"sinks": [{"kind": "jsonl", "path": str(work / "records.jsonl")}]})
    config = proxy_config(emulator.url, {"tiered": cascade}, callbacks=("tests.litellm.payload_logger.instance",),
                          one_pass=None if request.param == "one_pass" else False, master_key="sk-ops",
                          custom_auth="tests.litellm.proxy_auth.user_api_key_auth")
    config["litellm_settings"].update(cache=True, cache_params={"type": "local"})
    with litellm_proxy(config, work, env={"TIERED_TEST_PAYLOADS": str(work / "payloads.jsonl")}) as running:
        yield {**running, "records": work / "records.jsonl", "payloads": work / "payloads.jsonl",
               "mode": request.param}


def _send(proxy: dict, session: str) -> httpx.Response:
    response = httpx.post(f"{proxy['url']}/v1/chat/completions", timeout=60,
                          headers={"Authorization": "Bearer sk-ops", "x-session-id": session},
                          json={"model": "tiered", "messages": [{"role": "user", "content": "the cached invoice"}]})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == '{"total": 12}'
    return response


def _events(proxy: dict, expected: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while len(events := complete_jsonl(proxy["payloads"])) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return events


def test_a_repeated_request_answered_by_the_cache_costs_nothing(proxy, emulator) -> None:
    emulator.clear_requests()
    first = _send(proxy, "cache-1")
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]  # cheap fails the gate
    routed = Decimal(first.headers["x-litellm-response-cost"])
    assert routed > 0

    emulator.clear_requests()
    again = _send(proxy, "cache-2")
    assert emulator.requests == []  # every answer came from the cache
    assert Decimal(again.headers["x-litellm-response-cost"]) == 0

    first_event, cached_event = _events(proxy, 2)
    assert Decimal(str(first_event["response_cost"])) == routed.quantize(Decimal(str(first_event["response_cost"])))
    assert cached_event["response_cost"] == 0 and cached_event["key_alias"] == "ops-key"

    rows = {r["session_id"]: r for r in settled_jsonl(proxy["records"])}
    if proxy["mode"] == "one_pass":  # routed again, over cached answers: each priced at 0
        row = rows["cache-2"]
        assert [(a["tier"], a["outcome"], a["cache_hit"]) for a in row["attempts"]] == [
            ("cheap", "gate_failed", True), ("mid", "served", True)]
        assert Decimal(row["cost_usd"]) == 0 and again.headers["x-tiered-router-cost-usd"] == "0"
        assert [a["cache_hit"] for a in rows["cache-1"]["attempts"]] == [False, False]
    else:  # LiteLLM answered the whole request from its cache: nothing was routed
        assert "cache-2" not in rows and "x-tiered-router-tier" not in again.headers


def test_a_streamed_request_pays_for_what_the_cache_did_not_answer(proxy, emulator) -> None:
    """One-pass, LiteLLM does not cache the proxy's stream of the first tier, so that
    attempt is called each time; the escalated attempt is one plain call, which the cache
    answers the second time. On the provider's path the routed stream is cached whole."""
    body = {"model": "tiered", "stream": True, "messages": [{"role": "user", "content": "a streamed cached invoice"}]}
    seen = []
    for session in ("cache-s1", "cache-s2"):
        emulator.clear_requests()
        with httpx.stream("POST", f"{proxy['url']}/v1/chat/completions", json=body, timeout=60,
                          headers={"Authorization": "Bearer sk-ops", "x-session-id": session}) as response:
            assert response.status_code == 200
            chunks = [json.loads(line[len("data: "):]) for line in response.iter_lines()
                      if line.startswith("data: {")]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
            '{"total": 12}'
        seen.append([r.model_id for r in emulator.requests])
    time.sleep(1)
    rows = {r["session_id"]: r for r in complete_jsonl(proxy["records"])}
    first = rows["cache-s1"]
    assert seen[0] == [CHEAP, MID]
    assert [(a["tier"], a["cache_hit"]) for a in first["attempts"]] == [("cheap", False), ("mid", False)]
    if proxy["mode"] == "provider":
        assert seen[1] == [] and "cache-s2" not in rows
        return
    again = rows["cache-s2"]
    assert seen[1] == [CHEAP]
    assert [(a["tier"], a["cache_hit"]) for a in again["attempts"]] == [("cheap", False), ("mid", True)]
    cheap, mid = again["attempts"]
    assert Decimal(mid["cost_usd"]) == 0 and Decimal(again["cost_usd"]) == Decimal(cheap["cost_usd"]) > 0


def test_a_tier_request_is_never_answered_from_the_cache(proxy, emulator) -> None:
    """A request that names a tier reaches the router, which checks who may ask (here no
    one: the router YAML allows no tier requests): the provider's path used to hand it
    another request's cached routed answer, 200, the access check skipped."""
    _send(proxy, "cache-tier-1")  # the answer is in the cache now
    emulator.clear_requests()
    response = httpx.post(f"{proxy['url']}/v1/chat/completions", timeout=60,
                          headers={"Authorization": "Bearer sk-ops", "x-tiered-router-tier": "frontier"},
                          json={"model": "tiered", "messages": [{"role": "user", "content": "the cached invoice"}]})
    assert response.status_code == 403 and "tier_not_allowed" in response.text, response.text
    assert emulator.requests == []
