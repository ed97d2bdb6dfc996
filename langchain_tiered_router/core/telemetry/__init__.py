"""Telemetry: the per-request record, its sinks, shadow sampling and the report."""

from __future__ import annotations

from .record import RoutingRecord, record_from_result

__all__ = ["RoutingRecord", "record_from_result", "build_observers"]


def build_observers(config, ladder):
    """Observers for ``config.telemetry``: a recorder writing to every configured sink."""
    from .recorder import build_recorder_observers

    return build_recorder_observers(config, ladder)
