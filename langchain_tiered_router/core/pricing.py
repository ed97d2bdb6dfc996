"""Prices per tier, from LiteLLM's bundled cost map with per-tier overrides.

The core does not import LiteLLM (importing it costs seconds and pulls in half of
PyPI); it reads the JSON cost map that the installed ``litellm`` wheel ships, found
with ``importlib.util.find_spec`` so the package's ``__init__`` never runs. Without
LiteLLM (the ``langchain`` extra alone) it reads the bundled snapshot of that map's
Bedrock entries (``data/bedrock_prices.json``, written by
``scripts/refresh_cost_map.py``). Nothing is fetched from the network. Money is
``Decimal``; an unknown price is ``None``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Price", "Usage", "converse_usage", "hour_cache_writes", "load_cost_map", "lookup_price", "lookup_batch_price",
           "override_price", "estimate_tokens", "litellm_cost_map_path", "MTOK"]

log = logging.getLogger("langchain_tiered_router")

MTOK = Decimal(1_000_000)
_COST_MAP_FILE = "model_prices_and_context_window_backup.json"
# Bedrock ids come with a region / inference-profile prefix that the map may not list.
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
# Global profiles cost what the base model costs (the map's global. entries say so); the
# geographic ones (us., eu., apac. ...) of some models cost about 10 % more.
_NO_PREMIUM_PREFIXES = ("global.",)
_warned: set[tuple[str, ...]] = set()  # (kind, model id ...) already warned about: once each per process


def _warn_once(key: tuple[str, ...], message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def estimate_tokens(text: str) -> int:
    """ceil(characters / 4), at least 1: the one estimate used wherever no tokenizer count
    exists (the emulator, scripted backends, a stream cut before the tier reported usage)."""
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True)
class Usage:
    """Token counts of one model call; cache counts are part of no other count."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # of ``cache_write_tokens``, those written to an hour-long cache (a cache point's
    # ``ttl: 1h``), which Bedrock bills at their own, higher rate
    cache_write_1h_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt, cached or not: what a long-context rate is keyed on."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


def converse_usage(usage: Mapping[str, Any]) -> Usage:
    """A Converse (or Nova) ``usage`` block in the core's counts; batch output spells the
    cache counts ``...TokenCount``."""
    return Usage(int(usage.get("inputTokens") or 0), int(usage.get("outputTokens") or 0),
                 int(usage.get("cacheReadInputTokens") or usage.get("cacheReadInputTokenCount") or 0),
                 int(usage.get("cacheWriteInputTokens") or usage.get("cacheWriteInputTokenCount") or 0),
                 hour_cache_writes(usage))


def hour_cache_writes(usage: Mapping[str, Any]) -> int:
    """Of a Converse ``usage`` block's cache writes, those to an hour-long cache: Bedrock
    lists the writes per ttl in ``cacheDetails`` when a cache point names one."""
    details = usage.get("cacheDetails")
    if not isinstance(details, list):
        return 0
    return sum(int(d.get("inputTokens") or 0) for d in details if isinstance(d, dict) and d.get("ttl") == "1h")


@dataclass(frozen=True)
class Price:
    """USD per million tokens. A ``None`` rate is unknown, never free."""

    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    source: str = "override"
    cache_write_1h_per_mtok: Decimal | None = None  # an hour-long cache's writes; unknown: the write rate
    # Long-context rates, (prompt tokens, the price of a call whose prompt has more), in
    # ascending order: a call past the threshold pays those rates for every token (Claude's
    # prompts above 200k tokens cost twice the input rate and 1.5 times the output rate)
    above: tuple[tuple[int, "Price"], ...] = ()

    @property
    def known(self) -> bool:
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    def scaled(self, factor: Decimal) -> "Price":
        """Every known rate, long-context ones included, times ``factor`` (a batch discount)."""
        def times(rate: Decimal | None) -> Decimal | None:
            return None if rate is None else (rate * factor).normalize()

        return Price(times(self.input_per_mtok), times(self.output_per_mtok), times(self.cache_read_per_mtok),
                     times(self.cache_write_per_mtok), source=f"{self.source} x {factor.normalize()}",
                     cache_write_1h_per_mtok=times(self.cache_write_1h_per_mtok),
                     above=tuple((threshold, longer.scaled(factor)) for threshold, longer in self.above))

    def for_usage(self, usage: Usage) -> "Price":
        """The price a call of this usage pays: a long-context one past its threshold."""
        price = self
        if self.above:
            prompt = usage.prompt_tokens
            for threshold, longer in self.above:
                if prompt > threshold:
                    price = longer
        return price

    def cost(self, usage: Usage) -> Decimal | None:
        """Cost of one call; ``None`` when a needed rate is unknown.

        Cache reads and writes fall back to the input rate when the map has no
        cache rate (Bedrock bills them at most at that rate for models without one).
        """
        price = self.for_usage(usage) if self.above else self
        if not price.known:
            return None
        assert price.input_per_mtok is not None and price.output_per_mtok is not None
        total = usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok
        # most calls read and write no cache: two Decimal products saved (a zero total
        # still adds them, for the same exponent as ever)
        if usage.cache_read_tokens or not total:
            total += usage.cache_read_tokens * price._read_rate()
        if usage.cache_write_tokens or not total:
            total += price._write_cost(usage)
        return total / MTOK

    def parts(self, usage: Usage) -> dict[str, Decimal] | None:
        """``cost``, split: input, output, cache read and cache write (which sum to it),
        for a gateway's cost breakdown; ``None`` when a needed rate is unknown."""
        price = self.for_usage(usage)
        if not price.known:
            return None
        assert price.input_per_mtok is not None and price.output_per_mtok is not None
        return {"input": usage.input_tokens * price.input_per_mtok / MTOK,
                "output": usage.output_tokens * price.output_per_mtok / MTOK,
                "cache_read": usage.cache_read_tokens * price._read_rate() / MTOK,
                "cache_write": price._write_cost(usage) / MTOK}

    def _read_rate(self) -> Decimal:
        rate = self.cache_read_per_mtok if self.cache_read_per_mtok is not None else self.input_per_mtok
        assert rate is not None
        return rate

    def _write_cost(self, usage: Usage) -> Decimal:
        """Cache writes, per million: the hour-long ones at their rate (else the write rate)."""
        write = self.cache_write_per_mtok if self.cache_write_per_mtok is not None else self.input_per_mtok
        assert write is not None
        hour = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        if not hour:
            return usage.cache_write_tokens * write
        hour_rate = self.cache_write_1h_per_mtok if self.cache_write_1h_per_mtok is not None else write
        return (usage.cache_write_tokens - hour) * write + hour * hour_rate


_SNAPSHOT = Path(__file__).resolve().parent.parent / "data" / "bedrock_prices.json"


def litellm_cost_map_path() -> Path | None:
    """The installed LiteLLM's cost map file, or ``None`` when LiteLLM is not installed."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / _COST_MAP_FILE
    return path if path.exists() else None


@functools.lru_cache(maxsize=1)
def load_cost_map() -> Mapping[str, dict]:
    """LiteLLM's cost map as a dict: ``$TIERED_ROUTER_COST_MAP``, else the installed
    LiteLLM's, else the bundled Bedrock snapshot."""
    override = os.environ.get("TIERED_ROUTER_COST_MAP")
    path = Path(override) if override else (litellm_cost_map_path() or _SNAPSHOT)
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _per_mtok(entry: dict, key: str) -> Decimal | None:
    value = entry.get(key)
    if value is None:
        return None
    # str() first: Decimal(3e-06) would carry the binary float's noise.
    return (Decimal(str(value)) * MTOK).normalize()


_CHAT_MODES = (None, "chat", "completion", "responses")


def _entries(table: Mapping[str, dict], model_id: str, region: str | None) -> list[tuple[str, dict]]:
    """The cost map's entries that may price ``model_id``, best first: Bedrock's own
    entries (a name such as ``gpt-4o`` is also another provider's), then any other
    provider's (the eval harness prices recorded outcomes of models Bedrock does not
    serve), never an entry of a model that does not chat (an embedding, a reranker)."""
    found = [(name, table[name]) for name in _candidates(model_id, region) if isinstance(table.get(name), dict)]
    found = [(name, entry) for name, entry in found if entry.get("mode") in _CHAT_MODES]
    return sorted(found, key=lambda item: not str(item[1].get("litellm_provider") or "bedrock").startswith("bedrock"))


def _candidates(model_id: str, region: str | None = None) -> list[str]:
    """The cost map's names for a Bedrock model id, most specific first: the region's own
    entry (``bedrock/<region>/<id>``; an ARN's region is its own), the id as given, an
    ARN's resource name (an inference profile's ``us.`` id is priced as that profile),
    then the id without its profile prefix: the region's entry for it, then its own."""
    bare = model_id.split("/")[-1]
    if model_id.startswith("arn:"):
        region = model_id.split(":")[3] or region
    names = [f"bedrock/{region}/{model_id}", f"bedrock/{region}/{bare}"] if region else []
    names += [model_id, f"bedrock/{model_id}", f"bedrock/converse/{model_id}", bare, f"bedrock/{bare}"]
    for prefix in _PROFILE_PREFIXES:
        if bare.startswith(prefix):
            if region:  # the region's own price for the model before its commercial one
                names.append(f"bedrock/{region}/{bare[len(prefix):]}")
            names.append(bare[len(prefix):])
    return list(dict.fromkeys(names))


def _on_demand_entry(table: Mapping[str, dict], model_id: str,
                     region: str | None) -> tuple[int, str, dict] | None:
    """(rank among ``_entries``, name, entry) of the entry that prices ``model_id`` on demand."""
    for rank, (name, entry) in enumerate(_entries(table, model_id, region)):
        if entry.get("input_cost_per_token") is not None:
            return rank, name, entry
    return None


def _profile_fallback(model_id: str, region: str | None, name: str) -> bool:
    """Whether ``name`` is the base model's entry standing in for a geographic profile id
    (``apac.x`` priced at ``x``) that the map does not list."""
    bare = model_id.split("/")[-1]
    for prefix in _PROFILE_PREFIXES:
        if bare.startswith(prefix):
            base = bare[len(prefix):]
            return prefix not in _NO_PREMIUM_PREFIXES and name in (base, f"bedrock/{region}/{base}")
    return False


def lookup_price(model_id: str, cost_map: Mapping[str, dict] | None = None, *,
                 region: str | None = None) -> Price | None:
    """The cost map's price for a Bedrock model id (in ``region``: its own price where the
    map lists one), or ``None`` when it has none.

    A geographic profile id the map does not list (``apac.<model>``) is priced at the base
    model's entry, and a warning says so once: Bedrock may charge such a profile a premium
    (the ``us.``/``eu.`` entries of some models are 10 % dearer) that this price misses."""
    table = load_cost_map() if cost_map is None else cost_map
    found = _on_demand_entry(table, model_id, region)
    if found is None:
        return None
    _, name, entry = found
    if _profile_fallback(model_id, region, name):
        _warn_once(("profile", model_id, name),
                   "no cost-map entry for inference profile %r: priced at the base model's entry 'litellm:%s'; "
                   "a regional-profile premium Bedrock may charge is missing (us./eu. profiles of some models "
                   "cost 10%% more): set the tier's price: to price it exactly", model_id, name)
    return _entry_price(entry, "", f"litellm:{name}")


def lookup_batch_price(model_id: str, cost_map: Mapping[str, dict] | None = None, *,
                       region: str | None = None) -> Price | None:
    """The cost map's batch-inference price (``*_batches`` keys), or ``None`` when it has none.

    Only the entry that prices ``model_id`` on demand (or a more specific one) may give it:
    a region's or a profile's own entry without batch rates has no batch price here (the
    caller discounts its on-demand price), never the commercial base model's batch rate."""
    table = load_cost_map() if cost_map is None else cost_map
    on_demand = _on_demand_entry(table, model_id, region)
    last = on_demand[0] if on_demand is not None else None
    for rank, (name, entry) in enumerate(_entries(table, model_id, region)):
        if last is not None and rank > last:
            break
        if entry.get("input_cost_per_token_batches") is not None \
                and entry.get("output_cost_per_token_batches") is not None:
            return _with_long_context(_entry_price(entry, "_batches", f"litellm-batch:{name}"),
                                      _entry_price(entry, "", f"litellm:{name}"))
    return None


def _with_long_context(batch: Price, on_demand: Price) -> Price:
    """A batch price with the on-demand long-context rates at the batch/on-demand input
    ratio (the map gives few long-context batch rates; a long prompt costs more in a job too)."""
    if not on_demand.above or not on_demand.input_per_mtok or batch.input_per_mtok is None:
        return batch
    factor = batch.input_per_mtok / on_demand.input_per_mtok
    return dataclasses.replace(batch, above=tuple((threshold, longer.scaled(factor))
                                                  for threshold, longer in on_demand.above))


def _entry_price(entry: Mapping[str, Any], suffix: str, source: str) -> Price:
    """A cost-map entry's rates (``suffix`` "_batches": its batch rates) per million tokens,
    with its long-context rates (``*_above_200k_tokens``) for on-demand calls."""
    base = Price(
        input_per_mtok=_per_mtok(entry, f"input_cost_per_token{suffix}"),
        output_per_mtok=_per_mtok(entry, f"output_cost_per_token{suffix}"),
        cache_read_per_mtok=_per_mtok(entry, f"cache_read_input_token_cost{suffix}"),
        cache_write_per_mtok=_per_mtok(entry, f"cache_creation_input_token_cost{suffix}"),
        source=source,
        cache_write_1h_per_mtok=None if suffix else _per_mtok(entry, "cache_creation_input_token_cost_above_1hr"),
    )
    if suffix:
        return base
    above = []
    for key in entry:
        match = _ABOVE.match(key)
        if match is None or entry[key] is None:
            continue
        size = match.group(1)
        threshold = int(size[:-1]) * 1000 if size.endswith("k") else int(size)

        def rate(name: str, fallback: Decimal | None) -> Decimal | None:
            # as LiteLLM prices it: a rate the entry does not give above the threshold is its base rate
            given = _per_mtok(entry, f"{name}_above_{size}_tokens")
            return given if given is not None else fallback

        write = rate("cache_creation_input_token_cost", base.cache_write_per_mtok)
        hour = _per_mtok(entry, f"cache_creation_input_token_cost_above_1hr_above_{size}_tokens")
        above.append((threshold, Price(rate("input_cost_per_token", base.input_per_mtok),
                                       rate("output_cost_per_token", base.output_per_mtok),
                                       rate("cache_read_input_token_cost", base.cache_read_per_mtok), write,
                                       source=f"{source} above {size} prompt tokens",
                                       cache_write_1h_per_mtok=hour if hour is not None else
                                       base.cache_write_1h_per_mtok)))
    if not above:
        return base
    return dataclasses.replace(base, above=tuple(sorted(above, key=lambda item: item[0])))


# an on-demand long-context input rate: ``input_cost_per_token_above_200k_tokens`` (not a
# service tier's ``..._priority`` or a batch's ``..._batches``)
_ABOVE = re.compile(r"^input_cost_per_token_above_(\d+k?)_tokens$")


def override_price(override: Price, model_id: str, region: str | None = None,
                   cost_map: Mapping[str, dict] | None = None) -> Price:
    """A tier's ``price:`` override, completed from the cost map's entry for ``model_id``
    at that entry's ratios: missing cache rates (cache read = the override's input rate x
    the map's read / input rate; the same for writes), and the long-context rates of a
    model the map prices above a prompt length (Claude's prompts above 200k tokens: the
    override's rates x the map's long / base rates). A rate the override gives is kept as
    given. A model the map does not price keeps its cache rates unknown, so ``Price.cost``
    bills cache tokens at the input rate, and a warning says so once."""
    complete = override.cache_read_per_mtok is not None and override.cache_write_per_mtok is not None \
        and override.cache_write_1h_per_mtok is not None
    table = load_cost_map() if cost_map is None else cost_map
    found = _on_demand_entry(table, model_id, region)
    if found is None:
        if not complete:
            _warn_once(("cache", model_id),
                       "tier price override for %r gives no cache rates and the cost map does not price the model: "
                       "cache reads and writes will be priced at the input rate (add cache_read_per_mtok and "
                       "cache_write_per_mtok to price: to price them exactly)", model_id)
        return override
    _, name, entry = found
    listed = _entry_price(entry, "", f"litellm:{name}")
    price = override if complete else _cache_rates_from(override, listed, name)
    if override.above or not listed.above:
        return price
    return dataclasses.replace(price, above=tuple((threshold, _at_ratio(price, listed, longer))
                                                  for threshold, longer in listed.above),
                               source=f"{price.source} (long-context rates at litellm:{name}'s ratios)")


def _cache_rates_from(override: Price, listed: Price, name: str) -> Price:
    """``override`` with each cache rate it does not give at ``listed``'s ratio to its input rate."""
    assert override.input_per_mtok is not None

    def scaled(given: Decimal | None, rate: Decimal | None) -> Decimal | None:
        return given if given is not None else _scaled(override.input_per_mtok, listed.input_per_mtok, rate)

    read = scaled(override.cache_read_per_mtok, listed.cache_read_per_mtok)
    write = scaled(override.cache_write_per_mtok, listed.cache_write_per_mtok)
    hour = scaled(override.cache_write_1h_per_mtok, listed.cache_write_1h_per_mtok)
    if (read, write, hour) == (override.cache_read_per_mtok, override.cache_write_per_mtok,
                               override.cache_write_1h_per_mtok):
        return override
    return dataclasses.replace(override, cache_read_per_mtok=read, cache_write_per_mtok=write,
                               cache_write_1h_per_mtok=hour,
                               source=f"{override.source} (cache rates at litellm:{name}'s ratios)")


def _scaled(value: Decimal | None, base: Decimal | None, target: Decimal | None) -> Decimal | None:
    """``value`` at ``target``'s ratio to ``base``; None when one is unknown (or ``base`` is 0)."""
    if value is None or not base or target is None:
        return None
    return (value * target / base).normalize()


def _at_ratio(price: Price, listed: Price, longer: Price) -> Price:
    """``price``'s long-context counterpart: each rate times ``longer``'s / ``listed``'s."""
    def rate(mine: Decimal | None, base: Decimal | None, long: Decimal | None) -> Decimal | None:
        found = _scaled(mine, base, long)
        return mine if found is None else found

    return Price(rate(price.input_per_mtok, listed.input_per_mtok, longer.input_per_mtok),
                 rate(price.output_per_mtok, listed.output_per_mtok, longer.output_per_mtok),
                 rate(price.cache_read_per_mtok, listed.cache_read_per_mtok, longer.cache_read_per_mtok),
                 rate(price.cache_write_per_mtok, listed.cache_write_per_mtok, longer.cache_write_per_mtok),
                 # "override above 200k prompt tokens"
                 source=price.source.split(" (")[0] + longer.source.removeprefix(listed.source),
                 cache_write_1h_per_mtok=rate(price.cache_write_1h_per_mtok, listed.cache_write_1h_per_mtok,
                                              longer.cache_write_1h_per_mtok))
