"""Fixtures for the LiteLLM tests: the emulator, router YAMLs, and a real proxy per module."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from _pytest.runner import runtestprotocol

from langchain_tiered_router.emulator import BedrockEmulator
from tests._sockets import allow_sockets_in

from ._proc import CRASHES, proxy_reports, reap_crashes, restart_crashed

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map in tests

CHEAP, MID, FRONTIER = "amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"
LADDER = [{"name": "cheap", "model_id": CHEAP}, {"name": "mid", "model_id": MID},
          {"name": "frontier", "model_id": FRONTIER}]
INVOICE_SCHEMA = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}

# cheap cannot write JSON; mid can, except for "hard" invoices; nobody can do "impossible" ones.
SCRIPT = {
    "models": {
        CHEAP: {"rules": [{"match": "invoice", "answer": "The total is twelve."},
                          {"match": "hello", "answer": "hi from cheap"},
                          {"match": "capital", "answer": "I don't know"}],
                "default": "cheap answer"},
        MID: {"rules": [{"match": "impossible", "answer": "no idea"},
                        {"match": "hard invoice", "answer": '{"total": "twelve"}'},
                        {"match": "invoice", "answer": '{"total": 12}'}],
              "default": "mid answer"},
        FRONTIER: {"rules": [{"match": "impossible", "answer": "still no idea"},
                             {"match": "invoice", "answer": '{"total": 12.5}'}],
                   "default": "frontier answer"},
    },
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The proxy, the emulator and redis listen on 127.0.0.1: let these tests open sockets."""
    allow_sockets_in(__file__, config, items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A proxy that died on a signal is noted at once (``pytest_runtest_protocol`` names the
    test); a failed test shows each running proxy's state and log tail beside its traceback."""
    outcome = yield
    report = outcome.get_result()
    reap_crashes()
    if report.failed:
        for title, text in proxy_reports():
            report.sections.append((title, text))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool:
    """A test that failed while a proxy process crashed under it (a signal, not an exit:
    SIGSEGV from a use-after-free in CPython 3.11's context-variable map that LiteLLM's
    request path reaches, twice in about twenty CI runs; README, "Known limits") runs once
    more on the restarted proxy. Only then: a test that fails against a live proxy fails,
    and every crash is printed in the run's summary with the proxy's last log lines."""
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in (1, 2):
        crashes_before = len(CRASHES)
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        for crash in CRASHES[crashes_before:]:
            crash.during = item.nodeid
        if attempt == 2 or not (any(r.failed for r in reports) and len(CRASHES) > crashes_before):
            break
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\n{CRASHES[-1].describe()}: rerunning it on the restarted proxy", yellow=True)
        restart_crashed()
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@pytest.fixture(autouse=True)
def _crashed_proxies_restarted() -> None:
    """A proxy that crashed under an earlier test serves the next one again."""
    restart_crashed()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CRASHES:
        terminalreporter.section("LiteLLM proxy processes that crashed", sep="=", red=True)
        for crash in CRASHES:
            terminalreporter.write_line(crash.describe())
            terminalreporter.write_line(crash.log_tail)


@pytest.fixture(scope="module")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(SCRIPT) as emu:
        yield emu




def deployment(name: str, model_id: str, emulator_url: str) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {
        "model": f"bedrock/converse/{model_id}", "aws_region_name": "us-east-1",
        "aws_bedrock_runtime_endpoint": emulator_url,
        "aws_access_key_id": "AKIAFAKEFAKEFAKEFAKE", "aws_secret_access_key": "fake-secret"}}


def tier_deployments(emulator_url: str) -> list[dict[str, Any]]:
    return [deployment(t["name"], t["model_id"], emulator_url) for t in LADDER]


def proxy_config(emulator_url: str, routed: dict[str, Path | None], *, callbacks: tuple[str, ...] = (),
                 one_pass: bool | None = None, **general: Any) -> dict[str, Any]:
    """A proxy ``config.yaml``: the tier deployments on the emulator, one ``tiered_router``
    model per entry of ``routed`` (name -> router YAML, or None for $TIERED_ROUTER_CONFIG),
    one-pass routing as by default (``one_pass`` None) or said explicitly, the header callback
    first, LiteLLM's own retries and cooldowns off."""
    routed_models = [{"model_name": name, "litellm_params": {
        "model": f"tiered_router/{name}", **({"tiered_router_config": str(path)} if path else {}),
        **({"tiered_router_one_pass": one_pass} if one_pass is not None else {})}}
        for name, path in routed.items()]
    return {
        "model_list": tier_deployments(emulator_url) + routed_models,
        "litellm_settings": {
            "callbacks": ["litellm_hooks.proxy_handler_instance", *callbacks],
            "custom_provider_map": [{"provider": "tiered_router",
                                     "custom_handler": "litellm_hooks.tiered_router_provider"}]},
        "router_settings": {"num_retries": 0, "disable_cooldowns": True},
        "general_settings": general,
    }


def stream_faults_proxy(emulator_url: str, work: Path, *, one_pass: bool) -> dict[str, Any]:
    """The proxy ``config.yaml`` of the stream-fault runs (``test_stream_faults.py``,
    ``benchmarks/proxy_stream_faults.py``): ``tiered`` (a JSON cascade, flagged when
    exhausted) and ``tiered-fast`` (a keyword classifier, no gate), both recording to
    ``work/records.jsonl``, LiteLLM's events to ``work/payloads.jsonl`` (the payload
    logger's ``TIERED_TEST_PAYLOADS``)."""
    sinks = {"sinks": [{"kind": "jsonl", "path": str(work / "records.jsonl")}]}
    cascade = router_yaml(work / "cascade.yaml", gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}],
                          on_exhausted="flag", telemetry=sinks)
    fast = router_yaml(work / "fast.yaml", telemetry=sinks, policy={"kind": "classifier", "classifier": {
        "kind": "rules", "rules": [{"tier": "frontier", "keywords": ["refactor"]}], "default_tier": "cheap"}})
    return proxy_config(emulator_url, {"tiered": cascade, "tiered-fast": fast},
                        callbacks=("tests.litellm.payload_logger.instance",), one_pass=None if one_pass else False,
                        master_key="sk-ops", custom_auth="tests.litellm.proxy_auth.user_api_key_auth")


def router_yaml(path: Path, **overrides: Any) -> Path:
    config: dict[str, Any] = {"tiers": copy.deepcopy(LADDER), "retry": {"max_retries": 1, "backoff_s": 0.01}}
    config.update(overrides)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def complete_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a proxy process has written so far: complete lines only, since it may
    be writing the last one as the test reads."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def settled_jsonl(path: Path, quiet_s: float = 0.3, timeout_s: float = 10) -> list[dict[str, Any]]:
    """The JSON lines once none has been added for ``quiet_s``: sinks write from their own
    thread (after a 50 ms linger), so a request's record lands a little after its response."""
    rows, since, deadline = complete_jsonl(path), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.05)
        now = complete_jsonl(path)
        if len(now) != len(rows):
            rows, since = now, time.monotonic()
    return rows


def read_jsonl(path: Path, expected: int, timeout_s: float = 10) -> list[dict[str, Any]]:
    """The telemetry rows, waiting until at least ``expected`` are there."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = complete_jsonl(path)
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture
def rows_for() -> Callable[[Path, str], dict[str, Any]]:
    def find(path: Path, request_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for row in read_jsonl(path, 0, 0):
                if row["request_id"] == request_id:
                    return row
            time.sleep(0.05)
        raise AssertionError(f"no telemetry row for {request_id} in {path}")

    return find
