"""The new config sections round-trip and their mistakes name the key."""

from __future__ import annotations

import pytest

from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.circuit import MemoryCircuitBreaker
from langchain_tiered_router.core.config import RouterConfig
from langchain_tiered_router.core.errors import ConfigError

TIERS = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0", "timeout_s": 3},
         {"name": "top", "model_id": "amazon.nova-pro-v1:0"}]


def test_transport_circuit_retry_and_sinks_round_trip_through_yaml(tmp_path):
    config = RouterConfig.from_dict({
        "tiers": TIERS, "transport": {"deadline_s": 12, "timeout_s": 8, "max_concurrency": 100},
        "circuit": {"failures": 3, "cooldown_s": 10},
        "retry": {"escalate_on": ["context_window"], "retry_on": ["throttled", "malformed"], "jitter": False},
        "telemetry": {"sinks": [{"kind": "sqlite", "path": str(tmp_path / "t.db"), "durable": True,
                                 "queue_size": 500}]}})
    config.to_yaml(tmp_path / "c.yaml")
    assert RouterConfig.from_yaml(tmp_path / "c.yaml") == config
    router = build_router(config, telemetry=False)
    assert router.deadline_s == 12 and isinstance(router.breaker, MemoryCircuitBreaker)
    assert router.breaker.failures == 3
    assert [t.timeout_s for t in router.ladder] == [3, 8]  # the tier's own, else transport.timeout_s


@pytest.mark.parametrize("data, path", [
    ({"circuit": {"backend": "redis"}}, "circuit.redis_url"),
    ({"telemetry": {"sinks": [{"kind": "postgres", "dsn": "postgresql://x@h/db", "durable": True}]}},
     "telemetry.sinks[0].journal_dir"),
    ({"transport": {"deadline_s": 0}}, "transport.deadline_s"),
    ({"retry": {"escalate_on": ["everything"]}}, "retry.escalate_on[0]"),
])
def test_mistakes_name_their_key(data, path):
    with pytest.raises(ConfigError) as info:
        RouterConfig.from_dict({"tiers": TIERS, **data})
    assert info.value.path == path


def test_a_disabled_circuit_builds_no_breaker():
    assert build_router({"tiers": TIERS, "circuit": {"enabled": False}}, telemetry=False).breaker is None


def test_a_redis_outage_never_fails_a_request(caplog):
    """The shared breaker's store is down: calls go through, and it is logged."""
    import socket

    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import RouteRequest

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    router = build_router({"tiers": TIERS, "circuit": {"backend": "redis", "redis_url": f"redis://127.0.0.1:{port}/0"},
                           "pinning": {"enabled": False}}, telemetry=False)
    with caplog.at_level("WARNING", logger="langchain_tiered_router"):
        result = router.route(RouteRequest("hello"), ScriptedBackend({"*": "ok"}))
    assert result.tier == "cheap"
    assert any("circuit breaker store unavailable" in r.getMessage() for r in caplog.records)


def test_a_pin_store_outage_never_fails_or_stalls_a_request(caplog):
    """Session pins in a Redis that is down (nobody listens) or frozen (it accepts and never
    answers, as a stopped process does): requests with a session id are served, started
    by the policy, and it is logged; a frozen store costs one request its socket timeout,
    then is left alone for ``retry_s`` (every request raised, or hung, before)."""
    import socket
    import time

    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import RouteRequest

    with socket.socket() as down:  # a port nobody listens on
        down.bind(("127.0.0.1", 0))
        down_port = down.getsockname()[1]
    frozen = socket.socket()
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(16)  # connections are accepted by the kernel, never read
    try:
        for port in (down_port, frozen.getsockname()[1]):
            router = build_router({"tiers": TIERS, "pinning": {"backend": "redis",
                                                               "redis_url": f"redis://127.0.0.1:{port}/0"}},
                                  telemetry=False)
            caplog.clear()
            began = time.monotonic()
            with caplog.at_level("WARNING", logger="langchain_tiered_router"):
                results = [router.route(RouteRequest(f"hello {i}", session_id="s-1"), ScriptedBackend({"*": "ok"}))
                           for i in range(5)]
            assert [r.tier for r in results] == ["cheap"] * 5
            assert time.monotonic() - began < 2.5  # one socket timeout (0.5 s), not one per request
            assert any("session pin store unavailable" in r.getMessage() for r in caplog.records)
    finally:
        frozen.close()


@pytest.mark.parametrize("code, kind", [("throttlingException", "throttled"), ("ThrottlingException", "throttled"),
                                        ("modelStreamErrorException", "server_error"),
                                        ("internalServerException", "server_error")])
def test_an_exception_event_inside_a_stream_is_classified_by_its_code(code, kind) -> None:
    """ConverseStream names its exception events in camelCase (``throttlingException``);
    botocore raises them as ``EventStreamError`` with that code."""
    from langchain_tiered_router.core.backends import classify_transport_error

    class EventStreamError(Exception):
        response = {"Error": {"Code": code, "Message": "m"}}

    assert classify_transport_error(EventStreamError(), tier="cheap", model_id="m").kind == kind


def test_a_request_started_while_the_pin_store_was_down_leaves_the_pin_as_it_is():
    """Started unpinned in a Redis blip, a request that ended after the store was back
    wrote its own tier over the session's pin (top -> cheap: the conversation left the
    tier it was on, and its prompt cache, for good)."""
    from langchain_tiered_router.core.access import pin_key
    from langchain_tiered_router.core.pinning import RedisPinStore, decode_pin, encode_pin
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import RouteRequest

    now = [0.0]

    class Blinking:  # a Redis client that is down until the tier call below brings it back
        down = True
        data: dict[str, str] = {}

        def get(self, key):
            if self.down:
                raise ConnectionError("Redis is loading the dataset in memory")
            return self.data.get(key)

        def set(self, key, value, ex=None, px=None):
            self.data[key] = value

    client = Blinking()
    key = pin_key("s-1", ())
    client.data["tiered-router:pin:" + key] = encode_pin("top", False)
    store = RedisPinStore("redis://unused", client=client, clock=lambda: now[0])

    def answer(request):
        client.down, now[0] = False, now[0] + 10  # back, and past the store's retry_s
        return "ok"

    router = build_router({"tiers": TIERS, "telemetry": {"sinks": []}}, pin_store=store)
    result = router.route(RouteRequest("hello", session_id="s-1"), ScriptedBackend({"*": answer}))
    assert result.tier == "cheap" and result.start_reason != "pinned by session s-1"
    assert decode_pin(store.get(key)) == ("top", False)
    again = router.route(RouteRequest("hello", session_id="s-1"), ScriptedBackend({"*": "ok"}))
    assert (again.start_tier, again.start_reason) == ("top", "pinned by session s-1")


class _FakeRedis:
    """The few Redis commands the circuit breaker sends, in a dict (the fleet test runs a
    real server; these pin down two orderings of replicas' calls exactly)."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.calls = 0

    def mget(self, *keys):
        self.calls += 1
        return [self.data.get(k) for k in keys]

    def set(self, key, value, nx=False, px=None):
        self.calls += 1
        if nx and key in self.data:
            return None
        self.data[key] = value
        return True

    def delete(self, *keys):
        self.calls += 1
        for key in keys:
            self.data.pop(key, None)

    def pipeline(self):
        fake, ops = self, []

        class Pipe:
            def incr(self, key):
                ops.append(("incr", key))

            def pexpire(self, key, ms):
                ops.append(("noop", key))

            def set(self, key, value, px=None):
                ops.append(("set", key, value))

            def delete(self, key):
                ops.append(("delete", key))

            def execute(self):
                fake.calls += 1
                out = []
                for op in ops:
                    if op[0] == "incr":
                        fake.data[op[1]] = str(int(fake.data.get(op[1], 0)) + 1)
                        out.append(int(fake.data[op[1]]))
                    elif op[0] == "set":
                        fake.data[op[1]] = op[2]
                        out.append(True)
                    elif op[0] == "delete":
                        fake.data.pop(op[1], None)
                        out.append(1)
                    else:
                        out.append(True)
                return out

        return Pipe()


def test_another_replicas_success_between_two_failures_keeps_the_redis_circuit_closed():
    """fail (A), ok (B: its call was let through before A's failure), fail (A): two
    failures but not in a row. A success reset the count only on a replica that had seen a
    failure itself, so this opened the circuit fleet-wide (the memory breaker stays closed)."""
    from langchain_tiered_router.core.circuit import RedisCircuitBreaker

    redis = _FakeRedis()
    a, b = (RedisCircuitBreaker("redis://unused", failures=2, cooldown_s=60, client=redis) for _ in range(2))
    assert b.allow("cheap") and a.allow("cheap")
    a.record("cheap", False)
    b.record("cheap", True)
    assert a.allow("cheap")
    a.record("cheap", False)
    assert a.state("cheap") == "closed" and b.allow("cheap")


def test_a_frozen_redis_circuit_store_is_left_alone_after_a_timeout():
    """Every tier call of every request waited the socket timeout (0.5 s) on a frozen
    server; now one call does, and the store is tried again after ``retry_s``."""
    from langchain_tiered_router.core.circuit import RedisCircuitBreaker

    now = [0.0]

    class Frozen(_FakeRedis):
        def mget(self, *keys):
            self.calls += 1
            raise TimeoutError("Timeout reading from socket")

    redis = Frozen()
    breaker = RedisCircuitBreaker("redis://unused", failures=2, client=redis, retry_s=5, clock=lambda: now[0])
    for _ in range(10):  # calls go through, one of them pays the timeout
        assert breaker.allow("cheap")
        breaker.record("cheap", True)
    assert breaker.state("cheap") == "closed" and redis.calls == 1  # a pinned request asks this one
    now[0] = 6.0
    assert breaker.allow("cheap") and redis.calls == 2  # tried again after retry_s


def test_a_frozen_redis_stalls_the_event_loop_once_not_every_retry():
    """On an event loop (``aroute``, the LiteLLM proxy, ``ainvoke``) each retry of a frozen
    Redis, every ``retry_s``, held the whole loop for its socket timeout (0.5 s per store):
    every other request it served stood still. The first timeout still does (a healthy
    store is asked inline: a thread hop per call cost more than the router); from then
    on, until Redis answers again, the store is asked on a worker thread and the loop runs on."""
    import asyncio
    import socket
    import time

    from langchain_tiered_router.core.circuit import RedisCircuitBreaker
    from langchain_tiered_router.core.pinning import RedisPinStore
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import RouteRequest

    frozen = socket.socket()
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(16)  # connections are accepted by the kernel, never read
    url = f"redis://127.0.0.1:{frozen.getsockname()[1]}/0"
    router = build_router({"tiers": TIERS}, telemetry=False, pin_store=RedisPinStore(url, retry_s=0.3),
                          breaker=RedisCircuitBreaker(url, retry_s=0.3))

    async def request(text: str) -> tuple[float, float, str]:
        """How long the request took, the longest the loop stood still meanwhile, the tier."""
        ticks: list[float] = []
        done = asyncio.Event()

        async def tick() -> None:
            while not done.is_set():
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.02)
        began = time.monotonic()
        result = await router.aroute(RouteRequest(text, session_id="s-1"), ScriptedBackend({"*": "ok"}))
        took = time.monotonic() - began
        done.set()
        await ticker
        return took, max(b - a for a, b in zip(ticks, ticks[1:])), result.tier

    async def main() -> list[tuple[float, float, str]]:
        first = await request("hello")  # finds Redis frozen: the loop waits with it, once per store
        await asyncio.sleep(0.4)  # past retry_s: the stores try Redis again
        return [first, await request("hello again")]

    try:
        (took, stalled, tier), (again_took, again_stalled, again_tier) = asyncio.run(main())
    finally:
        frozen.close()
    assert tier == again_tier == "cheap"
    assert took >= 0.45 and stalled >= 0.45  # the first timeout held the loop
    assert again_took >= 0.45  # the retry waited out a socket timeout too...
    assert again_stalled < 0.3  # ...and the loop ran on meanwhile (before: it stood still 0.5 s per store)
