"""``tiered-router demo --db``: a place the run cannot write, or a file it must not touch,
is refused in one line before any request is routed, and the file is left as it was."""

from __future__ import annotations

import errno
import sqlite3
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from langchain_tiered_router.cli import app

runner = CliRunner()


def _refused(args: list[str]) -> str:
    """The one error line of a run that did no work: exit 2, nothing on stdout."""
    result = runner.invoke(app, ["demo", "--limit", "3", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiered-router: error: "), result.output
    return lines[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_folder_that_refuses_new_files_is_refused_before_the_run(tmp_path, monkeypatch):
    # a read-only mount as seen from Python (root ignores chmod, so the refusal is the OS's, simulated)
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    db = tmp_path / "t.db"
    line = _refused(["--db", str(db)])
    assert f"--db {db}: cannot write in the folder {tmp_path} (Read-only file system)" in line
    assert not db.exists() and _files(tmp_path) == {}


def test_a_db_whose_parent_is_a_file_is_refused(tmp_path):
    parent = tmp_path / "notes.txt"
    parent.write_text("a file, not a folder\n")
    line = _refused(["--db", str(parent / "t.db")])
    assert f"{parent} is a file, not a folder" in line
    assert _files(tmp_path) == {"notes.txt": b"a file, not a folder\n"}


def test_append_to_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("hello\n")
    line = _refused(["--db", str(text), "--append"])
    assert f"--db {text} exists and is not an SQLite database" in line
    assert _files(tmp_path) == {"text.txt": b"hello\n"}  # no -wal, -shm or journal either
    # without --append, the same refusal as before
    assert "was not written by the demo" in _refused(["--db", str(text)])
    assert _files(tmp_path) == {"text.txt": b"hello\n"}


def test_append_to_another_programs_sqlite_db_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE accounts (name TEXT)")
    conn.close()
    before = _files(tmp_path)
    assert "without telemetry (no routing_records table)" in _refused(["--db", str(db), "--append"])
    assert _files(tmp_path) == before


def test_append_to_a_telemetry_db_adds_to_it(tmp_path):
    db = tmp_path / "t.db"
    for args in ([], ["--append"]):
        result = runner.invoke(app, ["demo", "--limit", "3", "--db", str(db), *args])
        assert result.exit_code == 0, result.output
    assert "added to the records already in" in result.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM routing_records").fetchone() == (6,)
    conn.close()


def test_the_demo_without_the_langchain_extra_says_so_in_one_line(tmp_path):
    """It was a ``ModuleNotFoundError: langchain_core`` traceback and exit 1, after it had
    emptied the database of the run before."""
    import subprocess
    import sys

    db = tmp_path / "d.db"
    assert runner.invoke(app, ["demo", "--limit", "2", "--db", str(db)]).exit_code == 0
    rows = sqlite3.connect(db).execute("select count(*) from routing_records").fetchone()[0]
    run = ("import sys; sys.modules['langchain_core'] = None\n"
           "from langchain_tiered_router.cli import app\n"
           f"app(['demo', '--limit', '2', '--db', {str(db)!r}])")
    done = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert rows == 2 and sqlite3.connect(db).execute("select count(*) from routing_records").fetchone()[0] == rows
    assert done.stderr.strip().splitlines() == [
        "tiered-router: error: TieredChatBedrock needs the 'langchain' extra: "
        "pip install 'langchain-tiered-router[langchain]'"]


def _foreign_telemetry(db: Path) -> int:
    """A telemetry DB another program's router wrote (no demo run ever touched it); its row count."""
    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.telemetry import Recorder, SqliteSink
    from langchain_tiered_router.core.testing import ScriptedBackend
    from langchain_tiered_router.core.types import RouteRequest

    recorder = Recorder([SqliteSink(db)])
    router = build_router({"tiers": [{"name": "only", "model_id": "test.only-v1",
                                      "price": {"input_per_mtok": 1, "output_per_mtok": 2}}],
                           "pinning": {"enabled": False}, "telemetry": {"sinks": []}}, observers=[recorder])
    for i in range(4):
        router.route(RouteRequest(text=f"q{i}", request_id=f"prod-{i}"), ScriptedBackend({}))
    recorder.close()
    return _rows(db)


def _rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM routing_records").fetchone()[0]
    finally:
        conn.close()


def test_a_telemetry_db_the_demo_did_not_write_is_not_emptied_for_its_default_name(tmp_path, monkeypatch):
    """The default name was an exception: ``tiered_router_demo.db`` was emptied whoever wrote it."""
    monkeypatch.chdir(tmp_path)
    db = Path("tiered_router_demo.db")
    assert _foreign_telemetry(db) == 4
    before = db.read_bytes()
    assert "tiered_router_demo.db exists and was not written by the demo" in _refused([])
    assert _rows(db) == 4 and db.read_bytes() == before
    # --append adds to it, and does not make it the demo's: a plain run still refuses it
    appended = runner.invoke(app, ["demo", "--limit", "3", "--append"])
    assert appended.exit_code == 0, appended.output
    assert _rows(db) == 7
    assert "was not written by the demo" in _refused([])
    assert _rows(db) == 7


def test_the_demo_reruns_on_its_own_db_even_after_a_run_that_stopped_midway(tmp_path, monkeypatch):
    import langchain_tiered_router.demo.runner as demo_runner
    from langchain_tiered_router.core.telemetry.recorder import flush_all

    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # the default DB, started afresh each run
        result = runner.invoke(app, ["demo", "--limit", "3"])
        assert result.exit_code == 0, result.output
        assert _rows(tmp_path / "tiered_router_demo.db") == 3
    assert "emptied the earlier tiered_router_demo.db first" in " ".join(result.output.split())

    real = demo_runner.run_demo

    def stopped(*args, on_progress, **kwargs):
        def progress(n: int) -> None:
            if n == 2:
                raise RuntimeError("the machine went down")

        return real(*args, on_progress=progress, **kwargs)

    monkeypatch.setattr(demo_runner, "run_demo", stopped)
    db = tmp_path / "mine.db"
    assert runner.invoke(app, ["demo", "--limit", "3", "--db", str(db)]).exit_code == 1
    flush_all()  # the stopped run's telemetry writer, still in this process, finishes its rows
    assert _rows(db) == 2  # what was routed before the run stopped; the DB is the demo's already
    monkeypatch.setattr(demo_runner, "run_demo", real)
    again = runner.invoke(app, ["demo", "--limit", "3", "--db", str(db)])
    assert again.exit_code == 0, again.output
    assert _rows(db) == 3 and f"emptied the earlier {db} first" in " ".join(again.output.split())


def test_a_mistyped_config_or_replay_leaves_the_earlier_runs_rows(tmp_path):
    """The earlier demo DB is emptied only once every input has been read: a broken
    ``--config``, a missing one or a missing ``--replay`` is refused with the rows kept."""
    db = tmp_path / "demo.db"
    first = runner.invoke(app, ["demo", "--limit", "5", "--db", str(db)])
    assert first.exit_code == 0, first.output
    rows = lambda: sqlite3.connect(db).execute("SELECT count(*) FROM routing_records").fetchone()[0]  # noqa: E731
    assert rows() == 5
    broken = tmp_path / "broken.yaml"
    broken.write_text("tiers: [\n")
    assert "not valid YAML" in _refused(["--db", str(db), "--config", str(broken)])
    assert "cannot read config" in _refused(["--db", str(db), "--config", str(tmp_path / "nope.yaml")])
    assert "no such file" in _refused(["--db", str(db), "--replay", str(tmp_path / "nope.csv")])
    assert rows() == 5
    again = runner.invoke(app, ["demo", "--limit", "3", "--db", str(db)])  # a good run still starts afresh
    assert again.exit_code == 0 and "emptied the earlier" in again.output and rows() == 3


def test_a_failed_requests_line_keeps_its_tier_and_its_cause(tmp_path, monkeypatch):
    """A ladder's error names each attempt as ``[tier / model]`` and its cause last: the
    printed line keeps both (not read as a style tag, not cut before the cause)."""
    from langchain_tiered_router.demo import runner as demo_runner

    cause = ('no tier produced an acceptable answer (cheap -> frontier): [frontier / anthropic.claude-v1:0] '
             'EndpointConnectionError: Could not connect to the endpoint URL: "https://bedrock-runtime.'
             'us-east-1.amazonaws.com/model/anthropic.claude-v1%3A0/converse" (2 sub-exceptions)')

    def failing(prompt):
        raise ConnectionError(cause)

    import contextlib

    monkeypatch.setattr(demo_runner, "_invoker", lambda config: contextlib.nullcontext(failing))
    result = runner.invoke(app, ["demo", "--limit", "2", "--db", str(tmp_path / "d.db")], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    line = next(l for l in result.stdout.splitlines() if l.startswith("failed:"))
    assert "[frontier / anthropic.claude-v1:0]" in line and "Could not connect" in line
    assert line.endswith("(2 sub-exceptions)")
