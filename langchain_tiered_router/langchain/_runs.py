"""Each tier attempt as a child LLM run of the chat model's run, priced like any model call.

An attempt run carries the tier's own ``ls_provider`` / ``ls_model_name`` (the real
Bedrock model id), its prompt, and ends with the attempt's message and token usage,
so a tracer such as LangSmith prices every attempt, the failed-gate ones included.
The routed run itself is named after the ladder (``tiered:a>b>c``), which no price
table knows, so the attempts are not priced twice.

Two contracts shape it. LangChain's standard tests expect one *chat-model* run per call,
so an attempt opens a text-LLM run (``on_llm_start``, the same ``llm`` run type to a
tracer) with the conversation as its prompt. And the attempt's message carries no
``model_name``: ``UsageMetadataCallbackHandler`` counts a message only with one, so it
counts the served attempt once, on the routed message.

With no callback handler on the routed run, no attempt run is made at all: nothing
would listen, and a request should not pay for callback managers nobody reads.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Sequence

from langchain_core.callbacks import (AsyncCallbackManager, AsyncCallbackManagerForLLMRun, CallbackManager)
from langchain_core.callbacks.manager import ahandle_event
from langchain_core.messages import AIMessage, BaseMessage, get_buffer_string
from langchain_core.outputs import ChatGeneration, LLMResult

from ..core.tiers import Tier
from ..core.types import TierAnswer

__all__ = ["AttemptRuns", "ATTEMPT_RUNS", "child_manager", "end_run"]


def child_manager(cls: type, parent_run_id: Any, handlers: list, tags: list[str], metadata: dict[str, Any]) -> Any:
    """A callback manager for runs under ``parent_run_id`` (LLM run managers have no
    ``get_child``: LangChain does not expect runs below a model)."""
    child = cls(handlers=[], parent_run_id=parent_run_id)
    child.set_handlers(handlers)
    child.add_tags(tags)
    child.add_metadata(metadata)
    return child


@dataclass
class AttemptRuns:
    """Where attempt runs go (a child manager of the LLM run, or none) and the run's metadata."""

    manager: CallbackManager | AsyncCallbackManager | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    parent_run_id: Any = None

    @classmethod
    def under(cls, run_manager: Any) -> "AttemptRuns":
        """The attempt runs of the LLM run ``run_manager`` (no manager when no handler listens)."""
        metadata = dict(run_manager.metadata or {})
        if not run_manager.inheritable_handlers:
            return cls(None, metadata, run_manager.run_id)
        manager_cls = AsyncCallbackManager if isinstance(run_manager, AsyncCallbackManagerForLLMRun) else CallbackManager
        manager = child_manager(manager_cls, run_manager.run_id, run_manager.inheritable_handlers,
                                run_manager.inheritable_tags, run_manager.inheritable_metadata)
        return cls(manager, metadata, run_manager.run_id)

    def _child(self, tier: Tier, model: Any, kwargs: dict[str, Any]) -> Any:
        manager = self.manager.copy()  # type: ignore[union-attr]
        meta: dict[str, Any] = {"tier": tier.name, "model_id": tier.model_id}
        if model is not None:
            meta.update(model._get_ls_params(**kwargs))  # the tier model's own ls_provider, ls_model_name
        manager.add_metadata(meta, inherit=False)  # over the routed run's "tiered:..." name
        return manager

    def _start_args(self, tier: Tier, model: Any, messages: Sequence[BaseMessage], kwargs: dict[str, Any]
                    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        serialized = model._serialized if model is not None else None
        params = model._get_invocation_params(**kwargs) if model is not None else {"model_id": tier.model_id}
        return (serialized, [get_buffer_string(list(messages))]), {"run_id": uuid.uuid4(), "name": f"tier:{tier.name}",
                                                                  "invocation_params": params}

    def start(self, tier: Tier, model: Any = None, kwargs: dict[str, Any] | None = None,
              messages: Sequence[BaseMessage] = ()) -> Any:
        """Open the attempt run of ``tier`` (``model`` answers it, called with ``kwargs``)."""
        if not isinstance(self.manager, CallbackManager):
            return None
        args, options = self._start_args(tier, model, messages, kwargs or {})
        return self._child(tier, model, kwargs or {}).on_llm_start(*args, **options)[0]

    async def astart(self, tier: Tier, model: Any = None, kwargs: dict[str, Any] | None = None,
                     messages: Sequence[BaseMessage] = ()) -> Any:
        if isinstance(self.manager, CallbackManager):
            return self.start(tier, model, kwargs, messages)
        if self.manager is None:
            return None
        (serialized, prompts), options = self._start_args(tier, model, messages, kwargs or {})
        child = self._child(tier, model, kwargs or {})
        run_id = options.pop("run_id")
        # Not ``AsyncCallbackManager.on_llm_start``: when any handler runs inline (LangGraph's
        # message streamer, LangSmith's tracer) it sends the start to those alone, and every
        # other handler got the attempt's end without its start. ``ahandle_event`` runs the
        # inline ones first, in order, then the others.
        run = AsyncCallbackManagerForLLMRun(
            run_id=run_id, handlers=child.handlers, inheritable_handlers=child.inheritable_handlers,
            parent_run_id=child.parent_run_id, tags=child.tags, inheritable_tags=child.inheritable_tags,
            metadata=child.metadata, inheritable_metadata=child.inheritable_metadata)
        try:
            await ahandle_event(child.handlers, "on_llm_start", "ignore_llm", serialized, prompts, run_id=run_id,
                                parent_run_id=child.parent_run_id, tags=child.tags, metadata=child.metadata,
                                **options)
        except BaseException as exc:  # cancelled while a handler awaited: the handlers it reached see it end
            await run.on_llm_error(exc)
            raise
        return run


def _attempt_result(answer: TierAnswer) -> LLMResult:
    """The attempt's message without ``model_name`` (see the module docstring)."""
    raw = answer.raw
    if isinstance(raw, ChatGeneration):
        raw = raw.message
    if isinstance(raw, AIMessage):
        meta = {k: v for k, v in raw.response_metadata.items() if k != "model_name"}
        meta["model_id"] = answer.model_id
        message = raw.model_copy(update={"response_metadata": meta})
    else:
        message = AIMessage(content=answer.text, response_metadata={"model_id": answer.model_id})
    return LLMResult(generations=[[ChatGeneration(message=message)]])


def end_run(run: Any, answer: TierAnswer | None = None, error: BaseException | None = None) -> Any:
    """End an attempt run (sync or async manager); returns an awaitable for async ones."""
    if run is None:
        return None
    if error is not None:
        return run.on_llm_error(error)
    if answer is None:
        return run.on_llm_end(LLMResult(generations=[[]]))
    return run.on_llm_end(_attempt_result(answer))


# Set by the chat model around LangChain's calls into ``_stream``, which receive no
# run manager from ``BaseChatModel.stream`` / ``invoke``.
ATTEMPT_RUNS: ContextVar[AttemptRuns | None] = ContextVar("tiered_router_attempt_runs", default=None)
