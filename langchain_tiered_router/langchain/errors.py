"""The router's errors as LangChain code reads them.

Code written for ``ChatBedrockConverse`` keys on the exception types it raises: botocore's
(``except ClientError``, ``e.response["Error"]["Code"]``, a client's modeled
``ThrottlingException``, ``EndpointConnectionError``), in ``with_retry`` and
``with_fallbacks`` as much as in ``except``; and LangChain's own handling keys on its
types: ``SummarizationMiddleware`` catches ``ContextOverflowError`` to shorten the history
and try once more. A ladder that ended on such an error raises an error that is both the
router's ``LadderExhaustedError`` (every attempt, the result) and the type the last tier
call raised, carrying that error's fields (``response``, ``operation_name``), as
``ChatBedrockConverse`` raises a ``ClientError`` that is a ``ContextOverflowError`` too."""

from __future__ import annotations

import functools
from typing import Any, Sequence

from langchain_core.exceptions import ContextOverflowError

from ..core.errors import GateFailed, LadderExhaustedError, RouterError

__all__ = ["LadderContextOverflowError", "as_langchain_error"]


class LadderContextOverflowError(LadderExhaustedError, ContextOverflowError):
    """The ladder ended on a prompt over its last tier's context window."""

    def derive(self, excs: Sequence[Exception]) -> "LadderContextOverflowError":
        return LadderContextOverflowError(self.message, excs, self.result)


class _AsCause:
    """Mixed into a ladder error that is also its last tier call's error type: ``derive``
    (``except*`` splitting it) keeps both, and the cause's fields."""

    def derive(self, excs: Sequence[Exception]) -> Any:
        out = type(self)(self.message, excs, self.result)  # type: ignore[attr-defined,call-arg]
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k != "result"})
        return out


@functools.lru_cache(maxsize=64)  # botocore makes its modeled classes per client: a bounded cache
def _ladder_type(cause: type, overflow: bool) -> type | None:
    """The ladder error type that is also ``cause`` (made once per type), else the
    nearest of its bases a class can be together with an ``ExceptionGroup`` (a
    ``UnicodeDecodeError`` has a layout of its own; its ``ValueError`` has not), or
    ``None`` (a cause laid out as an ``OSError`` all the way up)."""
    base = LadderContextOverflowError if overflow else LadderExhaustedError
    for kind in cause.__mro__:
        if kind in (Exception, BaseException, object):
            return None
        try:
            return type(f"Ladder{kind.__name__}", (_AsCause, base, kind),
                        {"__module__": __name__, "__doc__": f"The ladder ended on a {kind.__name__}."})
        except TypeError:
            continue
    return None


def _call_cause(exc: LadderExhaustedError) -> BaseException | None:
    """The error the tier call that ended the ladder raised, as ``ChatBedrockConverse``
    would have raised it: botocore's (langchain-aws's ``BedrockContextOverflowError`` is
    one), or the one a reply that could not be read raised in langchain-aws or urllib3
    (a ``ValueError`` for a body without its output, a ``ProtocolError`` for a cut stream).
    ``None`` when a gate's verdict ended it, or the router itself gave the call up (a
    timeout it timed, the deadline)."""
    for error in reversed(exc.exceptions):
        if isinstance(error, GateFailed):
            return None
        if getattr(error, "kind", None) == "circuit_open":  # a tier passed over: the call before it ended the ladder
            continue
        cause = getattr(error, "cause", None)
        return cause if isinstance(cause, Exception) and not isinstance(cause, RouterError) else None
    return None


def as_langchain_error(exc: LadderExhaustedError) -> LadderExhaustedError:
    """``exc`` as the type the last tier call raised (botocore's, with its fields; or
    the reader's, for a reply that could not be read) and as a ``ContextOverflowError``
    when that call refused the prompt as over its context window; ``exc`` itself when
    neither applies, or no class can be both (a ``UnicodeDecodeError``'s layout)."""
    if type(exc) is not LadderExhaustedError:  # already one of these
        return exc
    attempts = getattr(exc.result, "attempts", None) or []
    called = [a for a in attempts if a.outcome != "skipped"]
    overflow = bool(called) and called[-1].error_kind == "context_window"
    cause = _call_cause(exc)
    kind = _ladder_type(type(cause), overflow) if cause is not None else None
    if kind is None and not overflow:
        return exc
    out = (kind or LadderContextOverflowError)(exc.message, exc.exceptions, exc.result)
    if kind is not None:
        out.__dict__.update({k: v for k, v in vars(cause).items() if k != "result"})
    out.__traceback__, out.__cause__ = exc.__traceback__, exc.__cause__
    return out
