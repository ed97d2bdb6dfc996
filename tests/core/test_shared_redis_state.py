"""Routers of different ladders on one real redis-server keep their circuits and session
pins apart; a pin lasts the TTL it was given, to the millisecond."""

from __future__ import annotations

import shutil
import time
from typing import Iterator

import pytest

from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.errors import TransportError
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest
from tests.litellm._proc import redis_server

pytestmark = pytest.mark.redis

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 1.0}


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH (CI installs it: apt-get install redis-server)")
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _config(cheap: str, frontier: str, **extra) -> dict:
    return {"tiers": [{"name": "cheap", "model_id": cheap, "price": PRICE},
                      {"name": "frontier", "model_id": frontier, "price": {**PRICE, "input_per_mtok": 10.0}}],
            "retry": {"max_retries": 0}, "telemetry": {"sinks": []}, **extra}


def test_a_circuit_opened_by_one_ladder_does_not_close_another_ladders_tier_of_the_same_name(redis_url):
    """Keys were ``<prefix><tier name>``: model A's throttled ``cheap`` (Nova Micro)
    opened model B's healthy ``cheap`` (Nova Lite), whose requests went to frontier."""
    circuit = {"failures": 2, "cooldown_s": 60, "backend": "redis", "redis_url": redis_url,
               "key_prefix": "t-circuit-1:"}
    a = build_router(_config("amazon.nova-micro-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", circuit=circuit))
    b = build_router(_config("amazon.nova-lite-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", circuit=circuit))
    throttled = ScriptedBackend({"cheap": TransportError("slow down", tier="cheap", model_id="amazon.nova-micro-v1:0", kind="throttled"), "*": "ok"})
    for i in range(3):
        a.route(RouteRequest(f"a {i}"), throttled)
    opened = a.route(RouteRequest("a again"), throttled)
    assert [(x.tier, x.outcome) for x in opened.attempts][0] == ("cheap", "skipped")  # A's own circuit is open
    served = b.route(RouteRequest("b"), ScriptedBackend({"*": "ok"}))
    assert served.tier == "cheap" and [x.tier for x in served.attempts] == ["cheap"]
    # a third ladder calling A's model shares A's circuit: it is the model that is unwell
    c = build_router(_config("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", circuit=circuit))
    assert [(x.tier, x.outcome) for x in c.route(RouteRequest("c"), ScriptedBackend({"*": "ok"})).attempts][0] == (
        "cheap", "skipped")


def test_a_session_pinned_on_one_ladder_is_not_pinned_on_another(redis_url):
    """Pin keys held no trace of the ladder: a session pinned to model A's ``frontier``
    (Sonnet) was served by model B's ``frontier`` (Opus) on its first request there."""
    pinning = {"backend": "redis", "redis_url": redis_url, "key_prefix": "t-pin-1:"}
    gate = [{"kind": "regex", "pattern": "^good"}]
    a = build_router(_config("amazon.nova-micro-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0",
                             pinning=pinning, gates=gate))
    b = build_router(_config("amazon.nova-micro-v1:0", "anthropic.claude-opus-4-5-20251101-v1:0",
                             pinning=pinning, gates=gate))
    script = {"cheap": "bad", "frontier": "good"}
    assert a.route(RouteRequest("q", session_id="s1"), ScriptedBackend(script)).tier == "frontier"
    again = a.route(RouteRequest("q2", session_id="s1"), ScriptedBackend(script))
    assert again.start_reason == "pinned by session s1"
    other = b.route(RouteRequest("q3", session_id="s1"), ScriptedBackend({"*": "good"}))
    assert other.start_tier == "cheap" and other.start_reason != "pinned by session s1"


def test_a_redis_pin_lasts_the_ttl_it_was_given(redis_url):
    """``ttl_s`` was cut to whole seconds: 1.9 s lasted 1 s in Redis, 0.3 s lasted 1 s."""
    gate = [{"kind": "regex", "pattern": "^good"}]
    script = {"cheap": "bad", "frontier": "good"}
    for ttl, before, after in ((0.3, None, 0.8), (1.9, 1.3, None)):
        pinning = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"t-pin-ttl-{ttl}:", "ttl_s": ttl}
        router = build_router(_config("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", pinning=pinning, gates=gate))
        router.route(RouteRequest("q", session_id="s"), ScriptedBackend(script))
        time.sleep(before or after)
        started = router.route(RouteRequest("q2", session_id="s"), ScriptedBackend({"*": "good"})).start_reason
        assert (started == "pinned by session s") == (before is not None), (ttl, started)


def test_on_an_event_loop_pins_and_the_circuit_work_through_a_shared_redis(redis_url):
    """Through ``aroute`` the session is pinned and read back, and a throttled tier's
    circuit opens across two routers; a healthy Redis is asked inline, on the loop's own
    thread (a hop to a worker thread per call cost more than the router)."""
    import asyncio
    import threading

    pinning = {"backend": "redis", "redis_url": redis_url, "key_prefix": "t-pin-async:"}
    circuit = {"failures": 2, "cooldown_s": 60, "backend": "redis", "redis_url": redis_url,
               "key_prefix": "t-circuit-async:"}
    gate = [{"kind": "regex", "pattern": "^good"}]
    router = build_router(_config("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", pinning=pinning, circuit=circuit,
                                  gates=gate))
    other = build_router(_config("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", circuit=circuit))
    threads: set[str] = set()
    for store, name in ((router.pin_store, "get"), (router.pin_store, "set"), (router.breaker, "allow"),
                        (router.breaker, "record"), (other.breaker, "allow"), (other.breaker, "record")):
        real = getattr(store, name)

        def spy(*args, _real=real):
            threads.add(threading.current_thread().name)
            return _real(*args)
        setattr(store, name, spy)
    throttled = ScriptedBackend({"cheap": TransportError("slow down", tier="cheap", model_id="amazon.nova-micro-v1:0",
                                                         kind="throttled"), "*": "ok"})

    async def main() -> tuple:
        first = await router.aroute(RouteRequest("q", session_id="s1"), ScriptedBackend({"cheap": "bad", "*": "good"}))
        again = await router.aroute(RouteRequest("q2", session_id="s1"), ScriptedBackend({"*": "good"}))
        for i in range(2):
            await other.aroute(RouteRequest(f"t {i}"), throttled)
        skipped = await other.aroute(RouteRequest("t again"), ScriptedBackend({"*": "ok"}))
        return first, again, skipped, threading.current_thread().name

    first, again, skipped, loop_thread = asyncio.run(main())
    assert first.tier == "frontier" and again.start_reason == "pinned by session s1" and again.tier == "frontier"
    assert [(a.tier, a.outcome) for a in skipped.attempts] == [("cheap", "skipped"), ("frontier", "served")]
    assert threads == {loop_thread}
