"""A backend that answers from recorded outcomes, so configs run through the real engine."""

from __future__ import annotations

from ...core.backends import Backend
from ...core.errors import TierCallError
from ...core.tiers import Tier
from ...core.types import RouteRequest, TierAnswer
from .data import EvalItem

__all__ = ["ReplayBackend"]


class ReplayBackend(Backend):
    """``request.payload`` is the ``EvalItem``; each tier answers with its recorded response."""

    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        item = request.payload
        if not isinstance(item, EvalItem):
            raise TierCallError("replay has no recorded answer for a routing call (LLM classifier or "
                                "self-grade); evaluate such configs live", tier=tier.name, model_id=tier.model_id)
        outcome = item.outcomes.get(tier.name)
        if outcome is None:
            raise TierCallError(f"item {item.id!r} has no recorded outcome for this tier", tier=tier.name,
                                model_id=tier.model_id)
        return TierAnswer(outcome.response or "", outcome.usage, tier.model_id)
