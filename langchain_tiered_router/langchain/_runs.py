"""Each tier attempt as a child *chain* run of the chat model's run.

Why chain runs and not the tier model's own LLM run: a second LLM run per attempt
would make usage counters (``UsageMetadataCallbackHandler``) count tokens twice,
since the routed message already carries the served attempt's usage. A chain run
carries ``{"tier", "model_id"}`` metadata and the attempt's outcome without that.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager

from ..core.tiers import Tier
from ..core.types import TierAnswer

__all__ = ["AttemptRuns", "ATTEMPT_RUNS", "child_manager"]


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
    """Where attempt runs go (a child manager of the LLM run) and the run's metadata."""

    manager: CallbackManager | AsyncCallbackManager | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def _child(self, tier: Tier) -> Any:
        manager = self.manager.copy()  # type: ignore[union-attr]
        manager.add_metadata({"tier": tier.name, "model_id": tier.model_id}, inherit=False)
        return manager

    def start(self, tier: Tier) -> Any:
        if not isinstance(self.manager, CallbackManager):
            return None
        return self._child(tier).on_chain_start(None, {"tier": tier.name, "model_id": tier.model_id},
                                                run_id=uuid.uuid4(), name=f"tier:{tier.name}")

    async def astart(self, tier: Tier) -> Any:
        if isinstance(self.manager, CallbackManager):
            return self.start(tier)
        if self.manager is None:
            return None
        return await self._child(tier).on_chain_start(None, {"tier": tier.name, "model_id": tier.model_id},
                                                      run_id=uuid.uuid4(), name=f"tier:{tier.name}")


def attempt_outputs(answer: TierAnswer) -> dict[str, Any]:
    return {"model_id": answer.model_id, "input_tokens": answer.usage.input_tokens,
            "output_tokens": answer.usage.output_tokens, "tool_calls": len(answer.tool_calls)}


def end_run(run: Any, answer: TierAnswer | None = None, error: BaseException | None = None) -> Any:
    """End a run (sync or async manager); returns an awaitable for async ones."""
    if run is None:
        return None
    if error is not None:
        return run.on_chain_error(error)
    return run.on_chain_end(attempt_outputs(answer) if answer is not None else {})


# Set by the chat model around LangChain's calls into ``_stream``, which receive no
# run manager from ``BaseChatModel.stream`` / ``invoke``.
ATTEMPT_RUNS: ContextVar[AttemptRuns | None] = ContextVar("tiered_router_attempt_runs", default=None)
