"""A circuit breaker per tier: stop calling a tier that keeps failing, then probe it.

Closed: every request may call the tier. After ``failures`` transport failures in a
row (throttled, 5xx, timeouts, connection errors, cut streams) the circuit opens: the
engine skips the tier, records the skip, and escalates, for ``cooldown_s``. Then it is
half-open: one request probes the tier; its success closes the circuit, its failure
opens it again for another cooldown. Any answer, even one a gate rejects, is a
success: the tier is up.

``MemoryCircuitBreaker`` keeps the state in the process; ``RedisCircuitBreaker`` shares
it across replicas (one redis-server), so a tier that is down for one is skipped by
all. A Redis outage never fails a request: the breaker lets calls through and logs it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = ["CircuitBreaker", "MemoryCircuitBreaker", "RedisCircuitBreaker", "build_circuit_breaker"]

log = logging.getLogger("langchain_tiered_router")


class CircuitBreaker(ABC):
    """``allow`` before calling a tier, ``record`` after each call."""

    unwell = False  # True while a networked store fails: the engine calls it off the event loop (``core.store_calls``)

    def __init__(self, failures: int = 5, cooldown_s: float = 30.0):
        self.failures = failures
        self.cooldown_s = cooldown_s

    @abstractmethod
    def allow(self, tier: str) -> bool:
        """May this request call ``tier`` now? (In the half-open state, True for one probe.)"""

    @abstractmethod
    def record(self, tier: str, ok: bool) -> None:
        """The outcome of one call: ``ok`` is any answer; False is a transport failure."""

    @abstractmethod
    def state(self, tier: str) -> str:
        """``closed``, ``open`` or ``half_open``."""


@dataclass
class _TierState:
    failures: int = 0
    open_until: float = 0.0
    probing_since: float | None = None


class MemoryCircuitBreaker(CircuitBreaker):
    def __init__(self, failures: int = 5, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        super().__init__(failures, cooldown_s)
        self._clock = clock
        self._tiers: dict[str, _TierState] = {}
        self._lock = threading.Lock()

    def _get(self, tier: str) -> _TierState:
        state = self._tiers.get(tier)
        if state is None:
            state = self._tiers[tier] = _TierState()
        return state

    def allow(self, tier: str) -> bool:
        s = self._tiers.get(tier)
        if s is None or s.failures < self.failures:
            return True  # closed: nothing to change, so no lock (a read of one int)
        with self._lock:
            s = self._get(tier)
            if s.failures < self.failures:
                return True
            now = self._clock()
            if now < s.open_until:
                return False
            if s.probing_since is not None and now - s.probing_since < self.cooldown_s:
                return False  # another request is probing
            s.probing_since = now
            return True

    def record(self, tier: str, ok: bool) -> None:
        s = self._tiers.get(tier)
        if ok and s is not None and not s.failures and s.probing_since is None and not s.open_until:
            return  # a success on a healthy tier changes nothing: as if it came before any racing failure
        with self._lock:
            s = self._get(tier)
            if ok:
                s.failures, s.open_until, s.probing_since = 0, 0.0, None
                return
            s.failures += 1
            if s.failures >= self.failures:
                if s.open_until == 0.0 or s.probing_since is not None or self._clock() >= s.open_until:
                    log.warning("circuit for tier %s opens for %.1fs after %d transport failures in a row",
                                tier, self.cooldown_s, s.failures)
                s.open_until = self._clock() + self.cooldown_s
                s.probing_since = None

    def state(self, tier: str) -> str:
        with self._lock:
            s = self._get(tier)
            if s.failures < self.failures:
                return "closed"
            return "open" if self._clock() < s.open_until or s.probing_since is not None else "half_open"


class RedisCircuitBreaker(CircuitBreaker):
    """The breaker's state in Redis: ``<prefix><model>:failures`` (a counter),
    ``<prefix><model>:open`` (set for the cooldown) and ``<prefix><model>:probe`` (the
    half-open probe's lock).

    ``<model>`` is what the tier calls (``endpoints``: tier name -> model id and region),
    so two ladders on one Redis share a circuit exactly when they call the same model:
    keyed by tier name, a throttled ``cheap`` of one ladder opened another ladder's
    healthy ``cheap`` (a tier name absent from ``endpoints`` is its own key)."""

    def __init__(self, url: str, failures: int = 5, cooldown_s: float = 30.0,
                 key_prefix: str = "tiered-router:circuit:", client: Any = None, *, retry_s: float = 5.0,
                 clock: Any = time.monotonic, endpoints: Mapping[str, str] | None = None):
        super().__init__(failures, cooldown_s)
        self._endpoints = dict(endpoints or {})
        if client is None:
            try:
                import redis
            except ImportError:
                from .errors import ConfigError

                raise ConfigError("a redis circuit breaker needs redis: pip install 'langchain-tiered-router[redis]'",
                                  path="circuit.backend") from None
            client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._redis = client
        self.prefix = key_prefix
        self.retry_s = retry_s
        self._clock = clock
        self._down_until = -math.inf  # after a failure Redis is left alone for ``retry_s``
        self._last_error = -math.inf

    def _key(self, tier: str, part: str) -> str:
        return f"{self.prefix}{self._endpoints.get(tier, tier)}:{part}"

    def _outage(self, exc: Exception) -> None:
        """Calls go through, and Redis is left alone for ``retry_s``: a frozen server cost
        every tier call of every request its socket timeout (0.5 s), not one now and then."""
        now = self._clock()
        self._down_until = now + self.retry_s
        self.unwell = True
        if now - self._last_error > 30:
            self._last_error = now
            log.warning("circuit breaker store unavailable (%s); calls go through, the store is tried again "
                        "in %gs", exc, self.retry_s)

    def _resting(self) -> bool:
        return self._clock() < self._down_until

    def allow(self, tier: str) -> bool:
        if self._resting():
            return True
        try:
            is_open, failures = self._redis.mget(self._key(tier, "open"), self._key(tier, "failures"))
            self.unwell = False
            count = int(failures or 0)
            if count < self.failures:
                return True
            if is_open:
                return False
            # half-open: one probe across the fleet
            return bool(self._redis.set(self._key(tier, "probe"), "1", nx=True, px=int(self.cooldown_s * 1000)))
        except Exception as exc:  # noqa: BLE001 - the breaker never fails a request
            self._outage(exc)
            return True

    def record(self, tier: str, ok: bool) -> None:
        if self._resting():
            return
        try:
            if ok:
                # any replica's success ends the run of failures: a reset skipped when this
                # replica had seen no failure let fail (A), ok (B), fail (A) open the circuit
                self._redis.delete(self._key(tier, "failures"), self._key(tier, "probe"))
                self.unwell = False
                return
            pipe = self._redis.pipeline()
            pipe.incr(self._key(tier, "failures"))
            pipe.pexpire(self._key(tier, "failures"), int(self.cooldown_s * 10_000))  # stale counts fade
            count = int(pipe.execute()[0])
            self.unwell = False
            if count >= self.failures:
                pipe = self._redis.pipeline()
                pipe.set(self._key(tier, "open"), "1", px=int(self.cooldown_s * 1000))
                pipe.delete(self._key(tier, "probe"))
                pipe.execute()
                if count == self.failures:
                    log.warning("circuit for tier %s opens for %.1fs after %d transport failures in a row",
                                tier, self.cooldown_s, count)
        except Exception as exc:  # noqa: BLE001
            self._outage(exc)

    def state(self, tier: str) -> str:
        """"closed" while Redis is left alone or cannot answer (calls go through)."""
        if self._resting():
            return "closed"
        try:
            is_open, failures, probe = self._redis.mget(self._key(tier, "open"), self._key(tier, "failures"),
                                                        self._key(tier, "probe"))
            self.unwell = False
        except Exception as exc:  # noqa: BLE001 - the breaker never fails a request
            self._outage(exc)
            return "closed"
        if int(failures or 0) < self.failures:
            return "closed"
        return "open" if (is_open or probe) else "half_open"


def build_circuit_breaker(cfg: Any, endpoints: Mapping[str, str] | None = None) -> CircuitBreaker | None:
    """The breaker for a ``CircuitConfig`` (None when disabled); ``endpoints``: each tier's
    model id and region, which a shared (Redis) breaker keys its state by."""
    if not cfg.enabled:
        return None
    if cfg.backend == "redis":
        return RedisCircuitBreaker(cfg.redis_url, cfg.failures, cfg.cooldown_s, cfg.key_prefix, endpoints=endpoints)
    return MemoryCircuitBreaker(cfg.failures, cfg.cooldown_s)
