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
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Sequence
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from ..core.telemetry.record import RoutingRecord, record_from_result
from ..core.telemetry.build import build_sinks
from ..core.telemetry.sinks import Sink, SinkSet
from . import failed_runs
from ._convert import request_text

__all__ = ["TieredRouterCallbackHandler"]

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

    def __init__(self, sinks: Sink | Sequence[Sink], *, store_text: bool = False):
        self.sinks = sinks if isinstance(sinks, SinkSet) else SinkSet([sinks] if isinstance(sinks, Sink) else sinks)
        self.store_text = store_text
        self._runs: dict[UUID, dict[str, Any]] = {}
        self._written: OrderedDict[str, None] = OrderedDict()  # request ids, the latest WRITTEN_IDS
        self._lock = threading.Lock()
        failed_runs.listen()

    @classmethod
    def from_config(cls, config: Any) -> "TieredRouterCallbackHandler":
        """Sinks and ``store_text`` from a router config's ``telemetry`` section (dict, path or object)."""
        from ..core.config import load_config

        tel = load_config(config).telemetry
        return cls(build_sinks(tel.sinks), store_text=tel.store_text)

    # -- start: remember what on_llm_end will not be told ----------------------------

    def _start(self, run_id: UUID, prompt: str, metadata: dict[str, Any] | None) -> None:
        scalars = {k: v for k, v in (metadata or {}).items() if isinstance(v, (str, int, float, bool))}
        with self._lock:
            self._runs[run_id] = {"ts": time.time(), "prompt": prompt if self.store_text else None,
                                  "metadata": scalars}

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
        failed_runs.take(run_id)  # its record is in the message: the kept result is not needed
        try:
            for generations in response.generations:
                for generation in generations:
                    message = getattr(generation, "message", None)
                    meta = (getattr(message, "response_metadata", None) or {}).get("routing") or \
                        (generation.generation_info or {}).get("routing")
                    if not meta or self._replayed(meta, start):
                        continue
                    answer = _message_text(message) if (self.store_text and message is not None) else None
                    self.sinks.write(self._record(meta, start, answer))
        except Exception:  # noqa: BLE001 - telemetry never fails the chain
            log.exception("recording routed generation of run %s failed", run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            start = self._runs.pop(run_id, None) or {"ts": None, "prompt": None, "metadata": {}}
        carried = getattr(error, "result", None)  # LadderExhaustedError carries the routing result

        def write(result: Any) -> None:
            try:
                self.sinks.write(self._record(record_from_result(result).to_json_dict(), start, None))
            except Exception:  # noqa: BLE001
                log.exception("recording failed routed run %s failed", run_id)

        # a consumer that left, a caller's error: the router kept the result, or hands it
        # over as its route closes
        kept = failed_runs.take(run_id, then=None if carried is not None else write)
        result = carried or kept
        if result is not None and hasattr(result, "attempts"):
            write(result)

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

    def flush(self) -> None:
        self.sinks.flush()

    def close(self) -> None:
        self.sinks.close()
