"""The router config: typed, round-trips to YAML, and names the bad key's path."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from langchain_tiered_router.core import ConfigError, PricingError, RouterConfig, UnknownTierError
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.config import load_config


def test_round_trips_through_yaml(base_config, tmp_path):
    base_config["policy"] = {"kind": "cascade", "max_escalations": 1,
                             "classifier": {"kind": "rules", "rules": [{"tier": "frontier", "keywords": ["prove"]}]}}
    base_config["tiers"][2]["price"] = {"input_per_mtok": "3.0", "output_per_mtok": "15.0"}
    config = RouterConfig.from_dict(base_config)
    path = tmp_path / "router.yaml"
    config.to_yaml(path)
    again = RouterConfig.from_yaml(path)
    assert again == config
    assert again.tiers[2].price.output_per_mtok == Decimal("15.0")
    assert yaml.safe_load(path.read_text())["gates"][0]["schema"]["required"] == ["total"]


@pytest.mark.parametrize("mutate, error, path", [
    (lambda d: d.update(bogus=1), ConfigError, "bogus"),
    (lambda d: d["policy"].update(kind="magic"), ConfigError, "policy.kind"),
    (lambda d: d.update(baseline="huge"), UnknownTierError, "baseline"),
    (lambda d: d["tiers"][1].update(model_id="acme.unknown-model-v9"), PricingError, "tiers[1].model_id"),
    (lambda d: d.update(tiers=[]), ConfigError, "tiers"),
    (lambda d: d["tiers"].append(dict(d["tiers"][0])), ConfigError, "tiers"),
    (lambda d: d["gates"][0].update(schema="not a mapping"), ConfigError, "gates[0].schema"),
    (lambda d: d["gates"].append({"kind": "self_grade", "grader_tier": "nope"}), UnknownTierError,
     "gates[1].grader_tier"),
    (lambda d: d["policy"].update(max_escalations=-1), ConfigError, "policy.max_escalations"),
    (lambda d: d["tiers"][0].update(price={"input_per_mtok": "x", "output_per_mtok": 1}), ConfigError,
     "tiers[0].price.input_per_mtok"),
])
def test_bad_config_names_the_key(base_config, mutate, error, path):
    base_config.setdefault("policy", {"kind": "cascade"})
    mutate(base_config)
    with pytest.raises(error) as info:
        RouterConfig.from_dict(base_config, source="router.yaml")
    assert info.value.path == path
    assert str(info.value).startswith(f"router.yaml: {path}: ")


def test_unknown_price_is_fine_with_an_override(base_config):
    base_config["tiers"][1] = {"name": "mid", "model_id": "acme.unknown-model-v9",
                               "price": {"input_per_mtok": 1, "output_per_mtok": 2}}
    config = RouterConfig.from_dict(base_config)
    assert config.price_of(config.tiers[1]).input_per_mtok == Decimal(1)


def test_bad_json_schema_is_a_config_error_with_its_path(base_config):
    base_config["gates"] = [{"kind": "json_schema", "schema": {"type": "objekt"}}]
    with pytest.raises(ConfigError) as info:
        build_router(base_config, telemetry=False)
    assert info.value.path.startswith("gates[0]")
    assert "not a valid JSON schema" in str(info.value)


def test_unimportable_rule_is_a_config_error(base_config):
    base_config["gates"] = [{"kind": "rule", "function": "no_such_module:check"}]
    with pytest.raises(ConfigError) as info:
        build_router(base_config, telemetry=False)
    assert info.value.path == "gates[0].function"


@pytest.mark.parametrize("function", ["tests.core.rules:judges_the_answer_alone", "builtins:len"])
def test_a_rule_that_cannot_take_question_and_answer_is_a_config_error(base_config, function):
    """Built, it failed every request's gate on every tier (a TypeError each time), and
    every request paid the whole ladder to be served flagged."""
    base_config["gates"] = [{"kind": "rule", "function": function}]
    with pytest.raises(ConfigError, match=r"cannot be called as fn\(question, answer\)") as info:
        build_router(base_config, telemetry=False)
    assert info.value.path == "gates[0].function"
    for fine in ("tests.core.rules:judges_with_options", "tests.core.rules:says_no"):
        base_config["gates"] = [{"kind": "rule", "function": fine}]
        build_router(base_config, telemetry=False)


@pytest.mark.parametrize("function", ["tests.core.rules:judged_asynchronously", "tests.core.rules:async_check"])
def test_an_async_rule_is_a_config_error(base_config, function):
    """Built, its call returned a coroutine, never a verdict: every answer failed the gate
    (a gate error each, and "never awaited" warnings) and every request paid the ladder."""
    base_config["gates"] = [{"kind": "rule", "function": function}]
    with pytest.raises(ConfigError, match="is async: a rule gate calls it and reads its result") as info:
        build_router(base_config, telemetry=False)
    assert info.value.path == "gates[0].function"


@pytest.mark.parametrize("source, raised", [("raise RuntimeError('no credentials at import')\n", "RuntimeError"),
                                            ("def check(:\n", "SyntaxError")], ids=["raises", "syntax-error"])
def test_a_gate_module_that_fails_to_import_is_a_config_error(base_config, tmp_path, monkeypatch, source, raised):
    """Not the module's own exception out of the constructor: a config mistake names its key."""
    (tmp_path / "broken_gate_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    for kind, key in (("rule", "function"), ("pydantic", "model")):
        base_config["gates"] = [{"kind": kind, key: "broken_gate_module:check"}]
        with pytest.raises(ConfigError) as info:
            build_router(base_config, telemetry=False)
        assert info.value.path == f"gates[0].{key}" and raised in str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(scalar)


def test_runtime_defaults_are_the_config_models_defaults(base_config):
    """One place for defaults: objects built in code equal those built from an empty YAML section."""
    from langchain_tiered_router.core.config import ConfidenceGateConfig, RetryConfig
    from langchain_tiered_router.core.policies import ConfidencePolicy

    base_config["policy"] = {"kind": "confidence"}
    built = build_router(base_config, telemetry=False)
    in_code = ConfidencePolicy().gate
    assert vars(built.policy.gate) == vars(in_code)
    assert in_code.sentinels == ConfidenceGateConfig(kind="confidence").sentinels
    assert built.retry == RetryConfig()


def test_a_ladder_not_listed_cheapest_first_is_warned_about(base_config, caplog):
    """Escalation climbs the tiers in the order listed: Sonnet before Nova Micro escalates
    to the cheaper model, and the default baseline is then the cheapest one."""
    with caplog.at_level("WARNING", logger="langchain_tiered_router"):
        build_router(base_config, telemetry=False)
    assert not [r for r in caplog.records if "cheapest first" in r.getMessage()]
    base_config["tiers"] = [base_config["tiers"][2], base_config["tiers"][0]]  # frontier, then cheap
    with caplog.at_level("WARNING", logger="langchain_tiered_router"):
        build_router(base_config, telemetry=False)
    (warning,) = [r.getMessage() for r in caplog.records if "cheapest first" in r.getMessage()]
    assert f"tier {base_config['tiers'][0]['name']!r} costs more per token than " \
           f"{base_config['tiers'][1]['name']!r}" in warning
    # two models at the same rates in and out ($3 / $15), whose cost-map entries differ in a
    # rate beside them (a long-context or 1-hour cache rate): no tier costs more per token
    caplog.clear()
    base_config["tiers"] = [{"name": "c37", "model_id": "us.anthropic.claude-3-7-sonnet-20250219-v1:0"},
                            {"name": "s45", "model_id": "global.anthropic.claude-sonnet-4-5-20250929-v1:0"}]
    with caplog.at_level("WARNING", logger="langchain_tiered_router"):
        ladder = build_router(base_config, telemetry=False).ladder
    assert ladder["c37"].price != ladder["s45"].price
    assert (ladder["c37"].price.input_per_mtok, ladder["c37"].price.output_per_mtok) == \
        (ladder["s45"].price.input_per_mtok, ladder["s45"].price.output_per_mtok)
    assert not [r for r in caplog.records if "cheapest first" in r.getMessage()]


def test_a_yaml_file_names_itself_in_every_error_and_a_key_yaml_read_as_a_boolean_is_named(base_config, tmp_path):
    """Errors past validation (a gate's import) named no file, as validation errors do;
    YAML's ``on:`` is the key True, which pydantic reported as "[1]: Keys should be strings"."""
    bad_import = tmp_path / "gates.yaml"
    bad_import.write_text(yaml.safe_dump({**base_config, "gates": [{"kind": "pydantic", "model": "nope:X"}]}))
    with pytest.raises(ConfigError) as info:
        build_router(str(bad_import))
    assert str(info.value).startswith(f"{bad_import}: gates[0].model: cannot import 'nope:X'")
    assert info.value.source == str(bad_import) and info.value.path == "gates[0].model"
    boolean_key = tmp_path / "on.yaml"
    boolean_key.write_text(yaml.safe_dump(base_config) + "on: 2\n")
    with pytest.raises(ConfigError, match=r"on\.yaml: \(top level\): the key True is not a name \(YAML reads on"):
        build_router(str(boolean_key))


@pytest.mark.parametrize("policy, key", [
    ({"kind": "cascade", "confidence": {"kind": "confidence", "threshold": 0.9}}, "confidence"),
    ({"kind": "classifier", "start_tier": "frontier",
      "classifier": {"kind": "rules", "rules": [{"tier": "frontier", "keywords": ["prove"]}]}}, "start_tier"),
    ({"kind": "auto", "path": "model.npz", "start_tier": "mid"}, "start_tier"),
    ({"kind": "cascade", "path": "model.npz"}, "path"),
])
def test_a_policy_key_its_kind_never_reads_is_an_error(base_config, policy, key):
    """A ``confidence`` section under a cascade loaded and did nothing: a cheap answer
    saying "Confidence: 0.1" was served; a classifier's ``start_tier`` was ignored."""
    base_config["policy"] = policy
    with pytest.raises(ConfigError, match=rf"policy: {key} is not read by a {policy['kind']} policy"):
        RouterConfig.from_dict(base_config)
    del policy[key]
    if policy["kind"] != "auto":
        build_router(RouterConfig.from_dict(base_config), telemetry=False)  # the same without it is fine


@pytest.mark.parametrize("where, key, value", [("tier", "max_tokens", True), ("tier", "temperature", False),
                                               ("retry", "max_retries", True), ("top", "gate_timeout_s", True)])
def test_a_bool_for_a_number_is_a_config_error_at_its_key(base_config, where, key, value):
    """YAML's ``yes`` is True, which pydantic read as 1: ``max_tokens: yes`` cut every
    answer to one token. A number written as a string (from an environment variable) is
    still read."""
    target = {"tier": base_config["tiers"][0], "top": base_config}.get(where)
    if target is None:
        target = base_config.setdefault(where, {})
    target[key] = value
    with pytest.raises(ConfigError, match=r"(integer|number).*\(got '(true|false)'\)") as info:
        RouterConfig.from_dict(base_config)
    assert info.value.path == {"tier": f"tiers[0].{key}", "retry": f"retry.{key}", "top": key}[where]
    target[key] = "1"  # (a Bedrock tier's temperature is at most 1)
    RouterConfig.from_dict(base_config)


def test_an_error_found_when_the_router_is_built_names_the_file_the_config_came_from(base_config, tmp_path):
    """A gate that cannot be imported is found past validation: the error named the key
    but not the file, when the config was read first and built later (the demo, a model)."""
    import yaml

    base_config["gates"] = [{"kind": "rule", "function": "no_such_module:check"}]
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(base_config))
    config = RouterConfig.from_yaml(path)
    with pytest.raises(ConfigError) as info:
        build_router(config, telemetry=False)
    assert str(info.value).startswith(f"{path}: gates[0].function: cannot import")
    copied = config.model_copy()
    with pytest.raises(ConfigError, match=rf"^{path}: "):
        build_router(copied, telemetry=False)
