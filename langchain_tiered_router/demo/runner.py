"""Run a workload through the router, record telemetry, label outcomes, summarise.

Offline (the default) the answers come from the local Bedrock-wire emulator, which
replays each tier's recorded (or scripted) response for the prompt; the router talks
to it over the real Converse wire protocol through ``TieredChatBedrock``. With
``live=True`` the same prompts go to real Bedrock and only shadow samples measure
parity. When outcomes carry correctness, each request is labelled with the served
tier's score and the baseline tier's score on the same prompt (``labels`` table).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..core.config import RouterConfig
from ..core.errors import ConfigError
from ..core.telemetry.record import routing_dict
from ..core.telemetry.recorder import flush_all
from ..analysis.report.store import Label, load_records, write_labels
from ..analysis.report.summary import Summary, summarize
from .workload import Item, write_items

__all__ = ["DemoRun", "run_demo", "demo_config", "emulator_script", "bundled_config_path", "replay_config_path"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "demo"


def bundled_config_path() -> Path:
    return _DATA / "router.yaml"


def replay_config_path() -> Path:
    return _DATA / "replay_router.yaml"


@dataclass
class DemoRun:
    summary: Summary
    request_ids: list[str]
    labels: list[Label]
    via: str
    db: Path
    seconds: float
    failures: list[str] = field(default_factory=list)


def _shortened(message: str, head: int = 120, tail: int = 240) -> str:
    """A failure's message cut to a line or two, its end kept: a ladder's error names each
    attempt first and the cause (a connection refused, a throttle) last."""
    message = " ".join(message.split())
    return message if len(message) <= head + tail + 5 else f"{message[:head]} ... {message[-tail:]}"


def demo_config(base: RouterConfig, db: Path, endpoint_url: str | None) -> RouterConfig:
    """The config with the SQLite sink at ``db`` and the endpoint set (None: real Bedrock)."""
    data = base.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["endpoint_url"] = endpoint_url
    telemetry = data.setdefault("telemetry", {})
    others = [s for s in telemetry.get("sinks", []) if s.get("kind") != "sqlite"]
    telemetry["sinks"] = [{"kind": "sqlite", "path": str(db)}] + others
    config = RouterConfig.from_dict(data)
    config._source = base._source  # an error found when the router is built names the user's file
    return config


def emulator_script(config: RouterConfig, replay_file: Path) -> dict[str, Any]:
    """Each tier's model replays the outcome recorded under its tier name."""
    return {"models": {t.model_id: {"replay": str(replay_file), "replay_key": t.name,
                                    "default": "I don't know."} for t in config.tiers},
            "default_answer": "I don't know."}


Invoke = Callable[[str], dict]


@contextlib.contextmanager
def _invoker(config: RouterConfig) -> Iterator[Invoke]:
    """A function prompt -> routing metadata, through ``TieredChatBedrock``."""
    from ..langchain import TieredChatBedrock  # first: without the extra, its ImportError names it

    from langchain_core.messages import HumanMessage

    model = TieredChatBedrock(config=config)

    def invoke(prompt: str) -> dict:
        return model.invoke([HumanMessage(content=prompt)]).response_metadata["routing"]

    yield invoke


@contextlib.contextmanager
def _endpoint(config: RouterConfig, items: Sequence[Item], live: bool) -> Iterator[str | None]:
    if live:
        yield None
        return
    from ..emulator import BedrockEmulator

    with tempfile.TemporaryDirectory(prefix="tiered-router-demo-") as tmp, _fake_credentials():
        replay = write_items(items, Path(tmp) / "outcomes.jsonl")
        with BedrockEmulator(emulator_script(config, replay)) as emu:
            yield emu.url


_FAKE = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "demo"}


@contextlib.contextmanager
def _fake_credentials() -> Iterator[None]:
    """botocore signs every request; the emulator ignores the signature. Real keys are
    not needed, nor sent anywhere but 127.0.0.1; the environment is restored after."""
    saved = {k: os.environ.get(k) for k in (*_FAKE, "AWS_PROFILE")}
    os.environ.update(_FAKE)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(items: Sequence[Item], base: RouterConfig, *, db: Path, live: bool = False,
             on_progress: Callable[[int], None] | None = None) -> DemoRun:
    missing = sorted({t for item in items for t in item.outcomes} - set(base.tier_names)) if not live else []
    if missing and not any(set(item.outcomes) & set(base.tier_names) for item in items):
        raise ConfigError(f"the workload's tiers ({', '.join(missing)}) are not in the router config "
                          f"({', '.join(base.tier_names)})")
    started = time.perf_counter()
    db = Path(db)
    ids: list[str] = []
    labels: list[Label] = []
    failures: list[str] = []
    with _endpoint(base, items, live) as url:
        config = demo_config(base, db, url)
        baseline = config.baseline_name
        with _invoker(config) as invoke:
            if on_progress:
                on_progress(0)  # the emulator and the router are up
            for n, item in enumerate(items, start=1):
                try:
                    meta = invoke(item.prompt)
                except Exception as exc:  # noqa: BLE001 - one failed request is reported, the run goes on
                    failures.append(f"{item.id}: {type(exc).__name__}: {_shortened(str(exc))}")
                    result = getattr(exc, "result", None)
                    meta = routing_dict(result) if result is not None else None
                if meta:
                    ids.append(meta["request_id"])
                    served = item.outcomes.get(meta.get("tier") or "")
                    base_outcome = item.outcomes.get(baseline)
                    if not live and served and base_outcome and served.score is not None \
                            and base_outcome.score is not None:
                        labels.append(Label(meta["request_id"], served.score, base_outcome.score, "recorded"))
                if on_progress:
                    on_progress(n)
            flush_all()
    if labels:
        write_labels(db, labels)
    wanted = set(ids)
    records, all_labels = load_records(db)
    records = [r for r in records if r.request_id in wanted]
    summary = summarize(records, {k: v for k, v in all_labels.items() if k in wanted}, config.tier_names)
    return DemoRun(summary, ids, labels, "TieredChatBedrock", db, time.perf_counter() - started, failures)
