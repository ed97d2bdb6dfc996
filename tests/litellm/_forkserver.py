"""Start LiteLLM proxies by forking one process that has already imported LiteLLM.

Importing ``litellm.proxy.proxy_server`` is most of a proxy's start: 12-13 s of CPU on
the 2-core CI machine, paid again by each of the ~30 proxies the suite and its
oldest-versions run start side by side. A fork server imports it once, then forks a
child per proxy that runs ``litellm --config ...`` from there: the same CLI, arguments,
environment, working directory and log file as a process of its own, with a Python
that has done the imports. The server only imports (no thread is running when it
forks), so each child starts from what a fresh interpreter holds after the import;
LiteLLM reads the environment the tests vary (master key, endpoint, our own
``TIERED_*`` variables) when the proxy starts, not at import.

The children are the server's, not the test process's: ``ForkedProcess`` asks the
server for their exit status, so the tests keep using ``poll``/``wait``/``returncode``
and a signal still reaches the child's process group.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

# The server: reads one JSON command per line on stdin, answers one JSON line on stdout.
SERVER = r'''
import json, os, signal, sys, time
import litellm.proxy.proxy_server  # noqa: F401  (the import every child would repeat)
from litellm.proxy.proxy_cli import run_server

answer = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing a library prints corrupts the answers
status, children = {}, set()


def child(cmd, ready):
    os.setsid()
    os.close(ready)  # the server answers once the child leads its own process group
    os.chdir(cmd["cwd"])
    os.environ.clear()
    os.environ.update(cmd["env"])
    log = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | (os.O_APPEND if cmd["append"] else os.O_TRUNC), 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.close(log)
    answer.close()
    import faulthandler
    faulthandler.enable()  # as PYTHONFAULTHANDLER=1 does in a process of its own
    sys.argv = ["litellm", *cmd["args"]]
    run_server.main(args=cmd["args"], prog_name="litellm")  # raises SystemExit: the normal exit path


def reap(pid, flags):
    try:
        done, code = os.waitpid(pid, flags)
    except ChildProcessError:  # not a child of ours (any more): its status is unknown
        status.setdefault(pid, -signal.SIGKILL)
        children.discard(pid)
        return
    if done:
        status[pid] = -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)
        children.discard(pid)


for line in sys.stdin:
    cmd = json.loads(line)
    reply = {"id": cmd["id"]}
    if cmd["op"] == "spawn":
        read_end, ready = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            del line
            child(cmd, ready)
            sys.exit(0)
        os.close(ready)
        os.read(read_end, 1)  # end of file: the child has called setsid (or died)
        os.close(read_end)
        status.pop(pid, None)  # a pid the system reused: not an earlier child's exit
        children.add(pid)
        reply["pid"] = pid
    elif cmd["op"] == "poll":
        pid = cmd["pid"]
        if pid not in status:
            reap(pid, os.WNOHANG)
        reply["code"] = status.get(pid)
    answer.write(json.dumps(reply) + "\n")

# the tests' process has gone (or closed us): no proxy it started outlives it
for pid in list(children):
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        pass
deadline = time.monotonic() + 10
while children and time.monotonic() < deadline:
    for pid in list(children):
        reap(pid, os.WNOHANG)
    time.sleep(0.05)
for pid in list(children):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
'''


class ServerGone(RuntimeError):
    """The fork server has exited: proxies start as processes of their own from here."""


class ForkServer:
    """One server per test process, started at the first proxy. Its children are
    stopped when it sees the end of its input: when the tests' process exits, however."""

    def __init__(self, env: dict[str, str]):
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._proc = subprocess.Popen([sys.executable, "-c", SERVER], env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, bufsize=1, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def _ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Send ``cmd``, return its answer. Each carries an id: an answer left unread by a
        call interrupted while it waited (Ctrl-C during a start) is skipped, not taken
        for the next call's."""
        with self._lock:
            if not self.alive:
                raise ServerGone(f"the proxies' fork server exited with {self._proc.returncode}")
            assert self._proc.stdin is not None and self._proc.stdout is not None
            cmd = {**cmd, "id": next(self._ids)}
            try:
                self._proc.stdin.write(json.dumps(cmd) + "\n")
                self._proc.stdin.flush()
                while True:
                    line = self._proc.stdout.readline()
                    if not line:
                        raise ServerGone(f"the proxies' fork server exited with {self._proc.wait()}")
                    reply = json.loads(line)
                    if reply.get("id") == cmd["id"]:
                        return reply
            except BrokenPipeError:
                raise ServerGone(f"the proxies' fork server exited with {self._proc.wait()}") from None

    def spawn(self, args: list[str], env: dict[str, str], cwd: str, log: str, append: bool) -> "ForkedProcess":
        reply = self._ask({"op": "spawn", "args": args, "env": env, "cwd": cwd, "log": log, "append": append})
        return ForkedProcess(self, reply["pid"])

    def status(self, pid: int) -> int | None:
        return self._ask({"op": "poll", "pid": pid})["code"]

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=15)  # past the 10 s it gives its children to stop
            except subprocess.TimeoutExpired:
                self._proc.kill()


class ForkedProcess:
    """What the tests use of ``subprocess.Popen`` for a proxy the server forked."""

    def __init__(self, server: ForkServer, pid: int):
        self._server, self.pid, self.returncode = server, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self._server.status(self.pid)
            except ServerGone:  # its exit status went with the server: alive, or gone for an unknown reason
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"proxy {self.pid}", timeout)  # type: ignore[arg-type]
            time.sleep(0.05)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
