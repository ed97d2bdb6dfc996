"""Start and stop the real processes the LiteLLM tests need: the proxy and redis-server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

    def __init__(self, config: dict[str, Any] | Path, workdir: Path, env: dict[str, str] | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if isinstance(config, Path):
            config_path = config  # a config file used as is (the example)
        else:
            config_path = workdir / f"litellm_config_{self.port}.yaml"
            config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / f"proxy_{self.port}.log"
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network: use the bundled cost map
            "LITELLM_TELEMETRY": "False",
            **(env or {}),
        }
        self.started = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(config_path),
                 "--host", "127.0.0.1", "--port", str(self.port), "--num_workers", "1"],
                cwd=workdir, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode}:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/health/liveliness", timeout=1).status_code == 200:
                    return {"url": self.url, "start_s": time.perf_counter() - self.started, "log": self.log_path,
                            "proc": self.proc}
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
        yield [p.wait_ready(timeout_s) for p in procs]
    finally:
        for p in procs:
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
