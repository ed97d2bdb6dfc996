"""A few hundred malformed router configs, generated from ``examples/router.yaml``, through
``TieredChatBedrock.from_config`` and the core loader (``RouterConfig.from_yaml`` then
``build_router``): every one is a ``ConfigError`` naming the key path and the problem,
no other exception, nothing wrong accepted, each well under a second (the bound is a
generous one, a guard against the hangs seen before: a 10 MB file took 11.6 s, an
alias bomb over 120 s). Valid variations are generated too, and must be accepted.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from langchain_tiered_router.core import ConfigError, RouterConfig
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.langchain import TieredChatBedrock

REPO = Path(__file__).resolve().parents[2]
GENEROUS_S = 1.0

# examples/router.yaml, with what it leaves at its defaults spelt out, so every section is mutated.
EXAMPLE = yaml.safe_load((REPO / "examples/router.yaml").read_text())
EXTRA: dict[str, Any] = {
    "gate_timeout_s": 10,
    "gates": [*EXAMPLE["gates"],
              {"kind": "json_schema", "schema": {"type": "object", "required": ["total"],
                                                 "properties": {"total": {"type": "number", "minimum": 0},
                                                                "note": {"type": "string", "pattern": "^[a-z ]*$"}}}},
              {"kind": "self_grade", "threshold": 6, "prompt": "Q: {question}\nA: {answer}\nScore 0-10:"},
              {"kind": "all", "gates": [{"kind": "regex", "pattern": "total", "ignore_case": True}]}],
    "telemetry": {"store_text": False, "sinks": [{"kind": "jsonl", "path": "PLACEHOLDER"}],
                  "shadow": {"fraction": 0.1, "max_in_flight": 4,
                             "comparator": {"kind": "numeric", "tolerance": 0.01}}},
    "pinning": {"backend": "memory", "max_sessions": 100, "ttl_s": 60},
}
BASE: dict[str, Any] = {**copy.deepcopy(EXAMPLE), **EXTRA}
BASE["tiers"][0].update(max_tokens=512, temperature=0.2, model_kwargs={"top_p": 0.9})
BASE["tiers"][2]["price"] = {"input_per_mtok": 3, "output_per_mtok": 15}
BASE["retry"].update(max_backoff_s=2)

# Keys whose deletion must be refused (everything else has a default).
REQUIRED = {"tiers", "tiers[*].name", "tiers[*].model_id", "policy.classifier.kind", "policy.classifier.rules[*].tier",
            "gates[*].kind", "gates[1].schema", "gates[3].gates", "gates[3].gates[0].pattern",
            "telemetry.sinks[*].kind", "telemetry.sinks[*].path", "tiers[2].price.input_per_mtok",
            "tiers[2].price.output_per_mtok", "policy.classifier.rules[0].keywords", "policy.classifier.rules[1].min_chars",
            "gates[3].gates[0].kind", "policy.classifier.rules", "telemetry.shadow.comparator.kind"}
# Where a required key's deletion is reported, when not at the key: a key its default kind never reads.
REPORTED_AT = {"telemetry.shadow.comparator.kind": "telemetry.shadow.comparator.tolerance"}
FREE_FORM = ("model_kwargs", ".schema.properties")  # keys there are the user's own names


@dataclass
class Case:
    id: str
    data: Any = None  # written with yaml.safe_dump
    text: str | bytes | None = None  # written as is
    paths: tuple[str, ...] | None = None  # the ConfigError's path must be one of these ...
    prefix: str | None = None  # ... or start with this; None and None: a whole-file problem
    valid: bool = False


def leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(key path, value) of every key in the config, parents before children."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        here = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        yield here, value
        yield from leaves(value, here)


def _split(path: str) -> list[Any]:
    parts: list[Any] = []
    for piece in path.replace("]", "").replace("[", ".").split("."):
        parts.append(int(piece) if piece.isdigit() else piece)
    return parts


def mutate(path: str, fn: Callable[[Any, Any], None]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    *parents, last = _split(path)
    node = data
    for part in parents:
        node = node[part]
    fn(node, last)
    return data


def _wild(path: str) -> str:
    import re

    return re.sub(r"\[\d+\]", "[*]", path)


def _misspell(key: str) -> str:
    return key[0] + key[2] + key[1] + key[3:] if len(key) > 3 and key[1] != key[2] else key + "x"


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path.split("[")[-1] or path.count(".") else ""


def generated() -> list[Case]:
    cases: list[Case] = [Case("base", data=BASE, valid=True),
                         Case("example-as-is", text=(REPO / "examples/router.yaml").read_text(), valid=True)]
    keyed = [(p, v) for p, v in leaves(BASE) if not p.endswith("]") and not any(f in p for f in FREE_FORM)]
    # deleted keys
    for path, _ in keyed:
        required = path in REQUIRED or _wild(path) in REQUIRED
        data = mutate(path, lambda node, key: node.pop(key))
        cases.append(Case(f"delete:{path}", data=data, valid=not required,
                          paths=(path, _parent(path), *filter(None, [REPORTED_AT.get(path)])) if required else None))
    # misspelt keys
    for path, _ in keyed:
        *_, last = _split(path)
        wrong = _misspell(last)
        data = mutate(path, lambda node, key: node.__setitem__(wrong, node.pop(key)))
        here = f"{path.rsplit('.', 1)[0]}.{wrong}" if "." in path else wrong
        cases.append(Case(f"misspell:{path}", data=data, paths=(here, path, _parent(path))))
    # wrong types
    for path, value in leaves(BASE):
        if any(f in path for f in FREE_FORM) or path.endswith("]") and not isinstance(value, (dict, list)):
            continue
        wrongs = {str: [12345, ["a"]], bool: ["maybe", [True]], int: ["many", [1]], float: ["much", {"a": 1}],
                  list: ["a string", 7], dict: ["a string", [1, 2]]}[type(value)]
        for n, wrong in enumerate(wrongs):
            if path == "access.allow_tier_request" and wrong == 7:
                continue
            data = mutate(path, lambda node, key: node.__setitem__(key, wrong))
            cases.append(Case(f"type{n}:{path}", data=data, paths=(path, _parent(path)), prefix=path + "["))
    # numbers: negative, huge, NaN, infinite, 5,000 digits
    for path, value in leaves(BASE):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or "model_kwargs" in path:
            continue
        if ".schema." in path:
            continue
        for name, number in (("negative", -1), ("very-negative", -1e9), ("huge", 1e30), ("nan", float("nan")),
                             ("inf", float("inf")), ("-inf", float("-inf"))):
            data = mutate(path, lambda node, key: node.__setitem__(key, number))
            cases.append(Case(f"number-{name}:{path}", data=data, paths=(path,)))
        text = yaml.safe_dump(mutate(path, lambda node, key: node.__setitem__(key, 424242)), sort_keys=False)
        cases.append(Case(f"number-5000-digits:{path}", text=text.replace("424242", "9" * 5000), paths=(path,)))
    # unknown tiers, wherever a tier is named
    for path in ("baseline", "policy.classifier.default_tier", "policy.classifier.rules[0].tier",
                 "policy.classifier.rules[1].tier"):
        cases.append(Case(f"unknown-tier:{path}", data=mutate(path, lambda n, k: n.__setitem__(k, "ultra")),
                          paths=(path,)))
    for key, value, path in (("grader_tier", "ultra", "gates[2].grader_tier"),):
        data = copy.deepcopy(BASE)
        data["gates"][2][key] = value
        cases.append(Case(f"unknown-tier:{path}", data=data, paths=(path,)))
    for extra, path in ((("policy", "start_tier"), "policy.start_tier"),
                        (("telemetry", "shadow", "comparator", "judge_tier"), "telemetry.shadow.comparator.judge_tier")):
        data = copy.deepcopy(BASE)
        node = data
        for part in extra[:-1]:
            node = node[part]
        node[extra[-1]] = "FRONTIER"
        cases.append(Case(f"unknown-tier:{path}", data=data, paths=(path,)))
    data = copy.deepcopy(BASE)
    data["gates"].append({"kind": "consistency", "tier": "nope"})
    cases.append(Case("unknown-tier:consistency", data=data, paths=("gates[4].tier",)))
    # empty lists
    for path, ok in (("tiers", False), ("gates", True), ("telemetry.sinks", True), ("access.allow_tier_request", True),
                     ("policy.classifier.rules", False), ("policy.classifier.rules[0].keywords", False),
                     ("gates[3].gates", False), ("retry.retry_on", True)):
        data = mutate(path, lambda n, k: n.__setitem__(k, []))
        cases.append(Case(f"empty:{path}", data=data, valid=ok, paths=None if ok else
                          (path, _parent(path), path.rsplit("[", 1)[0] if path.endswith("]") else path)))
    data = copy.deepcopy(BASE)
    data["gates"].append({"kind": "any", "gates": []})
    cases.append(Case("any-with-no-gates", data=data, paths=("gates[4].gates",)))
    data = copy.deepcopy(BASE)
    data["gates"][0] = {"kind": "confidence", "signal": "sentinel", "sentinels": []}
    cases.append(Case("sentinel-with-no-sentinels", data=data, paths=("gates[0].sentinels",)))
    # misspelt JSON-schema keywords, at every depth
    for wrong, where in (("raquired", "gates[1].schema"), ("propertis", "gates[1].schema"),
                         ("typ", "gates[1].schema.properties.total"), ("minimun", "gates[1].schema.properties.total"),
                         ("paattern", "gates[1].schema.properties.note"),
                         ("additonalProperties", "gates[1].schema"), ("itmes", "gates[1].schema.properties.note")):
        data = copy.deepcopy(BASE)
        node = data["gates"][1]["schema"]
        for part in where.split(".")[2:]:
            node = node[part]
        node[wrong] = ["total"] if wrong == "raquired" else "x"
        cases.append(Case(f"schema-keyword:{wrong}", data=data, paths=(f"{where}.{wrong}",)))
    for name, schema, path in (("bad-type", {"type": "objekt"}, "gates[1].schema"),
                               ("backreference", {"type": "string", "pattern": "(a)\\1"}, "gates[1].schema.pattern"),
                               ("not-a-mapping", "object", "gates[1].schema"),
                               # a $ref is resolved now, and never fetched: every answer would fail its gate
                               ("ref-to-nowhere", {"$ref": "#/definitions/nope"}, "gates[1].schema.$ref"),
                               ("remote-ref", {"type": "object", "properties": {"total": {
                                   "$ref": "http://203.0.113.1/total.json"}}}, "gates[1].schema.properties.total.$ref")):
        data = copy.deepcopy(BASE)
        data["gates"][1]["schema"] = schema
        cases.append(Case(f"schema:{name}", data=data, prefix=path))
    # prompts with unknown placeholders
    for n, prompt in enumerate(["Grade {response}: {answer}", "{answer.__class__.__init__.__globals__}",
                                "Q {question} no answer", 'Reply as JSON {"score": 1} for {answer}', "{answer!r}",
                                "{answer} {"]):
        data = copy.deepcopy(BASE)
        data["gates"][2]["prompt"] = prompt
        cases.append(Case(f"self-grade-prompt-{n}", data=data, paths=("gates[2].prompt",)))
    data = copy.deepcopy(BASE)
    data["policy"]["classifier"] = {"kind": "llm", "prompt": "Pick one of {tiers} for {question}"}
    cases.append(Case("llm-classifier-prompt", data=data, paths=("policy.classifier.prompt",)))
    # trained models that are not there
    for name, change, path in (
            ("classifier", {"policy": {"kind": "cascade", "classifier": {"kind": "trained", "path": "missing.npz"}}},
             "policy.classifier.path"),
            ("classifier-no-path", {"policy": {"kind": "cascade", "classifier": {"kind": "trained"}}},
             "policy.classifier.path"),
            ("auto", {"policy": {"kind": "auto", "path": "missing.npz"}}, "policy.path"),
            ("auto-no-path", {"policy": {"kind": "auto"}}, "policy.path"),
            ("auto-not-a-model", {"policy": {"kind": "auto", "path": str(REPO / "examples/router.yaml")}},
             "policy.path"),
            ("verifier", {"gates": [{"kind": "verifier", "path": "missing.npz"}]}, "gates[0].path"),
            ("verifier-in-any", {"gates": [{"kind": "any", "gates": [{"kind": "verifier", "path": "nope.npz"}]}]},
             "gates[0].gates[0].path")):
        cases.append(Case(f"model-file:{name}", data={**copy.deepcopy(BASE), **change}, paths=(path,)))
    # access: untyped principals
    for entry in ("ops-team", "admin", "team-ops"):
        data = copy.deepcopy(BASE)
        data["access"]["allow_tier_request"] = ["team:ok", entry]
        cases.append(Case(f"untyped-principal:{entry}", data=data, paths=("access.allow_tier_request[1]",)))
    for entry in ("team: ops", "team:ops ", "user:*"):  # never match any caller
        data = copy.deepcopy(BASE)
        data["access"]["allow_tier_request"] = ["team:ok", entry]
        cases.append(Case(f"unmatchable-principal:{entry}", data=data, paths=("access.allow_tier_request[1]",)))
    data = copy.deepcopy(BASE)
    data["circuit"] = {"backend": "redis", "redis_url": "notaurl"}
    cases.append(Case("circuit-redis-url-not-a-url", data=data, paths=("circuit.redis_url",)))
    data = copy.deepcopy(BASE)
    data["telemetry"]["sinks"][0]["path"] = str(REPO)  # a folder: every record would be lost
    cases.append(Case("sink-path-a-folder", data=data, paths=("telemetry.sinks[0].path",)))
    # strings that are not what they name
    for path, value in (("region_name", ""), ("region_name", "   "), ("region_name", "us east 1"),
                        ("tiers[0].name", "cheap tier"), ("tiers[0].name", "a\nb"), ("tiers[0].model_id", " "),
                        ("tiers[0].provider", "Not A Provider"), ("pinning.redis_url", "http://x"),
                        ("telemetry.sinks[0].path", ""), ("gates[3].gates[0].pattern", "(?<=a)b")):
        cases.append(Case(f"string:{path}={value!r}", data=mutate(path, lambda n, k: n.__setitem__(k, value)),
                          paths=(path,)))
    data = copy.deepcopy(BASE)
    data["endpoint_url"] = "not a url"
    cases.append(Case("endpoint:not-a-url", data=data, paths=("endpoint_url",)))
    data = copy.deepcopy(BASE)
    data["endpoint_url"] = "ftp://127.0.0.1:9/x"
    cases.append(Case("endpoint:ftp", data=data, paths=("endpoint_url",)))
    data = copy.deepcopy(BASE)
    data["tiers"][0]["model_kwargs"] = {"max_tokens": -1}
    cases.append(Case("model-kwargs:max-tokens", data=data, paths=("tiers[0].model_kwargs",)))
    data = copy.deepcopy(BASE)
    data["tiers"][1]["name"] = "cheap"
    cases.append(Case("duplicate-tier-name", data=data, paths=("tiers",)))
    data = copy.deepcopy(BASE)
    data["policy"]["classifier"]["rules"][1]["max_chars"] = 10
    cases.append(Case("rule-max-below-min", data=data, paths=("policy.classifier.rules[1].max_chars",)))
    data = copy.deepcopy(BASE)
    data["retry"]["max_backoff_s"] = 0.01
    cases.append(Case("retry-max-backoff-below-backoff", data=data, paths=("retry.max_backoff_s",)))
    data = copy.deepcopy(BASE)
    data["retry"]["max_retries"] = 1_000_000
    cases.append(Case("retry-million", data=data, paths=("retry.max_retries",)))
    data = copy.deepcopy(BASE)
    data["pinning"] = {"backend": "redis"}
    cases.append(Case("redis-without-url", data=data, paths=("pinning.redis_url",)))
    cases += text_cases()
    return cases


def _deep_schema(depth: int) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node = data["gates"][1]["schema"]["properties"]["total"]
    for _ in range(depth):
        node["not"] = {}
        node = node["not"]
    return data


def text_cases() -> list[Case]:
    """What only a file can hold: bytes that are not UTF-8, YAML tricks, sizes."""
    base = yaml.safe_dump(BASE, sort_keys=False)
    bomb = ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n")
    deep = "[" * 200 + "]" * 200
    cases = [
        Case("not-utf8:value", text=base.encode().replace(b"amazon.nova-micro-v1:0", b"amazon.nova-\xff-v1:0"),
             paths=("tiers[0].model_id",)),
        Case("not-utf8:latin1-comment", text=("# routeur configuré\n" + base).encode("latin-1")),
        Case("not-utf8:key", text=base.encode().replace(b"baseline:", b"basel\xe9ine:"), prefix="basel"),
        Case("not-utf8:utf16", text=base.encode("utf-16")),
        Case("bomb:top-level", text=base + bomb, prefix=""),
        Case("bomb:model-kwargs", text=base.replace(
            "model_kwargs:\n    top_p: 0.9",
            "model_kwargs:\n    top_p: 0.9\n    junk:\n" + "".join("      " + line + "\n" for line in bomb.splitlines())),
            prefix="tiers[0].model_kwargs"),
        Case("deep:model-kwargs", text=base.replace("top_p: 0.9", f"top_p: {deep}"), prefix="tiers[0].model_kwargs"),
        Case("deep:schema", text=yaml.safe_dump(_deep_schema(80), sort_keys=False), prefix="gates[1].schema"),
        Case("deep:top-level", text="[" * 100_000 + "]" * 100_000),
        Case("duplicate:top-level", text=base + "on_exhausted: raise\n", paths=("on_exhausted",)),
        Case("duplicate:in-a-tier", text=base.replace("- name: cheap\n", "- name: cheap\n  name: mid\n", 1),
             paths=("tiers[0].name",)),
        Case("duplicate:policy-kind", text=base.replace("  kind: cascade\n", "  kind: cascade\n  kind: classifier\n", 1),
             paths=("policy.kind",)),
        Case("size:10MB", text=base + "#" + "x" * 10_000_000 + "\n"),
        Case("size:2MB-of-values", text=base + "junk:\n" + "".join(f"  - {i}\n" for i in range(300_000))),
        Case("yaml:python-tag", text=base + "x: !!python/object/apply:os.system ['true']\n"),
        Case("yaml:unclosed", text=base + "extra: [1, 2\n"),
        Case("yaml:tab-indent", text=base.replace("- name: cheap", "\t- name: cheap", 1)),
        Case("yaml:binary-kwargs", text=base.replace("top_p: 0.9", "top_p: !!binary aGVsbG8="),
             paths=("tiers[0].model_kwargs",)),
        Case("yaml:date-kwargs", text=base.replace("top_p: 0.9", "top_p: 2024-01-01"), paths=("tiers[0].model_kwargs",)),
        Case("top-level:list", text="- a\n- b\n"),
        Case("top-level:scalar", text="just a string\n"),
        Case("top-level:empty", text=""),
        Case("top-level:nul", text=b"tiers:\x00\n"),
    ]
    return cases


CASES = generated()


def _write(case: Case, tmp_path: Path) -> Path:
    path = tmp_path / "router.yaml"
    data = case.data
    if data is not None:
        data = copy.deepcopy(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False).replace("PLACEHOLDER", str(tmp_path / "t.jsonl")))
    elif isinstance(case.text, bytes):
        path.write_bytes(case.text.replace(b"PLACEHOLDER", str(tmp_path / "t.jsonl").encode()))
    else:
        path.write_text(str(case.text).replace("PLACEHOLDER", str(tmp_path / "t.jsonl")))
    return path


def _core(path: Path) -> Any:
    return build_router(RouterConfig.from_yaml(path))


def _langchain(path: Path) -> Any:
    return TieredChatBedrock.from_config(path)


def test_the_generator_makes_a_few_hundred_cases():
    bad = [c for c in CASES if not c.valid]
    assert len(bad) >= 300 and len({c.id for c in CASES}) == len(CASES)
    assert sum(c.valid for c in CASES) >= 10


@pytest.mark.parametrize("load", [_core, _langchain], ids=["core", "langchain"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_malformed_config_is_a_config_error_naming_the_key(case: Case, load, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths (sinks, model files) resolve in a scratch folder
    path = _write(case, tmp_path)
    # CPU time of this thread, not wall time: other processes on a busy machine do not count,
    # a hang (the alias bomb spun for minutes) does.
    started = time.thread_time()
    if case.valid:
        load(path)
        assert time.thread_time() - started < GENEROUS_S * 3  # building clients included
        return
    with pytest.raises(ConfigError) as info:  # and no other exception type
        load(path)
    took = time.thread_time() - started
    assert took < GENEROUS_S, f"{case.id} took {took:.2f}s of CPU"
    error = info.value
    message = str(error)
    assert len(message) < 1_000 and message.strip()
    if case.paths is None and case.prefix is None:  # a whole-file problem: say where in the file, or what
        assert any(word in message for word in ("line", "UTF-8", "bytes", "mapping", "YAML")), message
        return
    ok = (case.paths is not None and error.path in case.paths and error.path != "") or (
        case.prefix is not None and error.path.startswith(case.prefix) and (error.path or case.prefix == ""))
    assert ok, f"{case.id}: path {error.path!r}, expected one of {case.paths} or prefix {case.prefix!r}: {message}"


@pytest.mark.parametrize("kwargs, path", [({"frobnicate": 1}, "frobnicate"), ({"max_tokens": -5}, "max_tokens"),
                                          ({"temperature": 9}, "temperature"), ({"timeout": 0}, "timeout"),
                                          ({"max_retries": -1}, "max_retries")])
def test_a_bad_keyword_of_the_model_is_a_config_error_naming_it(kwargs, path) -> None:
    config = {"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                        {"name": "top", "model_id": "amazon.nova-pro-v1:0"}], "telemetry": {"sinks": []}}
    with pytest.raises(ConfigError) as info:
        TieredChatBedrock(config=config, **kwargs)
    assert info.value.path == path
    TieredChatBedrock(config=config, max_tokens=100, temperature=0.5)  # the same keys, in range


def test_arn_tiers_langchain_aws_cannot_build_are_config_errors_naming_the_tier(emulator) -> None:
    """An ARN needs its provider; an application inference profile is looked up on Bedrock
    as the model is built (the emulator has no such API, as a role may lack the permission):
    both are ``ConfigError``s on the tier, not langchain-aws's or botocore's exceptions."""
    price = {"input_per_mtok": 1, "output_per_mtok": 1}
    arn = "arn:aws:bedrock:us-east-1:123456789012:{}"
    for model_id, extra, path, says in (
            (arn.format("inference-profile/us.amazon.nova-micro-v1:0"), {}, "tiers[0].provider", "provider"),
            (arn.format("application-inference-profile/abc123"), {"provider": "amazon"}, "tiers[0].model_id",
             "base_model_id")):
        config = {"tiers": [{"name": "cheap", "model_id": model_id, "price": price, **extra},
                            {"name": "top", "model_id": "amazon.nova-pro-v1:0"}],
                  "telemetry": {"sinks": []}, "endpoint_url": emulator.url}
        with pytest.raises(ConfigError, match=says) as info:
            TieredChatBedrock(config=config)
        assert info.value.path == path
    config["tiers"][0]["model_kwargs"] = {"base_model_id": "amazon.nova-micro-v1:0"}  # no lookup: it builds
    TieredChatBedrock(config=config)


@pytest.mark.parametrize("model_id, says", [
    ("gpt-4o-mini", "is not a Bedrock model id"),  # the cost map prices it: the config alone accepts it
    ("openai/gpt-4o", "is not a Bedrock model id"),
    ("bedrock/amazon.nova-micro-v1:0", "LiteLLM's spelling: Bedrock's id is 'amazon.nova-micro-v1:0'"),
    ("bedrock/converse/us.amazon.nova-micro-v1:0", "Bedrock's id is 'us.amazon.nova-micro-v1:0'"),
])
def test_a_model_id_bedrock_cannot_serve_is_refused_at_construction(model_id, says, tmp_path) -> None:
    """Such a tier failed every request as ``model_unavailable`` and the ladder went on past
    it: it never served, and nothing said why. ``batch run`` refuses it before any job."""
    from langchain_tiered_router.batch.runner import BatchRunner

    config = {"tiers": [{"name": "cheap", "model_id": model_id}, {"name": "top", "model_id": "amazon.nova-pro-v1:0"}],
              "telemetry": {"sinks": []}}
    RouterConfig.from_dict(config)  # the core prices any model the cost map knows (the eval harness replays them)
    with pytest.raises(ConfigError, match=says) as info:
        TieredChatBedrock(config=config)
    assert info.value.path == "tiers[0].model_id"
    (tmp_path / "in.jsonl").write_text('{"recordId": "1", "text": "hi"}\n')
    with pytest.raises(ConfigError, match=says):
        BatchRunner.start(config, tmp_path / "in.jsonl", tmp_path / "out.jsonl", bucket="s3://b/p")
    assert not list(tmp_path.glob("out.jsonl*"))  # refused before its state or lock file
