"""Tests whose servers listen on 127.0.0.1 (the emulator, a proxy, redis) open sockets
under pytest-socket; each such folder's conftest marks its own tests with this hook."""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["allow_sockets_in"]


def allow_sockets_in(conftest_file: str, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every collected test under ``conftest_file``'s folder ``enable_socket``."""
    if not config.pluginmanager.hasplugin("socket"):
        return
    here = str(Path(conftest_file).parent)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.enable_socket)
