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
