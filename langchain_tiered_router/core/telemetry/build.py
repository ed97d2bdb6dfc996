"""Sinks from the config's ``telemetry.sinks``: the one place sink kinds become objects.

Apart from ``sinks.py`` so that the sinks built here (SQLite, PostgreSQL, OpenTelemetry) can import
the ``Sink`` base without an import cycle. Every configured sink writes from a background
thread: the request path pays one enqueue per sink.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Iterable

from ..errors import ConfigError
from .forks import ForkSafeLock
from .offload import OffloadedSink
from .sinks import JsonlSink, LoggingSink, Sink, SinkSet
from .writer import refuse_other_settings

__all__ = ["build_sink", "build_sinks"]


def build_sink(cfg: Any) -> Sink:
    """A sink from one ``SinkConfig``."""
    if cfg.kind == "sqlite":
        from .sqlite import SqliteSink

        return SqliteSink.shared(cfg.path, batch_size=cfg.batch_size, flush_interval_s=cfg.flush_interval_s,
                                 linger_s=cfg.linger_s, queue_size=cfg.queue_size, retry_s=cfg.retry_s,
                                 durable=cfg.durable, journal_dir=cfg.journal_dir)
    if cfg.kind == "postgres":
        from .postgres import PostgresSink  # psycopg is optional: loaded when configured

        return PostgresSink.shared(cfg.dsn, batch_size=cfg.batch_size, flush_interval_s=cfg.flush_interval_s,
                                   linger_s=cfg.linger_s, queue_size=cfg.queue_size, retry_s=cfg.retry_s,
                                   durable=cfg.durable, journal_dir=cfg.journal_dir)
    if cfg.kind == "jsonl":
        key: tuple = ("jsonl", str(Path(cfg.path).resolve()))
    elif cfg.kind == "otel":
        key = ("otel",)
    elif cfg.kind == "logging":
        LoggingSink(cfg.logger, cfg.level)  # its errors now, not on the writer thread
        key = ("logging", cfg.logger, str(cfg.level).upper())
    else:
        raise ConfigError(f"unknown sink kind {cfg.kind!r}", path="telemetry.sinks")
    # Off the request path, like the database sinks (``offload``), and one writer per
    # destination in a process, as ``SqliteSink.shared``: a router built per call (a model
    # LangChain rebuilds from configurable fields) would otherwise leave a thread per call.
    settings = {"batch_size": cfg.batch_size, "flush_interval_s": cfg.flush_interval_s, "linger_s": cfg.linger_s,
                "queue_size": cfg.queue_size, "retry_s": cfg.retry_s}
    with _shared_lock:
        sink = _shared.get(key)
        if sink is None or sink.closed:  # closed by a router that was done with it: a new one for this router
            inner, description = _inline_sink(cfg)
            sink = _shared[key] = OffloadedSink(inner, description, **settings)
            sink.settings = settings
        else:  # its settings are the first config's: another's would be silently ignored
            refuse_other_settings(sink, settings, sink.store.description)
    return sink


_shared: "weakref.WeakValueDictionary[tuple, OffloadedSink]" = weakref.WeakValueDictionary()
_shared_lock = ForkSafeLock()  # a fork while another thread builds a sink: the child builds its own


def _inline_sink(cfg: Any) -> tuple[Sink, str]:
    if cfg.kind == "jsonl":
        jsonl = JsonlSink(cfg.path)
        jsonl.probe()
        return jsonl, f"JSONL file {jsonl.path}"
    if cfg.kind == "otel":
        from .otel import OTelSink  # the OpenTelemetry SDK is optional: loaded when configured

        return OTelSink(), "OpenTelemetry"
    return LoggingSink(cfg.logger, cfg.level), f"logger {cfg.logger}"


def build_sinks(cfgs: Iterable[Any]) -> SinkSet:
    sinks = []
    for i, cfg in enumerate(cfgs):
        try:
            sinks.append(build_sink(cfg))
        except ConfigError as exc:
            path = f"telemetry.sinks[{i}].{exc.path}".rstrip(".")
            raise ConfigError(exc.detail, path=path) from None
    return SinkSet(sinks)
