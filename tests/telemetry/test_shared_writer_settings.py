"""A process keeps one writer per telemetry destination; a second router config asking
that destination for other settings is refused, not silently given the first one's."""

from __future__ import annotations

import pytest

from langchain_tiered_router.core.errors import ConfigError
from langchain_tiered_router.core.testing import ScriptedBackend
from langchain_tiered_router.core.types import RouteRequest


def _sink(router):
    return router.observers[0].sinks.sinks[0]


def test_a_second_config_asking_one_sqlite_file_to_be_durable_is_refused(make_router, priced_config, tmp_path,
                                                                         monkeypatch):
    """Two tiered models in one LiteLLM proxy, both on the default ``tiered_router.db``:
    the second's ``durable: true`` and ``queue_size`` were dropped without a word (no
    journal, kill -9 lost its records)."""
    monkeypatch.chdir(tmp_path)
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": "tiered_router.db"}]}
    first = make_router(priced_config)
    priced_config["telemetry"] = {"sinks": [{"kind": "sqlite", "path": "tiered_router.db", "durable": True,
                                             "queue_size": 5}]}
    with pytest.raises(ConfigError) as info:
        make_router(priced_config)
    message = str(info.value)
    assert str(tmp_path / "tiered_router.db") in message
    assert "durable True here, False there" in message and "queue_size 5 here, 10000 there" in message
    assert info.value.path == "telemetry.sinks[0].queue_size"
    assert not (tmp_path / "tiered_router.db.journal").exists()
    first.route(RouteRequest(text="q", request_id="still-written"), ScriptedBackend({"*": "ok"}))
    assert _sink(first).flush(timeout=30) and _sink(first).written == 1


def test_other_journal_folders_for_one_file_are_refused_and_the_same_settings_share_one_writer(
        make_router, priced_config, tmp_path):
    db = str(tmp_path / "t.db")
    durable = {"kind": "sqlite", "path": db, "durable": True, "journal_dir": str(tmp_path / "j1")}
    priced_config["telemetry"] = {"sinks": [durable]}
    first = make_router(priced_config)
    same = make_router(priced_config)
    assert _sink(same) is _sink(first) and _sink(first).journal is not None
    priced_config["telemetry"] = {"sinks": [dict(durable, journal_dir=str(tmp_path / "j2"))]}
    with pytest.raises(ConfigError, match="journal_dir") as info:
        make_router(priced_config)
    assert db in str(info.value) and "j2" in str(info.value)


def test_an_offloaded_sink_given_other_settings_for_its_file_is_refused(make_router, priced_config, tmp_path):
    path = str(tmp_path / "r.jsonl")
    priced_config["telemetry"] = {"sinks": [{"kind": "jsonl", "path": path}]}
    first = make_router(priced_config)
    assert _sink(make_router(priced_config)) is _sink(first)
    priced_config["telemetry"] = {"sinks": [{"kind": "jsonl", "path": path, "retry_s": 60}]}
    with pytest.raises(ConfigError, match="retry_s 60.0 here, 10.0 there") as info:
        make_router(priced_config)
    assert path in str(info.value) and info.value.path == "telemetry.sinks[0].retry_s"
