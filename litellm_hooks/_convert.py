"""Translate between LiteLLM's OpenAI-shaped objects and the core's value types.

Pure functions, no I/O: a chat request becomes the text classifiers and graders
read (decided by the core's ``request_text``), a ``ModelResponse`` or a stream's
chunks become a ``TierAnswer``, a LiteLLM exception becomes
the core's ``TransportError`` / ``MalformedReplyError`` so the engine's retry and
escalation rules apply to calls made through LiteLLM exactly as to direct ones.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from langchain_tiered_router.core import MalformedReplyError, TierAnswer, TransportError, Usage, request_text
from langchain_tiered_router.core.backends import context_window_message, parse_retry_after, unsupported_input_message
from langchain_tiered_router.core.conversation import blocks_text
from langchain_tiered_router.core.errors import ModelLimitError

__all__ = ["messages_text", "content_text", "answer_from_response", "answer_from_chunks", "chunk_has_output",
           "retries_made",
           "usage_from_litellm", "transport_error_from_litellm", "client_content_error", "failure_kind"]


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return blocks_text(content)
    return str(content)


def messages_text(messages: Iterable[Mapping[str, Any]]) -> str:
    """The conversation as classifiers and graders read it: the core decides (``request_text``)."""
    return request_text((str(m.get("role", "user")), content_text(m.get("content"))) for m in messages)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def usage_from_litellm(usage: Any) -> Usage:
    """LiteLLM counts cached tokens inside ``prompt_tokens``; the core keeps them apart
    (as Bedrock does), so each token is priced once at its own rate."""
    if usage is None:
        return Usage()
    prompt = int(_get(usage, "prompt_tokens", 0) or 0)
    completion = int(_get(usage, "completion_tokens", 0) or 0)
    details = _get(usage, "prompt_tokens_details")
    read = int(_get(usage, "cache_read_input_tokens", 0) or _get(details, "cached_tokens", 0) or 0)
    write = int(_get(usage, "cache_creation_input_tokens", 0) or _get(details, "cache_creation_tokens", 0) or 0)
    hour = int(_get(_get(details, "cache_creation_token_details"), "ephemeral_1h_input_tokens", 0) or 0)
    return Usage(max(0, prompt - read - write), completion, read, write, min(hour, write))


def _tool_calls(message: Any) -> list[dict[str, Any]]:
    calls = []
    for call in _get(message, "tool_calls") or []:
        fn = _get(call, "function")
        raw = _get(fn, "arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except (ValueError, TypeError):
            args = None  # not JSON: the tool-call check (core.tool_calls) fails it, as it should
        calls.append({"name": _get(fn, "name"), "args": args, "id": _get(call, "id")})
    return calls


def answer_from_response(response: Any, *, tier: str, model_id: str) -> TierAnswer:
    """A ``TierAnswer`` whose ``raw`` is the LiteLLM response, served as is if it passes."""
    choices = _get(response, "choices") or []
    if not choices:
        stated = _get(response, "usage")  # billed all the same
        raise MalformedReplyError("the reply has no choices", tier=tier, model_id=model_id,
                                  usage=usage_from_litellm(stated) if stated else None)
    choice = choices[0]
    message = _get(choice, "message")
    logprobs = None
    content_lp = _get(_get(choice, "logprobs"), "content")
    if content_lp:
        logprobs = [float(_get(t, "logprob")) for t in content_lp if _get(t, "logprob") is not None]
    return TierAnswer(
        text=content_text(_get(message, "content")),
        usage=usage_from_litellm(_get(response, "usage")),
        model_id=model_id,
        tool_calls=_tool_calls(message),
        logprobs=logprobs,
        stop_reason=_get(choice, "finish_reason"),
        raw=response,
        # LiteLLM's response cache answered (``litellm_settings.cache``): it bills nothing
        cache_hit=(getattr(response, "_hidden_params", None) or {}).get("cache_hit") is True,
    )


def retries_made(response: Any) -> int:
    """How often LiteLLM's router retried a call before this response or stream (its
    ``x-litellm-attempted-retries``): the attempt's retries, as the engine counts its own."""
    hidden = getattr(response, "_hidden_params", None)
    headers = hidden.get("additional_headers") if isinstance(hidden, dict) else None
    count = headers.get("x-litellm-attempted-retries") if isinstance(headers, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and 0 < count < 1_000 else 0


def _delta(chunk: Any) -> Any:
    choices = _get(chunk, "choices") or []
    return _get(choices[0], "delta") if choices else None


def chunk_has_output(chunk: Any) -> bool:
    delta = _delta(chunk)
    return bool(_get(delta, "content") or _get(delta, "tool_calls"))


def answer_from_chunks(chunks: Iterable[Any], *, tier: str, model_id: str) -> TierAnswer:
    """A streamed answer: its text, tool calls (argument pieces joined by index), the
    usage chunk's counts and the finish reason; ``chunks`` keeps the chunks for replay."""
    chunks = list(chunks)
    texts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage, finish = None, None
    for chunk in chunks:
        usage = _get(chunk, "usage") or usage
        for choice in _get(chunk, "choices") or []:
            finish = _get(choice, "finish_reason") or finish
            delta = _get(choice, "delta")
            if _get(delta, "content"):
                texts.append(_get(delta, "content"))
            for call in _get(delta, "tool_calls") or []:
                index = int(_get(call, "index", len(calls)) or 0)
                slot = calls.setdefault(index, {"id": None, "name": None, "args": ""})
                fn = _get(call, "function")
                slot["id"] = slot["id"] or _get(call, "id")
                slot["name"] = slot["name"] or _get(fn, "name")
                slot["args"] += _get(fn, "arguments") or ""
    tool_calls = []
    for slot in (calls[i] for i in sorted(calls)):
        try:
            args = json.loads(slot["args"] or "{}")
        except ValueError:
            args = None  # not JSON: the tool-call check fails it
        tool_calls.append({"name": slot["name"], "args": args, "id": slot["id"]})
    return TierAnswer(text="".join(texts), usage=usage_from_litellm(usage), model_id=model_id, tool_calls=tool_calls,
                      stop_reason=finish, chunks=chunks)


# LiteLLM exception class name -> the core's transport error kind. Read by name so this
# module does not depend on where LiteLLM defines each class.
_KINDS = {
    "RateLimitError": "throttled",
    "Timeout": "timeout",
    "APITimeoutError": "timeout",
    "ServiceUnavailableError": "server_error",
    "InternalServerError": "server_error",
    "BadGatewayError": "server_error",
    "APIConnectionError": "connection",
    "MidStreamFallbackError": "stream_cut",
}
# Bedrock's exception events inside a stream that a retry (or a larger tier) may mend
_STREAM_EVENT_ERRORS = {"modelStreamErrorException": "server_error", "internalServerException": "server_error",
                        "serviceUnavailableException": "server_error", "throttlingException": "throttled",
                        "modelTimeoutException": "timeout"}
_UNREADABLE_HINTS = ("codec can't decode", "Error converting to valid response")
_MALFORMED_HINTS = ("json", "decode", "parse", "unexpected", "malformed", "invalid response")
# Errors of this model on this request that a larger model may not give: escalated by
# ``retry.escalate_on`` (LiteLLM has context-window fallbacks for the same reason).
_LIMITS = {"ContextWindowExceededError": "context_window", "NotFoundError": "model_unavailable",
           "PermissionDeniedError": "model_unavailable"}


def failure_kind(exception_type: Any) -> str | None:
    """The core's transport kind of a failure LiteLLM names by its exception type (its
    record of each failed try, ``previous_models``): one that says the tier is unwell
    (throttled, down, slow, unreachable); ``None`` for a client's error (a parameter the
    model does not take, a bad request) or a model limit, which say nothing of it."""
    return _KINDS.get(exception_type) if isinstance(exception_type, str) else None


def _retry_after(exc: BaseException) -> float | None:
    for holder in (getattr(exc, "response", None), exc):
        headers = getattr(holder, "headers", None) or getattr(holder, "litellm_response_headers", None)
        if headers is not None:
            try:
                value = headers.get("retry-after")
            except AttributeError:
                continue
            if value is not None:
                return parse_retry_after(value)
    return None


# LiteLLM fetches a client's image URLs itself before it calls the model; a URL it cannot
# fetch (or may not: its SSRF policy) fails the call, as an ``APIConnectionError`` on some
# providers. The client's content, not the tier: the same at every tier, never retried.
_CLIENT_CONTENT_HINTS = ("Unable to fetch image from URL", "DNS resolution failed for", "URL targets a blocked address",
                         "Image URL download is disabled")


def _fetch_refused(exc: BaseException) -> bool:
    """An HTTP error status for a GET: LiteLLM fetching the client's URL (an image that is
    404, 403...). A model call is a POST (Bedrock's every operation, and every provider's
    chat), so the tier's own error statuses never match."""
    request = getattr(exc, "request", None) if type(exc).__name__ == "HTTPStatusError" else None
    return getattr(request, "method", None) == "GET"


def client_content_error(exc: BaseException) -> str | None:
    """LiteLLM's message when ``exc`` (or what it wraps) is a failure to fetch what the
    client's request points at (an image URL), else ``None``."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        text = str(current)
        if (type(current).__name__ in ("ImageFetchError", "SSRFError") or any(h in text for h in _CLIENT_CONTENT_HINTS)
                or _fetch_refused(current)):
            return text.strip().splitlines()[0][:300] if text.strip() else type(current).__name__
        wrapped = getattr(current, "original_exception", None)
        todo += [current.__cause__, current.__context__, wrapped if isinstance(wrapped, BaseException) else None]
    return None


_TOOL_PARAMS = ("'tool_choice'", "'parallel_tool_calls'", "'tools'")


def transport_error_from_litellm(exc: BaseException, *, tier: str, model_id: str
                                 ) -> TransportError | MalformedReplyError | ModelLimitError | None:
    """The core error for a failed LiteLLM call, or ``None`` when it is the caller's
    fault (bad request, auth, an image URL that cannot be fetched) and must not be
    retried or escalated. A prompt over this model's context window or a model not
    available is a ``ModelLimitError``."""
    if client_content_error(exc) is not None:
        return None
    if type(exc).__name__ == "UnsupportedParamsError" and any(p in str(exc) for p in _TOOL_PARAMS):
        # this tier's model takes no tool_choice (Llama, Cohere on Bedrock), which LiteLLM
        # refuses before any call: the tier's limit, not the caller's mistake, as a model that
        # cannot take an image is; a tier above that can is asked (LangChain's side drops it)
        return ModelLimitError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id,
                               kind="unsupported_input", cause=exc)
    if isinstance(exc, UnicodeDecodeError) or any(h in str(exc) for h in _UNREADABLE_HINTS):
        # a reply whose text is not text (LiteLLM calls it a bad request): malformed, like bad JSON
        return MalformedReplyError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id)
    for cls in type(exc).__mro__:
        limit = _LIMITS.get(cls.__name__)
        if limit is not None:
            return ModelLimitError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id, kind=limit,
                                   cause=exc)
        kind = _KINDS.get(cls.__name__)
        if kind is None:
            continue
        if kind == "connection" and (any(h in str(exc).lower() for h in _MALFORMED_HINTS) or _unreadable_reply(exc)):
            # LiteLLM reports a reply it could not read as a connection error.
            return MalformedReplyError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id)
        return TransportError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id, kind=kind, cause=exc,
                              retry_after_s=_retry_after(exc))
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status == 429:
        return TransportError(str(exc), tier=tier, model_id=model_id, kind="throttled", cause=exc,
                              retry_after_s=_retry_after(exc))
    if isinstance(status, int) and status >= 500:
        return TransportError(str(exc), tier=tier, model_id=model_id, kind="server_error", cause=exc)
    for event, kind in _STREAM_EVENT_ERRORS.items():
        # an exception event inside a ConverseStream: LiteLLM calls it a bad request (424)
        if event in str(exc):
            return TransportError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id, kind=kind,
                                  cause=exc)
    if isinstance(status, int) and status == 424:
        # Bedrock's ModelErrorException (the model failed on this request), which LiteLLM
        # maps to a bad request: the tier's failure, retried and escalated as a 5xx is
        return TransportError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id,
                              kind="server_error", cause=exc)
    if isinstance(status, int) and status == 400 and context_window_message(str(exc)):
        return ModelLimitError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id, kind="context_window",
                               cause=exc)
    if isinstance(status, int) and status == 400 and unsupported_input_message(str(exc)):
        return ModelLimitError(f"{type(exc).__name__}: {_said(exc)}", tier=tier, model_id=model_id, kind="unsupported_input",
                               cause=exc)
    return None


def _said(exc: BaseException, limit: int = 300) -> str:
    """What ``exc`` says, without the Python traceback LiteLLM appends to some of its
    messages (it filled the record's error and the client's message), cut to ``limit``."""
    return str(exc).split("\nTraceback (most recent call last)", 1)[0].strip()[:limit]


# Python's errors of reading a reply's fields: LiteLLM raises them from its response
# parsing, chained under an APIConnectionError, when Bedrock's reply lacks a field
_READING_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError)
_NETWORK_MODULES = ("httpx", "httpcore", "ssl", "aiohttp", "botocore", "urllib3")


def _unreadable_reply(exc: BaseException) -> bool:
    """Whether LiteLLM's connection error is its failure to read a reply that came: a
    KeyError (say) in the chain below it, and nothing from the network (an OSError, an
    httpx error) there."""
    found, current, depth = False, exc.__cause__ or exc.__context__, 0
    while current is not None and depth < 16:
        if isinstance(current, OSError) or type(current).__module__.split(".")[0] in _NETWORK_MODULES:
            return False
        found = found or isinstance(current, _READING_ERRORS)
        current, depth = current.__cause__ or current.__context__, depth + 1
    return found
