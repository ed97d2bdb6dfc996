"""Two proxy replicas, one PostgreSQL store, one Redis: the fleet sees every record, a
tier one replica finds failing is skipped by the other, and a replica stopped with
SIGTERM under load loses no record."""

from __future__ import annotations

import json
import shutil
import signal
import threading
from decimal import Decimal
from typing import Any, Iterator

import openai
import pytest
from typer.testing import CliRunner

from langchain_tiered_router.analysis.report import load_records
from langchain_tiered_router.cli import app

from ._proc import litellm_proxies, redis_server
from .conftest import CHEAP, INVOICE_SCHEMA, MID, proxy_config, router_yaml

pytestmark = [pytest.mark.proxy, pytest.mark.redis, pytest.mark.postgres]

MASTER_KEY = "sk-" + "9a1e" * 8


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, emulator, postgres_server_dsn) -> Iterator[dict[str, Any]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH (CI installs it: apt-get install redis-server)")
    import psycopg

    with psycopg.connect(postgres_server_dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE fleet")
    dsn = postgres_server_dsn.rsplit("/", 1)[0] + "/fleet"
    work = tmp_path_factory.mktemp("fleet")
    with redis_server(work) as redis_url:
        config_path = router_yaml(
            work / "router.yaml", gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}],
            circuit={"failures": 3, "cooldown_s": 60, "backend": "redis", "redis_url": redis_url,
                     "key_prefix": "fleet-circuit:"},
            telemetry={"sinks": [{"kind": "postgres", "dsn": dsn}]})
        config = proxy_config(emulator.url, {"tiered": None}, master_key=MASTER_KEY)
        with litellm_proxies([config, config], work, env={"TIERED_ROUTER_CONFIG": str(config_path)}) as (a, b):
            yield {"a": a, "b": b, "dsn": dsn, "redis": redis_url}


def _ask(url: str, text: str) -> tuple[Any, Any]:
    client = openai.OpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    raw = client.chat.completions.with_raw_response.create(model="tiered", messages=[{"role": "user", "content": text}])
    return raw.parse(), raw.headers


def _wait_rows(dsn: str, ids: set[str], timeout_s: float = 20) -> set[str]:
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        have = {r.request_id for r in load_records(dsn)[0]}
        if ids <= have or time.monotonic() > deadline:
            return have
        time.sleep(0.1)


def test_two_replicas_write_one_store_and_the_report_sees_the_fleet(fleet):
    ids: list[str] = []
    lock = threading.Lock()

    def send(url: str, i: int) -> None:
        _, headers = _ask(url, f"extract the invoice total {i}")
        with lock:
            ids.append(headers["x-tiered-router-request-id"])

    threads = [threading.Thread(target=send, args=(fleet["a" if i % 2 else "b"]["url"], i)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 30
    assert set(ids) <= _wait_rows(fleet["dsn"], set(ids))
    result = CliRunner().invoke(app, ["report", "--db", fleet["dsn"], "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["requests"] >= 30 and Decimal(str(report["actual_cost_usd"])) > 0


def test_a_tier_one_replica_finds_failing_is_skipped_by_the_other(fleet, emulator):
    emulator.inject("throttle", model_id=CHEAP, times=None)
    for i in range(2):  # 2 + 1 throttled calls: the third failure in a row opens the circuit in Redis
        _ask(fleet["a"]["url"], f"extract the invoice total {i}")
    emulator.clear_requests()
    _, headers = _ask(fleet["b"]["url"], "extract the invoice total again")
    assert headers["x-tiered-router-tier"] == "mid"
    assert [r.model_id for r in emulator.requests] == [MID]  # replica b never called cheap
    request_id = headers["x-tiered-router-request-id"]
    _wait_rows(fleet["dsn"], {request_id})  # the writer commits in the background
    (record,) = [r for r in load_records(fleet["dsn"])[0] if r.request_id == request_id] or [None]
    assert record is not None
    assert (record.attempts[0]["tier"], record.attempts[0]["outcome"], record.attempts[0]["error_kind"]) == (
        "cheap", "skipped", "circuit_open")
    import redis

    client = redis.Redis.from_url(fleet["redis"])
    client.delete(*client.keys("fleet-circuit:*"))


def test_sigterm_under_load_loses_no_record(fleet, emulator):
    """What every deploy sends: the replica finishes the requests in flight (uvicorn's
    graceful shutdown) and their records reach the store before the process ends."""
    emulator.clear_requests()
    emulator.inject("slow", times=None, seconds=2.0)
    url, proc = fleet["b"]["url"], fleet["b"]["proc"]
    answered: list[str] = []
    errors: list[str] = []

    def send(i: int) -> None:
        try:
            _, headers = _ask(url, f"say hello {i}")
            answered.append(headers["x-tiered-router-request-id"])
        except Exception as exc:  # noqa: BLE001 - a request the stopping replica refused
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    import time

    deadline = time.monotonic() + 30
    while len(emulator.requests) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)  # wait until all twenty are in flight, held by the slow tier
    assert len(emulator.requests) >= 20
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    proc.wait(timeout=60)
    assert len(answered) == 20, errors  # graceful: the requests in flight were answered
    rows = {r.request_id for r in load_records(fleet["dsn"])[0]}
    assert set(answered) <= rows, f"{len(set(answered) - rows)} records lost"
