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
