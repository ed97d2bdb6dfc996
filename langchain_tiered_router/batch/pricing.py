"""Prices at batch rates: LiteLLM's batch prices where it has them, else a discount.

Bedrock bills batch inference at about half the on-demand rate. LiteLLM's cost map
lists that rate for many Bedrock models (``input_cost_per_token_batches`` ...);
for the others, and for tiers whose price the config overrides, the batch price is
the on-demand price times ``1 - batch.discount`` (0.5 by default). The batch rate is
read from the entry that prices the tier on demand: a region's or a profile's own entry
without one (GovCloud's, ``eu.``) discounts its own price, not the base model's batch rate. Records that go
on-demand (a remainder below Bedrock's job minimum, a self-grade or classifier
call) pay the on-demand price. Unknown stays ``None``, never 0.
"""

from __future__ import annotations

from decimal import Decimal

from ..core.config import RouterConfig
from ..core.pricing import Price, Usage, lookup_batch_price
from ..core.tiers import Ladder, Tier

__all__ = ["BatchPricing", "discounted"]


def discounted(price: Price, discount: Decimal) -> Price:
    """``price`` with every known rate times ``1 - discount``."""
    return price.scaled(Decimal(1) - discount)


class BatchPricing:
    """Batch and on-demand prices of every tier of one ladder."""

    def __init__(self, config: RouterConfig, ladder: Ladder, discount: Decimal = Decimal("0.5")):
        self.ladder = ladder
        self.discount = discount
        self._batch: dict[str, Price | None] = {}
        for tier_config, tier in zip(config.tiers, ladder):
            found = None if tier_config.price is not None else lookup_batch_price(tier.model_id, region=config.region_name)
            if found is None and tier.price is not None:
                found = discounted(tier.price, discount)
            self._batch[tier.name] = found

    def batch_price(self, tier: Tier | str) -> Price | None:
        return self._batch[tier if isinstance(tier, str) else tier.name]

    def cost(self, tier: Tier, usage: Usage, mode: str) -> Decimal | None:
        """The cost of one call of ``tier``: ``mode`` is ``batch`` or ``on_demand``."""
        price = self.batch_price(tier) if mode == "batch" else tier.price
        return None if price is None else price.cost(usage)

    def baseline_costs(self, usage: Usage) -> tuple[Decimal | None, Decimal | None]:
        """What the baseline tier would have cost on ``usage``: (at batch rate, at on-demand rate)."""
        base = self.ladder.baseline
        return self.cost(base, usage, "batch"), self.cost(base, usage, "on_demand")
