"""Offline analysis of recorded telemetry: the report's numbers, drift, the plot.

Reads what the sinks wrote (``load_records``); never on a request's path. matplotlib
loads only for ``plot_report``.
"""

from __future__ import annotations

from .drift import DriftReport, check_drift
from .store import Label, load_records, write_labels
from .summary import Parity, Summary, summarize

__all__ = ["Label", "load_records", "write_labels", "Summary", "Parity", "summarize", "DriftReport", "check_drift",
           "plot_report"]


def __getattr__(name: str):
    if name == "plot_report":  # matplotlib only when asked for
        from .plot import plot_report

        return plot_report
    raise AttributeError(name)
