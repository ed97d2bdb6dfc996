"""What a run needs besides records: validated batch settings, real AWS clients, a config digest.

Settings are the router config's ``batch:`` section with the CLI's (or the caller's)
overrides, validated again so a bad ``--bucket`` is reported as ``batch.bucket``. The
digest covers what decides routing (ladder, prices, policy, gates, batch limits) and
leaves out endpoints, sinks and polling, so a resumed run may point elsewhere but may
not route differently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..core.config import BatchConfig, RouterConfig
from ..core.optional import import_boto3
from .errors import BatchSettingsError
from .formats import supports

__all__ = ["BatchClients", "resolve_settings", "config_digest", "check_formats"]

# Keys that do not change how records are routed: a resumed run may change them.
_FREE_KEYS = ("endpoint_url", "region_name", "telemetry", "access", "pinning")
_FREE_BATCH_KEYS = ("endpoint_url", "s3_endpoint_url", "poll_interval_s", "max_concurrent_jobs", "bucket",
                    "role_arn")


def config_digest(config: RouterConfig) -> str:
    """A digest of what decides routing (ladder, policy, gates, prices, batch limits)."""
    data = config.model_dump(mode="json", by_alias=True)
    for key in _FREE_KEYS:
        data.pop(key, None)
    for key in _FREE_BATCH_KEYS:
        (data.get("batch") or {}).pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def resolve_settings(config: RouterConfig, **overrides: Any) -> BatchConfig:
    """``config.batch`` with the given overrides (``None`` left out), validated again."""
    data = (config.batch or BatchConfig()).model_dump(mode="json")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return BatchConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise BatchSettingsError(err["msg"], path=f"batch.{loc}" if loc else "batch") from None


@dataclass
class BatchClients:
    """Real boto3 clients: ``bedrock`` (jobs), ``bedrock-runtime`` (on-demand) and ``s3``."""

    bedrock: Any
    runtime: Any
    s3: Any

    @classmethod
    def from_config(cls, config: RouterConfig, settings: BatchConfig) -> "BatchClients":
        boto3 = import_boto3()
        from botocore.config import Config

        retries = Config(retries={"mode": "standard", "max_attempts": 5})
        s3_config = Config(retries={"mode": "standard", "max_attempts": 5},
                           s3={"addressing_style": "path"} if settings.s3_endpoint_url else {})
        region = config.region_name
        return cls(
            bedrock=boto3.client("bedrock", region_name=region, config=retries,
                                 endpoint_url=settings.endpoint_url or config.endpoint_url),
            # one attempt per call: the runner retries by ``retry`` (and counts each), as live;
            # botocore retrying underneath multiplied the calls and ignored the backoff cap
            runtime=boto3.client("bedrock-runtime", region_name=region, endpoint_url=config.endpoint_url,
                                 config=Config(retries={"mode": "standard", "total_max_attempts": 1},
                                               **_timeouts(config))),
            s3=boto3.client("s3", region_name=region, endpoint_url=settings.s3_endpoint_url, config=s3_config),
        )


def _timeouts(config: RouterConfig) -> dict[str, float]:
    """The transport's read and connect timeouts, for the on-demand calls' client (the
    longest tier's ``timeout_s`` where a tier sets its own: one client serves them all)."""
    read = max([t.timeout_s for t in config.tiers if t.timeout_s is not None] + [config.transport.timeout_s or 0])
    out: dict[str, float] = {}
    if read:
        out["read_timeout"] = read
    if config.transport.connect_timeout_s is not None:
        out["connect_timeout"] = config.transport.connect_timeout_s
    return out


def check_formats(config: RouterConfig, settings: BatchConfig) -> None:
    for i, tier in enumerate(config.tiers):
        if not supports(tier.model_id, settings.invocation_type):
            raise BatchSettingsError(
                f"no batch record format for model id {tier.model_id!r}; set batch.invocation_type: Converse",
                path=f"tiers[{i}].model_id")
