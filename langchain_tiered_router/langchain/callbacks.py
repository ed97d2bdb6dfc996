"""A LangChain callback handler that records routed requests from any chain.

Pass it in ``callbacks=[...]``. It reads ``response_metadata["routing"]`` from each
``TieredChatBedrock`` generation in ``on_llm_end``: that dict is the record itself
(``RoutingRecord.to_json_dict``), so the handler writes the same record the core
observer writes. ``on_llm_end`` carries no metadata or prompt, so what is
needed from the start (time, prompt text, session id) is kept by ``run_id``.
Generations without routing metadata (other chat models) are ignored. A failure
here is logged, never raised into the chain.

A hit of LangChain's LLM cache ends its run with the cached message, routing metadata
and all, though nothing was routed: the handler skips a record it has already written
(by request id) or whose routing began before the run did, so a sink that appends
(JSONL) does not count the cached request's cost again.

A handler built ``from_config`` runs the config's ``telemetry.shadow`` for the requests
it records, as the router's own recorder does (``Recorder``): a sampled request's record
is written when its shadow call ends (a durable sink keeps it as ``pending`` meanwhile),
and ``flush``/``flush_all()`` wait for the shadows. Its sinks are the process's shared
writers, which routers use too: ``close`` finishes its shadows and flushes them, and
leaves them open.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Sequence
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from ..core.telemetry.record import RoutingRecord, record_from_result
from ..core.telemetry.build import build_sinks
from ..core.telemetry.recorder import NOT_SAMPLED, Recorder, ShadowHandoff, build_recorder, shadow_of
from ..core.telemetry.schema import PROVISIONAL_SHADOW
from ..core.telemetry.shadow import ShadowSampler
from ..core.telemetry.sinks import Sink, SinkSet
from . import failed_runs
from ._convert import request_text

__all__ = ["TieredRouterCallbackHandler", "report_cancelled"]

log = logging.getLogger("langchain_tiered_router.telemetry")

WRITTEN_IDS = 65_536  # request ids remembered to skip LLM-cache replays: a few MB at most
CLOCK_SLACK_S = 1.0  # a record's routing may not start before its run by more than clock noise


def _message_text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content)


class TieredRouterCallbackHandler(BaseCallbackHandler):
    """Writes one ``RoutingRecord`` per routed generation to ``sinks``."""

    raise_error = False
    # Called in the event loop for async runs, in order, not later on an executor thread:
    # a start seen after its route had closed left the route's result unkept (64 of 300
    # left streams unrecorded under load). Each call only updates dicts or enqueues.
    run_inline = True

    def __init__(self, sinks: Sink | Sequence[Sink], *, store_text: bool = False,
                 shadow: ShadowSampler | None = None, close_sinks: bool = True):
        self.sinks = sinks if isinstance(sinks, SinkSet) else SinkSet([sinks] if isinstance(sinks, Sink) else sinks)
        self.store_text = store_text
        # the router's own recorder, on these sinks: it finishes the shadows at flush, at
        # ``flush_all()`` and at exit
        self._recorder = Recorder(self.sinks, store_text=store_text, shadow=shadow)
        self._close_sinks = close_sinks  # False for shared writers (``from_config``): routers write to them too
        self._handoffs = threading.Condition()  # records waiting for the model's shadow call
        self._waiting = 0
        self._runs: dict[UUID, dict[str, Any]] = {}
        self._written: OrderedDict[str, None] = OrderedDict()  # request ids, the latest WRITTEN_IDS
        self._lock = threading.Lock()
        failed_runs.listen()

    @classmethod
    def from_config(cls, config: Any) -> "TieredRouterCallbackHandler":
        """Sinks, ``store_text`` and the shadow sampler from a router config's ``telemetry``
        section (dict, path or object)."""
        from ..core.config import load_config
        from ..core.tiers import Ladder

        cfg = load_config(config)
        tel = cfg.telemetry
        shadow = build_recorder(cfg, Ladder.from_config(cfg), sinks=[]).shadow if tel.shadow.fraction > 0 else None
        return cls(build_sinks(tel.sinks), store_text=tel.store_text, shadow=shadow, close_sinks=False)

    # -- start: remember what on_llm_end will not be told ----------------------------

    def _start(self, run_id: UUID, prompt: str, metadata: dict[str, Any] | None) -> None:
        scalars = {k: v for k, v in (metadata or {}).items() if isinstance(v, (str, int, float, bool))}
        with self._lock:
            self._runs[run_id] = {"ts": time.time(), "prompt": prompt if self.store_text else None,
                                  "metadata": scalars}
        failed_runs.expect(run_id)

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # what the router's own record keeps: the text classifiers and gates read (the last
        # user turn), not every message of the conversation
        self._start(run_id, request_text(messages[0]) if messages else "", metadata)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._start(run_id, prompts[0] if prompts else "", metadata)

    # -- end: write the record ----------------------------------------------------------

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            start = self._runs.pop(run_id, None) or {"ts": None, "prompt": None, "metadata": {}}
        routed = failed_runs.take_routed(run_id)  # the record is in the message; the request, for a shadow
        try:
            for generations in response.generations:
                for generation in generations:
                    message = getattr(generation, "message", None)
                    meta = (getattr(message, "response_metadata", None) or {}).get("routing") or \
                        (generation.generation_info or {}).get("routing")
                    if not meta or self._replayed(meta, start):
                        continue
                    answer = _message_text(message) if (self.store_text and message is not None) else None
                    self._write(self._record(meta, start, answer), routed)
        except Exception:  # noqa: BLE001 - telemetry never fails the chain
            log.exception("recording routed generation of run %s failed", run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            start = self._runs.pop(run_id, None) or {"ts": None, "prompt": None, "metadata": {}}
        carried = getattr(error, "result", None)  # LadderExhaustedError carries the routing result

        def write(result: Any, routed: failed_runs.Routed | None) -> None:
            try:
                self._write(self._record(record_from_result(result).to_json_dict(), start, None), routed)
            except Exception:  # noqa: BLE001
                log.exception("recording failed routed run %s failed", run_id)

        # a consumer that left, a caller's error: the router kept the result, or hands it
        # over as its route closes (a run it never routed, e.g. a ``tier:<name>`` attempt
        # run, gets nothing and leaves no waiter)
        kept = failed_runs.take_routed(run_id, then=None if carried is not None else
                                       (lambda routed: write(routed.result, routed)))
        result = carried if carried is not None else (kept.result if kept is not None else None)
        if result is not None and hasattr(result, "attempts"):
            write(result, kept)

    def _write(self, record: RoutingRecord, routed: failed_runs.Routed | None) -> None:
        """Write ``record``, or, for a request the shadow samples, as the router's recorder
        does: pending in a durable sink, then whole when its shadow call ends."""
        taken = shadow_of(routed.request) if routed is not None else None
        if taken == NOT_SAMPLED:  # the model's own recorder drew and left it unshadowed: so is this record
            self.sinks.write(record)
            return
        if isinstance(taken, ShadowHandoff):  # the model's own recorder shadows it: its outcome, once
            if self.sinks.durable:
                self.sinks.write_provisional(dataclasses.replace(record, shadow_status=PROVISIONAL_SHADOW))
            with self._handoffs:
                self._waiting += 1

            def scored(done: RoutingRecord) -> None:
                try:
                    self.sinks.write(ShadowHandoff.merged(record, done))
                finally:
                    with self._handoffs:
                        self._waiting -= 1
                        self._handoffs.notify_all()

            taken.then(scored)
            return
        shadow = self._recorder.shadow
        if shadow is None or routed is None or not shadow.wants(routed.result):
            self.sinks.write(record)
            return
        if self.sinks.durable:
            self.sinks.write_provisional(dataclasses.replace(record, shadow_status=PROVISIONAL_SHADOW))
        context = contextvars.copy_context()
        shadow.submit(record, routed.result, routed.request, routed.backend,
                      lambda done: context.run(self._recorder.write, done))

    def _replayed(self, meta: dict[str, Any], start: dict[str, Any]) -> bool:
        """True for a cached generation: its request was written already, or routed
        before this run started (a cache filled by another process)."""
        ts, begun = meta.get("ts"), start["ts"]
        if isinstance(ts, (int, float)) and begun is not None and ts < begun - CLOCK_SLACK_S:
            return True
        request_id = meta.get("request_id")
        if not isinstance(request_id, str):
            return False
        with self._lock:
            if request_id in self._written:
                return True
            self._written[request_id] = None
            if len(self._written) > WRITTEN_IDS:
                self._written.popitem(last=False)
        return False

    def _record(self, meta: dict[str, Any], start: dict[str, Any], answer: str | None) -> RoutingRecord:
        record = RoutingRecord.from_json_dict(meta)
        record.integration = "langchain"
        record.ts = record.ts or start["ts"] or time.time()
        record.prompt_text, record.answer_text = start["prompt"], answer
        record.metadata = {**record.metadata, **start["metadata"]}
        return record

    def _wait_for_handoffs(self, timeout: float | None) -> bool:
        """Wait until the records waiting for the model's shadow calls are written."""
        with self._handoffs:
            return self._handoffs.wait_for(lambda: self._waiting == 0, timeout)

    def flush(self, timeout: float | None = 60) -> bool:
        """Finish the shadow calls (the model's too, for the records that wait on them),
        then drain the sinks; False when ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        waited = self._wait_for_handoffs(timeout)
        return self._recorder.flush(None if deadline is None else max(0.0, deadline - time.monotonic())) and waited

    def close(self, timeout: float | None = 60) -> None:
        """Finish the shadow calls and flush the sinks. Sinks from ``from_config`` are the
        process's shared writers, which routers write to as well: flushed, left open.
        Sinks handed to the constructor are closed."""
        self._wait_for_handoffs(timeout)
        if self._close_sinks:
            self._recorder.close(timeout)
            return
        if self._recorder.shadow is not None:
            self._recorder.shadow.close(timeout)
        self.sinks.flush(timeout)


def report_cancelled(run_manager: Any, error: BaseException) -> None:
    """Hand a cancelled async run to the router's handlers among ``run_manager``'s.

    langchain-core's ``agenerate`` awaits the run inside an ``asyncio.gather`` that the
    task's cancellation cancels too, so no handler hears ``on_llm_error`` (its streams do
    report a cancel). The route was billed and closed all the same (a call Bedrock had
    runs on there): without this the handler never wrote its record. Only this package's
    handlers are told; the others see what they see with ``ChatBedrockConverse``."""
    if run_manager is None:
        return
    for handler in run_manager.handlers:
        if isinstance(handler, TieredRouterCallbackHandler):
            try:
                handler.on_llm_error(error, run_id=run_manager.run_id, parent_run_id=run_manager.parent_run_id)
            except Exception:  # noqa: BLE001 - telemetry never fails the chain
                log.exception("recording cancelled run %s failed", run_manager.run_id)
