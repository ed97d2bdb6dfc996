"""The chat model as LangChain sees it: callbacks, usage counting, building, rebuilding."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import yaml
from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import ConfigurableField

from langchain_tiered_router.core import ConfigError
from langchain_tiered_router.langchain import TieredChatBedrock

from .scripts import CHEAP, FRONTIER, INVOICE, INVOICE_JSON, INVOICE_SCHEMA, MID, config, tokens

JSON_GATE = [{"kind": "json_schema", "schema": INVOICE_SCHEMA}]


class Recorder(BaseCallbackHandler):
    """Keeps LLM runs: the routed call and its tier attempts, with parents and metadata."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.ended: dict[UUID, Any] = {}
        self.errored: dict[UUID, BaseException] = {}

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, metadata=None, name=None,
                            **kwargs) -> None:
        self.runs.append({"run_id": run_id, "parent": parent_run_id, "name": name, "metadata": metadata or {},
                          "prompt": messages, "kind": "chat_model"})

    def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, metadata=None, name=None,
                     **kwargs) -> None:
        self.runs.append({"run_id": run_id, "parent": parent_run_id, "name": name, "metadata": metadata or {},
                          "prompt": prompts, "kind": "llm"})

    def on_llm_end(self, response, *, run_id, **kwargs) -> None:
        self.ended[run_id] = response

    def on_llm_error(self, error, *, run_id, **kwargs) -> None:
        self.errored[run_id] = error

    @property
    def chains(self) -> list[dict[str, Any]]:
        """The attempt runs."""
        return [r for r in self.runs if (r["name"] or "").startswith("tier:")]

    @property
    def llm_runs(self) -> list[UUID]:
        """The routed runs."""
        return [r["run_id"] for r in self.runs if not (r["name"] or "").startswith("tier:")]

    def attempts(self) -> list[tuple[str, str, str]]:
        return [(c["name"], c["metadata"].get("tier"), c["metadata"].get("model_id")) for c in self.chains]

    def message(self, run: dict[str, Any]) -> Any:
        return self.ended[run["run_id"]].generations[0][0].message


EXPECTED_ATTEMPTS = [("tier:cheap", "cheap", CHEAP), ("tier:mid", "mid", MID), ("tier:frontier", "frontier", FRONTIER)]


@pytest.mark.parametrize("mode", ["invoke", "stream", "invoke_streaming"])
def test_callbacks_see_each_attempt_under_the_model_run(routed, mode) -> None:
    llm = routed(gates=JSON_GATE)
    if mode == "invoke_streaming":
        llm = llm.model_copy(update={"streaming": True})
    rec = Recorder()
    if mode == "stream":
        text = "".join(c.text for c in llm.stream(INVOICE, config={"callbacks": [rec]}))
    else:
        text = llm.invoke(INVOICE, config={"callbacks": [rec]}).text
    assert text == INVOICE_JSON
    assert rec.attempts() == EXPECTED_ATTEMPTS
    (llm_run,) = rec.llm_runs  # the routed call, each attempt an LLM run under it
    assert all(c["parent"] == llm_run for c in rec.chains)
    assert [rec.message(c).usage_metadata["output_tokens"] for c in rec.chains] == [
        tokens("Sure! The total is twelve fifty."), tokens('{"total": "twelve fifty", "currency": "EUR"}'),
        tokens(INVOICE_JSON)]


def test_each_attempt_run_is_priceable_by_its_real_model(routed) -> None:
    """A tracer prices an LLM run by its ls_provider, ls_model_name and token counts: every
    attempt has its tier's model id; the routed run keeps the ladder's name, which no price
    table holds, so nothing is priced twice."""
    rec = Recorder()
    routed(gates=JSON_GATE).invoke(INVOICE, config={"callbacks": [rec]})
    routed_run = next(r for r in rec.runs if not (r["name"] or "").startswith("tier:"))
    assert routed_run["metadata"]["ls_model_name"] == f"tiered:{CHEAP}>{MID}>{FRONTIER}"
    for run, model_id in zip(rec.chains, [CHEAP, MID, FRONTIER]):
        assert (run["metadata"]["ls_provider"], run["metadata"]["ls_model_name"]) == ("amazon_bedrock", model_id)
        usage = rec.message(run).usage_metadata
        assert usage["input_tokens"] == tokens(INVOICE) and usage["output_tokens"] > 0
        assert "model_name" not in rec.message(run).response_metadata  # usage counters skip it
        assert run["kind"] == "llm" and INVOICE in run["prompt"][0]  # one chat-model run per call, as LangChain expects
    assert routed_run["kind"] == "chat_model"


async def test_async_callbacks_see_each_attempt(routed) -> None:
    llm = routed(gates=JSON_GATE)
    rec = Recorder()
    await llm.ainvoke(INVOICE, config={"callbacks": [rec]})
    assert rec.attempts() == EXPECTED_ATTEMPTS
    rec2 = Recorder()
    [c async for c in llm.astream(INVOICE, config={"callbacks": [rec2]})]
    assert rec2.attempts() == EXPECTED_ATTEMPTS and len(rec2.llm_runs) == 1


def test_failed_attempt_run_ends_in_error(routed, emulator) -> None:
    emulator.inject("throttle", model_id=CHEAP, times=2)
    rec = Recorder()
    routed().invoke("hello", config={"callbacks": [rec]})
    names = [c["name"] for c in rec.chains]
    assert names == ["tier:cheap", "tier:cheap", "tier:mid"]
    assert [type(rec.errored.get(c["run_id"])).__name__ for c in rec.chains] == [
        "TransportError", "TransportError", "NoneType"]


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_usage_callback_counts_the_served_attempt_once(routed, mode) -> None:
    llm = routed(gates=JSON_GATE)
    handler = UsageMetadataCallbackHandler()
    if mode == "stream":
        list(llm.stream(INVOICE, config={"callbacks": [handler]}))
    else:
        llm.invoke(INVOICE, config={"callbacks": [handler]})
    usage = handler.usage_metadata
    assert list(usage) == [FRONTIER]
    assert usage[FRONTIER]["input_tokens"] == tokens(INVOICE)
    assert usage[FRONTIER]["output_tokens"] == tokens(INVOICE_JSON)


def test_chain_with_prompt_and_parser(routed) -> None:
    chain = ChatPromptTemplate.from_messages([("system", "Answer in JSON."), ("human", "{q}")]) \
        | routed(gates=JSON_GATE) | StrOutputParser()
    assert chain.invoke({"q": INVOICE}) == INVOICE_JSON


def test_from_config_yaml_and_identity(tmp_path, emulator) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config(emulator.url)))
    llm = TieredChatBedrock.from_config(path, telemetry=False)
    assert llm._llm_type == "tiered-chat-bedrock"
    assert llm._identifying_params["tiers"] == {"cheap": CHEAP, "mid": MID, "frontier": FRONTIER}
    assert llm.invoke("hello").content == "I am the cheap model."
    # every tier shares the one client
    assert {id(m.client) for m in llm.tier_models.values()} == {id(llm.client)}
    assert llm.client.meta.endpoint_url == emulator.url


def test_the_short_langchain_hooks_answer_as_langchains_own(emulator) -> None:
    """The invocation params (traced, and the cache's key) are LangChain's own, built without
    its deprecated ``dict()``; and LangChain still sees that ``_generate`` takes a run manager."""
    import inspect

    from langchain_core.language_models import BaseChatModel

    llm = TieredChatBedrock(config=config(emulator.url), telemetry=False, temperature=0.3)
    for stop, kwargs in ((None, {}), (["END"], {"tier": "mid", "tools": [{"x": 1}]})):
        assert llm._get_invocation_params(stop=stop, **kwargs) == BaseChatModel._get_invocation_params(
            llm, stop=stop, **kwargs)
    for hook in (llm._generate, llm._agenerate):
        assert "run_manager" in inspect.signature(hook).parameters
        assert "self" not in inspect.signature(hook).parameters


def test_tier_params_reach_the_tier_models(emulator) -> None:
    cfg = config(emulator.url)
    cfg["tiers"][1].update({"max_tokens": 64, "temperature": 0.2, "model_kwargs": {"top_p": 0.5}})
    llm = TieredChatBedrock(config=cfg, telemetry=False, max_tokens=16)
    mid, cheap = llm.tier_models["mid"], llm.tier_models["cheap"]
    assert (mid.max_tokens, mid.temperature, mid.top_p) == (64, 0.2, 0.5)
    assert cheap.max_tokens == 16


def test_bad_config_is_a_config_error_with_its_key_path(emulator) -> None:
    cfg = config(emulator.url)
    cfg["tiers"][0]["price"] = {"input_per_mtok": "x", "output_per_mtok": 1}
    with pytest.raises(ConfigError) as info:
        TieredChatBedrock(config=cfg, telemetry=False)
    assert info.value.path == "tiers[0].price.input_per_mtok"
    cfg = config(emulator.url)
    cfg["tiers"][2]["model_kwargs"] = {"top_p": "high"}
    with pytest.raises(ConfigError) as info:
        TieredChatBedrock(config=cfg, telemetry=False)
    assert info.value.path == "tiers[2].model_kwargs.top_p"
    with pytest.raises(ConfigError):
        TieredChatBedrock.from_config("/nonexistent/router.yaml")


def test_configurable_fields_survive_the_rebuild(routed) -> None:
    llm = routed().configurable_fields(max_tokens=ConfigurableField(id="max_tokens"))
    message = llm.invoke("hello", config={"configurable": {"max_tokens": 2}})
    # the rebuilt model capped output at 2 tokens (8 chars on the emulator)
    assert message.content == "I am the"
    assert message.response_metadata["routing"]["tier"] == "cheap"
    assert llm.invoke("hello").content == "I am the cheap model."


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_routing_metadata_feeds_the_telemetry_callback(routed, mode) -> None:
    from langchain_tiered_router.core.telemetry import MemorySink
    from langchain_tiered_router.langchain import TieredRouterCallbackHandler

    sink = MemorySink()
    handler = TieredRouterCallbackHandler(sink)
    llm = routed(gates=JSON_GATE)
    run_config = {"callbacks": [handler], "metadata": {"session_id": "tel-1"}}
    if mode == "stream":
        list(llm.stream(INVOICE, config=run_config))
    else:
        llm.invoke(INVOICE, config=run_config)
    (record,) = sink.records
    result = routed.last
    assert (record.tier, record.model_id, record.session_id) == ("frontier", FRONTIER, "tel-1")
    assert [a["tier"] for a in record.attempts] == ["cheap", "mid", "frontier"]
    assert record.cost_usd == result.cost_usd and record.baseline_cost_usd == result.baseline_cost_usd


def test_rebuilt_model_keeps_the_router_and_its_pins(routed) -> None:
    base = routed(gates=JSON_GATE)
    llm = base.configurable_fields(max_tokens=ConfigurableField(id="max_tokens"))
    assert base.invoke(INVOICE, session_id="keep").response_metadata["routing"]["tier"] == "frontier"
    again = llm.invoke("hello", session_id="keep", config={"configurable": {"max_tokens": 50}})
    assert again.response_metadata["routing"]["start_reason"] == "pinned by session keep"
    fields = {k: v for k, v in base.__dict__.items() if k in TieredChatBedrock.model_fields}
    assert TieredChatBedrock(**fields).router is base.router
    changed = TieredChatBedrock(**{**fields, "config": base.config.model_copy()})
    assert changed.router is not base.router  # another config object: another router


def test_streamed_chain_sees_attempts_under_the_model_run(routed) -> None:
    rec = Recorder()
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | routed(gates=JSON_GATE) | StrOutputParser()
    assert "".join(chain.stream({"q": INVOICE}, config={"callbacks": [rec]})) == INVOICE_JSON
    (llm_run,) = rec.llm_runs
    attempts = [c for c in rec.chains if (c["name"] or "").startswith("tier:")]
    assert [(c["name"], c["parent"]) for c in attempts] == [(name, llm_run) for name, _, _ in EXPECTED_ATTEMPTS]


def test_configured_sqlite_sink_gets_one_langchain_record_per_request(emulator, tmp_path) -> None:
    from langchain_tiered_router.analysis.report import load_records
    from langchain_tiered_router.core.telemetry.recorder import flush_all

    from .scripts import config

    db = tmp_path / "t.db"
    llm = TieredChatBedrock(config=config(emulator.url, gates=[{"kind": "regex", "pattern": "^NEVER$"}],
                                          telemetry={"sinks": [{"kind": "sqlite", "path": str(db)}]}))
    message = llm.invoke("hello")
    flush_all()
    records, _labels = load_records(db)
    assert len(records) == 1
    record = records[0]
    routing = message.response_metadata["routing"]
    assert (record.request_id, record.integration, record.tier, record.flagged) == (
        routing["request_id"], "langchain", "frontier", True)
    assert [a["tier"] for a in record.attempts] == ["cheap", "mid", "frontier"]
    assert record.cost_usd == Decimal(routing["cost_usd"]) and record.prompt_text is None


def test_a_langsmith_tracer_gets_each_attempt_as_an_llm_run_it_can_price(routed) -> None:
    """LangChain's own LangSmith tracer, its upload replaced by a list: the run types,
    model names and token counts it would send."""
    from langchain_core.tracers.langchain import LangChainTracer
    from langsmith import Client

    sent: dict[str, Any] = {}

    class Captured(LangChainTracer):
        def _persist_run_single(self, run) -> None:
            sent[str(run.id)] = run

        @staticmethod
        def _update_run_single(run) -> None:
            sent[str(run.id)] = run

    client = Client(api_url="http://127.0.0.1:9", api_key="test", auto_batch_tracing=False, info={})
    tracer = Captured(project_name="tiered-router-tests", client=client)
    routed(gates=JSON_GATE).invoke(INVOICE, config={"callbacks": [tracer]})
    runs = list(sent.values())
    routed_run = next(r for r in runs if r.parent_run_id is None)
    attempts = sorted((r for r in runs if r.parent_run_id == routed_run.id), key=lambda r: r.start_time)
    assert routed_run.run_type == "llm" and [r.run_type for r in attempts] == ["llm"] * 3
    assert [(r.name, r.extra["metadata"]["ls_model_name"]) for r in attempts] == [
        ("tier:cheap", CHEAP), ("tier:mid", MID), ("tier:frontier", FRONTIER)]
    assert all(r.extra["metadata"]["ls_provider"] == "amazon_bedrock" for r in attempts)
    assert [r.extra["metadata"]["usage_metadata"]["output_tokens"] for r in attempts] == [
        tokens("Sure! The total is twelve fifty."), tokens('{"total": "twelve fifty", "currency": "EUR"}'),
        tokens(INVOICE_JSON)]


def test_model_copy_with_update_rebuilds_the_tier_models(routed, emulator) -> None:
    llm = routed()
    short = llm.model_copy(update={"max_tokens": 2, "stop_sequences": ["END"]})
    assert (short.tier_models["cheap"].max_tokens, short.stop) == (2, ["END"])
    assert short.invoke("hello").content == "I am the"  # capped on the wire, as ChatBedrockConverse's copy is
    assert emulator.requests[-1].body["inferenceConfig"] == {"maxTokens": 2, "stopSequences": ["END"]}
    assert short.router is llm.router and short.client is llm.client  # same config: same router and client
    assert llm.invoke("hello").content == "I am the cheap model."  # the original is untouched
    one = config(emulator.url)
    one["tiers"] = one["tiers"][2:]
    top = llm.model_copy(update={"config": one, "timeout": 7})
    assert top.router.ladder.names == ["frontier"] and top.router is not llm.router
    assert top.client is not llm.client and top.client.meta.config.read_timeout == 7
    assert llm.model_copy().router is llm.router
    # a default is not passed on as if the caller set it: an explicit ``streaming=False``
    # turns LangChain's streaming off, and the copy streams as the original does
    warm = llm.model_copy(update={"temperature": 0.5})
    assert "streaming" not in warm.model_fields_set and len(list(warm.stream("hello"))) > 2
    assert emulator.requests[-1].operation == "ConverseStream"


def test_a_response_format_gates_the_text_answer(routed, emulator) -> None:
    """``create_agent`` binds ``response_format`` for native structured output when the
    model's name or profile says it has it: the schema judges each tier's answer (the
    cheap tier's prose escalates), and the ladder's name is not its top tier's id."""
    llm = routed()
    fmt = {"type": "json_schema", "json_schema": {"name": "invoice", "schema": INVOICE_SCHEMA}}
    message = llm.invoke(INVOICE, response_format=fmt)
    routing = message.response_metadata["routing"]
    assert [(a["tier"], a["outcome"], a["gate"]) for a in routing["attempts"]][0] == (
        "cheap", "gate_failed", "response_format")
    assert routing["tier"] != "cheap" and "outputConfig" in emulator.requests[-1].body
    assert llm.model_name == "tiered(cheap>mid>frontier)"
    sent = len(emulator.requests)
    bad = {"type": "json_schema", "json_schema": {"name": "invoice", "schema": {"type": 5}}}
    with pytest.raises(ValueError, match="response_format"):  # a schema no gate can read: the caller's error
        llm.invoke(INVOICE, response_format=bad)
    assert "response_format" in str(routed.last.error) and len(emulator.requests) == sent  # recorded, not sent


def test_the_llm_cache_keys_on_the_whole_routing_config(emulator) -> None:
    from langchain_core.caches import InMemoryCache
    from langchain_core.globals import set_llm_cache

    plain = TieredChatBedrock(config=config(emulator.url), telemetry=False)
    gated = TieredChatBedrock(config=config(emulator.url, gates=JSON_GATE), telemetry=False)
    assert plain._get_llm_string() != gated._get_llm_string()
    stopped = TieredChatBedrock(config=config(emulator.url), telemetry=False, stop_sequences=["END"])
    assert plain._get_llm_string() != stopped._get_llm_string()  # the model's own settings change answers too
    assert plain._get_llm_string() == TieredChatBedrock(
        config=config(emulator.url, telemetry={"sinks": []}), telemetry=False)._get_llm_string()  # not where rows go
    set_llm_cache(InMemoryCache())
    try:
        assert plain.invoke(INVOICE).response_metadata["routing"]["tier"] == "cheap"
        # the cheap tier's prose, cached for the ungated model, would fail this model's gate
        assert gated.invoke(INVOICE).content == INVOICE_JSON
    finally:
        set_llm_cache(None)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["invoke", "ainvoke"])
def test_the_llm_cache_keys_on_the_tier_and_caller_named_in_metadata(emulator, asynchronous) -> None:
    """``requested_tier`` and ``caller`` in the run's metadata route the request as
    ``tier=`` and ``caller=`` do, so they key the cache as those do: a cached cheap answer
    is not served to a request for the frontier, nor an allowed caller's frontier answer
    to a caller the access rules refuse."""
    import asyncio

    from langchain_core.caches import InMemoryCache

    from langchain_tiered_router.core.errors import TierNotAllowedError

    llm = TieredChatBedrock(config=config(emulator.url, access={"allow_tier_request": ["team:ops"]}),
                            telemetry=False, cache=InMemoryCache())

    def ask(prompt: str, **kwargs):
        return asyncio.run(llm.ainvoke(prompt, **kwargs)) if asynchronous else llm.invoke(prompt, **kwargs)

    ops = {"metadata": {"caller": ["team:ops"]}}
    assert ask("hello there").response_metadata["routing"]["tier"] == "cheap"
    sent = len(emulator.requests)
    up = ask("hello there", config={"metadata": {"requested_tier": "frontier", "caller": ["team:ops"]}})
    assert up.response_metadata["routing"]["tier"] == "frontier" and len(emulator.requests) == sent + 1
    assert ask("secret question", tier="frontier", config=ops).response_metadata["routing"]["tier"] == "frontier"
    with pytest.raises(TierNotAllowedError):
        ask("secret question", tier="frontier")  # anonymous: refused, not the cached answer
    cached = ask("secret question", tier="frontier", config=ops)  # the allowed caller still hits it
    assert cached.response_metadata["routing"]["tier"] == "frontier" and len(emulator.requests) == sent + 2


def test_a_tool_choice_bedrock_cannot_take_is_the_callers_error_on_every_tier(routed, emulator) -> None:
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    sent = len(emulator.requests)
    for choice in ({"type": "function", "function": {"name": "add"}}, {"type": "tool", "name": "add"}, True):
        with pytest.raises(ValueError, match="is not one Bedrock takes"):
            routed().bind_tools([add], tool_choice=choice).invoke("hello")
        assert "is not one Bedrock takes" in str(routed.last.error)  # the request is still recorded
    assert len(emulator.requests) == sent  # nothing reached Bedrock
    forced = routed().bind_tools([add], tool_choice={"tool": {"name": "add"}}).invoke("hello")
    assert emulator.requests[-1].body["toolConfig"]["toolChoice"] == {"tool": {"name": "add"}}
    assert forced.response_metadata["routing"]["tier"] == "cheap"


def test_bind_tools_strict_reaches_a_bedrock_tool_spec_as_on_plain_converse(routed, emulator) -> None:
    """``strict=True`` was dropped for raw ``toolSpec`` dicts (kept only for pydantic
    classes and functions): Bedrock got a spec without ``strict`` and its schema unclosed.
    Sent now as ``ChatBedrockConverse.bind_tools`` sends it; without ``strict``, as given."""
    from langchain_aws import ChatBedrockConverse

    spec = {"toolSpec": {"name": "raw_tool", "description": "raw",
                         "inputSchema": {"json": {"type": "object", "properties": {"x": {"type": "string"}}}}}}
    sent = []
    for strict in (True, None):
        plain = ChatBedrockConverse(model=CHEAP, endpoint_url=emulator.url, region_name="us-east-1")
        for llm in (plain, routed()):
            llm.bind_tools([spec], strict=strict).invoke("hello")
            sent.append(emulator.requests[-1].body["toolConfig"]["tools"][0]["toolSpec"])
    assert sent[0] == sent[1] and sent[1]["strict"] is True
    assert sent[1]["inputSchema"]["json"]["additionalProperties"] is False
    assert sent[3] == spec["toolSpec"]  # not strict: the spec as given


@pytest.mark.parametrize("bad", [None, 42, [1, 2], b"router.yaml"])
def test_a_config_of_the_wrong_type_is_a_config_error(bad) -> None:
    with pytest.raises(ConfigError, match="a RouterConfig, a dict or the path of a YAML file"):
        TieredChatBedrock(config=bad)


def test_converse_settings_given_to_the_model_reach_every_tier(emulator) -> None:
    """``ChatBedrockConverse``'s own constructor settings (a guardrail, request fields,
    ``top_p``, a system prompt, request metadata) are taken where it took them, and sent
    on every tier call; a tier's own ``model_kwargs`` of the same name wins."""
    settings = config(emulator.url, gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}])
    settings["tiers"][2]["model_kwargs"] = {"request_metadata": {"team": "top"}}
    llm = TieredChatBedrock(config=settings, telemetry=False, guardrails={"guardrailIdentifier": "g1",
                                                                         "guardrailVersion": "1"},
                            top_p=0.5, system=["Answer briefly."], request_metadata={"team": "ops"},
                            additional_model_request_fields={"top_k": 5}, performance_config={"latency": "optimized"})
    emulator.clear_requests()
    assert llm.invoke(INVOICE).response_metadata["routing"]["tier"] == "frontier"
    sent = [r.body for r in emulator.requests]
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID, FRONTIER]
    for body in sent:
        assert body["guardrailConfig"] == {"guardrailIdentifier": "g1", "guardrailVersion": "1"}
        assert body["inferenceConfig"]["topP"] == 0.5 and body["system"] == [{"text": "Answer briefly."}]
        assert body["additionalModelRequestFields"] == {"top_k": 5}
        assert body["performanceConfig"] == {"latency": "optimized"}
    assert [b["requestMetadata"] for b in sent] == [{"team": "ops"}, {"team": "ops"}, {"team": "top"}]
    # they key LangChain's cache, as every setting that changes an answer does
    assert llm._identifying_params["top_p"] == 0.5
    with pytest.raises(ConfigError) as bad:
        TieredChatBedrock(config=config(emulator.url), telemetry=False, service_tier="fastest")
    assert bad.value.path == "service_tier"
    with pytest.raises(ConfigError) as bad:  # the clients made here take plain's credential settings too
        TieredChatBedrock(config=config(emulator.url), telemetry=False, credentials_profile_name="no-such-profile")
    assert bad.value.path == "credentials_profile_name" and "no-such-profile" in str(bad.value)
    keyed = TieredChatBedrock(config=config(emulator.url), telemetry=False, aws_access_key_id="AKIDTIERED",
                              aws_secret_access_key="not-shown")
    assert keyed.client._request_signer._credentials.access_key == "AKIDTIERED" and "not-shown" not in repr(keyed)


def test_tokens_are_counted_as_a_tier_counts_them(routed, emulator) -> None:
    """``get_num_tokens_from_messages`` (``trim_messages(token_counter=llm)``) asks the
    first tier Bedrock's CountTokens API supports, as plain ``ChatBedrockConverse`` on it
    does: not LangChain's GPT-2 estimate, which needs ``transformers``."""
    from langchain_aws import ChatBedrockConverse
    from langchain_core.messages import HumanMessage, SystemMessage, trim_messages

    messages = [SystemMessage("Be brief."), HumanMessage("How many tokens is this question?")]
    plain = ChatBedrockConverse(model=FRONTIER, endpoint_url=emulator.url, region_name="us-east-1")
    emulator.clear_requests()
    counted = routed().get_num_tokens_from_messages(messages)
    assert counted == plain.get_num_tokens_from_messages(messages) > 0
    assert [(r.operation, r.model_id) for r in emulator.requests] == [("CountTokens", FRONTIER)] * 2
    kept = trim_messages(messages, max_tokens=2 * counted, token_counter=routed(), strategy="last",
                         include_system=True)
    assert kept == messages and emulator.requests[-1].operation == "CountTokens"


def test_a_shadow_sample_is_no_run_of_the_callers(emulator, tmp_path, monkeypatch) -> None:
    """The shadow starts inside the request; its baseline call opened an attempt run under
    the caller's run when it began before the request let go of its callbacks (4 of 200
    requests here), so a usage tracer charged the request the baseline's call too. Here
    the request lingers after starting its shadow, as on a loaded machine."""
    import time

    from langchain_tiered_router.core.telemetry import flush_all
    from langchain_tiered_router.core.telemetry.shadow import ShadowSampler

    submit = ShadowSampler.submit

    def lingering(self, *args, **kwargs):
        submit(self, *args, **kwargs)
        time.sleep(0.3)  # the shadow's call begins before this request detaches its runs

    monkeypatch.setattr(ShadowSampler, "submit", lingering)
    sink = tmp_path / "t.jsonl"
    llm = TieredChatBedrock(config=config(emulator.url, telemetry={
        "sinks": [{"kind": "jsonl", "path": str(sink)}], "shadow": {"fraction": 1.0}}))
    recorder = Recorder()
    llm.invoke("hello", config={"callbacks": [recorder]})
    assert flush_all(10)
    (row,) = [yaml.safe_load(line) for line in sink.read_text().splitlines()]
    assert row["shadow_status"] == "done"  # the baseline was asked, apart
    assert recorder.attempts() == [("tier:cheap", "cheap", CHEAP)]
    assert len(recorder.runs) == 2 and len(recorder.ended) == 2


def test_a_callers_client_in_another_region_prices_the_tiers_there(emulator) -> None:
    """A boto3 client made for GovCloud was signed for it while the tiers were priced at
    the config's default us-east-1 (Nova Micro $0.035 for $0.042, silently). A config that
    names no region takes the client's; one that names another is refused."""
    import boto3

    from langchain_tiered_router.core.pricing import lookup_price

    client = boto3.client("bedrock-runtime", region_name="us-gov-west-1", endpoint_url=emulator.url,
                          aws_access_key_id="x", aws_secret_access_key="y")
    llm = TieredChatBedrock(config=config(emulator.url), client=client)
    assert llm.config.region_name == "us-gov-west-1"
    assert llm._router.ladder["cheap"].price == lookup_price(CHEAP, region="us-gov-west-1") != lookup_price(CHEAP)
    with pytest.raises(ConfigError, match="region_name: the client calls Bedrock in us-gov-west-1"):
        TieredChatBedrock(config={**config(emulator.url), "region_name": "us-east-1"}, client=client)
