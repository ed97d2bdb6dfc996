"""A key's ``max_budget`` on a ``tiered`` model that carries per-token prices in its
``model_info`` (the README's advice): LiteLLM holds the key's budget for it as it does for a
priced deployment, and still charges what the route cost.

LiteLLM reserves a request's worst-case cost against the key's budget before the call
(``budget_reservation.reserve_budget_for_request``) only when it can price the model group
(``estimate_request_max_cost``, from the group's ``model_info`` or its cost map). It has no
price for ``tiered_router/...``, so with no ``model_info`` prices nothing is held and
concurrent requests of a key near its budget all go through. The prices here are the
ladder's worst case: the sum of its tiers' per-token prices in LiteLLM's cost map (the
prices the router itself charges, ``lookup_price``).

These proxies have no database (Prisma cannot fetch its engine offline): the keys are
``UserAPIKeyAuth`` objects in LiteLLM's ``user_api_key_cache`` (``budget_auth.py``), checked
by LiteLLM's common checks. Without a database LiteLLM registers no spend-tracking callback
(``proxy_server.cost_tracking``), so no spend accrues and a reservation is never settled
down to the request's actual cost: a key's first request holds all its remaining budget
(the worst case, 16384 output tokens, is far above it) and the next one is refused,
although the first cost less than the budget. What is asserted is that hold, the same on
the priced ``tiered`` model as on ``frontier``. Without the prices the ``tiered`` key is
never refused (checked by hand: twelve requests served, 1.6e-4 USD on a 1e-4 budget).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import openai
import pytest

from langchain_tiered_router.core.pricing import MTOK, lookup_price

from . import budget_auth
from ._proc import litellm_proxy
from .conftest import CHEAP, LADDER, MID, proxy_config, router_yaml

pytestmark = pytest.mark.proxy


def ladder_worst_case_prices() -> dict[str, float]:
    """USD per token that no route of the ladder can exceed per token: every tier's price
    added up (a route calls each tier at most once per retry of the YAML's ``retry``)."""
    prices = [lookup_price(tier["model_id"]) for tier in LADDER]
    assert all(p is not None and p.known for p in prices), prices
    return {"input_cost_per_token": float(sum(p.input_per_mtok for p in prices) / MTOK),
            "output_cost_per_token": float(sum(p.output_per_mtok for p in prices) / MTOK)}


PRICES = ladder_worst_case_prices()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, emulator) -> Iterator[str]:
    """One proxy: ``tiered`` (a cascade whose gate refuses cheap's "I don't know") with the
    ladder's worst-case prices in its ``model_info``, the tier deployments beside it."""
    work = tmp_path_factory.mktemp("budget")
    gate = {"kind": "regex", "pattern": "don't know|no idea", "must_match": False, "ignore_case": True}
    config = proxy_config(emulator.url, {"tiered": router_yaml(work / "router.yaml", gates=[gate],
                                                                 telemetry={"sinks": []})},
                          master_key=budget_auth.MASTER_KEY, custom_auth="tests.litellm.budget_auth.user_api_key_auth",
                          custom_auth_run_common_checks=True)
    config["litellm_settings"]["enable_post_custom_auth_checks"] = True
    (tiered,) = [m for m in config["model_list"] if m["model_name"] == "tiered"]
    tiered["model_info"] = dict(PRICES)
    with litellm_proxy(config, work) as started:
        yield started["url"]


def _ask(url: str, key: str, model: str, text: str) -> tuple[int, Any, str]:
    """(status, headers and parsed response or None, error message) of one request."""
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}])
    except openai.APIStatusError as exc:
        return exc.status_code, None, str(exc)
    return raw.status_code, (raw.headers, raw.parse()), ""


def test_a_budgeted_key_is_held_back_on_the_priced_tiered_model_as_on_frontier(proxy):
    """Requests one after another: the first served, the later ones refused by LiteLLM's
    budget check (422 "Budget has been exceeded", naming the key's budget), on ``tiered``
    exactly as on ``frontier``. The first cost less than the budget: what refuses the rest
    is the budget LiteLLM held for a request it could price (no database settles it)."""
    outcomes = {}
    for model, key in (("frontier", "sk-budget-frontier"), ("tiered", "sk-budget-tiered")):
        results = [_ask(proxy, key, model, "what is the capital of Peru?") for _ in range(3)]
        status, served, _ = results[0]
        assert status == 200, results[0]
        headers, response = served
        assert response.choices[0].message.content
        assert 0 < float(headers["x-litellm-response-cost"]) < budget_auth.MAX_BUDGET
        for status, _, error in results[1:]:
            assert status == 422, error
            assert "Budget has been exceeded" in error and f"Max budget: {budget_auth.MAX_BUDGET}" in error, error
        outcomes[model] = [status for status, _, _ in results]
    assert outcomes["tiered"] == outcomes["frontier"] == [200, 422, 422]


@pytest.mark.parametrize("text, tier, called", [
    ("hello", "cheap", [CHEAP]),                             # cheap answers and passes the gate
    ("what is the capital of Peru?", "mid", [CHEAP, MID]),   # cheap says "I don't know": escalate
])
def test_the_priced_tiered_model_charges_what_the_route_cost(proxy, emulator, text, tier, called):
    """The ``model_info`` prices size LiteLLM's reservation only: the cost it charges
    (``x-litellm-response-cost``) is the router's own (``x-tiered-router-cost-usd``), the
    prices of the tiers called, not the worst-case price times the response's tokens."""
    emulator.clear_requests()
    status, served, error = _ask(proxy, "sk-budget-costs", "tiered", text)
    assert status == 200, error
    headers, response = served
    assert headers["x-tiered-router-tier"] == tier
    assert headers["x-tiered-router-escalated"] == str(tier != "cheap").lower()
    assert [r.model_id for r in emulator.requests] == called
    charged, routed = float(headers["x-litellm-response-cost"]), float(headers["x-tiered-router-cost-usd"])
    assert charged > 0 and math.isclose(charged, routed, rel_tol=1e-9), (charged, routed)
    worst_case = (response.usage.prompt_tokens * PRICES["input_cost_per_token"]
                  + response.usage.completion_tokens * PRICES["output_cost_per_token"])
    assert charged < worst_case, (charged, worst_case)
