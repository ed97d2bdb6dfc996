"""``to_yaml(path)`` writes model-file paths that name the same files when the file is loaded.

``from_yaml`` reads a relative model-file path beside the YAML file; ``to_yaml`` wrote the
working-directory form it holds, so each round trip added the folder again
(``svc/router_model.npz`` loaded back as ``svc/svc/router_model.npz``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from langchain_tiered_router.core import RouterConfig

LADDER = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
          {"name": "frontier", "model_id": "anthropic.claude-sonnet-4-5-20250929-v1:0"}]
ROUTER_YAML = ("tiers:\n  - {name: cheap, model_id: amazon.nova-micro-v1:0}\n"
               "  - {name: frontier, model_id: anthropic.claude-sonnet-4-5-20250929-v1:0}\n"
               "policy: {kind: auto, path: router_model.npz}\ntelemetry: {sinks: []}\n")


@pytest.fixture
def service(tmp_path, monkeypatch) -> Path:
    """A service folder holding its router YAML and the model file it names, seen from its parent."""
    monkeypatch.chdir(tmp_path)
    Path("svc").mkdir()
    Path("svc/router_model.npz").write_bytes(b"model")
    Path("svc/router.yaml").write_text(ROUTER_YAML)
    return tmp_path


def _same_file(a: str, b: str) -> bool:
    return os.path.samefile(a, b)


def test_a_config_read_from_yaml_and_written_beside_it_loads_back_equal(service):
    first = RouterConfig.from_yaml("svc/router.yaml")
    first.to_yaml("svc/router2.yaml")
    assert yaml.safe_load(Path("svc/router2.yaml").read_text())["policy"]["path"] == "router_model.npz"
    second = RouterConfig.from_yaml("svc/router2.yaml")
    assert second == first
    assert _same_file(second.policy.path, "svc/router_model.npz")
    second.to_yaml("svc/router3.yaml")  # and again: no folder added per round trip
    assert RouterConfig.from_yaml("svc/router3.yaml") == first


def test_written_to_another_folder_the_file_still_names_the_same_model(service):
    first = RouterConfig.from_yaml("svc/router.yaml")
    Path("deploy").mkdir()
    first.to_yaml("deploy/router.yaml")
    assert yaml.safe_load(Path("deploy/router.yaml").read_text())["policy"]["path"] == "../svc/router_model.npz"
    again = RouterConfig.from_yaml("deploy/router.yaml")
    assert again == first and _same_file(again.policy.path, "svc/router_model.npz")


def test_every_kind_of_model_file_path_survives_the_round_trip(tmp_path, monkeypatch):
    """The auto policy's path, a trained classifier's, and verifier gates' (nested ones too),
    given relative to the working directory, written into a file in a subfolder."""
    monkeypatch.chdir(tmp_path)
    Path("out").mkdir()
    verifier = {"kind": "verifier", "path": "models/verifier.npz"}
    tiers = [dict(LADDER[0], gates=[{"kind": "all", "gates": [verifier]}]), LADDER[1]]
    for policy in ({"kind": "auto", "path": "models/auto.npz"},
                   {"kind": "classifier", "classifier": {"kind": "trained", "path": "models/trained.npz"}}):
        config = RouterConfig.from_dict({"tiers": tiers, "gates": [verifier], "policy": policy,
                                         "telemetry": {"sinks": []}})
        config.to_yaml("out/router.yaml")
        written = yaml.safe_load(Path("out/router.yaml").read_text())
        assert written["gates"][0]["path"] == "../models/verifier.npz"
        assert written["tiers"][0]["gates"][0]["gates"][0]["path"] == "../models/verifier.npz"
        again = RouterConfig.from_yaml("out/router.yaml")
        assert again == config
        assert again.gates[0].path == "models/verifier.npz"


def test_an_absolute_path_stays_absolute_and_no_path_keeps_the_working_directory_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("out").mkdir()
    model = str(tmp_path / "m.npz")
    config = RouterConfig.from_dict({"tiers": LADDER, "policy": {"kind": "auto", "path": model},
                                     "telemetry": {"sinks": []}})
    config.to_yaml("out/router.yaml")
    assert yaml.safe_load(Path("out/router.yaml").read_text())["policy"]["path"] == model
    assert RouterConfig.from_yaml("out/router.yaml") == config
    relative = RouterConfig.from_dict({"tiers": LADDER, "policy": {"kind": "auto", "path": "m.npz"},
                                       "telemetry": {"sinks": []}})
    assert yaml.safe_load(relative.to_yaml())["policy"]["path"] == "m.npz"
    relative.to_yaml("out/router.yaml")
    assert relative.policy.path == "m.npz"  # writing a file changes the config it was written from in nothing
