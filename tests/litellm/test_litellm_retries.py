"""A proxy whose ``router_settings`` leave LiteLLM's own retries and cooldowns on (its
defaults; the README's config turns the retries off): the route's retry policy is still
the one that applies, on both paths. Before, LiteLLM's router retried each tier call
and then the whole routed call: a throttled ladder made 45 tier calls for the YAML's 6,
and the requests after it failed while the tiers cooled down."""

from __future__ import annotations

from typing import Iterator

import openai
import pytest

from ._proc import litellm_proxy
from .conftest import CHEAP, FRONTIER, MID, proxy_config, router_yaml

pytestmark = pytest.mark.proxy


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, emulator) -> Iterator[str]:
    work = tmp_path_factory.mktemp("retries")
    config = proxy_config(emulator.url, {"tiered": router_yaml(work / "one_pass.yaml", telemetry={"sinks": []}),
                                         "tiered-provider": router_yaml(work / "provider.yaml",
                                                                        telemetry={"sinks": []})},
                          master_key="sk-ops")
    config["router_settings"] = {}  # LiteLLM's defaults
    (routed,) = [m for m in config["model_list"] if m["model_name"] == "tiered-provider"]
    routed["litellm_params"]["tiered_router_one_pass"] = False
    with litellm_proxy(config, work) as started:
        yield started["url"]


@pytest.mark.parametrize("model", ["tiered", "tiered-provider"])
def test_a_throttled_ladder_is_tried_as_its_yaml_says_and_the_next_request_is_served(proxy, emulator, model):
    client = openai.OpenAI(base_url=proxy, api_key="sk-ops", max_retries=0, timeout=60)
    emulator.clear_requests()
    emulator.inject("throttle", times=None)
    try:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    finally:
        emulator.clear_faults()
    # retry.max_retries 1: two tries of each tier, no more
    assert [r.model_id for r in emulator.requests] == [CHEAP, CHEAP, MID, MID, FRONTIER, FRONTIER]
    for _ in range(3):
        response = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi again"}])
        assert response.choices[0].message.content
