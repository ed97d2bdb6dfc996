"""Two proxy replicas share session pins through one real redis-server."""

from __future__ import annotations

import shutil
from typing import Any, Iterator

import openai
import pytest
import redis

from ._proc import litellm_proxies, redis_server
from .conftest import CHEAP, INVOICE_SCHEMA, MID, proxy_config, router_yaml

pytestmark = [pytest.mark.proxy, pytest.mark.redis]

MASTER_KEY = "sk-" + "5f0c" * 8  # a throwaway key: the proxy refuses to start without one


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, emulator) -> Iterator[dict[str, Any]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH (CI installs it: apt-get install redis-server)")
    work = tmp_path_factory.mktemp("replicas")
    with redis_server(work) as redis_url:
        config_path = router_yaml(
            work / "router.yaml", gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}],
            pinning={"backend": "redis", "redis_url": redis_url, "key_prefix": "test-pin:"},
            telemetry={"sinks": [{"kind": "jsonl", "path": str(work / "telemetry.jsonl")}]})
        config = proxy_config(emulator.url, {"tiered": None}, master_key=MASTER_KEY)
        # The router YAML comes from the environment here, the other documented way.
        with litellm_proxies([config, config], work, env={"TIERED_ROUTER_CONFIG": str(config_path)}) as (a, b):
            print(f"\ntwo proxy replicas started in {a['start_s']:.1f}s and {b['start_s']:.1f}s")
            yield {"a": a["url"], "b": b["url"], "redis": redis_url}


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=60)


def _ask(url: str, text: str, session: str):
    raw = _client(url).chat.completions.with_raw_response.create(
        model="tiered", messages=[{"role": "user", "content": text}], extra_headers={"x-session-id": session})
    return raw.parse(), raw.headers


def test_session_pinned_on_one_replica_holds_on_the_other(replicas, emulator):
    _, first = _ask(replicas["a"], "extract the invoice total", "conv-1")
    assert first["x-tiered-router-tier"] == "mid"  # cheap failed the gate; the session is pinned to mid
    # the pin is the session scoped to the caller (a hash of the master key's principals), never a bare session id
    store = redis.Redis.from_url(replicas["redis"], decode_responses=True)
    (key,) = store.keys("test-pin:*")
    assert key.startswith("test-pin:") and key.endswith(":conv-1") and store.get(key) == "mid"
    emulator.clear_requests()
    _, second = _ask(replicas["b"], "what about the invoice date?", "conv-1")
    assert second["x-tiered-router-start-tier"] == "mid"
    assert second["x-tiered-router-escalated"] == "false"
    assert [r.model_id for r in emulator.requests] == [MID]


def test_other_sessions_start_cheap(replicas, emulator):
    emulator.clear_requests()
    _, headers = _ask(replicas["b"], "say hello", "conv-2")
    assert headers["x-tiered-router-start-tier"] == "cheap"
    assert emulator.requests[0].model_id == CHEAP
