"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary folder, started
on a free loopback port, removed afterwards.

The binaries come from ``PATH`` or Debian's ``/usr/lib/postgresql/<version>/bin`` (the
``postgresql`` package, which ``.ci/run`` installs). PostgreSQL refuses to run as root:
as root, the server runs as the ``postgres`` user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["postgres_binaries", "postgres_server"]


def postgres_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields the DSN of a fresh server (user ``tr``, database ``postgres``, trust auth)."""
    binaries = postgres_binaries()
    if binaries is None:
        raise FileNotFoundError("postgres")
    root = Path(tempfile.mkdtemp(prefix="tiered-router-pg-"))
    user: str | None = None
    if os.geteuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o700)
    data, port = root / "data", _free_port()
    try:
        subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", "tr", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, user=user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=root)
        log = open(root / "server.log", "wb")
        proc = subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=50"],
            user=user, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("postgres did not start:\n" + (root / "server.log").read_text()[-2000:])
                    time.sleep(0.05)
            _wait_accepting(f"postgresql://tr@127.0.0.1:{port}/postgres")
            yield f"postgresql://tr@127.0.0.1:{port}/postgres"
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # fast shutdown
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            log.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_accepting(dsn: str) -> None:
    """The port opens before the server accepts logins: wait for a real connection."""
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
