"""The offline demo: a bundled workload, its gates, and the runner behind ``tiered-router demo``."""

from .runner import DemoRun, run_demo
from .workload import Item, Outcome, bundled_workload_path, load_items

__all__ = ["DemoRun", "run_demo", "Item", "Outcome", "bundled_workload_path", "load_items"]
