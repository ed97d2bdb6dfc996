"""Telemetry on the request path: the per-request record, its sinks, shadow sampling.

Reading records back and reporting on them is offline analysis:
``langchain_tiered_router.analysis.report``.

Nothing here installs a logging handler or starts a thread at import; a configured
sink's writer starts on its first record (``flush_all()`` waits until every record
so far is written), and making one puts a drain in front of
SIGTERM (``shutdown.py``); OpenTelemetry, psycopg and matplotlib load on first use.
"""

from __future__ import annotations

from .comparators import (Comparator, ExactComparator, JsonFieldsComparator, LLMJudgeComparator, NumericComparator,
                          build_comparator)
from .record import RoutingRecord, record_from_result, routing_dict
from .recorder import Recorder, build_recorder, flush_all
from .shadow import ShadowSampler
from .build import build_sink, build_sinks
from .sinks import JsonlSink, LoggingSink, MemorySink, Sink, SinkSet
from .sqlite import SqliteSink

__all__ = [
    "RoutingRecord", "record_from_result", "routing_dict", "build_observers",
    "Recorder", "build_recorder", "flush_all", "ShadowSampler",
    "Sink", "SinkSet", "SqliteSink", "PostgresSink", "JsonlSink", "LoggingSink", "MemorySink", "OTelSink",
    "build_sink", "build_sinks",
    "Comparator", "ExactComparator", "JsonFieldsComparator", "NumericComparator", "LLMJudgeComparator",
    "build_comparator",
]


def build_observers(config, ladder):
    """Observers for ``config.telemetry``: a recorder writing to every configured sink."""
    from .recorder import build_recorder_observers

    return build_recorder_observers(config, ladder)


def __getattr__(name: str):
    if name == "OTelSink":  # the OpenTelemetry API loads only when asked for
        from .otel import OTelSink

        return OTelSink
    if name == "PostgresSink":  # so does psycopg
        from .postgres import PostgresSink

        return PostgresSink
    raise AttributeError(name)
