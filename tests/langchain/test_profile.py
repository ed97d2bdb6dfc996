"""``TieredChatBedrock.profile``: what LangChain may assume of whichever tier answers."""

from __future__ import annotations

from langchain_tiered_router.langchain import TieredChatBedrock
from langchain_tiered_router.langchain._profile import ladder_profile

from .scripts import CHEAP, FRONTIER, MID, config

MICRO = {"name": "Nova Micro", "release_date": "2024-12-03", "max_input_tokens": 128000, "max_output_tokens": 10000,
         "image_inputs": False, "tool_calling": True, "temperature": True}
SONNET = {"name": "Claude Sonnet 4.5", "status": "deprecated", "max_input_tokens": 200000, "max_output_tokens": 64000,
          "image_inputs": True, "tool_calling": True, "structured_output": True, "temperature": True,
          "reasoning_effort_levels": ["low", "high"]}


def test_a_capability_holds_only_when_every_tier_has_it_and_a_limit_is_the_smallest() -> None:
    assert ladder_profile([MICRO, SONNET]) == {
        "name": "tiered: Nova Micro > Claude Sonnet 4.5",
        "max_input_tokens": 128000, "max_output_tokens": 10000,
        "image_inputs": False,  # one tier says no
        "tool_calling": True, "temperature": True,  # every tier says yes
        # structured_output: one tier does not say, so the ladder does not claim it;
        # release dates, status and effort levels describe one model, not the ladder
    }


def test_a_tier_without_a_profile_leaves_the_ladder_without_one() -> None:
    assert ladder_profile([MICRO, {}]) is None
    assert ladder_profile([MICRO, None]) is None
    assert ladder_profile([]) is None


def test_the_chat_models_profile_is_its_tiers_and_a_given_one_stands() -> None:
    llm = TieredChatBedrock(config=config("http://127.0.0.1:9"), telemetry=False)
    tiers = [llm.tier_models[name].profile for name in ("cheap", "mid", "frontier")]
    assert [t["name"] for t in tiers] and llm.profile == ladder_profile(tiers)
    assert llm.profile["max_input_tokens"] == min(t["max_input_tokens"] for t in tiers)
    assert llm.profile["tool_calling"] is True
    assert {llm.tier_models[n].model_id for n in ("cheap", "mid", "frontier")} == {CHEAP, MID, FRONTIER}

    given = TieredChatBedrock(config=config("http://127.0.0.1:9"), telemetry=False, profile={"max_input_tokens": 8000})
    assert given.profile == {"max_input_tokens": 8000}


def test_a_tier_langchain_has_no_data_for_leaves_the_profile_unset() -> None:
    ladder = config("http://127.0.0.1:9")
    ladder["tiers"][0] = {**ladder["tiers"][0], "model_id": "example.unknown-model-v1:0", "provider": "amazon",
                          "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.4}}
    assert TieredChatBedrock(config=ladder, telemetry=False).profile is None


def test_a_model_rebuilt_on_another_ladder_gets_that_ladders_profile() -> None:
    """``configurable_fields`` rebuilds the model from its fields, the derived profile
    among them: a new ladder must not keep the old one's limits."""
    from langchain_core.runnables import ConfigurableField

    small = config("http://127.0.0.1:9")
    big = config("http://127.0.0.1:9",
                 tiers=[{"name": "mid", "model_id": MID}, {"name": "frontier", "model_id": FRONTIER}])
    llm = TieredChatBedrock(config=small, telemetry=False).configurable_fields(
        config=ConfigurableField(id="ladder"))
    rebuilt, _ = llm._prepare({"configurable": {"ladder": big}})  # what a call with that config runs
    assert llm.default.profile["max_input_tokens"] == 128000  # nova-micro's
    assert rebuilt.profile["max_input_tokens"] == 200000  # Claude's, the smaller of the new two
