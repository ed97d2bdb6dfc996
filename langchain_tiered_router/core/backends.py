"""A backend answers one request on one tier; each integration brings its own.

The core never talks to Bedrock, LangChain or LiteLLM itself: ``TieredChatBedrock``
passes a backend that invokes its per-tier ``ChatBedrockConverse``, the LiteLLM hook
one that calls the proxy's router, the eval harness one that replays recorded answers.
Backends raise ``TransportError`` (retried, then escalated by config) or
``MalformedReplyError`` (escalated) so the engine can tell them from a bad answer;
anything else is a bug and propagates.

A streamed request asks the backend for a ``TierStream`` per attempt instead: the
engine reads its chunks (integration objects it never looks inside), forwards them to
the caller when no gate needs the whole answer, and asks the stream for the answer at
the end, or for what was sent so far when the stream broke.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import functools
import re
import time
from abc import ABC, abstractmethod
from typing import Any, AsyncIterator, Iterator

from .clocks import submit_timed
from .errors import ModelLimitError, TierCallError, TransportError
from .pricing import Usage, estimate_tokens
from .tiers import Tier
from .types import RouteRequest, TierAnswer

__all__ = ["Backend", "TierStream", "WholeAnswerStream", "estimated_answer", "classify_transport_error",
           "tier_call_error", "classify_model_limit", "model_limit_kind", "context_window_message", "parse_retry_after"]


class TierStream(ABC):
    """One tier's answer as it streams. ``chunks``/``achunks`` yield the integration's
    chunks; ``answer`` reads the answer out of the chunks received."""

    @abstractmethod
    def chunks(self) -> Iterator[Any]:
        ...

    @abstractmethod
    def achunks(self) -> AsyncIterator[Any]:
        ...

    def has_output(self, chunk: Any) -> bool:
        """Whether the chunk carries output (text, a tool call) rather than metadata only;
        metadata chunks are held back until output starts, so a retry stays invisible."""
        return True

    @abstractmethod
    def answer(self, chunks: list[Any], *, complete: bool = True) -> TierAnswer:
        """The answer in ``chunks``. ``complete=False``: the stream broke; return what was
        sent, with usage estimated (``usage_estimated``) when the tier reported none."""


class WholeAnswerStream(TierStream):
    """A tier answered whole (``Backend.call``), as a stream of one chunk: the answer."""

    def __init__(self, backend: "Backend", tier: Tier, request: RouteRequest):
        self.backend, self.tier, self.request = backend, tier, request

    def chunks(self) -> Iterator[Any]:
        yield self.backend.call(self.tier, self.request)

    async def achunks(self) -> AsyncIterator[Any]:
        yield await self.backend.acall(self.tier, self.request)

    def has_output(self, chunk: Any) -> bool:
        return bool(chunk.text or chunk.tool_calls)

    def answer(self, chunks: list[Any], *, complete: bool = True) -> TierAnswer:
        if chunks:
            answer = chunks[-1]
            answer.chunks = [answer]
            return answer
        return estimated_answer("", self.request.text, self.tier.model_id)


def estimated_answer(text: str, prompt: str, model_id: str) -> TierAnswer:
    """What a broken stream had sent, priced on estimated tokens (ceil(chars / 4))."""
    return TierAnswer(text=text, usage=Usage(estimate_tokens(prompt), estimate_tokens(text) if text else 0),
                      model_id=model_id, usage_estimated=True)


class Backend(ABC):
    # True when every call ends at its tier's timeout by itself, its own retries included
    # (a proxy whose router retries the call): the engine then does not time the calls
    # too, which would give up on an attempt the backend is still making, and make it again.
    times_its_calls: bool = False

    def sent_last_call(self) -> bool:
        """Whether the request's last tier call reached the model. A backend that queues
        calls on a pool says False for one that was cancelled (the caller, the deadline)
        before it started: it was never sent, so it is neither billed nor counted against
        the tier's circuit."""
        return True

    def in_background(self) -> "Backend":
        """This backend for calls made apart from the request, on another thread (a shadow
        sample): with none of the request's own attachments (its callbacks' runs)."""
        return self

    def answer_cut_off(self) -> TierAnswer | None:
        """The answer of the request's last ``acall`` when the caller's cancel reached the
        backend after the answer came (a callback still running on it): the engine bills
        it as it came, not as a call cut off. None for a backend that cannot tell."""
        return None

    @abstractmethod
    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        """Answer ``request`` with ``tier``'s model."""

    async def acall(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        # ``asyncio.to_thread``, its wait for one of the loop's threads not the call's time (``core.clocks``)
        loop, context = asyncio.get_running_loop(), contextvars.copy_context()

        def on_a_thread(fn: Any, *args: Any) -> Any:
            return loop.run_in_executor(None, functools.partial(context.run, fn, *args))

        return await submit_timed(on_a_thread, self.call, tier, request)

    def stream(self, tier: Tier, request: RouteRequest, *, live: bool) -> TierStream:
        """The tier's answer as a stream. ``live``: its chunks go to the caller as they
        arrive; otherwise they are buffered for a gate, and a backend may answer whole."""
        return WholeAnswerStream(self, tier, request)

    def ask(self, tier: Tier, prompt: str) -> TierAnswer:
        """A one-turn text call, for routing's own calls (LLM classifier, self-grade)."""
        return self.call(tier, RouteRequest(text=prompt))

    async def aask(self, tier: Tier, prompt: str) -> TierAnswer:
        return await self.acall(tier, RouteRequest(text=prompt))


_THROTTLE_CODES = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException",
                   "Throttling", "RequestLimitExceeded"}
_SERVER_CODES = {"InternalServerException", "ServiceUnavailableException", "ModelNotReadyException",
                 "ModelTimeoutException", "InternalFailure", "ServiceUnavailable", "ModelStreamErrorException",
                 "ModelErrorException"}  # 424: the model failed on the request; another try or tier may not


def tier_call_error(exc: BaseException, tier: Tier) -> TierCallError:
    """A failed boto call of ``tier`` as the core's error: a ``TransportError`` when it is
    one (retried, then escalated), a ``ModelLimitError`` for a refusal another model may
    not give (``retry.escalate_on``), else a ``TierCallError`` (the attempt failed)."""
    transport = classify_transport_error(exc, tier=tier.name, model_id=tier.model_id)
    if transport is not None:
        return transport
    limit = classify_model_limit(exc, tier=tier.name, model_id=tier.model_id)
    if limit is not None:  # over this model's window, not enabled here: another tier may take it
        return limit
    return TierCallError(f"{type(exc).__name__}: {exc}", tier=tier.name, model_id=tier.model_id, cause=exc)


def classify_transport_error(exc: BaseException, *, tier: str, model_id: str) -> TransportError | None:
    """Map a botocore / network exception to a ``TransportError``, or ``None`` if it is not one.

    Reads class names and error codes only, so the core needs no botocore import.
    """
    name = type(exc).__name__
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        code = code[:1].upper() + code[1:]  # an exception event inside a stream: ``throttlingException``
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    else:
        status = None
    if code in _THROTTLE_CODES or name in _THROTTLE_CODES or status == 429:
        kind = "throttled"
    elif code in _SERVER_CODES or name in _SERVER_CODES or (isinstance(status, int) and status >= 500):
        kind = "server_error"
    elif name in {"ReadTimeoutError", "ConnectTimeoutError", "TimeoutError", "ReadTimeout",
                  "ConnectTimeout", "Timeout"}:
        kind = "timeout"
    elif name in {"EventStreamError", "IncompleteReadError", "ResponseStreamingError",
                  "ProtocolError", "ChunkedEncodingError", "IncompleteRead", "StreamCutError"}:
        kind = "stream_cut"
    elif name in {"EndpointConnectionError", "ConnectionClosedError", "ConnectionError",
                  "ConnectionRefusedError", "ConnectionResetError"}:
        kind = "connection"
    else:
        return None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) if isinstance(response, dict) else {}
    error = TransportError(f"{name}: {exc}", tier=tier, model_id=model_id, kind=kind, cause=exc,
                           retry_after_s=parse_retry_after((headers or {}).get("retry-after")))
    if name in {"ConnectTimeoutError", "ConnectTimeout"}:  # no connection: the request was never sent
        error.reached_tier = False
    return error


def parse_retry_after(value: object) -> float | None:
    """Seconds from a ``Retry-After`` header (a number of seconds or an HTTP date)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_CONTEXT_WINDOW = re.compile(r"too long|too many (input )?tokens|context (length|window)|maximum context|"
                             r"input length|exceeds? the max(imum)? (number of )?(input )?tokens|prompt is too long",
                             re.I)


# Bedrock's 400s about the model, not the request: another tier's model may take it
_MODEL_REFUSED = re.compile(r"model identifier is invalid|with on-demand throughput isn.?t supported|"
                            r"model .{0,80}(is not|isn.?t) (supported|available|enabled)|"
                            r"does(n.?t| not) support (batch|this operation)", re.I)


# Bedrock's 400s about what this model cannot read (an image or a document block, tools,
# a system prompt), where a more capable tier can: e.g. "This model doesn't support the
# image content block that you provided", "This model doesn't support tool use."
# Content kinds only: a parameter it does not take ("... the topK field", "the stopSequences
# field") is the config's mistake, a validation error to fix, never a reason to pay a dearer tier.
_UNSUPPORTED_INPUT = re.compile(r"model does(n.?t| not) support (the )?((image|document|video|audio)\b|tool use\b|"
                                r"tools\b|tool calling\b|system (messages?|prompts?)\b)", re.I)


def unsupported_input_message(message: str) -> bool:
    """Whether an error message says this model cannot take part of the request's input."""
    return bool(_UNSUPPORTED_INPUT.search(message))


def context_window_message(message: str) -> bool:
    """Whether an error message says the prompt is over the model's context window."""
    return bool(_CONTEXT_WINDOW.search(message))


_UNAVAILABLE_CODES = {"AccessDeniedException", "ResourceNotFoundException"}


def model_limit_kind(message: str, *, code: str = "", status: int | None = None) -> str | None:
    """The ``retry.escalate_on`` kind of a refusal this model gives and another may not, by
    Bedrock's error code (a live call) or HTTP status (a batch record's error): over its
    context window, the model not to be had here, input it cannot read (an image, tools),
    another validation error; else None."""
    if code in _UNAVAILABLE_CODES or status in (403, 404):
        return "model_unavailable"
    if code == "ValidationException" or status == 400:
        return "context_window" if context_window_message(message) else \
            "model_unavailable" if _MODEL_REFUSED.search(message) else \
            "unsupported_input" if unsupported_input_message(message) else "validation"
    return None


def classify_model_limit(exc: BaseException, *, tier: str, model_id: str) -> ModelLimitError | None:
    """A 4xx that this model gives and another model may not (``model_limit_kind``) as a
    ``ModelLimitError``, else None."""
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    name = type(exc).__name__
    kind = model_limit_kind(str(exc), code=code) or model_limit_kind(str(exc), code=name)
    if kind is None:
        return None
    return ModelLimitError(f"{name}: {exc}", tier=tier, model_id=model_id, kind=kind, cause=exc)
