"""The tier ladder at run time: named rungs, cheapest first, each with its price."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator, Sequence

from .config import RouterConfig, TierConfig
from .errors import UnknownTierError
from .pricing import Price, Usage

log = logging.getLogger("langchain_tiered_router")

__all__ = ["Tier", "Ladder"]


@dataclass(frozen=True)
class Tier:
    name: str
    model_id: str
    price: Price | None
    index: int = 0
    provider: str | None = None
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    timeout_s: float | None = None  # one call's read timeout (the tier's, else transport.timeout_s)

    def cost(self, usage: Usage) -> Decimal | None:
        return self.price.cost(usage) if self.price else None


class Ladder(Sequence[Tier]):
    """Ordered tiers plus the baseline (the counterfactual tier)."""

    def __init__(self, tiers: Sequence[Tier], baseline: str | None = None):
        if not tiers:
            raise UnknownTierError("the ladder is empty", path="tiers")
        self._tiers = [Tier(t.name, t.model_id, t.price, i, t.provider, t.params, t.timeout_s)
                       for i, t in enumerate(tiers)]
        self._by_name = {t.name: t for t in self._tiers}
        self.baseline = self[baseline] if baseline else self._tiers[-1]

    def fingerprint(self) -> str:
        """A short name of which model each tier calls: state shared by several ladders
        (session pins in Redis) is kept apart by it."""
        text = "\n".join(f"{t.name}\t{t.model_id}" for t in self._tiers)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]

    @classmethod
    def from_config(cls, config: RouterConfig) -> "Ladder":
        return cls([_tier_from_config(config, t) for t in config.tiers], config.baseline_name)

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            try:
                return self._by_name[key]
            except KeyError:
                raise UnknownTierError(
                    f"unknown tier {key!r}; the ladder has {', '.join(self.names)}") from None
        return self._tiers[key]

    def __len__(self) -> int:
        return len(self._tiers)

    def __iter__(self) -> Iterator[Tier]:
        return iter(self._tiers)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def out_of_order(self) -> list[tuple[Tier, Tier]]:
        """Pairs (a tier, a tier listed after it) where the first costs more per token, in
        and out: escalation climbs the ladder in the order listed, so such a ladder
        escalates to a cheaper model and saves against nothing."""
        priced = [t for t in self._tiers if t.price is not None and t.price.known]
        return [(a, b) for i, a in enumerate(priced) for b in priced[i + 1:]
                if a.price.input_per_mtok >= b.price.input_per_mtok  # type: ignore[union-attr, operator]
                and a.price.output_per_mtok >= b.price.output_per_mtok  # type: ignore[union-attr, operator]
                # dearer in or out, not in a rate beside them (two models at $3/$15 whose
                # entries differ in a long-context or 1-hour cache rate cost the same per token)
                and (a.price.input_per_mtok, a.price.output_per_mtok)  # type: ignore[union-attr]
                != (b.price.input_per_mtok, b.price.output_per_mtok)]  # type: ignore[union-attr]

    def warn_if_out_of_order(self) -> None:
        """Say so when a tier costs more per token than one listed after it: routing, the
        estimate's cascade and eval all climb the ladder in the order listed."""
        for dear, cheaper in self.out_of_order()[:1]:
            log.warning("tier %r costs more per token than %r, listed after it: requests escalate in the order the "
                        "tiers are listed, so list them cheapest first", dear.name, cheaper.name)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self._tiers]

    @property
    def cheapest(self) -> Tier:
        return self._tiers[0]

    @property
    def top(self) -> Tier:
        return self._tiers[-1]

    def above(self, tier: Tier) -> Tier | None:
        return self._tiers[tier.index + 1] if tier.index + 1 < len(self._tiers) else None

    def by_model_id(self, model_id: str) -> Tier | None:
        for tier in self._tiers:
            if tier.model_id == model_id:
                return tier
        return None


def _tier_from_config(config: RouterConfig, tc: TierConfig) -> Tier:
    params: dict[str, Any] = dict(tc.model_kwargs)
    if tc.max_tokens is not None:
        params["max_tokens"] = tc.max_tokens
    if tc.temperature is not None:
        params["temperature"] = tc.temperature
    return Tier(tc.name, tc.model_id, config.price_of(tc), provider=tc.provider, params=params,
                timeout_s=tc.timeout_s or config.transport.timeout_s)
