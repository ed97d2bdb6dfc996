"""An output file that names one of the command's inputs is refused before any work:
``report --db t.jsonl --json-out t.jsonl`` replaced the telemetry with the report,
``estimate --data X --json-out X`` the data."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command, output_flag, names", [
    ("report", "--json-out", "--db"),
    ("report", "--plot", "--db"),
    ("estimate", "--json-out", "--data"),
    ("estimate", "--json-out", "--config"),
    ("eval", "--json-out", "--data"),
    ("eval", "--plot", "--calibrate-on"),
    ("calibrate", "--out", "--data"),
    ("calibrate", "--save-data", "--config"),
])
def test_an_output_naming_an_input_is_refused_and_the_input_kept(tmp_path, command, output_flag, names):
    files = {"--db": tmp_path / "t.png", "--data": tmp_path / "d.jsonl", "--calibrate-on": tmp_path / "c.png",
             "--config": tmp_path / "router.yaml"}
    for path in files.values():
        path.write_text("what the command reads\n")
    inputs = {"report": ["--db"], "estimate": ["--data", "--config"], "calibrate": ["--data", "--config"],
              "eval": ["--data", "--calibrate-on", "--config"]}[command]
    args = [command, *(a for flag in inputs for a in (flag, str(files[flag]))), output_flag, str(files[names])]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = " ".join(result.stderr.split())
    assert f"{output_flag} {files[names]} is the file {names} names" in line and "would overwrite" in line
    assert all(path.read_text() == "what the command reads\n" for path in files.values())


def test_the_demos_json_naming_its_database_is_refused_before_the_database_is_touched(tmp_path):
    """``demo --db j.db --json-out j.db`` left a file that was half JSON, half SQLite."""
    db = tmp_path / "j.db"
    db.write_bytes(b"an earlier file")
    result = runner.invoke(app, ["demo", "--db", str(db), "--json-out", str(db)])
    assert result.exit_code == 2, result.output
    assert "is the file --db names" in " ".join(result.stderr.split())
    assert db.read_bytes() == b"an earlier file"
