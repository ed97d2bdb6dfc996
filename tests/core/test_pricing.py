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
