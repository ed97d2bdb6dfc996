"""Bad input to ``tiered-router batch``: one line on stderr naming the file line or the key path."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from langchain_tiered_router.core.config import RouterConfig
from langchain_tiered_router.core.errors import ConfigError

from .workload import router_config, write_config, write_workload

runner = CliRunner()


def _one_line(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tiered-router: error: "), result.output
    return lines[0]


@pytest.fixture
def setup(tmp_path):
    records, _ = write_workload(tmp_path, n=5)
    config = write_config(tmp_path / "router.yaml", router_config("http://127.0.0.1:9", "http://127.0.0.1:9", tmp_path))
    return tmp_path, records, config


def _run(config, records, out, *extra):
    return runner.invoke(app_(), ["batch", "run", "--config", str(config), "--input", str(records),
                                  "--out", str(out), *extra])


def app_():
    from langchain_tiered_router.cli import app

    return app


def test_missing_or_bad_bucket(setup):
    folder, records, config = setup
    assert "batch.bucket: a batch run needs an S3 bucket" in _one_line(_run(config, records, folder / "o.jsonl"))
    assert "batch.bucket: String should match pattern" in _one_line(
        _run(config, records, folder / "o.jsonl", "--bucket", "http://not-s3"))


def test_bad_records_file(setup):
    folder, _, config = setup
    bad = folder / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "hi"}\n{"id": "b", "prompt": \n')
    assert "bad.jsonl:2: not JSON" in _one_line(_run(config, bad, folder / "o.jsonl", "--bucket", "s3://bkt/x"))
    bad.write_text('{"id": "a", "prompt": "hi"}\n{"id": "a", "prompt": "again"}\n')
    assert "bad.jsonl:2: id 'a' already used on line 1" in _one_line(
        _run(config, bad, folder / "o.jsonl", "--bucket", "s3://bkt/x"))
    bad.write_text('{"id": "a", "messages": [{"role": "assistant", "content": "hi"}]}\n')
    assert "the first message must be the user's" in _one_line(
        _run(config, bad, folder / "o.jsonl", "--bucket", "s3://bkt/x"))
    for lines, says in (
            ('{"prompt": "x"}\n{"id": "1", "prompt": "y"}\n', "bad.jsonl:2: id '1' already used on line 1 as its "
                                                              "line number (it has no id)"),
            ('{"id": null, "prompt": "x"}\n', "bad.jsonl:1: 'id' must be a non-empty string or an integer"),
            ('{"id": {"k": 1}, "prompt": "x"}\n', "bad.jsonl:1: 'id' must be a non-empty string or an integer"),
            ('{"id": "a", "prompt": "x", "messages": [{"role": "user", "content": "y"}]}\n',
             "bad.jsonl:1: a record has 'prompt' or 'messages', not both"),
            ('{"id": "a", "messages": [{"role": "user", "content": "  "}]}\n',  # as a blank prompt is refused
             "bad.jsonl:1: messages[0].content is blank")):
        bad.write_text(lines)
        assert says in _one_line(_run(config, bad, folder / "o.jsonl", "--bucket", "s3://bkt/x"))


def test_a_model_without_a_batch_record_format(setup):
    folder, records, _ = setup
    data = router_config("http://127.0.0.1:9", "http://127.0.0.1:9", folder)
    data["tiers"][0] = {"name": "cheap", "model_id": "cohere.command-r-v1:0",
                        "price": {"input_per_mtok": 0.5, "output_per_mtok": 1.5}}
    config = write_config(folder / "cohere.yaml", data)
    line = _one_line(_run(config, records, folder / "o.jsonl", "--bucket", "s3://bkt/x"))
    assert "tiers[0].model_id: no batch record format for model id 'cohere.command-r-v1:0'" in line
    assert "batch.invocation_type: Converse" in line


def test_batch_settings_are_checked_with_their_key_path():
    base = {"tiers": [{"name": "a", "model_id": "amazon.nova-micro-v1:0"}]}
    with pytest.raises(ConfigError, match=r"batch\.min_records_per_job: Input should be greater than or equal to 1"):
        RouterConfig.from_dict({**base, "batch": {"min_records_per_job": 0}})
    with pytest.raises(ConfigError, match=r"batch\.max_records_per_job: .*at least min_records_per_job \(100\)"):
        RouterConfig.from_dict({**base, "batch": {"max_records_per_job": 10}})
    with pytest.raises(ConfigError, match=r"batch\.role_arn"):
        RouterConfig.from_dict({**base, "batch": {"role_arn": "bedrock-role"}})
    with pytest.raises(ConfigError, match=r"batch\.polling: unknown key .polling."):
        RouterConfig.from_dict({**base, "batch": {"polling": 3}})
    config = RouterConfig.from_dict({**base, "batch": {"bucket": "s3://bkt/p", "discount": "0.4"}})
    assert RouterConfig.from_dict(__import__("yaml").safe_load(config.to_yaml())) == config


def test_resume_and_status_without_a_state_file(tmp_path):
    assert "no state file at" in _one_line(runner.invoke(app_(), ["batch", "resume", "--state",
                                                                    str(tmp_path / "none.json")]))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert "is not valid JSON" in _one_line(runner.invoke(app_(), ["batch", "status", "--state", str(broken)]))


def test_an_aws_error_is_one_line_and_any_other_error_is_not_hidden(capsys):
    """``batch stop`` with no credentials printed botocore's traceback: every command's
    one-line handler turns botocore's errors into one line; other errors stay bugs."""
    import typer
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    from langchain_tiered_router.cli.errors import one_line_errors

    for error in (NoCredentialsError(), EndpointConnectionError(endpoint_url="http://127.0.0.1:9")):
        with pytest.raises(typer.Exit) as info, one_line_errors():
            raise error
        assert info.value.exit_code == 2
        line = capsys.readouterr().err.strip()
        assert line.startswith("tiered-router: error: AWS: ") and "\n" not in line
    with pytest.raises(KeyError), one_line_errors():
        raise KeyError("a bug")


@pytest.mark.parametrize("out, state", [("records", None), ("config", None), ("out", "out"), ("out", "records")])
def test_an_output_naming_an_input_or_the_other_output_is_refused_before_any_job(setup, out, state):
    """``--out`` the records file replaced the records with the results; ``--state`` the
    results file left only the state. Refused now, before a job is made, nothing written."""
    tmp_path, records, config = setup
    files = {"records": records, "config": config, "out": tmp_path / "out.jsonl"}
    before = {name: path.read_bytes() for name, path in files.items() if path.exists()}
    line = _one_line(_run(config, records, files[out], *(["--state", str(files[state])] if state else [])))
    assert "would overwrite" in line
    assert {name: path.read_bytes() for name, path in files.items() if path.exists()} == before


def test_a_batch_run_without_boto3_names_the_extra(setup, monkeypatch):
    """``batch run`` on an install without boto3 (no extra): the one-line error with the
    install line, not a traceback."""
    import sys

    folder, records, config = setup
    monkeypatch.setitem(sys.modules, "boto3", None)  # ``import boto3`` raises ImportError
    line = _one_line(_run(config, records, folder / "o.jsonl", "--bucket", "s3://bkt/x"))
    assert "calling Bedrock needs boto3: pip install 'langchain-tiered-router[batch]'" in line
