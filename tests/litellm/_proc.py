"""Start and stop the real processes the LiteLLM tests need: the proxy and redis-server."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

from ._forkserver import ForkServer, ServerGone

REPO = Path(__file__).resolve().parents[2]


# A model no proxy serves: ``_Proxy`` asks for it once a proxy is up (``_first_request``)
WARM_UP_MODEL = "no-such-model-warm-up"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_RUNNING: list["_Proxy"] = []  # the proxies of the tests now running


def _base_env() -> dict[str, str]:
    """Every proxy's environment before a test's own variables."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network: use the bundled cost map
        "LITELLM_TELEMETRY": "False",
        "LITELLM_OFFLINE_MODE": "true",  # nor any catalog or header config LiteLLM fetches itself
        "PYTHONFAULTHANDLER": "1",  # a crash prints every thread's Python stack to the log
    }


_SERVER: list[ForkServer] = []


def _fork_server() -> ForkServer | None:
    """The fork server proxies start from (``_forkserver``); None with
    ``TIERED_TESTS_PROXY_FORK=0``: each proxy a process of its own, as users start it."""
    if os.environ.get("TIERED_TESTS_PROXY_FORK", "1") == "0":
        return None
    if not _SERVER:
        _SERVER.append(ForkServer(_base_env()))
        atexit.register(_SERVER[0].close)
    return _SERVER[0] if _SERVER[0].alive else None  # gone: each proxy a process of its own


@dataclass
class Crash:
    """A proxy process that ended on a signal no test sent (a segfault, a kill)."""

    url: str
    signal: int
    log_tail: str
    during: str = ""  # the test it happened under, set by the conftest

    def describe(self) -> str:
        try:
            name = signal.Signals(self.signal).name
        except ValueError:
            name = str(self.signal)
        return f"proxy {self.url} died on {name}{f' during {self.during}' if self.during else ''}"


CRASHES: list[Crash] = []


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _crashed(proxy: "_Proxy") -> bool:
    code = proxy.proc.poll()
    return code is not None and code < 0 and code != -signal.SIGTERM


def reap_crashes() -> list[Crash]:
    """Record each running proxy that has died on a signal since last asked (once each)."""
    found = []
    for proxy in _RUNNING:
        if _crashed(proxy) and not proxy.crash_recorded:
            proxy.crash_recorded = True
            found.append(Crash(proxy.url, -proxy.proc.returncode, _tail(proxy.log_path)))
    CRASHES.extend(found)
    return found


def restart_crashed(timeout_s: float = 120) -> None:
    """Start every crashed proxy again on its port, with its config and log, so the tests
    after a crash (and the one rerun) meet a proxy: a crash costs one test, not a module."""
    for proxy in _RUNNING:
        if _crashed(proxy):
            proxy.restart(timeout_s)


def proxy_reports() -> list[tuple[str, str]]:
    """(title, text) per proxy running now: its state and the tail of its log, so a test
    that failed against a proxy shows whether the process was still there and what it said."""
    reports = []
    for proxy in _RUNNING:
        code = proxy.proc.poll()
        state = "running" if code is None else f"EXITED with {code}"
        reports.append((f"proxy {proxy.url} ({state})", _tail(proxy.log_path)))
    return reports


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class _Proxy:
    """One ``litellm`` proxy process: started at once, waited on separately, so two
    replicas boot side by side."""

    def __init__(self, config: dict[str, Any] | Path, workdir: Path, env: dict[str, str] | None, *,
                 warm_up: bool = True):
        self.warm_up = warm_up  # ``_first_request`` once up (a benchmark timing the first requests says no)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if isinstance(config, Path):
            self.config_path = config  # a config file used as is (the example)
        else:
            self.config_path = workdir / f"litellm_config_{self.port}.yaml"
            self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.workdir = workdir
        self.log_path = workdir / f"proxy_{self.port}.log"
        self.env = {**_base_env(), **(env or {})}
        self.info: dict[str, Any] = {}
        self.crash_recorded = False
        self._launch("wb")

    def _launch(self, mode: str) -> None:
        self.started = time.perf_counter()
        args = ["--config", str(self.config_path), "--host", "127.0.0.1", "--port", str(self.port),
                "--num_workers", "1"]
        server = _fork_server()
        if server is not None:
            try:
                self.proc = server.spawn(args, self.env, str(self.workdir), str(self.log_path), append=mode == "ab")
                return
            except ServerGone:
                pass
        with open(self.log_path, mode) as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "litellm.proxy.proxy_cli", *args],
                cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def restart(self, timeout_s: float) -> None:
        _stop(self.proc)
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- restarted by the tests after exit code {self.proc.returncode} ---\n".encode())
        self._launch("ab")
        self.crash_recorded = False
        self.wait_ready(timeout_s)

    def _first_request(self) -> None:
        """One request of a model nobody serves (a 400): the proxy's first request after a
        start moves the router's callback after its own pre-call checks, so the tests'
        first routed request takes one pass like every other (``litellm_hooks._hook``)."""
        config = yaml.safe_load(self.config_path.read_text()) or {}
        key = ((config.get("general_settings") or {}).get("master_key")) or "sk-none"
        httpx.post(f"{self.url}/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                   json={"model": WARM_UP_MODEL, "messages": [{"role": "user", "content": "hi"}]})

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode}:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/health/liveliness", timeout=1).status_code == 200:
                    if self.warm_up:
                        self._first_request()
                    # one dict per proxy, kept current across a restart (the tests hold it)
                    self.info.update(url=self.url, start_s=time.perf_counter() - self.started,
                                     log=self.log_path, proc=self.proc)
                    return self.info
            except httpx.HTTPError:
                pass
            if time.perf_counter() - self.started > timeout_s:
                raise RuntimeError(f"proxy not up after {timeout_s}s:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.1)


@contextmanager
def litellm_proxies(configs: list[dict[str, Any] | Path], workdir: Path, *, env: dict[str, str] | None = None,
                    timeout_s: float = 120) -> Iterator[list[dict[str, Any]]]:
    """Real ``litellm`` proxy processes on 127.0.0.1, one per config, started together.

    Yields ``[{"url", "start_s", "log"}, ...]``; every process group is killed on exit.
    """
    procs: list[_Proxy] = []
    try:
        for config in configs:
            procs.append(_Proxy(config, workdir, env))
        _RUNNING.extend(procs)
        yield [p.wait_ready(timeout_s) for p in procs]
        reap_crashes()
        # A proxy that ended on its own fails the module here; one a test stopped itself
        # ended on SIGTERM, which uvicorn re-raises once it has drained.
        died = [p for p in procs if p.proc.poll() not in (None, 0, -signal.SIGTERM)]
        if died:
            raise RuntimeError("\n".join(f"proxy {p.url} exited with {p.proc.returncode} before teardown:\n"
                                          f"{_tail(p.log_path)}" for p in died))
    finally:
        for p in procs:
            if p in _RUNNING:
                _RUNNING.remove(p)
            _stop(p.proc)


@contextmanager
def litellm_proxy(config: dict[str, Any] | Path, workdir: Path, *, env: dict[str, str] | None = None,
                  timeout_s: float = 120) -> Iterator[dict[str, Any]]:
    with litellm_proxies([config], workdir, env=env, timeout_s=timeout_s) as (proxy,):
        yield proxy


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)
