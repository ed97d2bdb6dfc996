"""What a forked child inherits from its parent and must neither use nor close.

A connection or a file the child takes over is the parent's: closing a connection in the
child acts on the parent's (SQLite's rule: a connection never crosses a fork, not even to
be closed), so it is set aside, kept and never touched. A lock may have been held, at the
fork, by one of the parent's threads, which the child does not have: ``ForkSafeLock``
starts unlocked in every child.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["set_aside", "ForkSafeLock"]

_set_aside: list[Any] = []


def set_aside(inherited: Any) -> None:
    """Keep ``inherited`` (the parent's connection or file) alive and untouched here."""
    _set_aside.append(inherited)


class ForkSafeLock:
    """A lock that is a new, unlocked one in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        _locks.add(self)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()


_locks: "weakref.WeakSet[ForkSafeLock]" = weakref.WeakSet()


def _renew_locks() -> None:
    for lock in list(_locks):
        lock._lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_locks)
