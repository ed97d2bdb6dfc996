"""Crafted model files: every one a ``ConfigError`` at load, with bounded memory, never a
``MemoryError``, ``KeyError``, ``TypeError`` or ``IndexError`` later. Files are made the
way an attacker would: a real saved model, then its header or arrays rewritten."""

from __future__ import annotations

import copy
import io
import json
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from langchain_tiered_router.core import ConfigError, RouteRequest
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.features import FeatureSpec
from langchain_tiered_router.core.learned import LinearHead, RoutingModel
from langchain_tiered_router.core.model_file import load_routing_model, save_routing_model
from langchain_tiered_router.core.testing import ScriptedBackend

LADDER = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"}, {"name": "mid", "model_id": "amazon.nova-pro-v1:0"}]
DIMS = 16
MEMORY_BOUND = 64 << 20  # a refused file never gets near what it declares


def _head(link: str = "logistic", bias: float = 0.1) -> LinearHead:
    return LinearHead(np.linspace(-1, 1, DIMS), np.zeros(0), np.zeros(0), np.zeros(0), bias, link)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    spec = FeatureSpec(tokens=True, embedding=False, signals=False, hash_dims=DIMS)
    model = RoutingModel("classifier", ["cheap", "mid"], "mid", spec, lam=0.5, cost_scale=1e-4,
                         quality={"cheap": _head(), "mid": _head()},
                         out_tokens={"cheap": _head("log1p"), "mid": _head("log1p")})
    model.members = [RoutingModel("classifier", ["cheap", "mid"], "mid", spec, lam=0.5, cost_scale=1e-4,
                                  quality={"cheap": _head(bias=b), "mid": _head()},
                                  out_tokens={"cheap": _head("log1p"), "mid": _head("log1p")}) for b in (-3.0, 3.0)]
    return save_routing_model(model, tmp_path / "good.npz")


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _rewrite(path: Path, out: Path, header: Callable[[dict], Any] | None = None, **arrays: Any) -> Path:
    data = _arrays(path)
    if header is not None:
        parsed = json.loads(str(data["header"]))
        changed = header(parsed)
        data["header"] = changed if isinstance(changed, np.ndarray) else np.array(json.dumps(
            parsed if changed is None else changed))
    data.update(arrays)
    with open(out, "wb") as fh:
        np.savez(fh, **data)
    return out


def _npy_header(shape: tuple, descr: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _zip(out: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out


def _set(key: str, value: Any) -> Callable[[dict], None]:
    def change(header: dict) -> None:
        node = header
        *parents, last = key.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()

CRAFTED: dict[str, Callable[[Path, Path], Path]] = {
    # the issue's own cases
    "a 1 KB npz declaring a 2^34 shape": lambda g, o: _zip(o, {
        "header.npy": _npy(_arrays(g)["header"]),
        "h0_sparse.npy": _npy_header((1 << 34,), "<f8") + b"\0" * 64}),
    "a missing header key (spec)": lambda g, o: _rewrite(g, o, _set("spec", _DELETE)),
    "a missing header key (tiers)": lambda g, o: _rewrite(g, o, _set("tiers", _DELETE)),
    "a missing header key (heads)": lambda g, o: _rewrite(g, o, _set("heads", _DELETE)),
    "a missing header key (format)": lambda g, o: _rewrite(g, o, _set("format", _DELETE)),
    "a missing header": lambda g, o: _zip(o, {"h0_sparse.npy": _npy(np.zeros(DIMS))}),
    "a .npy instead of a .npz": lambda g, o: (o.write_bytes(_npy(np.zeros(DIMS))), o)[1],
    "zero dims": lambda g, o: _rewrite(g, o, _set("spec.hash_dims", 0)),
    "dims not a power of two": lambda g, o: _rewrite(g, o, _set("spec.hash_dims", 12)),
    "dims a string": lambda g, o: _rewrite(g, o, _set("spec.hash_dims", "abc")),
    "pickled objects": lambda g, o: (np.savez(o, header=np.array([{"a": 1}], dtype=object)), o)[1],
    # more of the same kind
    "an itemsize bomb in the header": lambda g, o: _zip(o, {"header.npy": _npy_header((), "<U100000000") + b"\0" * 8}),
    "forty 128 MB arrays, compressed": lambda g, o: _zip(o, {
        f"h{i}_sparse.npy": _npy_header((1 << 24,), "<f8") + b"\0" * (1 << 20) for i in range(40)}),
    "a member with another name": lambda g, o: _zip(o, {"../../etc.npy": _npy(np.zeros(3))}),
    "a string array as weights": lambda g, o: _rewrite(g, o, h0_sparse=np.array(["a"] * DIMS)),
    "a 2-D array as weights": lambda g, o: _rewrite(g, o, h0_sparse=np.zeros((DIMS, 2))),
    "NaN weights": lambda g, o: _rewrite(g, o, h0_sparse=np.full(DIMS, np.nan)),
    "weights of the wrong width": lambda g, o: _rewrite(g, o, h0_sparse=np.zeros(DIMS + 1)),
    "a missing weights array": lambda g, o: _zip(o, {"header.npy": _npy(_arrays(g)["header"])}),
    "a header nested 100,000 deep": lambda g, o: _rewrite(g, o, lambda h: np.array("[" * 100_000 + "]" * 100_000)),
    "a header that is a list": lambda g, o: _rewrite(g, o, lambda h: ["format"]),
    "a 2-D header": lambda g, o: _rewrite(g, o, lambda h: np.array([["x"]])),
    "heads that are not mappings": lambda g, o: _rewrite(g, o, _set("heads", [5, "x"])),
    "heads as a string": lambda g, o: _rewrite(g, o, _set("heads", "x")),
    "tiers as a number": lambda g, o: _rewrite(g, o, _set("tiers", 5)),
    "no tiers": lambda g, o: _rewrite(g, o, _set("tiers", [])),
    "tiers repeated": lambda g, o: _rewrite(g, o, _set("tiers", ["cheap", "cheap"])),
    "an unknown strategy": lambda g, o: _rewrite(g, o, _set("strategy", "magic")),
    "a baseline not among the tiers": lambda g, o: _rewrite(g, o, _set("baseline", "ultra")),
    "NaN lambda": lambda g, o: _rewrite(g, o, _set("lam", "NaN")),
    "a negative cost scale": lambda g, o: _rewrite(g, o, _set("cost_scale", -1)),
    "a zero cost scale": lambda g, o: _rewrite(g, o, _set("cost_scale", 0)),  # was read as 1.0
    "a string bias": lambda g, o: _rewrite(g, o, _set("heads.0.bias", "x")),
    "an unknown link": lambda g, o: _rewrite(g, o, _set("heads.0.link", "relu")),
    "a head for an unknown tier": lambda g, o: _rewrite(g, o, _set("heads.0.tier", "ultra")),
    "a spec flag that is a string": lambda g, o: _rewrite(g, o, _set("spec.tokens", "no")),
    "negative head_chars": lambda g, o: _rewrite(g, o, _set("spec.head_chars", -5)),
    "meta that is a list": lambda g, o: _rewrite(g, o, _set("meta", [1])),
    "max_escalations a string": lambda g, o: _rewrite(g, o, _set("max_escalations", "x")),
    "a split path naming an unknown tier": lambda g, o: _rewrite(g, o, _set("split_path", ["mid", "ultra"])),
    "a split path that is a string": lambda g, o: _rewrite(g, o, _set("split_path", "mid")),
    "a split with no point": lambda g, o: _rewrite(g, o, lambda h: {**h, "strategy": "split",
                                                                     "split_path": ["mid", "cheap"]}),
    # reversed by hand: the certified share of traffic went to the cheap tier instead (94.5 %)
    "a split path up the ladder": lambda g, o: _rewrite(g, o, lambda h: {**h, "strategy": "split", "split_at": 0.5,
                                                                         "split_path": ["cheap", "mid"]}),
    "a split point past its path": lambda g, o: _rewrite(g, o, lambda h: {**h, "strategy": "split", "split_at": 3,
                                                                          "split_path": ["mid", "cheap"]}),
    "a split point that is NaN": lambda g, o: _rewrite(g, o, lambda h: {**h, "strategy": "split", "split_at": "NaN",
                                                                        "split_path": ["mid", "cheap"]}),
    "a missing quality head": lambda g, o: _rewrite(g, o, lambda h: {**h, "heads": h["heads"][1:]}),
    "a head of a member past the members": lambda g, o: _rewrite(g, o, _set("heads.0.member", 2)),
    "a member index that is a string": lambda g, o: _rewrite(g, o, _set("heads.4.member", "0")),
    "members a string": lambda g, o: _rewrite(g, o, _set("members", "2")),
    "members past the limit": lambda g, o: _rewrite(g, o, _set("members", 10_000)),
    "a member without its quality head": lambda g, o: _rewrite(g, o, lambda h: {
        **h, "heads": [x for x in h["heads"] if not (x.get("member") == 1 and x["role"] == "quality")]}),
    "not a zip at all": lambda g, o: (o.write_bytes(b"PK\x03\x04 not really"), o)[1],
    "a damaged compressed member (a cut download, bit rot)": lambda g, o: _damaged(g, o),
    "a member in a compression zipfile cannot read": lambda g, o: _damaged(g, o, method=99),
    "an empty file": lambda g, o: (o.write_bytes(b""), o)[1],
}


def _damaged(good: Path, out: Path, method: int | None = None) -> Path:
    """``good`` written compressed, then its largest member's data flipped in four bytes
    (zlib fails before the CRC is reached), or its compression method set to ``method``."""
    arrays = _arrays(good)
    np.savez_compressed(out, **arrays)
    data = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as archive:
        info = max(archive.infolist(), key=lambda i: i.compress_size)
    at = info.header_offset
    if method is not None:  # in the local header and in the member's central directory entry
        data[at + 8:at + 10] = method.to_bytes(2, "little")
        entry = int.from_bytes(data[data.rfind(b"PK\x05\x06") + 16:][:4], "little")
        while int.from_bytes(data[entry + 42:entry + 46], "little") != at:
            entry += 46 + sum(int.from_bytes(data[entry + i:entry + i + 2], "little") for i in (28, 30, 32))
        data[entry + 10:entry + 12] = method.to_bytes(2, "little")
    else:
        start = at + 30 + int.from_bytes(data[at + 26:at + 28], "little") + int.from_bytes(data[at + 28:at + 30],
                                                                                            "little")
        for k in range(4):
            data[start + k] ^= 0xA5
    out.write_bytes(bytes(data))
    return out


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def test_the_good_file_loads_and_routes(good):
    model = load_routing_model(good)
    assert model.strategy == "classifier" and model.tiers == ["cheap", "mid"]
    router = build_router({"tiers": LADDER, "policy": {"kind": "auto", "path": str(good)},
                           "telemetry": {"sinks": []}})
    assert router.route(RouteRequest("hello"), ScriptedBackend({"*": "hi"})).tier in ("cheap", "mid")


def test_each_request_is_judged_by_its_folds_member(good):
    """The members round-trip, and a prompt's fold picks the one that judges it (the
    cheap tier's quality bias -3 in one, +3 in the other: the start tier follows)."""
    model = load_routing_model(good)
    assert len(model.members) == 2 and [m.quality["cheap"].bias for m in model.members] == [-3.0, 3.0]
    from langchain_tiered_router.core.tiers import Ladder
    from langchain_tiered_router.core.config import load_config
    ladder = Ladder.from_config(load_config({"tiers": LADDER, "telemetry": {"sinks": []}}))
    prompts = [f"question {i}" for i in range(40)]
    chosen = {p: model.choose_start(p, ladder)[2] for p in prompts}
    for p in prompts:
        member = model.member_for(p)
        assert any(member is m for m in model.members) and chosen[p] == member.choose_start(p, ladder)[2]
    assert {model.member_for(p) is model.members[0] for p in prompts} == {True, False}  # both serve


@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_model_file_is_a_config_error_at_load_with_bounded_memory(good, tmp_path, name):
    crafted = CRAFTED[name](good, tmp_path / "crafted.npz")
    assert crafted.stat().st_size < (2 << 10 if "1 KB" in name else 10 << 20)  # small, whatever it declares
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:  # and nothing else
            load_routing_model(crafted)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{name}: {peak / 1e6:.0f} MB"
    assert str(crafted) in str(info.value) and len(str(info.value)) < 600


@pytest.mark.parametrize("where", ["auto", "classifier", "verifier"])
def test_a_crafted_file_in_a_config_is_a_config_error_naming_the_key(good, tmp_path, where):
    crafted = CRAFTED["zero dims"](good, tmp_path / "crafted.npz")
    config: dict[str, Any] = {"tiers": copy.deepcopy(LADDER), "telemetry": {"sinks": []}}
    if where == "auto":
        config["policy"], path = {"kind": "auto", "path": str(crafted)}, "policy.path"
    elif where == "classifier":
        config["policy"] = {"kind": "classifier", "classifier": {"kind": "trained", "path": str(crafted)}}
        path = "policy.classifier.path"
    else:
        config["gates"], path = [{"kind": "verifier", "path": str(crafted)}], "gates[0].path"
    with pytest.raises(ConfigError) as info:
        build_router(config)
    assert info.value.path == path and "hash_dims" in str(info.value)


def test_a_trained_classifier_for_other_tiers_is_refused_when_the_router_is_built(good):
    """A classifier file trained for another ladder fails when the router is built (as a
    verifier gate's does), not on every request of a deployment that started fine."""
    other = [{"name": "cheap", "model_id": LADDER[0]["model_id"]}, {"name": "top", "model_id": LADDER[1]["model_id"]}]
    config = {"tiers": other, "telemetry": {"sinks": []},
              "policy": {"kind": "classifier", "classifier": {"kind": "trained", "path": str(good)}}}
    with pytest.raises(ConfigError) as info:
        build_router(config)
    assert info.value.path == "policy.classifier.path" and "trained for tiers cheap, mid" in str(info.value)
