"""Session pinning: a conversation stays on the tier it started on.

Bedrock's prompt cache is per model, so moving a conversation between tiers throws
its warm cache away. The store maps a key (the session id, scoped to the caller by
``access.pin_key``) to a pin (``encode_pin``: the tier, and whether the caller had asked
for it). ``MemoryPinStore`` is an in-process LRU with a TTL; ``RedisPinStore`` shares pins
across proxy replicas.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict

log = logging.getLogger("langchain_tiered_router")

__all__ = ["PinStore", "PinStoreUnavailable", "MemoryPinStore", "RedisPinStore", "encode_pin", "decode_pin"]

_REQUESTED = ";requested"


def encode_pin(tier: str, requested: bool) -> str:
    """A pin as stored: the tier name, marked when the tier was the caller's own request
    (such a pin is honoured only while the caller may still request that tier)."""
    return tier + (_REQUESTED if requested else "")


def decode_pin(value: str | None) -> tuple[str, bool] | None:
    if not value:
        return None
    requested = value.endswith(_REQUESTED)
    return (value[: -len(_REQUESTED)] if requested else value), requested


class PinStore(ABC):
    # True while a store that answers over the network is failing (from a failed call to
    # the next answer): on an event loop the engine then calls it on a worker thread
    # (``core.store_calls``), so a frozen server does not stall every other request
    unwell = False

    @abstractmethod
    def get(self, session_id: str) -> str | None:
        """The session's pin, None for none; ``PinStoreUnavailable`` when the store cannot
        say now (the engine then starts the request unpinned and leaves the pin as it is)."""

    @abstractmethod
    def set(self, session_id: str, tier: str) -> None:
        ...


class MemoryPinStore(PinStore):
    """Thread-safe LRU with a time to live."""

    def __init__(self, max_sessions: int = 10_000, ttl_s: float = 3600, clock=time.monotonic):
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._clock = clock
        self._pins: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str) -> str | None:
        with self._lock:
            item = self._pins.get(session_id)
            if item is None:
                return None
            tier, expires = item
            if expires < self._clock():
                del self._pins[session_id]
                return None
            self._pins.move_to_end(session_id)
            return tier

    def set(self, session_id: str, tier: str) -> None:
        with self._lock:
            self._pins[session_id] = (tier, self._clock() + self.ttl_s)
            self._pins.move_to_end(session_id)
            while len(self._pins) > self.max_sessions:
                self._pins.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pins)


class PinStoreUnavailable(Exception):
    """The pin store cannot say now (down, or left alone after a failure): the request
    starts by the policy and leaves the session's pin as it is. Logged by the store."""


class RedisPinStore(PinStore):
    """Pins in Redis (``SET key tier PX ttl``), shared by every replica.

    A Redis outage never fails or stalls requests: a read that fails is no pin (the
    policy starts the request, and the pin is not replaced), a write that fails is
    dropped, both logged; each call
    waits at most ``timeout_s``, and after a failure Redis is left alone for
    ``retry_s``, so a frozen server costs one request a timeout now and then, not
    every request."""

    def __init__(self, url: str, ttl_s: float = 3600, key_prefix: str = "tiered-router:pin:", client=None, *,
                 timeout_s: float = 0.5, retry_s: float = 5.0, clock=time.monotonic, ladder_id: str = ""):
        """``ladder_id``: which ladder the pins name tiers of (``ladder_fingerprint``); pins
        of another ladder sharing the Redis are not read (a session pinned to one model's
        ``frontier`` was served by another model's ``frontier``)."""
        if client is None:
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ImportError("RedisPinStore needs redis: pip install 'langchain-tiered-router[redis]'") from exc
            client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=timeout_s,
                                          socket_connect_timeout=timeout_s)
        self.client = client
        self.ttl_ms = max(1, round(ttl_s * 1000))  # PX: a TTL of 1.9 s or 0.3 s as given, not whole seconds
        self.key_prefix = f"{key_prefix}{ladder_id}:" if ladder_id else key_prefix
        self.retry_s = retry_s
        self._clock = clock
        self._down_until = 0.0
        self._warned = -math.inf

    def get(self, session_id: str) -> str | None:
        """The session's pin; ``PinStoreUnavailable`` when Redis cannot say (the engine then
        starts the request by the policy and leaves the pin as it is)."""
        if self._clock() < self._down_until:
            raise PinStoreUnavailable("left alone after a failure")
        try:
            value = self.client.get(self.key_prefix + session_id)
            self.unwell = False
        except Exception as exc:  # noqa: BLE001 - an outage is no pin, never a failed request
            self._outage(exc)
            raise PinStoreUnavailable(str(exc)) from None
        if isinstance(value, bytes):
            value = value.decode()
        return value

    def set(self, session_id: str, tier: str) -> None:
        if self._clock() < self._down_until:
            return
        try:
            self.client.set(self.key_prefix + session_id, tier, px=self.ttl_ms)
            self.unwell = False
        except Exception as exc:  # noqa: BLE001
            self._outage(exc)

    def _outage(self, exc: Exception) -> None:
        now = self._clock()
        self._down_until = now + self.retry_s
        self.unwell = True
        if now - self._warned > 30:
            self._warned = now
            log.warning("session pin store unavailable (%s): requests start by the policy, unpinned, and the store "
                        "is tried again in %gs", exc, self.retry_s)
