"""Prices come from LiteLLM's bundled cost map as Decimal; unknown is None, never 0."""

from __future__ import annotations

import json
from decimal import Decimal

from langchain_tiered_router.core.pricing import Price, Usage, load_cost_map, lookup_price


def test_nova_micro_price_matches_the_cost_map():
    price = lookup_price("amazon.nova-micro-v1:0")
    entry = load_cost_map()["amazon.nova-micro-v1:0"]
    assert price.input_per_mtok == Decimal(str(entry["input_cost_per_token"])) * 1_000_000
    assert price.input_per_mtok == Decimal("0.035")
    assert price.output_per_mtok == Decimal("0.14")
    assert price.cost(Usage(1000, 500)) == Decimal("0.000105")


def test_inference_profile_prefix_and_cache_rates():
    price = lookup_price("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert price is not None and price.source.startswith("litellm:")
    assert price.cache_read_per_mtok is not None and price.cache_write_per_mtok is not None
    usage = Usage(input_tokens=100, output_tokens=10, cache_read_tokens=1000, cache_write_tokens=200)
    expected = (100 * price.input_per_mtok + 10 * price.output_per_mtok + 1000 * price.cache_read_per_mtok
                + 200 * price.cache_write_per_mtok) / Decimal(1_000_000)
    assert price.cost(usage) == expected


def test_unknown_model_has_no_price_and_unknown_rates_cost_none():
    assert lookup_price("acme.unknown-model-v9") is None
    assert Price(None, Decimal(1)).cost(Usage(1, 1)) is None


def test_cost_map_is_read_as_a_file_without_importing_litellm(tmp_path, monkeypatch):
    table = {"acme.model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}
    path = tmp_path / "map.json"
    path.write_text(json.dumps(table))
    assert lookup_price("acme.model", table).output_per_mtok == Decimal(2)


def test_the_bundled_snapshot_prices_like_litellms_own_map():
    """An install without LiteLLM (the langchain extra alone) prices from the snapshot."""
    import json
    from pathlib import Path

    import langchain_tiered_router
    from langchain_tiered_router.core.pricing import litellm_cost_map_path

    snapshot = json.loads((Path(langchain_tiered_router.__file__).parent / "data" / "bedrock_prices.json").read_text())
    full = json.loads(litellm_cost_map_path().read_text())
    for model_id in ("amazon.nova-micro-v1:0", "amazon.nova-pro-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0",
                     "mistral.mixtral-8x7b-instruct-v0:1", "us.amazon.nova-lite-v1:0"):
        from_snapshot = lookup_price(model_id, snapshot)
        assert from_snapshot is not None and from_snapshot == lookup_price(model_id, full), model_id


SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
TABLE = {  # the shapes of LiteLLM's entries: a base price, a cross-region profile's, a region's own
    SONNET: {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05, "litellm_provider": "bedrock_converse",
             "mode": "chat"},
    f"us.{SONNET}": {"input_cost_per_token": 3.3e-06, "output_cost_per_token": 1.65e-05,
                     "litellm_provider": "bedrock_converse", "mode": "chat"},
    f"bedrock/us-gov-west-1/{SONNET}": {"input_cost_per_token": 3.6e-06, "output_cost_per_token": 1.8e-05,
                                        "litellm_provider": "bedrock", "mode": "chat"},
    "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "litellm_provider": "openai",
               "mode": "chat"},
    "cohere.rerank-v3-5:0": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                             "litellm_provider": "bedrock", "mode": "rerank"},
}


def test_an_inference_profile_arn_is_priced_as_its_profile_and_in_its_own_region():
    profile = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET}"
    assert lookup_price(profile, TABLE).input_per_mtok == Decimal("3.3")  # not the base model's 3
    assert lookup_price(f"us.{SONNET}", TABLE).input_per_mtok == Decimal("3.3")
    gov = f"arn:aws:bedrock:us-gov-west-1:123456789012:foundation-model/{SONNET}"
    assert lookup_price(gov, TABLE, region="us-east-1").input_per_mtok == Decimal("3.6")  # the ARN's region


def test_a_region_with_its_own_price_is_priced_at_it():
    assert lookup_price(SONNET, TABLE, region="us-gov-west-1").input_per_mtok == Decimal("3.6")
    assert lookup_price(SONNET, TABLE, region="us-east-1").input_per_mtok == Decimal("3")  # none of its own
    assert lookup_price(SONNET, TABLE).input_per_mtok == Decimal("3")


def test_a_profile_prefixed_id_without_an_entry_of_its_own_is_priced_at_its_regions_price():
    """``us-gov.`` / ``apac.`` ids were priced at the model's commercial price, found before
    the region's own entry for it (GovCloud's Haiku 4.5: $1 where the region's is $1.2)."""
    table, checked = load_cost_map(), 0
    for model, region in (("anthropic.claude-haiku-4-5-20251001-v1:0", "us-gov-west-1"),
                          ("amazon.nova-pro-v1:0", "us-gov-west-1"), ("deepseek.v3.2", "ap-northeast-1")):
        own = table.get(f"bedrock/{region}/{model}")
        if own is None:  # a cost map without it: nothing to check here
            continue
        prefix = "us-gov." if region.startswith("us-gov") else "apac."
        assert f"{prefix}{model}" not in table
        price = lookup_price(f"{prefix}{model}", table, region=region)
        assert price.input_per_mtok == Decimal(str(own["input_cost_per_token"])) * 1_000_000, (model, price)
        assert price.source == f"litellm:bedrock/{region}/{model}"
        checked += 1
    assert checked >= 2  # the pinned LiteLLM's map lists these regions' prices


def test_models_that_do_not_chat_have_no_tier_price_and_bedrocks_entry_comes_first():
    assert lookup_price("cohere.rerank-v3-5:0", TABLE) is None  # a reranker priced at 0 is no tier
    assert lookup_price("gpt-4o", TABLE).input_per_mtok == Decimal("2.5")  # recorded outcomes of other providers
    both = {**TABLE, "bedrock/gpt-4o": {**TABLE["gpt-4o"], "input_cost_per_token": 9e-06, "litellm_provider": "bedrock"}}
    assert lookup_price("gpt-4o", both).input_per_mtok == Decimal("9")


def test_the_router_prices_its_tiers_in_its_region():
    from langchain_tiered_router.core.config import load_config

    config = load_config({"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                                    {"name": "top", "model_id": "amazon.nova-pro-v1:0"}],
                          "region_name": "us-gov-west-1", "telemetry": {"sinks": []}})
    entry = load_cost_map()["bedrock/us-gov-west-1/amazon.nova-pro-v1:0"]
    price = config.price_of(config.tiers[1])
    assert price.input_per_mtok == Decimal(str(entry["input_cost_per_token"])) * 1_000_000
    assert price.input_per_mtok != lookup_price("amazon.nova-pro-v1:0").input_per_mtok


def test_a_calls_cost_splits_into_parts_that_add_up_to_it():
    """A gateway's cost breakdown (LiteLLM's input/output/cache headers) is these parts:
    they must sum to the billed cost exactly, the cache rates falling back as ``cost`` does."""
    with_cache = Price(Decimal("0.8"), Decimal("4"), Decimal("0.08"), Decimal("1"))
    without = Price(Decimal("3"), Decimal("15"))
    for price in (with_cache, without):
        for usage in (Usage(0, 0), Usage(1200, 35), Usage(7, 3, cache_read_tokens=500, cache_write_tokens=64)):
            parts = price.parts(usage)
            assert sum(parts.values()) == price.cost(usage)
    parts = without.parts(Usage(10, 2, cache_read_tokens=100))
    assert parts == {"input": Decimal("0.00003"), "output": Decimal("0.00003"), "cache_read": Decimal("0.0003"),
                     "cache_write": Decimal(0)}
    assert Price(None, Decimal("1")).parts(Usage(1, 1)) is None


# ---- batch prices, overrides, prompt routers, profile fallbacks ---------------------

GOV_SONNET_TABLE = {  # a base entry with batch rates, a region's own entry without
    SONNET: {**TABLE[SONNET], "input_cost_per_token_batches": 1.5e-06, "output_cost_per_token_batches": 7.5e-06},
    f"bedrock/us-gov-west-1/{SONNET}": TABLE[f"bedrock/us-gov-west-1/{SONNET}"],
}


def test_a_batch_price_comes_from_the_entry_that_prices_the_tier_on_demand():
    """GovCloud's Sonnet was billed on demand at its own $3.6 but in batch at the commercial
    entry's $1.5: the region's entry has no batch rate, so there is no batch price to look up
    (the caller discounts the on-demand price), never a less specific entry's."""
    from langchain_tiered_router.core.pricing import lookup_batch_price

    assert lookup_batch_price(SONNET, GOV_SONNET_TABLE, region="us-gov-west-1") is None
    assert lookup_batch_price(SONNET, GOV_SONNET_TABLE, region="us-east-1").input_per_mtok == Decimal("1.5")


def test_batch_pricing_discounts_the_regional_and_profile_on_demand_price():
    from langchain_tiered_router.batch.pricing import BatchPricing
    from langchain_tiered_router.core.config import RouterConfig
    from langchain_tiered_router.core.tiers import Ladder

    for region, model_id in (("us-gov-west-1", SONNET), ("eu-west-1", "eu.amazon.nova-micro-v1:0")):
        config = RouterConfig.model_validate({"tiers": [{"name": "t", "model_id": model_id}], "region_name": region})
        ladder = Ladder.from_config(config)
        on_demand, batch = ladder[0].price, BatchPricing(config, ladder).batch_price("t")
        assert batch.input_per_mtok == on_demand.input_per_mtok / 2, (region, model_id, batch)
        assert batch.output_per_mtok == on_demand.output_per_mtok / 2, (region, model_id, batch)


ROUTER_ARN = "arn:aws:bedrock:us-east-1:123456789012:prompt-router/negotiated"


def test_a_prompt_router_bills_the_routed_model_and_its_override_stands_for_unknown_ones():
    """Bedrock bills a prompt router's answer at the model it routed to. A router ARN has no
    price in the map, so the tier needs a ``price:`` to load; that price stands only for a
    routed model the map does not know."""
    from langchain_tiered_router.core import RouteRequest, TierAnswer
    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.testing import ScriptedBackend

    config = {"tiers": [{"name": "routed", "model_id": ROUTER_ARN, "provider": "amazon",
                         "price": {"input_per_mtok": 0.4, "output_per_mtok": 1.6}}], "telemetry": {"sinks": []}}
    router = build_router(config, observers=[])
    for model_id, expected in (("amazon.nova-pro-v1:0", lookup_price("amazon.nova-pro-v1:0").cost(Usage(1000, 100))),
                               ("vendor.unknown-model-v9:0", (1000 * Decimal("0.4") + 100 * Decimal("1.6")) / 10 ** 6)):
        reply = TierAnswer(text="OK", usage=Usage(1000, 100), model_id=model_id)
        result = router.route(RouteRequest("hello"), ScriptedBackend({"routed": reply}))
        assert result.attempts[0].cost_usd == expected, model_id


def test_a_prompt_router_without_an_override_prices_the_routed_model_in_the_routers_region():
    from langchain_tiered_router.core import TierAnswer
    from langchain_tiered_router.core.engine import Router
    from langchain_tiered_router.core.tiers import Tier

    gov_router = "arn:aws:bedrock:us-gov-west-1:123456789012:prompt-router/mapped"
    tier = Tier("routed", gov_router, Price(Decimal("9"), Decimal("9"), source="litellm:" + gov_router))
    reply = TierAnswer(text="OK", usage=Usage(1000, 100), model_id="amazon.nova-pro-v1:0")
    gov = lookup_price("amazon.nova-pro-v1:0", region="us-gov-west-1")
    assert gov != lookup_price("amazon.nova-pro-v1:0")  # the pinned map lists GovCloud's own price
    assert Router._price(None, tier, reply) == gov.cost(reply.usage)  # _price reads nothing of the router


def test_an_override_without_cache_rates_takes_the_cost_maps_cache_ratios():
    from langchain_tiered_router.core.config import RouterConfig

    listed = lookup_price(SONNET)
    config = RouterConfig.model_validate({"tiers": [
        {"name": "f", "model_id": SONNET, "price": {"input_per_mtok": 2.0, "output_per_mtok": 10.0}},
        {"name": "g", "model_id": SONNET, "price": {"input_per_mtok": 2.0, "output_per_mtok": 10.0,
                                                      "cache_read_per_mtok": 0.5}}]})
    price = config.price_of(config.tiers[0])
    assert (price.input_per_mtok, price.output_per_mtok) == (Decimal(2), Decimal(10))
    assert price.cache_read_per_mtok == 2 * listed.cache_read_per_mtok / listed.input_per_mtok == Decimal("0.2")
    assert price.cache_write_per_mtok == 2 * listed.cache_write_per_mtok / listed.input_per_mtok == Decimal("2.5")
    given = config.price_of(config.tiers[1])  # a rate the override gives is used as given
    assert given.cache_read_per_mtok == Decimal("0.5") and given.cache_write_per_mtok == Decimal("2.5")


def test_an_override_keeps_the_long_context_rates_at_the_cost_maps_ratios():
    """A negotiated rate for Sonnet 4.5 dropped its long-context rates: a 300k-token
    prompt was billed at the base rates, half what Bedrock charges for its input."""
    from langchain_tiered_router.core.config import RouterConfig

    listed = lookup_price(SONNET)
    config = RouterConfig.model_validate({"tiers": [
        {"name": "f", "model_id": SONNET, "price": {"input_per_mtok": 2.7, "output_per_mtok": 13.5}},
        {"name": "n", "model_id": "amazon.nova-pro-v1:0", "price": {"input_per_mtok": 1, "output_per_mtok": 2}}]})
    price = config.price_of(config.tiers[0])
    long, short = Usage(300_000, 1000, cache_read_tokens=2000), Usage(150_000, 1000, cache_read_tokens=2000)
    assert price.cost(long) == listed.cost(long) * Decimal("0.9")  # every rate 0.9 of the list, long ones too
    assert price.cost(short) == listed.cost(short) * Decimal("0.9")
    assert price.cost(long) == (300_000 * Decimal("5.4") + 1000 * Decimal("20.25") + 2000 * Decimal("0.54")) / 10**6
    assert "long-context rates" in price.source and price.above[0][1].source == "override above 200k prompt tokens"
    assert config.price_of(config.tiers[1]).above == ()  # a model the map prices at one rate keeps one


def test_an_override_of_an_unmapped_model_without_cache_rates_warns_once_at_load(caplog):
    from langchain_tiered_router.core.config import load_config

    tiers = [{"name": "own", "model_id": "acme.private-model-v7", "price": {"input_per_mtok": 1, "output_per_mtok": 2}}]
    with caplog.at_level("WARNING", logger="langchain_tiered_router"):
        config = load_config({"tiers": tiers, "telemetry": {"sinks": []}})
        load_config({"tiers": tiers, "telemetry": {"sinks": []}})
    warned = [r.getMessage() for r in caplog.records if "acme.private-model-v7" in r.getMessage()]
    assert len(warned) == 1 and "cache" in warned[0] and "input rate" in warned[0]
    price = config.price_of(config.tiers[0])
    assert price.cache_read_per_mtok is None and price.cost(Usage(0, 0, cache_read_tokens=10**6)) == Decimal(1)


def test_a_profile_id_priced_at_its_base_models_entry_warns_once(caplog):
    table = {SONNET: TABLE[SONNET], f"us.{SONNET}": TABLE[f"us.{SONNET}"], f"global.{SONNET}": TABLE[SONNET]}
    with caplog.at_level("WARNING", logger="langchain_tiered_router"):
        assert lookup_price(f"apac.{SONNET}", table).input_per_mtok == Decimal(3)  # still priced
        lookup_price(f"apac.{SONNET}", table)
        lookup_price(f"us.{SONNET}", table)  # its own entry: nothing to say
        lookup_price(f"global.{SONNET}", table)  # its own entry
    warned = [r.getMessage() for r in caplog.records if SONNET in r.getMessage()]
    assert len(warned) == 1, warned
    assert f"apac.{SONNET}" in warned[0] and f"litellm:{SONNET}" in warned[0]
    assert "premium" in warned[0] and "price:" in warned[0]


def test_an_application_inference_profile_is_priced_from_its_base_model_id():
    from langchain_tiered_router.core.config import load_config

    app = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    haiku = "anthropic.claude-3-5-haiku-20241022-v1:0"
    config = load_config({"tiers": [{"name": "a", "model_id": app, "provider": "anthropic",
                                     "model_kwargs": {"base_model_id": haiku}}], "telemetry": {"sinks": []}})
    price = config.price_of(config.tiers[0])
    assert price is not None and price.input_per_mtok == lookup_price(haiku, region="us-east-1").input_per_mtok


def test_a_prompt_past_200k_tokens_pays_the_long_context_rates_for_every_token():
    """Claude Sonnet 4.5 on Bedrock: a prompt above 200k tokens (cached ones included) is
    billed at twice the input and 1.5 times the output rate, as LiteLLM prices it; at
    200k exactly, the normal rates."""
    import litellm

    price = lookup_price("anthropic.claude-sonnet-4-5-20250929-v1:0")
    long = Usage(249_750, 19)
    assert price.cost(long) == Decimal("1.4989275")
    in_cost, out_cost = litellm.cost_per_token(model="bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0",
                                               prompt_tokens=249_750, completion_tokens=19)
    assert abs(float(price.cost(long)) - (in_cost + out_cost)) < 1e-9
    assert price.cost(Usage(200_000, 10)) == (200_000 * 3 + 10 * 15) / Decimal(1_000_000)
    # the threshold counts cached prompt tokens too: 150k read from the cache + 60k new
    mixed = Usage(60_000, 100, cache_read_tokens=150_000)
    assert price.cost(mixed) == (60_000 * 6 + 100 * Decimal("22.5") + 150_000 * Decimal("0.6")) / Decimal(1_000_000)
    assert sum(price.parts(mixed).values()) == price.cost(mixed)
    # a profile's own long-context rates (10 % dearer), and a model without any: one rate
    profile = lookup_price("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert profile.cost(long) == (249_750 * Decimal("6.6") + 19 * Decimal("24.75")) / Decimal(1_000_000)
    assert lookup_price("amazon.nova-pro-v1:0").above == ()


def test_hour_long_cache_writes_pay_their_own_rate():
    price = lookup_price("anthropic.claude-sonnet-4-5-20250929-v1:0")
    five_minutes = Usage(10, 20, cache_write_tokens=2000)
    an_hour = Usage(10, 20, cache_write_tokens=2000, cache_write_1h_tokens=2000)
    assert price.cost(five_minutes) == Decimal("0.00783")
    assert price.cost(an_hour) == Decimal("0.01233")  # 2,000 x $6 instead of $3.75 per million
    assert sum(price.parts(an_hour).values()) == price.cost(an_hour)
    # an override without the rate takes the cost map's ratio; one that gives it keeps it
    from langchain_tiered_router.core.pricing import override_price
    half = override_price(Price(Decimal("1.5"), Decimal("7.5")), "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert half.cache_write_1h_per_mtok == Decimal("3")
    both = override_price(Price(Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75")),
                          "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert both.cache_write_1h_per_mtok == Decimal("6")  # read and write given, the hour-long rate not
    given = override_price(Price(Decimal("1.5"), Decimal("7.5"), Decimal("0.15"), Decimal("1.875"),
                                 cache_write_1h_per_mtok=Decimal("4")), "anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert given.cost(an_hour) == (10 * Decimal("1.5") + 20 * Decimal("7.5") + 2000 * 4) / Decimal(1_000_000)


def test_the_bundled_snapshot_prices_long_prompts_and_hour_long_writes_as_the_cost_map_does(monkeypatch):
    """An install without LiteLLM prices from the snapshot: the same rates."""
    from pathlib import Path

    from langchain_tiered_router.core import pricing

    with_map = lookup_price("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    snapshot = Path(pricing.__file__).resolve().parent.parent / "data" / "bedrock_prices.json"
    monkeypatch.setenv("TIERED_ROUTER_COST_MAP", str(snapshot))
    pricing.load_cost_map.cache_clear()
    try:
        from_snapshot = lookup_price("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    finally:
        monkeypatch.delenv("TIERED_ROUTER_COST_MAP")
        pricing.load_cost_map.cache_clear()
    usage = Usage(240_000, 500, cache_write_tokens=3000, cache_write_1h_tokens=1000)
    assert from_snapshot.cost(usage) == with_map.cost(usage) and from_snapshot.above


def test_a_batch_price_keeps_the_long_context_rates_at_the_batch_ratio():
    """Sonnet 4.5's batch rates are half its on-demand ones; a job's prompt above 200k
    tokens pays half the long-context rates (not the normal batch rates)."""
    from langchain_tiered_router.core.pricing import lookup_batch_price

    batch = lookup_batch_price("anthropic.claude-sonnet-4-5-20250929-v1:0")
    long = Usage(300_000, 1000)
    assert batch.cost(long) == lookup_price("anthropic.claude-sonnet-4-5-20250929-v1:0").cost(long) / 2
    assert batch.cost(Usage(1000, 10)) == (1000 * Decimal("1.5") + 10 * Decimal("7.5")) / Decimal(1_000_000)
