"""Deterministic test doubles: a backend that answers from a script."""

from __future__ import annotations

import threading
from typing import Callable, Mapping, Sequence, Union

from .backends import Backend
from .pricing import Usage, estimate_tokens
from .tiers import Tier
from .types import RouteRequest, TierAnswer

__all__ = ["ScriptedBackend", "estimate_tokens"]

Reply = Union[str, TierAnswer, BaseException]


class ScriptedBackend(Backend):
    """Answers by tier name: a fixed reply, a queue of replies, or a function.

    A reply that is an exception is raised (to script throttling and timeouts). Every
    call is logged in ``calls`` as (tier name, request text).
    """

    def __init__(self, script: Mapping[str, Reply | Sequence[Reply] | Callable[[RouteRequest], Reply]]):
        self.script = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in script.items()}
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        with self._lock:
            self.calls.append((tier.name, request.text))
            entry = self.script.get(tier.name, self.script.get("*", f"answer from {tier.name}"))
            if isinstance(entry, list):
                reply = entry.pop(0) if len(entry) > 1 else entry[0]
            elif callable(entry) and not isinstance(entry, BaseException):
                reply = entry(request)
            else:
                reply = entry
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, TierAnswer):
            return reply
        return TierAnswer(text=reply, usage=Usage(estimate_tokens(request.text), estimate_tokens(reply)),
                          model_id=tier.model_id)
