"""Scripts from files (YAML/JSON, round trip, errors) and replay of recorded outcomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from langchain_tiered_router.emulator import BedrockEmulator, EmulatorScript, ScriptError

CHEAP = "amazon.nova-micro-v1:0"

SCRIPT_YAML = """
models:
  amazon.nova-micro-v1:0:
    rules:
      - match: "invoice"
        answer: '{"total": "twelve"}'
    default: "I am the cheap model."
    replay: recorded.jsonl
    replay_key: cheap
default_answer: "OK"
"""

RECORDS = [
    {"id": "q1", "prompt": "What is the capital of France?",
     "outcomes": {"cheap": {"response": "Paris.", "input_tokens": 11, "output_tokens": 2},
                  "strong": {"response": "The capital of France is Paris.", "input_tokens": 11,
                             "output_tokens": 8}}},
    {"id": "q2", "prompt": "Summarise\n   the invoice   please",
     "outcomes": {"cheap": {"response": "An invoice.", "input_tokens": 9, "output_tokens": 3}}},
]


def ask(client: Any, text: str, **kwargs: Any) -> dict[str, Any]:
    return client.converse(modelId=CHEAP, messages=[{"role": "user", "content": [{"text": text}]}], **kwargs)


@pytest.fixture
def script_file(tmp_path: Path) -> Path:
    (tmp_path / "recorded.jsonl").write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    path = tmp_path / "script.yaml"
    path.write_text(SCRIPT_YAML)
    return path


def test_replay_by_exact_then_normalised_prompt(script_file: Path) -> None:
    with BedrockEmulator(script_file) as emu:
        client = emu.client(retries={"max_attempts": 0})
        exact = ask(client, "What is the capital of France?")
        assert exact["output"]["message"]["content"] == [{"text": "Paris."}]
        assert exact["usage"] == {"inputTokens": 11, "outputTokens": 2, "totalTokens": 13}
        loose = ask(client, "Summarise the invoice please")  # whitespace differs; beats the rule
        assert loose["output"]["message"]["content"] == [{"text": "An invoice."}]
        miss = ask(client, "my invoice")  # not recorded: rules, then default
        assert miss["output"]["message"]["content"] == [{"text": '{"total": "twelve"}'}]
        cut = ask(client, "What is the capital of France?", inferenceConfig={"maxTokens": 1})
        assert cut["stopReason"] == "max_tokens" and cut["usage"]["outputTokens"] == 1


def test_script_round_trips_through_yaml_and_json(script_file: Path, tmp_path: Path) -> None:
    script = EmulatorScript.from_file(script_file)
    data = script.to_dict()
    assert data["models"][CHEAP]["replay"] == "recorded.jsonl"  # kept relative to the file
    assert EmulatorScript.from_dict(json.loads(json.dumps(data))).to_dict() == data
    assert EmulatorScript.from_dict(yaml.safe_load(script.to_yaml())).to_dict() == data
    as_json = tmp_path / "copy.json"
    as_json.write_text(json.dumps(data))
    assert EmulatorScript.from_file(as_json) == script  # same folder, so equal


@pytest.mark.parametrize(("data", "path"), [
    ({"modles": {}}, "modles"),
    ({"models": {CHEAP: {"rules": [{"match": "x"}]}}}, f"models.{CHEAP}.rules.0"),
    ({"models": {CHEAP: {"rules": [{"match": "(", "answer": "a"}]}}}, f"models.{CHEAP}.rules.0.match"),
    ({"prompt_routers": {"arn:x": {"models": []}}}, "prompt_routers.arn:x.models"),
])
def test_bad_scripts_name_the_key(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ScriptError) as caught:
        EmulatorScript.from_dict(data)
    assert caught.value.path == path


def test_bad_replay_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(json.dumps(RECORDS[0]) + "\n{not json}\n")
    script = EmulatorScript.from_dict({"models": {CHEAP: {"replay": "bad.jsonl"}}}, source=tmp_path / "s.yaml")
    with pytest.raises(ScriptError) as caught:
        BedrockEmulator(script).start()
    assert caught.value.path == "line 2"


def test_missing_script_file(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="cannot read script"):
        EmulatorScript.from_file(tmp_path / "nope.yaml")


def test_the_documented_example_is_a_valid_script() -> None:
    import textwrap

    from langchain_tiered_router.emulator import _script

    example = textwrap.dedent(_script.__doc__.split("Example::", 1)[1])
    script = EmulatorScript.from_dict(yaml.safe_load(example))
    assert script.models[CHEAP].replay_key == "cheap"
