"""The router's errors as LangChain code reads them.

LangChain's own handling keys on its exception types: ``SummarizationMiddleware`` (and
any caller) catches ``ContextOverflowError`` to shorten the history and try once more,
and its retry rules skip that type. A ladder that ended because the prompt was over the
context window raises an error that is both the router's ``LadderExhaustedError`` and
LangChain's ``ContextOverflowError``, as ``ChatBedrockConverse`` raises a
``ClientError`` that is both."""

from __future__ import annotations

from typing import Sequence

from langchain_core.exceptions import ContextOverflowError

from ..core.errors import LadderExhaustedError

__all__ = ["LadderContextOverflowError", "as_langchain_error"]


class LadderContextOverflowError(LadderExhaustedError, ContextOverflowError):
    """The ladder ended on a prompt over its last tier's context window."""

    def derive(self, excs: Sequence[Exception]) -> "LadderContextOverflowError":
        return LadderContextOverflowError(self.message, excs, self.result)


def as_langchain_error(exc: LadderExhaustedError) -> LadderExhaustedError:
    """``exc``, or the same error as a ``ContextOverflowError`` when the last tier called
    refused the prompt as over its context window."""
    attempts = getattr(exc.result, "attempts", None) or []
    called = [a for a in attempts if a.outcome != "skipped"]
    if isinstance(exc, ContextOverflowError) or not called or called[-1].error_kind != "context_window":
        return exc
    overflow = LadderContextOverflowError(exc.message, exc.exceptions, exc.result)
    overflow.__traceback__, overflow.__cause__ = exc.__traceback__, exc.__cause__
    return overflow
