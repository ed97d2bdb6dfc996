"""Save and load a ``RoutingModel`` as a numpy ``.npz``: JSON header plus plain arrays.

No pickle, ever (``allow_pickle=False``). A model file is input from outside, so the
loader checks every array's declared shape and type in its ``.npy`` header before it
reads a byte of data, and any file it cannot use is a ``ConfigError`` naming the
problem: a crafted 1 KB file declaring a 2^34-element array is refused, not allocated.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .embedding import load_embedding
from .errors import ConfigError
from .features import FeatureSpec
from .learned import STRATEGIES, LinearHead, RoutingModel

__all__ = ["save_routing_model", "load_routing_model", "FORMAT"]

FORMAT = "tiered-router-model/2"
_ROLES = ("quality", "out_tokens", "stay", "up")
_MAX_ELEMENTS = 1 << 24  # 16 M floats per array: far above any real head
_MAX_HEADER = 1 << 20


def save_routing_model(model: RoutingModel, path: str | Path) -> Path:
    path = Path(path)
    heads, arrays = [], {}
    for role in _ROLES:
        for tier, head in getattr(model, role).items():
            key = f"h{len(heads)}"
            heads.append({"role": role, "tier": tier, "link": head.link, "bias": head.bias})
            for part in ("sparse", "dense", "mean", "scale"):
                arrays[f"{key}_{part}"] = np.asarray(getattr(head, part), dtype=np.float32)
    header = {"format": FORMAT, "strategy": model.strategy, "tiers": model.tiers, "baseline": model.baseline,
              "spec": model.spec.to_dict(), "lam": model.lam, "cost_scale": model.cost_scale,
              "start_tier": model.start_tier, "threshold": model.threshold,
              "max_escalations": model.max_escalations, "heads": heads, "meta": model.meta}
    if model.spec.embedding or model.spec.tokens:
        header["embedding"] = {"name": load_embedding().name, "fingerprint": load_embedding().fingerprint}
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
        np.savez_compressed(fh, header=np.array(json.dumps(header)), **arrays)
    return path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in the archive, each checked from its header before it is read."""
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise ConfigError(f"{path}: unexpected member {info.filename!r}")
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=_MAX_HEADER)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=_MAX_HEADER)
                    if dtype.hasobject:
                        raise ConfigError(f"{path}: array {info.filename!r} holds Python objects (refused)")
                    if math.prod(shape) > _MAX_ELEMENTS:
                        raise ConfigError(f"{path}: array {info.filename!r} declares shape {shape}, too large")
                with archive.open(info) as fh:
                    out[info.filename[:-4]] = np.lib.format.read_array(fh, allow_pickle=False)
    except ConfigError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ConfigError(f"cannot load routing model {path}: {exc}") from None
    return out


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
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{path} is not a tiered-router model file (no readable header: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a tiered-router model file of format {FORMAT}; re-run tiered-router calibrate")
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
                         lam=_float(header, "lam", path) or 0.0, cost_scale=_float(header, "cost_scale", path) or 1.0,
                         start_tier=header.get("start_tier"), threshold=_float(header, "threshold", path, optional=True),
                         max_escalations=header.get("max_escalations"), meta=header.get("meta") or {})
    if model.cost_scale <= 0:
        raise ConfigError(f"{path}: cost_scale must be positive")
    for i, meta in enumerate(heads_meta):
        role, tier, link = meta.get("role"), meta.get("tier"), meta.get("link")
        if role not in _ROLES or tier not in tiers or link not in ("logistic", "log1p"):
            raise ConfigError(f"{path}: head {i} is malformed ({meta!r})")
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
        getattr(model, role)[tier] = LinearHead(parts["sparse"], parts["dense"], parts["mean"], parts["scale"],
                                                _float(meta, "bias", path) or 0.0, link)
    _check_complete(model, path)
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
