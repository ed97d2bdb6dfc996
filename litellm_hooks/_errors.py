"""The router's errors as LiteLLM SDK code reads them (``TieredLiteLLMRouter``).

A ``litellm.Router`` user catches LiteLLM's exception types (``litellm.RateLimitError``,
``ContextWindowExceededError``, ``BadRequestError``, ``APIConnectionError``...), in
``except`` clauses and in their own retry loops. A ladder that ended on a tier call's
error raises an error that is both the router's ``LadderExhaustedError`` (every attempt,
the result) and that call's LiteLLM type, with its fields (``status_code``,
``llm_provider``, ``model``...). A ladder a gate ended stays a ``LadderExhaustedError``:
a plain router would have returned that answer. A request refused before any call is
a ``litellm.BadRequestError`` too (and still the ``ValueError`` it was).
"""

from __future__ import annotations

import functools

import litellm

from langchain_tiered_router.core.error_types import as_cause_type, call_cause
from langchain_tiered_router.core.errors import LadderExhaustedError

__all__ = ["as_litellm_error", "as_bad_request"]


def as_litellm_error(exc: LadderExhaustedError) -> LadderExhaustedError:
    """``exc`` as the LiteLLM type the last tier call raised; ``exc`` itself when a gate
    ended the ladder, the router gave the call up, or no class can be both."""
    if type(exc) is not LadderExhaustedError:
        return exc
    cause = call_cause(exc)
    return (as_cause_type(exc, cause) if cause is not None else None) or exc


@functools.lru_cache(maxsize=16)
def _bad_request_type(kind: type) -> type:
    return type(f"{kind.__name__}BadRequest", (kind, litellm.BadRequestError),
                {"__module__": __name__, "__doc__": f"A {kind.__name__} that is LiteLLM's BadRequestError too."})


def as_bad_request(exc: Exception) -> Exception:
    """A request refused before any tier call (its messages, its ``response_format``), as
    ``litellm.BadRequestError`` (status 400) and still its own type; ``exc`` itself when
    no class can be both."""
    if isinstance(exc, litellm.BadRequestError):
        return exc
    try:
        kind = _bad_request_type(type(exc))
    except TypeError:
        return exc
    out = kind.__new__(kind)
    litellm.BadRequestError.__init__(out, message=str(exc), model=None, llm_provider="tiered_router")
    out.__dict__.update({k: v for k, v in vars(exc).items() if k not in out.__dict__})
    out.__traceback__ = exc.__traceback__
    return out
