"""Seconds from starting the README's LiteLLM proxy command to its first answer.

    python scripts/proxy_start_time.py [--runs 3]

Runs ``litellm --config examples/litellm_config.yaml`` (the README's command, on a free
port, no network: LiteLLM's bundled cost map), times until ``GET /health/liveliness``
answers, stops it, and prints each run and the median. Needs the ``proxy`` extra.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def time_start(timeout: float = 180) -> float:
    port = _free_port()
    env = {**os.environ, "LITELLM_MASTER_KEY": "sk-local", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_TELEMETRY": "False", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        # what the `litellm` command runs (litellm.proxy.proxy_cli:run_server)
        proc = subprocess.Popen([sys.executable, "-m", "litellm.proxy.proxy_cli", "--config",
                                 str(REPO / "examples" / "litellm_config.yaml"), "--port", str(port),
                                 "--host", "127.0.0.1"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while not _answers(f"http://127.0.0.1:{port}/health/liveliness"):
                if proc.poll() is not None or time.perf_counter() - started > timeout:
                    log.seek(0)
                    raise SystemExit(f"the proxy did not answer:\n{log.read().decode(errors='replace')[-2000:]}")
                time.sleep(0.1)
            return time.perf_counter() - started
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    seconds = [time_start() for _ in range(args.runs)]
    print("runs: " + ", ".join(f"{s:.1f} s" for s in seconds))
    print(f"median {statistics.median(seconds):.1f} s on {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
