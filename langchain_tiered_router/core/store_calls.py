"""Calls to a shared store (session pins, the circuit breaker) from the event loop.

A store that answers over the network (Redis) and is failing (``unwell``: from a failed
call to its next answer) is called on a worker thread of its own pool when a request
runs on an event loop: a frozen server then stalls the requests that wait for it (at
most its socket timeout), not every request the loop serves. Its first timeout still
holds the loop once; after it, every retry of the server is off the loop. A healthy
store is called inline: four thread hops a request (pin, circuit, record, pin) cost
more than the whole router (1.5 ms against 0.7 ms a request with a local
Redis: ``benchmarks/redis_store_calls.py``).

The pool is its own, not the loop's default executor: LangChain runs a sync model call
there, and a pin lookup queued behind a batch of Bedrock calls would wait seconds.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

__all__ = ["may_stall", "call_off_loop"]

_WORKERS = 4
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def may_stall(store: Any) -> bool:
    """Whether ``store`` says its next call may wait long (``unwell``)."""
    return bool(getattr(store, "unwell", False))


def _store_pool() -> ThreadPoolExecutor:
    """This process's pool: a forked child makes its own (the parent's threads are not
    there, and work handed to its pool would wait for ever)."""
    global _pool, _pool_pid, _pool_lock
    if _pool_pid != os.getpid():
        _pool_lock = threading.Lock()  # the parent's may have been held by a thread not here
        _pool, _pool_pid = None, os.getpid()
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="tiered-router-store")
        return _pool


async def call_off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on the store pool, awaited."""
    return await asyncio.get_running_loop().run_in_executor(_store_pool(), functools.partial(fn, *args))
