"""``tiered-router demo --batch``: the demo workload as Bedrock batch jobs, offline.

Real parts, started here on 127.0.0.1: moto's S3 server (the S3 API the jobs read
and write), the Bedrock emulator (runtime and the batch control plane, answering
each tier with the workload's scripted or recorded answers) and a SQLite telemetry
store. The records go through ``langchain_tiered_router.batch.run_batch`` as they
would on AWS; labels (the served tier's recorded score and the baseline's) are
written beside the telemetry so the report measures parity.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..core.config import RouterConfig
from ..core.errors import ConfigError
from ..analysis.report import Label, load_records, write_labels
from ..analysis.report import Summary, summarize
from ..batch.formats import supports
from .runner import _fake_credentials, demo_config, emulator_script
from .workload import Item, write_items

__all__ = ["BatchDemoRun", "run_batch_demo", "check_batch_demo", "batch_config_path", "MOTO_HINT"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "demo"
MOTO_HINT = "the batch demo needs moto's S3 server: pip install 'langchain-tiered-router[batch-demo]'"
_ROLE = "arn:aws:iam::123456789012:role/tiered-router-batch"


def batch_config_path() -> Path:
    return _DATA / "batch_router.yaml"


@dataclass
class BatchDemoRun:
    summary: Summary  # the telemetry report's numbers, from the SQLite store
    batch: Any  # langchain_tiered_router.batch.BatchSummary
    db: Path
    seconds: float
    labels: int


class _S3Server:
    """moto's S3 API in server mode on a free loopback port, for the length of a ``with``."""

    def __enter__(self) -> str:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:
            raise ConfigError(MOTO_HINT) from None
        self._quiet = logging.getLogger("werkzeug")
        self._level = self._quiet.level
        self._quiet.setLevel(logging.ERROR)  # one access-log line per S3 request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()
        self._quiet.setLevel(self._level)


def _bucket(url: str, uri: str) -> None:
    import boto3
    from botocore.config import Config

    name = uri[len("s3://"):].split("/", 1)[0]
    boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=name)


def _config(base: RouterConfig, db: Path, emulator_url: str, s3_url: str) -> RouterConfig:
    data = demo_config(base, db, emulator_url).model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data.setdefault("telemetry", {})["shadow"] = {"fraction": 0.0}  # parity comes from the recorded labels
    batch = data.setdefault("batch", {})
    chosen = base.batch is not None and "invocation_type" in base.batch.model_fields_set
    if not chosen and not all(supports(t.model_id, "InvokeModel") for t in base.tiers):
        # a tier with no InvokeModel record format (the replay's GPT-4): Converse records
        # carry every model, and the emulator's jobs answer them; a config that names
        # its invocation type keeps it
        batch["invocation_type"] = "Converse"
    batch.setdefault("bucket", "s3://tiered-router-demo/batch")
    batch.setdefault("role_arn", _ROLE)
    batch.setdefault("poll_interval_s", 0.05)
    batch["s3_endpoint_url"] = s3_url
    config = RouterConfig.from_dict(data)
    config._source = base._source
    return config


def _labels(results: Path, items: Sequence[Item], baseline: str) -> Iterator[Label]:
    import json

    by_id = {item.id: item for item in items}
    with open(results, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            item = by_id.get(row["id"])
            if item is None or row["tier"] is None:
                continue
            served, base = item.outcomes.get(row["tier"]), item.outcomes.get(baseline)
            if served and base and served.score is not None and base.score is not None:
                yield Label(row["request_id"], served.score, base.score, "recorded")


def check_batch_demo(items: Sequence[Item], base: RouterConfig) -> None:
    """What would stop the batch demo, found before it starts (and before the CLI empties
    the earlier run's DB): a workload of other tiers, a tier no batch record carries."""
    from ..batch.settings import check_formats

    missing = sorted({t for item in items for t in item.outcomes} - set(base.tier_names))
    if missing and not any(set(item.outcomes) & set(base.tier_names) for item in items):
        raise ConfigError(f"the workload's tiers ({', '.join(missing)}) are not in the router config "
                          f"({', '.join(base.tier_names)})")
    config = _config(base, Path("unused.db"), "http://127.0.0.1:1", "http://127.0.0.1:1")
    assert config.batch is not None
    check_formats(config, config.batch)


def run_batch_demo(items: Sequence[Item], base: RouterConfig, *, db: Path) -> BatchDemoRun:
    """Route ``items`` as batch jobs against the emulator and moto; report from ``db``."""
    from ..batch import run_batch
    from ..emulator import BedrockEmulator

    check_batch_demo(items, base)
    started = time.perf_counter()
    db = Path(db)
    with tempfile.TemporaryDirectory(prefix="tiered-router-batch-demo-") as tmp, _fake_credentials(), \
            _S3Server() as s3_url:
        records = write_items(items, Path(tmp) / "records.jsonl")  # also the emulator's replay file
        with BedrockEmulator(emulator_script(base, records), s3_endpoint_url=s3_url, job_step_s=0.02) as emu:
            config = _config(base, db, emu.url, s3_url)
            assert config.batch is not None and config.batch.bucket is not None
            _bucket(s3_url, config.batch.bucket)
            out = Path(tmp) / "results.jsonl"
            batch = run_batch(config, records, out)
        labels = list(_labels(out, items, config.baseline_name))
    if labels:
        write_labels(db, labels)
    all_records, all_labels = load_records(db)
    mine = [r for r in all_records if r.request_id.startswith(f"{batch.run_id}-")]
    wanted = {r.request_id for r in mine}
    summary = summarize(mine, {k: v for k, v in all_labels.items() if k in wanted}, config.tier_names)
    return BatchDemoRun(summary, batch, db, time.perf_counter() - started, len(labels))
