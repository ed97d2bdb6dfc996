"""Routed requests waiting to be served, between the proxy hooks of one request.

The pre-call hook routes; the provider serves the answer, the headers hook and the
stream hook read the outcome. They run in one worker process but share no object
but the request body, so the body carries a route id and this table holds the rest.
Entries are removed by the last reader, or expire (a client that hung up).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from langchain_tiered_router.core import RoutingResult, StartedRoute

__all__ = ["RouteEntry", "RouteTable", "ROUTES"]


@dataclass
class RouteEntry:
    """``result`` when the core routed the request; ``started`` when a stream goes
    straight through a tier and is recorded when it ends."""

    config_key: str
    result: RoutingResult | None = None
    started: StartedRoute | None = None
    stream: bool = False
    include_usage: bool = True  # False: the client did not ask for the usage chunk we added
    summary: dict[str, Any] = field(default_factory=dict)  # the routing fields, as the client sees them
    readers: int = 2  # hooks still to read it: (provider or stream hook) and the headers hook
    created: float = field(default_factory=time.monotonic)

    @property
    def routing(self) -> RoutingResult:
        return self.result if self.result is not None else self.started.result  # type: ignore[union-attr]


class RouteTable:
    def __init__(self, ttl_s: float = 600.0, max_entries: int = 10_000):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, RouteEntry] = {}
        self._lock = threading.Lock()

    def put(self, route_id: str, entry: RouteEntry) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._entries) >= self.max_entries or len(self._entries) % 256 == 0:
                for key in [k for k, e in self._entries.items() if now - e.created > self.ttl_s]:
                    del self._entries[key]
                while len(self._entries) >= self.max_entries:
                    del self._entries[next(iter(self._entries))]
            self._entries[route_id] = entry

    def get(self, route_id: str | None) -> RouteEntry | None:
        if not route_id:
            return None
        with self._lock:
            return self._entries.get(route_id)

    def pop(self, route_id: str | None) -> RouteEntry | None:
        if not route_id:
            return None
        with self._lock:
            return self._entries.pop(route_id, None)

    def release(self, route_id: str | None) -> RouteEntry | None:
        """One reader is done; the last one removes the entry. Readers run in an order
        LiteLLM does not promise (a stream's first chunk may be fetched before the
        headers are built), so neither may assume it is last."""
        if not route_id:
            return None
        with self._lock:
            entry = self._entries.get(route_id)
            if entry is not None:
                entry.readers -= 1
                if entry.readers <= 0:
                    del self._entries[route_id]
            return entry

    def __len__(self) -> int:
        return len(self._entries)


ROUTES = RouteTable()
