"""A key the chosen kind (backend, signal) never reads is a ConfigError naming it, and a
Bedrock tier's temperature is Bedrock's 0-1.

Each of these was accepted and ignored: a ``redis_url`` without ``backend: redis`` kept the
circuit and the pins in each process, a tolerance on an exact comparator compared exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from langchain_tiered_router.core import ConfigError, RouterConfig
from langchain_tiered_router.core.build import build_router

LADDER = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
          {"name": "frontier", "model_id": "anthropic.claude-sonnet-4-5-20250929-v1:0"}]
RULES = [{"tier": "frontier", "keywords": ["prove"]}]


def _load(tmp_path: Path, section: dict) -> RouterConfig:
    """The config as a user has it: a YAML file, read and built."""
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump({"tiers": LADDER, "telemetry": {"sinks": []}, **section}))
    config = RouterConfig.from_yaml(path)
    build_router(config, telemetry=False)
    return config


def _shadow(comparator: dict) -> dict:
    return {"telemetry": {"sinks": [], "shadow": {"fraction": 0.1, "comparator": comparator}}}


UNREAD = [
    ({"circuit": {"redis_url": "redis://127.0.0.1:1/0"}}, "circuit.redis_url", "set backend: redis"),
    ({"circuit": {"backend": "memory", "key_prefix": "x:"}}, "circuit.key_prefix", "set backend: redis"),
    ({"pinning": {"redis_url": "redis://127.0.0.1:1/0"}}, "pinning.redis_url", "set backend: redis"),
    ({"pinning": {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0", "max_sessions": 5}},
     "pinning.max_sessions", "set backend: memory"),
    ({"policy": {"kind": "classifier", "classifier": {"kind": "llm", "rules": RULES}}},
     "policy.classifier.rules", "set kind: rules"),
    ({"policy": {"classifier": {"kind": "rules", "rules": RULES, "prompt": "{request}"}}},
     "policy.classifier.prompt", "set kind: llm"),
    ({"policy": {"classifier": {"kind": "rules", "rules": RULES, "threshold": 3}}},
     "policy.classifier.threshold", "set kind: trained"),
    ({"policy": {"classifier": {"kind": "llm", "path": "m.npz"}}}, "policy.classifier.path", "set kind: trained"),
    ({"policy": {"classifier": {"kind": "trained", "path": "m.npz", "default_tier": "cheap"}}},
     "policy.classifier.default_tier", "set kind: rules"),
    (_shadow({"kind": "numeric", "fields": ["total"]}), "telemetry.shadow.comparator.fields", "set kind: json_fields"),
    (_shadow({"kind": "exact", "tolerance": 0.5}), "telemetry.shadow.comparator.tolerance", "set kind: numeric"),
    ({"telemetry": {"sinks": [{"kind": "sqlite", "path": "t.db", "level": "DEBUG"}]}},
     "telemetry.sinks[0].level", "set kind: logging"),
    ({"telemetry": {"sinks": [{"kind": "jsonl", "path": "t.jsonl", "logger": "audit"}]}},
     "telemetry.sinks[0].logger", "set kind: logging"),
    ({"gates": [{"kind": "confidence", "signal": "self_rating", "sentinels": ["NOPE"]}]},
     "gates[0].sentinels", "set signal: any"),
    ({"policy": {"kind": "confidence", "confidence": {"kind": "confidence", "signal": "logprobs",
                                                      "sentinels": ["NOPE"]}}},
     "policy.confidence.sentinels", "set signal: any"),
]


@pytest.mark.parametrize("section, path, fix", UNREAD, ids=[case[1] for case in UNREAD])
def test_a_key_its_kind_never_reads_is_a_config_error_naming_it(tmp_path, monkeypatch, section, path, fix):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, section)
    assert info.value.path == path
    key = path.rsplit(".", 1)[-1]
    assert f"{key} is read only with" in str(info.value) and "it would be ignored" in str(info.value)
    assert fix in str(info.value) and str(tmp_path / "router.yaml") in str(info.value)


READ = [
    {"circuit": {"backend": "redis", "redis_url": "redis://127.0.0.1:1/0", "key_prefix": "c:"}},
    {"pinning": {"backend": "memory", "max_sessions": 5}},
    {"policy": {"classifier": {"kind": "rules", "rules": RULES, "default_tier": "cheap"}}},
    {"policy": {"classifier": {"kind": "llm", "llm_tier": "cheap", "prompt": "{tiers}: {request}",
                               "default_tier": "frontier"}}},
    # llm_tier whatever the kind: `tiered-router estimate --classifier llm` prices its calls
    {"policy": {"classifier": {"kind": "rules", "rules": RULES, "llm_tier": "cheap"}}},
    # judge_tier whatever the kind: `tiered-router collect` judges prompts without gold with it
    _shadow({"kind": "numeric", "tolerance": 0.5, "judge_tier": "cheap"}),
    _shadow({"kind": "json_fields", "fields": ["total"]}),
    {"telemetry": {"sinks": [{"kind": "logging", "logger": "audit", "level": "DEBUG"}]}},
    {"gates": [{"kind": "confidence", "signal": "sentinel", "sentinels": ["NOPE"]},
               {"kind": "confidence", "sentinels": ["NOPE"]}]},
]


@pytest.mark.parametrize("section", READ)
def test_the_same_keys_where_their_kind_reads_them_load(tmp_path, monkeypatch, section):
    monkeypatch.chdir(tmp_path)
    if "pinning" in section or "circuit" in section:
        RouterConfig.from_dict({"tiers": LADDER, "telemetry": {"sinks": []}, **section})  # no Redis to build on
    else:
        _load(tmp_path, section)


def test_a_full_model_dump_loads_back_its_defaults_being_no_key_set(tmp_path, monkeypatch):
    """``model_dump()`` writes every key, at its default where unset (``redis_url: null``
    under a memory backend): that says nothing a kind ignores."""
    monkeypatch.chdir(tmp_path)
    config = _load(tmp_path, {"policy": {"classifier": {"kind": "rules", "rules": RULES}},
                              "telemetry": {"sinks": [{"kind": "sqlite", "path": "t.db"}]}})
    dumped = config.model_dump(mode="json", by_alias=True)
    assert dumped["circuit"]["redis_url"] is None and dumped["telemetry"]["sinks"][0]["level"] == "INFO"
    assert RouterConfig.from_dict(dumped) == config


@pytest.mark.parametrize("model_id", ["amazon.nova-micro-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                                      "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc"])
def test_a_bedrock_tier_above_temperature_1_is_a_config_error(tmp_path, monkeypatch, model_id):
    """Converse's inferenceConfig.temperature (and every InvokeModel body a batch writes) is
    0-1: a tier at 1.5 was accepted and every one of its calls refused by Bedrock."""
    monkeypatch.chdir(tmp_path)
    tier = {"name": "hot", "model_id": model_id, "temperature": 1.5, "provider": "anthropic",
            "price": {"input_per_mtok": 1, "output_per_mtok": 2}}
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, {"tiers": [tier, LADDER[1]]})
    assert info.value.path == "tiers[0].temperature"
    assert "Bedrock takes a temperature of 0 to 1" in str(info.value) and "1.5" in str(info.value)
    tier["temperature"] = 1
    assert _load(tmp_path, {"tiers": [tier, LADDER[1]]}).tiers[0].temperature == 1


def test_a_tier_of_a_model_elsewhere_keeps_its_apis_range(tmp_path, monkeypatch):
    """A LiteLLM model group on OpenAI takes 0-2; the core accepts any model the cost map prices."""
    monkeypatch.chdir(tmp_path)
    tier = {"name": "gpt", "model_id": "gpt-4o-mini", "temperature": 1.5}
    assert _load(tmp_path, {"tiers": [tier, LADDER[1]]}).tiers[0].temperature == 1.5


def test_a_top_p_above_1_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tier = dict(LADDER[0], model_kwargs={"top_p": 1.5})
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, {"tiers": [tier, LADDER[1]]})
    assert info.value.path == "tiers[0].model_kwargs" and "top_p is a probability, 0 to 1" in str(info.value)
