"""A request's time budget: one deadline for every call, retry, backoff and escalation.

The engine stamps ``RouteRequest.deadline`` (a ``time.monotonic()`` instant) when a
request starts, from ``transport.deadline_s``. Before each call, retry and escalation
it checks the time left; each call gets ``call_timeout``: the tier's own timeout, cut
to what is left. Async calls are abandoned at that timeout by the engine; a sync call
is bounded by the backend (botocore's read timeout, LiteLLM's ``timeout``, or a wait
on a worker thread).

The time a call waits for a worker thread is not its time (``core.clocks``).

Routing's own sync calls (an LLM classifier's, a grader's) are made with a prompt, not
the request; ``routing_call_for`` tells a backend that times its own calls whose
deadline such a call runs within.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from typing import Iterator

from .errors import TransportError
from .tiers import Tier
from .types import RouteRequest

__all__ = ["stamp_deadline", "time_left", "call_timeout", "deadline_error", "routing_call_for", "routing_request"]


def stamp_deadline(request: RouteRequest, deadline_s: float | None) -> None:
    """Start the request's clock (once: a request routed again keeps its first deadline)."""
    if deadline_s is not None and request.deadline is None:
        request.deadline = time.monotonic() + deadline_s


def time_left(request: RouteRequest) -> float | None:
    """Seconds until the request's deadline (negative when past); None without one."""
    return None if request.deadline is None else request.deadline - time.monotonic()


def call_timeout(tier: Tier, request: RouteRequest) -> float | None:
    """How long one call to ``tier`` may take: its timeout, cut to the time left."""
    left = time_left(request)
    limits = [t for t in (tier.timeout_s, None if left is None else max(left, 0.0)) if t is not None]
    return min(limits) if limits else None


def deadline_error(tier: Tier, request: RouteRequest, limit: float | None, *, sent: bool = True) -> TransportError:
    """The timeout of a call to ``tier``. ``sent=False``: the call was still queued (on a
    worker pool) when its time ran out, so it never reached the tier: not the tier's doing,
    it does not count against the tier's circuit."""
    left = time_left(request)
    why = "the request's deadline passed" if left is not None and left <= 0.001 else f"no answer within {limit:.3g}s"
    if not sent:
        why += " before a worker thread was free to send the call (transport.max_concurrency)"
    error = TransportError(f"timeout: {why}", tier=tier.name, model_id=tier.model_id, kind="timeout")
    if not sent:
        error.calls, error.reached_tier = 0, False
    return error


_ROUTING_FOR: contextvars.ContextVar[RouteRequest | None] = contextvars.ContextVar("tiered_router_routing_for",
                                                                                  default=None)


@contextlib.contextmanager
def routing_call_for(request: RouteRequest | None) -> Iterator[None]:
    """Within this block, routing's own calls (``Backend.ask``) are made for ``request``:
    its deadline bounds them as it bounds its tier calls."""
    token = _ROUTING_FOR.set(request)
    try:
        yield
    finally:
        _ROUTING_FOR.reset(token)


def routing_request() -> RouteRequest | None:
    """The request a routing call in progress is made for (None outside ``routing_call_for``)."""
    return _ROUTING_FOR.get()
