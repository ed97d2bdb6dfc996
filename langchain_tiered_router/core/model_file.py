"""Save and load a ``RoutingModel`` as a numpy ``.npz``: JSON header plus plain arrays.

No pickle, ever (``allow_pickle=False``). A model file is input from outside, so the
loader checks every array's declared shape and type in its ``.npy`` header before it
reads a byte of data, and any file it cannot use is a ``ConfigError`` naming the
problem: a crafted 1 KB file declaring a 2^34-element array is refused, not allocated.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .embedding import load_embedding
from .errors import ConfigError
from .features import FeatureSpec
from .learned import STRATEGIES, LinearHead, RoutingModel

__all__ = ["save_routing_model", "load_routing_model", "FORMAT"]

# /3 adds the cross-fitting members the promise was certified on. A reader of /2 refuses a
# /3 file (it checks the format), where it would have routed on the full-data heads alone,
# which no promise covers; /2 files load here as they did.
FORMAT = "tiered-router-model/3"
_READABLE = ("tiered-router-model/2", FORMAT)
_ROLES = ("quality", "out_tokens", "stay", "up")
_MAX_ELEMENTS = 1 << 24  # 16 M floats per array: far above any real head
_MAX_HEADER = 1 << 20
_MAX_ARRAY_BYTES = 64 << 20  # what one array may declare
_MAX_TOTAL_BYTES = 128 << 20  # what the whole file may declare: a real model is a few MB
_MAX_HEADS = 1024
_MAX_MEMBERS = 32  # cross-fitting folds (calibrate uses 10)
_MEMBER = re.compile(r"^(header|h\d{1,4}_(sparse|dense|mean|scale))\.npy$")


def save_routing_model(model: RoutingModel, path: str | Path) -> Path:
    path = Path(path)
    heads, arrays = [], {}
    for member, holder in [(None, model), *enumerate(model.members)]:
        for role in _ROLES:
            for tier, head in getattr(holder, role).items():
                key = f"h{len(heads)}"
                heads.append({"role": role, "tier": tier, "link": head.link, "bias": head.bias,
                              **({} if member is None else {"member": member})})
                for part in ("sparse", "dense", "mean", "scale"):
                    arrays[f"{key}_{part}"] = np.asarray(getattr(head, part), dtype=np.float32)
    header = {"format": FORMAT, "strategy": model.strategy, "tiers": model.tiers, "baseline": model.baseline,
              "spec": model.spec.to_dict(), "lam": model.lam, "cost_scale": model.cost_scale,
              "start_tier": model.start_tier, "threshold": model.threshold,
              "split_path": model.split_path, "split_at": model.split_at,
              "max_escalations": model.max_escalations, "heads": heads, "meta": model.meta,
              "members": len(model.members)}
    if model.spec.embedding or model.spec.tokens:
        header["embedding"] = {"name": load_embedding().name, "fingerprint": load_embedding().fingerprint}
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
        np.savez_compressed(fh, header=np.array(json.dumps(header)), **arrays)
    return path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in the archive, each checked from its header before it is read: its
    name, its type (numbers; the header a string), and its size, alone and in total."""
    out: dict[str, np.ndarray] = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > 4 * _MAX_HEADS + 1:
                raise ConfigError(f"{path}: {len(members)} arrays; a routing model has at most {4 * _MAX_HEADS + 1}")
            for info in members:
                if not _MEMBER.match(info.filename):
                    raise ConfigError(f"{path}: unexpected member {info.filename[:80]!r}")
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=_MAX_HEADER)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=_MAX_HEADER)
                    name = info.filename[:-4]
                    if dtype.hasobject:
                        raise ConfigError(f"{path}: array {info.filename!r} holds Python objects (refused)")
                    if name == "header" and (dtype.kind != "U" or shape != ()):
                        raise ConfigError(f"{path}: the header is not a string")
                    if name != "header" and (dtype.kind not in "fiu" or len(shape) != 1):
                        raise ConfigError(f"{path}: array {info.filename!r} is not a vector of numbers "
                                          f"({dtype}, shape {shape})")
                    size = math.prod(shape) * dtype.itemsize
                    total += max(size, 0)
                    if math.prod(shape) > _MAX_ELEMENTS or size > _MAX_ARRAY_BYTES or total > _MAX_TOTAL_BYTES:
                        raise ConfigError(f"{path}: array {info.filename!r} declares shape {shape} of {dtype}, "
                                          "too large")
                with archive.open(info) as fh:
                    out[name] = np.lib.format.read_array(fh, allow_pickle=False)
    except ConfigError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, TypeError, NotImplementedError, zlib.error) as exc:
        # a damaged member (a cut download, bit rot) fails in zlib; another compression in zipfile
        raise ConfigError(f"cannot load routing model {path}: {type(exc).__name__}: {str(exc)[:200]}") from None
    return out


def _check_header(header: Any, path: Path) -> None:
    """The header's fields have the types and ranges the loader relies on."""
    if not isinstance(header, dict) or header.get("format") not in _READABLE:
        found = header.get("format") if isinstance(header, dict) else None
        raise ConfigError(f"{path} is not a tiered-router model file this release reads (format {found!r:.60}; it "
                          f"reads {', '.join(_READABLE)}): re-run tiered-router calibrate with this release")
    tiers, spec, heads = header.get("tiers"), header.get("spec"), header.get("heads")
    if not (isinstance(tiers, list) and 0 < len(tiers) <= 64 and all(isinstance(t, str) and t for t in tiers)
            and len(set(tiers)) == len(tiers)):
        raise ConfigError(f"{path}: header field 'tiers' must list the tier names")
    if not (isinstance(heads, list) and len(heads) <= _MAX_HEADS and all(isinstance(h, dict) for h in heads)):
        raise ConfigError(f"{path}: header field 'heads' must list at most {_MAX_HEADS} head descriptions")
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: header field 'spec' must be a mapping")
    for key in ("tokens", "embedding", "signals"):
        if key in spec and not isinstance(spec[key], bool):
            raise ConfigError(f"{path}: spec field {key!r} must be true or false, got {spec[key]!r:.40}")
    for key, low in (("hash_dims", 1), ("head_chars", 0), ("tail_chars", 0)):
        value = spec.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _MAX_ELEMENTS:
            raise ConfigError(f"{path}: spec field {key!r} must be a whole number from {low} to {_MAX_ELEMENTS}, "
                              f"got {value!r:.40}")
    for key, allowed in (("strategy", STRATEGIES), ("baseline", tiers), ("start_tier", tiers)):
        if header.get(key) is not None and header[key] not in allowed:
            raise ConfigError(f"{path}: header field {key!r} is {header[key]!r:.40}; expected one of "
                              f"{', '.join(map(str, allowed))}")
    split_path = header.get("split_path") or []
    if not (isinstance(split_path, list) and all(isinstance(t, str) and t in tiers for t in split_path)
            and len(set(split_path)) == len(split_path)):
        raise ConfigError(f"{path}: header field 'split_path' must list distinct tiers of the model")
    escalations = header.get("max_escalations")
    if escalations is not None and (isinstance(escalations, bool) or not isinstance(escalations, int)
                                    or not 0 <= escalations <= 100):
        raise ConfigError(f"{path}: header field 'max_escalations' must be a whole number from 0 to 100")
    members = header.get("members", 0)
    if isinstance(members, bool) or not isinstance(members, int) or not 0 <= members <= _MAX_MEMBERS:
        raise ConfigError(f"{path}: header field 'members' must be a whole number from 0 to {_MAX_MEMBERS}")
    if not isinstance(header.get("meta") or {}, dict):
        raise ConfigError(f"{path}: header field 'meta' must be a mapping")
    if header.get("embedding") is not None and not isinstance(header["embedding"], dict):
        raise ConfigError(f"{path}: header field 'embedding' must be a mapping")


def _float(header: dict[str, Any], key: str, path: Path, *, optional: bool = False) -> float | None:
    value = header.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{path}: header field {key!r} must be a finite number, got {value!r}")
    return float(value)


def load_routing_model(path: str | Path) -> RoutingModel:
    """Load a file written by ``save_routing_model``; a ``ConfigError`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no routing model file at {path}")
    arrays = _read_arrays(path)
    try:
        header = json.loads(str(arrays.pop("header")))
    except (KeyError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is not a tiered-router model file (no readable header: "
                          f"{type(exc).__name__})") from None
    _check_header(header, path)
    try:
        spec = FeatureSpec.from_dict(header["spec"])
        tiers, strategy = [str(t) for t in header["tiers"]], str(header["strategy"])
        heads_meta = list(header["heads"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: malformed header ({type(exc).__name__}: {exc})") from None
    if strategy not in STRATEGIES:
        raise ConfigError(f"{path}: unknown strategy {strategy!r}")
    if spec.hash_dims < 1 or spec.hash_dims & (spec.hash_dims - 1) or spec.hash_dims > _MAX_ELEMENTS:
        raise ConfigError(f"{path}: hash_dims must be a power of two, got {spec.hash_dims}")
    embedding = header.get("embedding")
    if embedding and embedding.get("fingerprint") != load_embedding().fingerprint:
        raise ConfigError(f"{path} was trained with embedding {embedding.get('name')!r} "
                          f"({embedding.get('fingerprint')}), which differs from the installed one; re-run calibrate")
    model = RoutingModel(strategy, tiers, str(header.get("baseline", tiers[-1] if tiers else "")), spec,
                         lam=_float(header, "lam", path) or 0.0, cost_scale=_float(header, "cost_scale", path),
                         start_tier=header.get("start_tier"), threshold=_float(header, "threshold", path, optional=True),
                         split_path=[str(t) for t in header.get("split_path") or []],
                         split_at=_float(header, "split_at", path, optional=True),
                         max_escalations=header.get("max_escalations"), meta=header.get("meta") or {})
    if model.cost_scale <= 0:
        raise ConfigError(f"{path}: cost_scale must be positive")
    model.members = [dataclasses.replace(model, quality={}, out_tokens={}, stay={}, up={}, members=[])
                     for _ in range(header.get("members", 0))]
    for i, meta in enumerate(heads_meta):
        role, tier, link, member = meta.get("role"), meta.get("tier"), meta.get("link"), meta.get("member")
        if role not in _ROLES or tier not in tiers or link not in ("logistic", "log1p") or not (
                member is None or (isinstance(member, int) and not isinstance(member, bool)
                                   and 0 <= member < len(model.members))):
            raise ConfigError(f"{path}: head {i} is malformed ({meta!r:.200})")
        parts = {}
        for part in ("sparse", "dense", "mean", "scale"):
            array = arrays.get(f"h{i}_{part}")
            if array is None or array.ndim != 1 or not np.all(np.isfinite(array)):
                raise ConfigError(f"{path}: head {i} has no usable {part!r} array")
            parts[part] = array.astype(np.float64)
        if parts["sparse"].size not in (0, spec.hash_dims):
            raise ConfigError(f"{path}: head {i} has {parts['sparse'].size} sparse weights for {spec.hash_dims} dims")
        width = parts["dense"].size
        if parts["mean"].size != width or parts["scale"].size != width or np.any(parts["scale"] <= 0):
            raise ConfigError(f"{path}: head {i} has inconsistent dense standardisation")
        if width not in (0, spec.dense_width(with_answer=role in ("stay", "up"))):
            raise ConfigError(f"{path}: head {i} expects {width} dense features; this feature spec gives "
                              f"{spec.dense_width(with_answer=role in ('stay', 'up'))}")
        holder = model if member is None else model.members[member]
        getattr(holder, role)[tier] = LinearHead(parts["sparse"], parts["dense"], parts["mean"], parts["scale"],
                                                 _float(meta, "bias", path) or 0.0, link)
    for holder in (model, *model.members):
        _check_complete(holder, path)
    return model


def _check_complete(model: RoutingModel, path: Path) -> None:
    if model.uses_classifier:
        missing = [t for t in model.tiers if t not in model.quality or t not in model.out_tokens]
        if missing:
            raise ConfigError(f"{path}: the classifier has no head for tier(s) {', '.join(missing)}")
    if model.uses_cascade:
        missing = [t for t in model.tiers[:-1] if t not in model.stay or t not in model.up]
        if missing or not all(t in model.out_tokens for t in model.tiers):
            raise ConfigError(f"{path}: the cascade has no heads for tier(s) {', '.join(missing) or 'costs'}")
    if model.strategy == "tier" and model.start_tier not in model.tiers:
        raise ConfigError(f"{path}: strategy 'tier' names no tier of the model")
    if model.strategy == "confidence" and model.threshold is None:
        raise ConfigError(f"{path}: strategy 'confidence' has no threshold")
    if model.strategy == "split" and (len(model.split_path) < 2 or model.split_at is None
                                      or not 0 <= model.split_at <= len(model.split_path) - 1):
        raise ConfigError(f"{path}: strategy 'split' needs a path of two or more tiers and a point along it")
    if model.strategy == "split" and (model.split_path[0] != model.baseline or any(
            model.tiers.index(a) <= model.tiers.index(b) for a, b in zip(model.split_path, model.split_path[1:]))):
        # calibrate writes the baseline, then cheaper tiers down the ladder: another order (a
        # hand edit) moved the certified share of traffic onto tiers it was never measured on
        raise ConfigError(f"{path}: a split path starts at the baseline ({model.baseline}) and goes down the "
                          f"ladder; got {' > '.join(model.split_path)}")
