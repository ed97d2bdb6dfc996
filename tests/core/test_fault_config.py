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
