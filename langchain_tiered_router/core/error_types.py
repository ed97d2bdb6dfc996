"""A ladder's error as the type its last tier call raised, for either integration.

Code written for a plain model client keys on that client's exception types
(botocore's ``ClientError`` under LangChain, ``litellm.RateLimitError`` under LiteLLM),
in ``except`` clauses and in retry and fallback wrappers. A ladder that ended on such a
call raises an error that is both the router's ``LadderExhaustedError`` (every attempt,
the result) and that call's type, carrying its fields. The integrations say which
errors are their client's; this module only builds the types.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

from .errors import GateFailed, LadderExhaustedError, RouterError

__all__ = ["ladder_type", "call_cause", "as_cause_type"]


class _AsCause:
    """Mixed into a ladder error that is also its last tier call's error type: ``derive``
    (``except*`` splitting it) keeps both, and the cause's fields."""

    def derive(self, excs: Sequence[Exception]) -> Any:
        out = type(self)(self.message, excs, self.result)  # type: ignore[attr-defined,call-arg]
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k != "result"})
        return out


@functools.lru_cache(maxsize=64)  # botocore makes its modeled classes per client: a bounded cache
def ladder_type(cause: type, base: type = LadderExhaustedError) -> type | None:
    """The ladder error type (``base`` or a subclass of it) that is also ``cause``, made
    once per type; else the nearest of its bases a class can be together with an
    ``ExceptionGroup`` (a ``UnicodeDecodeError`` has a layout of its own; its
    ``ValueError`` has not), or ``None`` (a cause laid out as an ``OSError`` all the way up)."""
    for kind in cause.__mro__:
        if kind in (Exception, BaseException, object):
            return None
        try:
            return type(f"Ladder{kind.__name__}", (_AsCause, base, kind),
                        {"__module__": __name__, "__doc__": f"The ladder ended on a {kind.__name__}."})
        except TypeError:
            continue
    return None


def call_cause(exc: LadderExhaustedError) -> BaseException | None:
    """The error the tier call that ended the ladder raised, as the plain client would
    have raised it; ``None`` when a gate's verdict ended it (the plain client would have
    returned that answer), or the router itself gave the call up (a timeout it timed, the
    deadline)."""
    for error in reversed(exc.exceptions):
        if isinstance(error, GateFailed):
            return None
        if getattr(error, "kind", None) == "circuit_open":  # a tier passed over: the call before it ended the ladder
            continue
        cause = getattr(error, "cause", None)
        return cause if isinstance(cause, Exception) and not isinstance(cause, RouterError) else None
    return None


def as_cause_type(exc: LadderExhaustedError, cause: BaseException, base: type = LadderExhaustedError
                  ) -> LadderExhaustedError | None:
    """``exc`` as an instance of ``ladder_type(type(cause), base)`` with the cause's
    fields, or ``None`` when no class can be both."""
    kind = ladder_type(type(cause), base)
    if kind is None:
        return None
    out = kind(exc.message, exc.exceptions, exc.result)
    out.__dict__.update({k: v for k, v in vars(cause).items() if k != "result"})
    out.__traceback__, out.__cause__ = exc.__traceback__, exc.__cause__
    return out
