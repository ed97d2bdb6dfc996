"""The core ``Backend`` for LangChain: one ``ChatBedrockConverse`` per tier.

Tier models are called through their ``_generate`` / ``_stream`` hooks, not
``invoke``: the routed call is already one LLM run with the served usage, and a
nested LLM run per attempt would be counted twice by usage callbacks. Attempts show
up as child chain runs instead (``_runs.py``). botocore failures become the core's
``TransportError`` (retried, then escalated) or ``MalformedReplyError``.

A streamed request gets a ``ConverseTierStream`` per attempt: ConverseStream chunks,
read by the engine, which decides what reaches the caller and when.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import copy
import json
import threading
import time
import warnings
from typing import Any, AsyncIterator, Callable, Iterator, Mapping

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk

from ..core.backends import Backend, TierStream, classify_model_limit, classify_transport_error, estimated_answer
from ..core.clocks import current_call_clock, submit_timed
from ..core.deadline import call_timeout, deadline_error, routing_request, time_left
from ..core.errors import MalformedReplyError, TierCallError, TransportError
from ..core.pricing import Usage, converse_usage
from ..core.tiers import Tier
from ..core.types import RouteRequest, TierAnswer
from ._convert import merge_chunks, message_chunk, strip_model_name, to_answer, usage_from_metadata
from ._runs import AttemptRuns, end_run

__all__ = ["LangChainBackend", "ConverseTierStream", "map_error", "REFUSED_KWARG"]

# A request the caller got wrong (a response_format schema no gate can read): the backend
# refuses each tier call with it, so the engine records the request. Never sent to Bedrock.
REFUSED_KWARG = "tiered_refused"

# botocore / parsing failures that mean "the tier answered, but not readably".
_MALFORMED_NAMES = {"ResponseParserError", "ChecksumMismatch", "InvalidHeadersError", "InvalidPayloadLengthError",
                    "DuplicateHeader", "InvalidHeaderValue", "ParserError", "JSONDecodeError"}
_MALFORMED_MESSAGES = ("No 'output' key", "Received unsupported stream event")


def map_error(exc: BaseException, tier: Tier) -> BaseException:
    """The core error for a failed tier call, or ``exc`` itself when it is neither."""
    if isinstance(exc, TierCallError):
        return exc
    if isinstance(exc, ConnectionError) and "messageStop" in str(exc):
        # langchain-aws's words for a stream that ended before messageStop
        return TransportError(str(exc), tier=tier.name, model_id=tier.model_id, kind="stream_cut", cause=exc)
    if isinstance(exc, ValueError) and str(exc).startswith("Received AWS exception"):
        # an exception event inside a ConverseStream (modelStreamErrorException...)
        return TransportError(str(exc).splitlines()[0], tier=tier.name, model_id=tier.model_id,
                              kind="server_error", cause=exc)
    for candidate in (exc, exc.__cause__, exc.__context__):
        if candidate is None:
            continue
        transport = classify_transport_error(candidate, tier=tier.name, model_id=tier.model_id)
        if transport is not None:
            return transport
    for candidate in (exc, exc.__cause__, exc.__context__):
        limit = classify_model_limit(candidate, tier=tier.name, model_id=tier.model_id) if candidate else None
        if limit is not None:  # over this model's context window, not enabled here: a larger tier may take it
            return limit
    if _raised_reading_the_request(exc):
        return exc  # the caller's messages could not be turned into a request: their error, on every tier alike
    if (isinstance(exc, (KeyError, json.JSONDecodeError, UnicodeDecodeError)) or type(exc).__name__ in _MALFORMED_NAMES
            or (isinstance(exc, ValueError) and str(exc).startswith(_MALFORMED_MESSAGES))
            or _raised_in(exc, _REPLY_READERS)):
        text = f"{type(exc).__name__}: {exc}"
        if str(exc).startswith("No 'output' key"):  # langchain-aws blames the endpoint; the body was not a reply
            text = ("the reply had no 'output': its body was not a Converse reply (not JSON, cut short, or "
                    f"another API's) [{text[:200]}]")
        return MalformedReplyError(text, tier=tier.name, model_id=tier.model_id, cause=exc, usage=_reply_usage(exc))
    if type(exc).__module__.startswith("botocore"):
        # Bedrock refused or the HTTP client failed: the tier call failed, no retry mends it
        return TierCallError(f"{type(exc).__name__}: {exc}", tier=tier.name, model_id=tier.model_id, cause=exc)
    return exc  # anything else is a bug, and propagates as itself


# langchain-aws's functions that turn LangChain messages into a Converse request: an error
# raised inside them (a content block without its "text") is no reply of Bedrock's
_REQUEST_BUILDERS = frozenset({"_messages_to_bedrock", "_lc_content_to_bedrock", "_format_data_content_block",
                               "_format_search_result_block", "_format_openai_image_url",
                               "_format_openai_video_url"})


# and those that turn Bedrock's reply into a LangChain message: an error raised inside
# them (a toolUse whose input is a string or a list, which the AIMessage's tool call
# refuses) is the tier's unreadable reply, retried and escalated as one
_REPLY_READERS = frozenset({"_parse_response", "_parse_stream_event", "_bedrock_to_lc",
                            "_extract_response_metadata"})


def _raised_reading_the_request(exc: BaseException) -> bool:
    return _raised_in(exc, _REQUEST_BUILDERS)


def _reply_usage(exc: BaseException) -> Usage | None:
    """The usage of a Converse reply langchain-aws could not read: Bedrock bills those
    tokens. Read from the reader's frames: the reply (``response``) holds its ``usage``
    until ``_parse_response`` has turned it into ``usage`` (LangChain's counts)."""
    frame = exc.__traceback__
    while frame is not None:
        names = frame.tb_frame.f_locals if frame.tb_frame.f_code.co_name in _REPLY_HOLDERS else {}
        read, response = names.get("usage"), names.get("response")
        try:
            if isinstance(read, dict) and "input_tokens" in read:
                return usage_from_metadata(read)
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                return converse_usage(response["usage"])
        except (TypeError, ValueError):
            return None
        frame = frame.tb_next
    return None


_REPLY_HOLDERS = frozenset({"_generate", "_agenerate", "_parse_response"})


def _raised_in(exc: BaseException, functions: frozenset[str]) -> bool:
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_name in functions:
            return True
        frame = frame.tb_next
    return False


# The call's settings that routing's own calls (which carry the user's request) keep:
# a guardrail, request metadata (attribution), latency and service tier.
ASK_KWARGS = frozenset({"guardrail_config", "guardrails", "request_metadata", "performance_config", "service_tier"})


class LangChainBackend(Backend):
    """Answers one routed request: its messages, stop words and bound kwargs (tools).
    ``runs`` opens the attempt runs."""

    def __init__(self, models: Mapping[str, Any], *, stop: list[str] | None = None,
                 kwargs: Mapping[str, Any] | None = None, runs: AttemptRuns | None = None,
                 executor: cf.Executor | None = None):
        self.models = models
        self.stop = stop
        self.kwargs = dict(kwargs or {})
        # the caller's mistake found while reading the request, raised at each tier call (recorded there)
        self.refused: str | None = self.kwargs.pop(REFUSED_KWARG, None)
        if isinstance(stop, str):  # botocore would send each character as a stop sequence
            self.refused = self.refused or (f"stop must be a list of strings, not the string {stop[:40]!r} "
                                            f"(stop=[{stop[:40]!r}])")
        self.runs = runs
        # The async paths run the blocking botocore calls here (sized by
        # transport.max_concurrency), not in LangChain's default executor.
        self.executor = executor
        self._sent = True  # the last tier call left the pool (``sent_last_call``)
        self._answered: TierAnswer | None = None  # ``answer_cut_off``

    def sent_last_call(self) -> bool:
        return self._sent

    def _unsent(self) -> None:
        """The tier call was cancelled while still queued on the pool: it never ran."""
        self._sent = False

    # -- per-tier kwargs ---------------------------------------------------------------

    def tier_kwargs(self, tier: Tier) -> dict[str, Any]:
        """Bound kwargs for one tier: ``tool_choice`` resolved against its capabilities."""
        if self.refused is not None:  # on every tier alike: not a tier's limit
            raise ValueError(self.refused)
        kwargs = dict(self.kwargs)
        choice = kwargs.pop("tool_choice", None)
        if choice and kwargs.get("tools"):
            if not _bedrock_tool_choice(choice):  # the caller's mistake, on every tier alike: not a tier's limit
                raise ValueError(f"tool_choice {choice!r} is not one Bedrock takes: 'auto', 'any', a tool's name, "
                                 "{'any': {}} or {'tool': {'name': ...}}")
            model = self.models[tier.name]
            try:
                kwargs["tool_choice"] = model._resolve_tool_choice(choice)
            except ValueError as exc:
                tools = [t for t in kwargs["tools"] if not (isinstance(t, dict) and "cachePoint" in t)]
                if len(tools) == 1 and "any" in (model.supports_tool_choice_values or ()):
                    # one tool bound: "any" forces the same call (what ChatBedrockConverse's
                    # structured output sends to such a model)
                    kwargs["tool_choice"] = model._resolve_tool_choice("any")
                else:  # this tier cannot force a tool; a structured-output gate still checks the reply
                    warnings.warn(f"tier {tier.name}: {exc}; calling it without tool_choice", RuntimeWarning,
                                  stacklevel=2)
        return kwargs

    def _messages(self, request: RouteRequest) -> list[BaseMessage]:
        return list(request.payload) if request.payload is not None else [HumanMessage(request.text)]

    # -- one tier, one answer ----------------------------------------------------------

    def can_stream(self, tier: Tier, kwargs: Mapping[str, Any]) -> bool:
        """Whether the tier's model streams this call (langchain-aws turns ConverseStream
        off for some models, or for tool calls on some)."""
        disabled = self.models[tier.name].disable_streaming
        return not (disabled is True or (disabled == "tool_calling" and kwargs.get("tools")))

    def stream_tier(self, tier: Tier, request: RouteRequest, *, timed: bool = True,
                    live: bool = True) -> Iterator[ChatGenerationChunk]:
        """The tier's ConverseStream chunks, errors mapped; no run is opened here.
        ``timed``: held to the request's deadline here (the async driver times its reads
        itself, and reads this on the pool, where a wait on the pool could starve it);
        ``live``: its output goes on to the caller as it comes, so the deadline holds only
        until the first output (a stream held for a gate is held to it throughout)."""
        model, kwargs = self.models[tier.name], self.tier_kwargs(tier)
        if timed:
            self._sent = True
        if not self.can_stream(tier, kwargs):
            yield message_chunk(as_ai_message(self._generate(tier, self._messages(request), kwargs)))
            return
        source = model._stream(self._messages(request), stop=self.stop, **kwargs)
        if timed and request.deadline is not None and self.executor is not None:
            source = self._within_deadline(source, tier, request, live)
        try:
            for chunk in source:
                yield strip_model_name(chunk)
        except Exception as exc:
            mapped = map_error(exc, tier)
            if mapped is exc:
                raise
            raise mapped from exc

    def _within_deadline(self, source: Iterator[ChatGenerationChunk], tier: Tier, request: RouteRequest,
                         live: bool) -> Iterator[ChatGenerationChunk]:
        """A sync stream held to the request's deadline until its output reaches the
        caller, as the async one is: each chunk before that is read on the pool and waited
        for at most the call's time left (a read still blocked then is abandoned, as a sync
        call is). A stream held for a gate reaches the caller only once judged: every read."""
        context = contextvars.copy_context()
        first = [True]
        for chunk in iter(lambda: self._next_within(source, context, tier, request, first), _END):
            first[0] = False
            yield chunk
            if live and has_output(chunk):
                break
        else:
            return
        yield from source

    def _next_within(self, source: Iterator[ChatGenerationChunk], context: contextvars.Context, tier: Tier,
                     request: RouteRequest, first: list[bool]) -> Any:
        return self._on_pool(tier, request, context.run, next, source, _END, opens_call=first[0])

    def _on_pool(self, tier: Tier, request: RouteRequest, fn: Any, *args: Any, opens_call: bool = True) -> Any:
        """``fn(*args)`` on the pool, waited for as the async driver waits: while it is
        queued for a worker, until the request's deadline; from when a worker starts it,
        for its call timeout (the tier's, cut to the deadline). The wait for a worker is
        not the tier's time (``core.clocks``)."""
        started = threading.Event()
        future = self.executor.submit(_signalled, started.set, fn, *args)
        left = time_left(request)
        started.wait(None if left is None else max(0.0, left))
        limit = call_timeout(tier, request)
        try:
            return future.result(timeout=limit)
        except cf.TimeoutError:
            raise self._timed_out(future, tier, request, limit, opens_call=opens_call) from None

    def _timed_out(self, future: cf.Future, tier: Tier, request: RouteRequest, limit: float | None, *,
                   opens_call: bool = True) -> TransportError:
        """The deadline's timeout of a sync call run on the pool. A call still queued there
        is cancelled, so it is never sent after its request ended: not the tier's doing, it
        does not count against its circuit."""
        if future.cancel() and opens_call:
            self._unsent()
        return deadline_error(tier, request, limit, sent=self._sent)

    async def astream_tier(self, tier: Tier, request: RouteRequest) -> AsyncIterator[ChatGenerationChunk]:
        self._sent = True
        if self.executor is not None:
            async for chunk in _iterate_in(self.executor, self.stream_tier(tier, request, timed=False),
                                           unsent=self._unsent):
                yield chunk
            return
        model, kwargs = self.models[tier.name], self.tier_kwargs(tier)
        if not self.can_stream(tier, kwargs):
            yield message_chunk(as_ai_message(await self._agenerate(tier, self._messages(request), kwargs)))
            return
        try:
            async for chunk in model._astream(self._messages(request), stop=self.stop, **kwargs):
                yield strip_model_name(chunk)
        except Exception as exc:
            mapped = map_error(exc, tier)
            if mapped is exc:
                raise
            raise mapped from exc

    def answer_from_chunks(self, tier: Tier, chunks: list[ChatGenerationChunk]) -> TierAnswer:
        try:
            return to_answer(merge_chunks(chunks), tier.model_id)
        except (KeyError, ValueError) as exc:
            raise MalformedReplyError(f"{type(exc).__name__}: {exc}", tier=tier.name, model_id=tier.model_id,
                                      cause=exc) from exc

    def _generate(self, tier: Tier, messages: list[BaseMessage], kwargs: dict[str, Any]) -> TierAnswer:
        model = self.models[tier.name]
        try:
            # ``stop`` in ``kwargs``: routing's own call (``ask``), which the caller's stop words would cut
            generation = model._generate(messages, **kwargs).generations[0] if "stop" in kwargs else \
                model._generate(messages, stop=self.stop, **kwargs).generations[0]
            return to_answer(generation.message, tier.model_id, raw=generation)
        except Exception as exc:
            mapped = map_error(exc, tier)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _agenerate(self, tier: Tier, messages: list[BaseMessage], kwargs: dict[str, Any], *,
                         unsent: Callable[[], None] | None = None) -> TierAnswer:
        if self.executor is not None:
            return await _run_in(self.executor, self._generate, tier, messages, kwargs, unsent=unsent)
        model = self.models[tier.name]
        try:
            generation = (await model._agenerate(messages, **kwargs)).generations[0] if "stop" in kwargs else \
                (await model._agenerate(messages, stop=self.stop, **kwargs)).generations[0]
            return to_answer(generation.message, tier.model_id, raw=generation)
        except Exception as exc:
            mapped = map_error(exc, tier)
            if mapped is exc:
                raise
            raise mapped from exc

    def _call_within_deadline(self, tier: Tier, request: RouteRequest, messages: list[BaseMessage],
                              kwargs: dict[str, Any]) -> TierAnswer:
        """A sync call cannot be interrupted: with a deadline it runs on the pool and is
        abandoned (left to finish at the tier's read timeout) when the time is up."""
        if request.deadline is None or self.executor is None:
            return self._generate(tier, messages, kwargs)
        return self._on_pool(tier, request, contextvars.copy_context().run, self._generate, tier, messages, kwargs)

    # -- the Backend interface -----------------------------------------------------------

    def _run_args(self, tier: Tier, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The tier model and its call's parameters, for the attempt run."""
        return self.models[tier.name], {"stop": self.stop, **kwargs}

    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        messages, kwargs = self._messages(request), self.tier_kwargs(tier)
        self._sent = True
        runs = self.runs
        run = runs.start(tier, *self._run_args(tier, kwargs), messages) if runs and runs.manager is not None else None
        try:
            answer = self._call_within_deadline(tier, request, messages, kwargs)
        except BaseException as exc:
            end_run(run, error=exc)
            raise
        end_run(run, answer)
        return answer

    async def acall(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        messages, kwargs = self._messages(request), self.tier_kwargs(tier)
        runs, run = self.runs, None
        self._answered = None
        limit, started = call_timeout(tier, request), time.monotonic()  # the engine's timer covers the run's start
        if runs and runs.manager is not None:
            self._sent = False  # cancelled while its run starts (a slow callback): never sent, never billed
            run = await runs.astart(tier, *self._run_args(tier, kwargs), messages)
        self._sent = True
        try:
            answer = await self._agenerate(tier, messages, kwargs, unsent=self._unsent)
        except BaseException as exc:
            await _maybe_await(end_run(run, error=self._as_reported(exc, tier, request, limit, started)))
            raise
        self._answered = answer  # cancelled while its run ends: the answer came, and is billed as it is
        await _maybe_await(end_run(run, answer))
        return answer

    def answer_cut_off(self) -> TierAnswer | None:
        return self._answered

    def _as_reported(self, exc: BaseException, tier: Tier, request: RouteRequest, limit: float | None,
                     started: float) -> BaseException:
        """What the attempt run's callbacks are told: the engine's timer cancels a call
        that outlived its timeout, and that is the timeout (a ``TransportError``, as the
        sync path reports it), not a caller's cancel."""
        if not isinstance(exc, asyncio.CancelledError) or limit is None:
            return exc
        clock = current_call_clock()
        if clock.expired() if clock is not None else time.monotonic() - started >= limit:
            return deadline_error(tier, request, limit, sent=self._sent)
        return exc

    def stream(self, tier: Tier, request: RouteRequest, *, live: bool) -> "ConverseTierStream":
        """Every attempt of a streamed request goes through ConverseStream (live or
        buffered for a gate), so a cut stream is a transport error either way."""
        return ConverseTierStream(self, tier, request, live)

    def ask(self, tier: Tier, prompt: str) -> TierAnswer:
        """Routing's own one-turn call (LLM classifier, self-grade): no tools, no stop words,
        but the call's guardrail and request settings (``ASK_KWARGS``): the prompt carries
        the user's request, and a guardrail bound to the call must see it there too.
        Held to the deadline of the request it is made for, as that request's calls are."""
        self._sent = True
        timed = routing_request()
        if timed is None:
            return self._generate(tier, [HumanMessage(prompt)], self._ask_kwargs())
        return self._call_within_deadline(tier, timed, [HumanMessage(prompt)], self._ask_kwargs())

    async def aask(self, tier: Tier, prompt: str) -> TierAnswer:
        self._sent = True
        return await self._agenerate(tier, [HumanMessage(prompt)], self._ask_kwargs(), unsent=self._unsent)

    def _ask_kwargs(self) -> dict[str, Any]:
        return {"stop": None, **{k: v for k, v in self.kwargs.items() if k in ASK_KWARGS}}

    def detach(self) -> None:
        """Stop opening runs: calls made after the request have no parent."""
        self.runs = None

    def in_background(self) -> "LangChainBackend":
        """A copy with no runs: a shadow sample, started inside ``route`` before the request's
        ``detach``, opened its calls under the caller's run (its callbacks saw the baseline's)."""
        twin = copy.copy(self)
        twin.runs = None
        return twin


class ConverseTierStream(TierStream):
    """One attempt's ConverseStream chunks, inside its attempt run."""

    def __init__(self, backend: LangChainBackend, tier: Tier, request: RouteRequest, live: bool = True):
        self.backend, self.tier, self.request, self.live = backend, tier, request, live

    def _run_args(self) -> tuple[Any, dict[str, Any], list[BaseMessage]]:
        backend = self.backend
        return (*backend._run_args(self.tier, backend.tier_kwargs(self.tier)), backend._messages(self.request))

    def chunks(self) -> Iterator[ChatGenerationChunk]:
        runs = self.backend.runs
        run = runs.start(self.tier, *self._run_args()) if runs and runs.manager is not None else None
        got: list[ChatGenerationChunk] = []
        try:
            for chunk in self.backend.stream_tier(self.tier, self.request, live=self.live):
                got.append(chunk)
                yield chunk
            answer = self.answer(got)
        except BaseException as exc:
            end_run(run, error=RuntimeError(_CLOSED) if isinstance(exc, GeneratorExit) else exc)
            raise
        end_run(run, answer)

    async def achunks(self) -> AsyncIterator[ChatGenerationChunk]:
        runs, run = self.backend.runs, None
        if runs and runs.manager is not None:
            self.backend._unsent()  # cancelled while its run starts: never sent (``acall``)
            run = await runs.astart(self.tier, *self._run_args())
        got: list[ChatGenerationChunk] = []
        try:
            async for chunk in self.backend.astream_tier(self.tier, self.request):
                got.append(chunk)
                yield chunk
            answer = self.answer(got)
        except BaseException as exc:
            closed = isinstance(exc, (GeneratorExit, asyncio.CancelledError))
            await _maybe_await(end_run(run, error=RuntimeError(_CLOSED) if closed else exc))
            raise
        await _maybe_await(end_run(run, answer))

    def has_output(self, chunk: ChatGenerationChunk) -> bool:
        return has_output(chunk)

    def answer(self, chunks: list[Any], *, complete: bool = True) -> TierAnswer:
        if complete:
            return self.backend.answer_from_chunks(self.tier, chunks)
        text = merge_chunks(chunks).text if chunks else ""
        answer = estimated_answer(text, _prompt_text(self.backend._messages(self.request)), self.tier.model_id)
        return answer


_CLOSED = "stream closed by the consumer"
_END = object()  # a stream read to its end


def has_output(chunk: ChatGenerationChunk) -> bool:
    """Whether a chunk carries what the caller sees (text or a tool call), not only metadata."""
    message = chunk.message
    return bool(message.content) or bool(getattr(message, "tool_call_chunks", None))


def _prompt_text(messages: list[BaseMessage]) -> str:
    """The whole prompt, for estimating the input tokens of a stream cut before usage came."""
    return "\n".join(m.text for m in messages)


async def _run_in(executor: cf.Executor, fn: Any, *args: Any, unsent: Callable[[], None] | None = None) -> Any:
    """``fn(*args)`` on ``executor``, in a copy of the caller's context (callbacks, runs).
    Cancelled while still queued there, it never runs, and ``unsent`` is told."""
    future = _submit(executor, contextvars.copy_context().run, fn, *args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if future.cancel() and unsent is not None:
            unsent()
        raise


_DONE = object()


def _submit(executor: cf.Executor, fn: Any, *args: Any) -> cf.Future:
    """``executor.submit(fn, *args)``, the timers of the call (``core.clocks``) told when it
    waits for a worker and when one starts it."""
    return submit_timed(executor.submit, fn, *args)


def _signalled(started: Callable[[], None], fn: Any, *args: Any) -> Any:
    started()
    return fn(*args)


async def _iterate_in(executor: cf.Executor, iterator: Iterator[Any], *,
                      unsent: Callable[[], None] | None = None) -> AsyncIterator[Any]:
    """A blocking iterator read on ``executor``, one ``next`` at a time; ``unsent`` is told
    when the first read, which sends the call, is cancelled while still queued."""
    context = contextvars.copy_context()
    read: cf.Future | None = None  # the read on the pool, while one is not done with
    first = True
    try:
        while True:
            read = _submit(executor, context.run, next, iterator, _DONE)
            try:
                item = await asyncio.wrap_future(read)
            except asyncio.CancelledError:
                if read.cancel():  # still queued: it never runs
                    read = None
                    if first and unsent is not None:
                        unsent()
                raise
            read, first = None, False
            if item is _DONE:
                return
            yield item
    finally:
        if read is not None and not read.done():  # abandoned mid-read: close it when the read ends
            read.add_done_callback(lambda _: _close_quietly(iterator))
        else:
            _close_quietly(iterator)


def _close_quietly(iterator: Any) -> None:
    try:
        iterator.close()
    except Exception:  # noqa: BLE001 - a generator closed from a callback
        pass


async def _maybe_await(value: Any) -> None:
    if hasattr(value, "__await__"):
        await value


def as_ai_message(answer: TierAnswer) -> AIMessage:
    """The tier's message: ``raw`` is the call's ``ChatGeneration`` or a stream's merged message."""
    raw = answer.raw
    if isinstance(raw, ChatGeneration):
        raw = raw.message
    return raw if isinstance(raw, AIMessage) else AIMessage(content=answer.text)


def _bedrock_tool_choice(choice: Any) -> bool:
    """The shapes of Converse's ``toolChoice`` (or the strings langchain-aws turns into one)."""
    if isinstance(choice, str):
        return True
    if isinstance(choice, dict) and len(choice) == 1:
        ((kind, body),) = choice.items()
        if kind in ("auto", "any"):
            return isinstance(body, dict)
        if kind == "tool":
            return isinstance(body, dict) and isinstance(body.get("name"), str)
    return False
