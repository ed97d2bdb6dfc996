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
