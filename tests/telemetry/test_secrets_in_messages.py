"""Passwords in a DSN or a URL never reach an error, a log line or the CLI's output, in
the forms people write them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.cli import app
from langchain_tiered_router.core.errors import ConfigError
from langchain_tiered_router.core.redact import redact_secrets
from langchain_tiered_router.core.telemetry.postgres import redact_dsn

SECRET = "PWSECRET7"


@pytest.mark.parametrize("dsn", [
    f"postgresql://u:{SECRET}@h:5432/db", f"postgresql://:{SECRET}@h/db",  # an empty user left it shown
    f"postgresql://u@h/db?password={SECRET}", f"postgresql://u@h/db?sslmode=require&password={SECRET}",
    f"postgresql://u:p@{SECRET}@h/db",  # a raw "@" in the password left its tail shown
    f"host=h dbname=db password={SECRET}",
])
def test_every_form_of_a_dsn_password_is_hidden(dsn):
    assert SECRET not in redact_dsn(dsn) and SECRET not in redact_secrets(dsn)
    assert "h" in redact_dsn(dsn)


def test_a_config_url_of_the_wrong_form_is_named_without_its_password():
    """The pattern error quoted the value: a redis_url with another scheme printed its
    password in the proxy's log and in every traceback."""
    from langchain_tiered_router.core.config import RouterConfig

    with pytest.raises(ConfigError) as info:
        RouterConfig.from_dict({"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"}],
                                "circuit": {"backend": "redis", "redis_url": f"valkey://:{SECRET}@127.0.0.1:6379/0"}})
    assert "redis_url" in str(info.value) and SECRET not in str(info.value) and "***" in str(info.value)


@pytest.mark.parametrize("command", [["calibrate", "--config", "examples/eval/routellm_router.yaml", "--out", "m.npz"],
                                     ["collect", "--config", "examples/eval/routellm_router.yaml", "--out", "o.jsonl",
                                      "--endpoint-url", "http://127.0.0.1:1"]])
def test_from_db_takes_a_postgres_dsn_and_never_prints_its_password(command, tmp_path, monkeypatch):
    """``--from-db`` was a path: a DSN became "postgresql:/u:PW@..." (unreadable) and the
    error printed it, password and all."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    args = [a if not a.startswith("examples/") else str(repo / a) for a in command]
    result = CliRunner().invoke(app, [*args, "--from-db", f"postgresql://u:{SECRET}@127.0.0.1:1/db"])
    assert result.exit_code != 0 and SECRET not in result.output, result.output
    assert "postgresql://u:***@127.0.0.1:1/db" in result.output, result.output


def test_printing_a_chain_shows_no_secret_from_the_routers_config():
    """``repr`` of the model printed its config: a tier's aws_secret_access_key, a Redis
    URL's password, a PostgreSQL DSN's (``print(chain)``, notebooks, error logs)."""
    from langchain_core.prompts import ChatPromptTemplate

    from langchain_tiered_router import TieredChatBedrock

    config = {"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0",
                         "model_kwargs": {"aws_secret_access_key": SECRET}},
                        {"name": "top", "model_id": "amazon.nova-pro-v1:0"}],
              "pinning": {"backend": "redis", "redis_url": f"redis://:{SECRET}@127.0.0.1:1/0"},
              "telemetry": {"sinks": []}, "endpoint_url": "http://127.0.0.1:1"}
    llm = TieredChatBedrock(config=config, aws_access_key_id="x", aws_secret_access_key="y")
    chain = ChatPromptTemplate.from_template("{q}") | llm
    assert SECRET not in repr(llm) and SECRET not in str(chain) and SECRET not in repr(chain)


def test_a_failed_calls_error_is_recorded_without_a_password_its_message_held():
    """A provider's or a client library's error can name the URL it called, credentials
    and all; the attempt's error text went into every sink and the log as it was."""
    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.errors import TransportError
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import RouteRequest

    failed = TransportError(f"cannot reach http://router:{SECRET}@proxy.internal:8080/model", tier="cheap",
                            model_id="amazon.nova-micro-v1:0", kind="connection")
    router = build_router({"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                                     {"name": "top", "model_id": "amazon.nova-pro-v1:0"}],
                           "retry": {"max_retries": 0}, "telemetry": {"sinks": []}}, observers=[])
    result = router.route(RouteRequest("q"), ScriptedBackend({"cheap": failed, "top": "ok"}))
    assert result.attempts[0].error and SECRET not in result.attempts[0].error and "***" in result.attempts[0].error
