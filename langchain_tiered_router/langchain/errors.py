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

from typing import Sequence

from langchain_core.exceptions import ContextOverflowError

from ..core.error_types import as_cause_type, call_cause, ladder_type
from ..core.errors import LadderExhaustedError

__all__ = ["LadderContextOverflowError", "as_langchain_error"]


class LadderContextOverflowError(LadderExhaustedError, ContextOverflowError):
    """The ladder ended on a prompt over its last tier's context window."""

    def derive(self, excs: Sequence[Exception]) -> "LadderContextOverflowError":
        return LadderContextOverflowError(self.message, excs, self.result)


def _ladder_type(cause: type, overflow: bool) -> type | None:
    """The ladder error type that is also ``cause`` (and a ``ContextOverflowError`` for
    ``overflow``): ``core.error_types.ladder_type``."""
    return ladder_type(cause, LadderContextOverflowError if overflow else LadderExhaustedError)


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
    cause = call_cause(exc)
    out = as_cause_type(exc, cause, LadderContextOverflowError if overflow else LadderExhaustedError) \
        if cause is not None else None
    if out is not None:
        return out
    if not overflow:
        return exc
    out = LadderContextOverflowError(exc.message, exc.exceptions, exc.result)
    out.__traceback__, out.__cause__ = exc.__traceback__, exc.__cause__
    return out
