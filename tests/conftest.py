"""Shared test set-up: no real AWS, no network beyond loopback, the shared data path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]

# Fake credentials: botocore signs with them, the emulator ignores them, and the
# cassette tests check that none of them is ever written down.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-access-key-for-tests",
    "AWS_SESSION_TOKEN": "fake-session-token-for-tests",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
})
# LiteLLM fetches its cost map from GitHub when imported unless told not to; offline it
# retries in the background for about ten seconds and writes the failures to stderr in
# the middle of whichever test runs then (a CLI test reading stderr's lines failed on it).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
for _var in ("AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK"):
    os.environ.pop(_var, None)


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repo (override with TIERED_ROUTER_SHARED_DATA)."""
    return Path(os.environ.get("TIERED_ROUTER_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "routellm").is_dir():
        pytest.fail(f"shared data not found at {path}; set TIERED_ROUTER_SHARED_DATA")
    return path


@pytest.fixture(autouse=True)
def _fresh_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """A fault injected into a module's shared emulator never leaks into the next test."""
    yield
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").clear_faults()


@pytest.fixture(scope="session")
def postgres_server_dsn() -> Iterator[str]:
    """A real PostgreSQL server for the session (``initdb`` into a temp folder, a free port).

    Skipped where PostgreSQL is not installed, except under CI (``CI=true``), where
    ``.ci/run`` installs it and a missing server is a failure.
    """
    from ._postgres import postgres_binaries, postgres_server

    if postgres_binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[postgres]'")
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture
def postgres_dsn(postgres_server_dsn: str) -> str:
    """A fresh, empty database on the session's server."""
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server_dsn.rsplit("/", 1)[0] + "/" + name
