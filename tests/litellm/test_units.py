"""The integration's pure parts: conversions, error mapping, the public surface, the
example configs, and the direction of imports."""

from __future__ import annotations

import json

import ast
import re
import sys
from pathlib import Path

import httpx
import litellm
import pytest
import yaml

import litellm_hooks
from langchain_tiered_router.core import MalformedReplyError, TransportError, load_config
from litellm_hooks._backend import ChatPayload
from litellm_hooks._convert import client_content_error, messages_text, transport_error_from_litellm, usage_from_litellm

REPO = Path(__file__).resolve().parents[2]


def test_public_surface_is_pinned():
    assert sorted(litellm_hooks.__all__) == sorted([
        "TieredRouterHook", "TieredRouterProvider", "TieredLiteLLMRouter", "LiteLLMRouterBackend", "ChatPayload",
        "routing_headers", "routing_summary", "proxy_handler_instance", "tiered_router_provider",
        "CONFIG_ENV", "PROVIDER"])
    assert isinstance(litellm_hooks.proxy_handler_instance, litellm_hooks.TieredRouterHook)
    assert isinstance(litellm_hooks.tiered_router_provider, litellm_hooks.TieredRouterProvider)
    # One router per YAML, the provider's: one-pass routing (the callback's pre-call step) uses
    # the same routers, and no route table of its own exists.
    assert litellm_hooks.proxy_handler_instance._routes().provider is litellm_hooks.tiered_router_provider
    assert isinstance(litellm_hooks.proxy_handler_instance._routes().provider, litellm_hooks.TieredRouterProvider)
    assert not (REPO / "litellm_hooks" / "_routes.py").exists()


def test_core_never_imports_the_litellm_integration():
    core = REPO / "langchain_tiered_router" / "core"
    for path in core.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("litellm", "litellm_hooks")), f"{path} imports {name}"


def test_messages_text_reads_what_the_user_wrote():
    assert messages_text([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]) == "hi"
    parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]}]
    assert messages_text(parts) == "a"
    convo = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]
    assert messages_text(convo) == "q2"  # the core's request_text: the question asked now, as in LangChain


def test_usage_keeps_cached_tokens_apart():
    usage = litellm.Usage(prompt_tokens=100, completion_tokens=7, cache_read_input_tokens=60,
                          cache_creation_input_tokens=10)
    got = usage_from_litellm(usage)
    assert (got.input_tokens, got.output_tokens, got.cache_read_tokens, got.cache_write_tokens) == (30, 7, 60, 10)


def _exc(cls, **kwargs):
    return cls(message="boom", llm_provider="bedrock", model="m", **kwargs)


@pytest.mark.parametrize("exc, kind", [
    (_exc(litellm.RateLimitError), "throttled"),
    (_exc(litellm.ServiceUnavailableError), "server_error"),
    (_exc(litellm.InternalServerError), "server_error"),
    (_exc(litellm.Timeout), "timeout"),
])
def test_litellm_errors_become_transport_errors(exc, kind):
    mapped = transport_error_from_litellm(exc, tier="cheap", model_id="m")
    assert isinstance(mapped, TransportError) and mapped.kind == kind and mapped.tier == "cheap"


def test_caller_errors_are_not_retried():
    bad = litellm.BadRequestError(message="temperature must be at most 1", model="m", llm_provider="bedrock")
    assert transport_error_from_litellm(bad, tier="cheap", model_id="m") is None


def test_an_exception_event_inside_a_stream_is_retried_not_the_callers_error():
    # LiteLLM reports Bedrock's modelStreamErrorException event as a 424 bad request
    exc = litellm.BadRequestError(message='BedrockException - {"modelStreamErrorException": {"message": "boom", '
                                  '"originalStatusCode": 500}}', model="m", llm_provider="bedrock")
    mapped = transport_error_from_litellm(exc, tier="cheap", model_id="m")
    assert isinstance(mapped, TransportError) and mapped.kind == "server_error"


def test_bedrocks_model_error_is_the_tiers_failure_not_the_callers():
    # ModelErrorException (HTTP 424) reaches us as LiteLLM's BadRequestError with status 424
    exc = litellm.BadRequestError(message='BedrockException - {"message": "The model encountered an error"}',
                                  model="m", llm_provider="bedrock")
    exc.status_code = 424
    mapped = transport_error_from_litellm(exc, tier="cheap", model_id="m")
    assert isinstance(mapped, TransportError) and mapped.kind == "server_error" and mapped.tier == "cheap"


def test_input_a_model_cannot_read_is_a_model_limit_that_escalates():
    from langchain_tiered_router.core.errors import ModelLimitError

    exc = litellm.BadRequestError(message="BedrockException - This model doesn't support tool use.", model="m",
                                  llm_provider="bedrock")
    mapped = transport_error_from_litellm(exc, tier="cheap", model_id="m")
    assert isinstance(mapped, ModelLimitError) and mapped.kind == "unsupported_input"
    assert transport_error_from_litellm(litellm.BadRequestError(message="temperature must be at most 1", model="m",
                                                                llm_provider="bedrock"), tier="cheap", model_id="m") is None
    # a parameter the model does not take is the config's mistake: no dearer tier is paid for it
    for parameter in ("the topK field", "the stopSequences field", "the toolChoice field"):
        exc = litellm.BadRequestError(message=f"BedrockException - This model doesn't support {parameter}.",
                                      model="m", llm_provider="bedrock")
        assert transport_error_from_litellm(exc, tier="cheap", model_id="m") is None, parameter


def test_an_image_url_litellm_could_not_fetch_is_the_callers_error():
    exc = litellm.APIConnectionError(message="URL targets a blocked address (127.0.0.1). If this is ...\n  File x",
                                     llm_provider="bedrock", model="m", request=httpx.Request("POST", "http://x"))
    assert transport_error_from_litellm(exc, tier="cheap", model_id="m") is None
    assert client_content_error(exc) == "litellm.APIConnectionError: URL targets a blocked address (127.0.0.1). If this is ..."
    wrapped = RuntimeError("routing failed")
    wrapped.__cause__ = litellm.ImageFetchError("Error: Unable to fetch image from URL. url=http://example.invalid/a.png")
    assert "Unable to fetch image" in client_content_error(wrapped)
    assert client_content_error(litellm.RateLimitError(message="slow down", model="m", llm_provider="bedrock")) is None


def test_a_prompt_over_the_context_window_is_a_model_limit_that_escalates():
    from langchain_tiered_router.core.errors import ModelLimitError

    for exc in (litellm.BadRequestError(message="context too long", model="m", llm_provider="bedrock"),
                litellm.ContextWindowExceededError(message="Input is too long for requested model.", model="m",
                                                   llm_provider="bedrock")):
        mapped = transport_error_from_litellm(exc, tier="cheap", model_id="m")
        assert isinstance(mapped, ModelLimitError) and mapped.kind == "context_window" and mapped.tier == "cheap"


def test_an_exhausted_ladder_answers_with_the_status_of_what_ended_it():
    """The status a plain deployment gives the last tier call's failure (a tier passed
    over with its circuit open is not that call); gates, unreadable replies and tiers
    not available are the gateway's 502."""
    from langchain_tiered_router.core.errors import GateFailed, LadderExhaustedError, ModelLimitError, TierCallError
    from litellm_hooks._provider import ending_retry_after, ending_status

    def ended(*errors: Exception) -> tuple[int, str]:
        return ending_status(LadderExhaustedError("exhausted", list(errors)))

    def upstream(exc: Exception, tier: str = "mid") -> Exception:
        return transport_error_from_litellm(exc, tier=tier, model_id="m")

    throttled = upstream(litellm.RateLimitError(message="slow down", model="m", llm_provider="bedrock"))
    down = upstream(litellm.ServiceUnavailableError(message="down", model="m", llm_provider="bedrock"))
    broken = upstream(litellm.InternalServerError(message="boom", model="m", llm_provider="bedrock"))
    skipped = TransportError("skipped: the circuit is open", tier="frontier", model_id="m", kind="circuit_open")
    assert ended(GateFailed("no JSON", tier="cheap", model_id="m"), throttled) == (429, "throttled")
    assert ended(throttled, skipped) == (429, "throttled")  # the call before the passed-over tier
    assert ended(skipped, skipped) == (503, "circuit_open")
    assert ended(throttled, down) == (503, "server_error") and ended(broken) == (500, "server_error")
    assert ended(TransportError("slow", tier="cheap", model_id="m", kind="timeout")) == (408, "timeout")
    assert ended(TransportError("late", tier="mid", model_id="m", kind="deadline")) == (408, "deadline")
    assert ended(ModelLimitError("long", tier="mid", model_id="m", kind="context_window")) == (400, "context_window")
    assert ended(ModelLimitError("gone", tier="mid", model_id="m", kind="model_unavailable")) == \
        (502, "model_unavailable")
    assert ended(throttled, GateFailed("no JSON", tier="frontier", model_id="m")) == (502, "gate_failed")
    assert ended(MalformedReplyError("not JSON", tier="mid", model_id="m")) == (502, "malformed")
    assert ended(ModelLimitError("bad", tier="mid", model_id="m", kind="validation")) == (400, "validation")
    assert ended(TierCallError("a gate raised", tier="mid", model_id="m")) == (502, "error")
    # the throttled call's Retry-After, for the client's 429
    waited = TransportError("slow down", tier="frontier", model_id="m", kind="throttled", retry_after_s=2.5)
    assert ending_retry_after(LadderExhaustedError("x", [throttled, waited, skipped])) == 2.5
    assert ending_retry_after(LadderExhaustedError("x", [waited, GateFailed("no", tier="top", model_id="m")])) is None


def test_the_cost_breakdown_litellm_gets_is_every_calls_parts_or_none():
    """Input and output cost summed over every billed call at its tier's price (a failed
    call is not billed); no breakdown when a call's price is not the ladder's."""
    from decimal import Decimal

    from langchain_tiered_router.core.pricing import Price, Usage
    from langchain_tiered_router.core.tiers import Ladder, Tier
    from langchain_tiered_router.core.types import Attempt, AuxCall, RoutingResult
    from litellm_hooks._accounting import cost_breakdown

    cheap, top = Price(Decimal("1"), Decimal("2")), Price(Decimal("10"), Decimal("20"))
    ladder = Ladder([Tier("cheap", "m1", cheap), Tier("top", "m2", top)])

    def attempt(tier: str, price: Price, usage: Usage, cost: Decimal | None = None) -> Attempt:
        return Attempt(tier=tier, model_id="m", usage=usage, cost_usd=price.cost(usage) if cost is None else cost)

    result = RoutingResult(request_id="r", policy="cascade", baseline_tier="top", baseline_model_id="m2",
                           start_tier="cheap", start_reason="", ladder=ladder,
                           attempts=[attempt("cheap", cheap, Usage(1000, 100)),
                                     attempt("top", top, Usage(0, 0), Decimal(0)),  # throttled: not billed
                                     attempt("top", top, Usage(1000, 100, cache_read_tokens=500))])
    result.aux_calls.append(AuxCall("self_grade", "cheap", "m1", Usage(200, 5), cheap.cost(Usage(200, 5)), 1.0))
    parts = cost_breakdown(result)
    assert parts["input_cost"] == pytest.approx((1000 * 1 + 1000 * 10 + 200 * 1) / 1e6)
    assert parts["output_cost"] == pytest.approx((100 * 2 + 100 * 20 + 5 * 2) / 1e6)
    assert parts["cache_read_cost"] == pytest.approx(500 * 10 / 1e6)
    assert parts["total_cost"] == float(result.cost_usd) == parts["original_cost"]
    result.aux_calls.append(AuxCall("judge", "elsewhere", "m9", Usage(10, 1), Decimal("0.01"), 1.0))
    assert cost_breakdown(result) is None  # a price the ladder does not hold
    result.aux_calls.pop()
    result.attempts[0].cost_usd += Decimal("0.5")  # billed at another price than the tier's
    assert cost_breakdown(result) is None
    result.ladder = None
    assert cost_breakdown(result) is None


def test_an_unreadable_reply_is_malformed():
    exc = litellm.APIConnectionError(message="Unable to parse JSON response", llm_provider="bedrock", model="m",
                                     request=httpx.Request("POST", "http://x"))
    assert isinstance(transport_error_from_litellm(exc, tier="mid", model_id="m"), MalformedReplyError)


def test_a_reply_without_choices_is_malformed_and_keeps_the_usage_it_was_billed():
    from litellm_hooks._convert import answer_from_response

    reply = litellm.ModelResponse(choices=[], usage=litellm.Usage(prompt_tokens=30, completion_tokens=7))
    reply.choices = []
    with pytest.raises(MalformedReplyError) as info:
        answer_from_response(reply, tier="cheap", model_id="m")
    assert (info.value.usage.input_tokens, info.value.usage.output_tokens) == (30, 7)
    with pytest.raises(MalformedReplyError) as info:
        answer_from_response({"choices": []}, tier="cheap", model_id="m")
    assert info.value.usage is None


def test_payload_keeps_the_clients_parameters_only():
    body = {"model": "tiered", "messages": [{"role": "user", "content": "x"}], "temperature": 0.2,
            "tools": [{"type": "function"}], "metadata": {"user_api_key": "secret"}, "litellm_call_id": "1",
            "proxy_server_request": {"headers": {}}, "stream": True, "secret_fields": {"raw_headers": {}},
            "litellm_logging_obj": object(), "tiered_router_config": "router.yaml", "max_retries": 2,
            "user_api_key_hash": "h", "_internal": 1, "api_base": None,
            # the client's own, beyond OpenAI's: as LiteLLM passes them to a deployment called directly
            "guardrailConfig": {"guardrailIdentifier": "g"}, "top_k": 5, "drop_params": True,
            "additional_drop_params": ["seed"]}
    assert ChatPayload.from_body(body) == {"messages": body["messages"], "params": {
        "temperature": 0.2, "tools": [{"type": "function"}], "guardrailConfig": {"guardrailIdentifier": "g"},
        "top_k": 5, "drop_params": True, "additional_drop_params": ["seed"]}}


def test_one_pass_falls_back_only_to_what_the_engine_would_call():
    """One-pass: the tiers above the first are the proxy call's LiteLLM fallbacks only
    where a fallback calls what the engine's escalation would: not under
    ``retry.on_exhausted: raise``, not beside the client's or the operator's own
    fallbacks for that group, and not from a tier with other parameters on (a fallback
    call carries the first tier's)."""
    from types import SimpleNamespace

    from langchain_tiered_router.core import RouteRequest
    from langchain_tiered_router.core.build import build_router
    from litellm_hooks._backend import LiteLLMRouterBackend
    from litellm_hooks._one_pass import _fallback_tiers

    ladder = [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
              {"name": "mid", "model_id": "amazon.nova-pro-v1:0", "timeout_s": 90},
              {"name": "frontier", "model_id": "anthropic.claude-sonnet-4-5-20250929-v1:0"}]

    def chain(retry=None, body=None, operator=None, frontier_kwargs=None):
        tiers = [dict(t) for t in ladder]
        if frontier_kwargs:
            tiers[2]["model_kwargs"] = frontier_kwargs
        router = build_router(load_config({"tiers": tiers, "retry": retry or {}, "telemetry": {"sinks": []}}))
        inner = LiteLLMRouterBackend(lambda: None)
        request = RouteRequest(text="hi", payload={"messages": [{"role": "user", "content": "hi"}],
                                                   "params": {"temperature": 0.1}})
        first = router.ladder["cheap"]
        call = inner.call_kwargs(first, request, for_proxy=True)
        llm_router = SimpleNamespace(fallbacks=operator)
        return [t.name for t in _fallback_tiers(router, inner, first, request, call, body or {}, llm_router)]

    assert chain() == ["mid", "frontier"]  # a tier's own timeout does not stop it
    assert chain(retry={"on_exhausted": "raise"}) == []
    assert chain(body={"fallbacks": ["frontier"]}) == []
    assert chain(operator=[{"cheap": ["cheap-backup"]}]) == [] and chain(operator=[{"*": ["mid"]}]) == []
    assert chain(operator=[{"mid": ["frontier"]}]) == ["mid", "frontier"]
    assert chain(frontier_kwargs={"top_k": 5}) == ["mid"]


def test_a_tiered_model_the_operator_gave_fallbacks_takes_the_providers_path():
    from types import SimpleNamespace

    from litellm_hooks._one_pass import _needs_the_provider

    router = SimpleNamespace(deadline_s=None)
    data = {"model": "tiered", "messages": []}
    assert not _needs_the_provider(router, data, SimpleNamespace(fallbacks=None))
    # LiteLLM applies these to a call of ``tiered``, which one pass never makes
    assert _needs_the_provider(router, data, SimpleNamespace(fallbacks=[{"tiered": ["frontier"]}]))
    assert not _needs_the_provider(router, data, SimpleNamespace(fallbacks=[{"*": ["frontier"]}, {"mid": ["x"]}]))
    assert _needs_the_provider(router, {**data, "fallbacks": ["frontier"]}, SimpleNamespace(fallbacks=None))
    assert _needs_the_provider(SimpleNamespace(deadline_s=5.0), data, SimpleNamespace(fallbacks=None))


def test_one_pass_is_the_default_and_false_switches_it_off():
    from types import SimpleNamespace

    from litellm_hooks._one_pass import _one_pass_source

    def source(**params):
        model = [{"model_name": "tiered", "litellm_params": {"model": "tiered_router/tiered",
                                                             "tiered_router_config": "/r.yaml", **params}}]
        return _one_pass_source(SimpleNamespace(get_model_list=lambda model_name: model), "tiered")

    assert source() is not None
    assert source() == source(tiered_router_one_pass=True) == source(tiered_router_one_pass="yes")
    for off in (False, "false", "False", 0, "0", "no", "off"):
        assert source(tiered_router_one_pass=off) is None
    plain = [{"model_name": "cheap", "litellm_params": {"model": "bedrock/converse/amazon.nova-micro-v1:0"}}]
    assert _one_pass_source(SimpleNamespace(get_model_list=lambda model_name: plain), "cheap") is None


def test_a_model_with_tiered_deployments_of_different_configs_takes_the_providers_path(caplog):
    """One model name, two tiered deployments with different router YAMLs: one-pass
    routed every request with the first one's, while the provider's path (``/v1/messages``)
    balanced between them, so one prompt met different gates by endpoint."""
    from types import SimpleNamespace

    from litellm_hooks._one_pass import _one_pass_source

    def group(*configs):
        model = [{"model_name": "tiered", "litellm_params": {"model": "tiered_router/tiered",
                                                             "tiered_router_config": c}} for c in configs]
        return _one_pass_source(SimpleNamespace(get_model_list=lambda model_name: model), "tiered")

    assert group("/r.yaml", "/r.yaml") == "/r.yaml" and not caplog.records  # replicas of one config
    assert group("/r.yaml", "os.environ/UNSET_ROUTER_YAML") == "/r.yaml"  # one that cannot route fails no other
    with caplog.at_level("WARNING", logger="litellm_hooks"):
        assert group("/cascade.yaml", "/json.yaml") is None
    assert "different router configs (cascade.yaml, json.yaml)" in caplog.text


def test_a_router_config_named_by_an_environment_variable_is_read_from_it(monkeypatch, tmp_path, caplog):
    """``tiered_router_config: os.environ/ROUTER_YAML``, LiteLLM's way to name a variable:
    at start the hook read it as a file of that name ("not built at startup: no such
    file"); unset, the request's error said the key was missing. Read, or named."""
    from langchain_tiered_router.core import ConfigError
    from litellm_hooks import _settings
    from litellm_hooks._settings import _proxy_tiered_sources, tiered_config_source

    monkeypatch.setattr(_settings, "_WRITTEN", {})  # what the config file says, as the proxy's start reads it
    params = {"model": "tiered_router/tiered", "tiered_router_config": "os.environ/ROUTER_YAML"}
    monkeypatch.setenv("ROUTER_YAML", str(tmp_path / "router.yaml"))
    assert tiered_config_source(params) == str(tmp_path / "router.yaml")
    monkeypatch.delenv("ROUTER_YAML")
    with pytest.raises(ConfigError, match=r"tiered_router_config is os.environ/ROUTER_YAML, and \$ROUTER_YAML is "
                                          r"not set"):
        tiered_config_source(params)
    # at start, a tiered model that cannot route is said in the proxy's log
    from litellm.proxy import proxy_server

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model_list": [{"model_name": "tiered", "litellm_params": params}]}))
    monkeypatch.setattr(proxy_server, "user_config_file_path", str(config), raising=False)
    with caplog.at_level("WARNING", logger="litellm_hooks"):
        assert _proxy_tiered_sources() == []
    assert "model 'tiered' cannot route" in caplog.text and "$ROUTER_YAML is not set" in caplog.text
    # at a call, LiteLLM has read the unset variable as empty, or dropped the key: never
    # $TIERED_ROUTER_CONFIG's YAML instead (the file said which YAML, by a variable)
    monkeypatch.setenv("TIERED_ROUTER_CONFIG", str(tmp_path / "another_models_router.yaml"))
    for empty in (None, ""):
        with pytest.raises(ConfigError, match=r"tiered_router_config is empty \(an os.environ/ variable"):
            tiered_config_source({**params, "tiered_router_config": empty})
    with pytest.raises(ConfigError, match=r"tiered_router_config is os.environ/ROUTER_YAML, and \$ROUTER_YAML is "
                                          r"not set"):
        tiered_config_source({"model": "tiered_router/tiered"})
    # a model the file names without the key is routed by $TIERED_ROUTER_CONFIG, as documented
    assert tiered_config_source({"model": "tiered_router/other"}) == str(tmp_path / "another_models_router.yaml")


@pytest.mark.parametrize("params, message", [
    ({"tiered_router_cofig": "router.yaml"}, r"unknown setting 'tiered_router_cofig' \(the router's are "
                                             r"tiered_router_config, tiered_router_one_pass\)"),
    ({"tiered_router_config": "router.yaml", "tiered_router_one_pass": "maybe"},
     r"tiered_router_one_pass is 'maybe'; it takes true or false")])
def test_a_tiered_deployments_misspelt_or_misvalued_setting_is_said_at_start(monkeypatch, tmp_path, caplog, params,
                                                                            message):
    """Before: a misspelt key routed by $TIERED_ROUTER_CONFIG (or answered a bare 500), and
    ``tiered_router_one_pass: "maybe"`` was taken as on, both without a word at start."""
    from langchain_tiered_router.core import ConfigError
    from litellm.proxy import proxy_server
    from litellm_hooks import _settings
    from litellm_hooks._settings import _proxy_tiered_sources, check_deployment

    monkeypatch.setattr(_settings, "_WRITTEN", {})
    monkeypatch.setenv("TIERED_ROUTER_CONFIG", str(tmp_path / "router.yaml"))
    deployment = {"model": "tiered_router/tiered", **params}
    with pytest.raises(ConfigError, match=message):
        check_deployment(deployment)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model_list": [{"model_name": "tiered", "litellm_params": deployment}]}))
    monkeypatch.setattr(proxy_server, "user_config_file_path", str(config), raising=False)
    with caplog.at_level("WARNING", logger="litellm_hooks"):
        assert _proxy_tiered_sources() == []
    assert "model 'tiered' cannot route" in caplog.text and re.search(message, caplog.text)
    check_deployment({"model": "tiered_router/tiered", "tiered_router_config": "r.yaml",
                      "tiered_router_one_pass": "off"})  # the switch's words and bools pass


def _one_pass_routes(tmp_path):
    """One-pass routes over a real ``litellm.Router`` whose two tier groups answer with
    LiteLLM's mock responses, and a logging object that keeps what it is billed."""
    from types import SimpleNamespace

    from litellm_hooks._one_pass import OnePassRoutes
    from litellm_hooks._provider import TieredRouterProvider
    from litellm_hooks._settings import RouterSet

    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump({"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                                              {"name": "mid", "model_id": "amazon.nova-pro-v1:0"}],
                                    "retry": {"max_retries": 1}, "telemetry": {"sinks": []}}))
    llm_router = litellm.Router(model_list=[
        {"model_name": name, "litellm_params": {"model": f"bedrock/converse/{model}", "aws_region_name": "us-east-1",
                                                "mock_response": f"from {name}"}}
        for name, model in (("cheap", "amazon.nova-micro-v1:0"), ("mid", "amazon.nova-pro-v1:0"))])
    billed: list[float] = []
    logging_obj = SimpleNamespace(model_call_details={}, record_finalized_cost=lambda cost: None,
                                  record_partial_usage_for_failure=lambda usage, amount: billed.append(amount))
    body = {"model": "tiered", "messages": [{"role": "user", "content": "hi"}], "litellm_call_id": "call-1",
            "litellm_logging_obj": logging_obj, "metadata": {}}
    routes = OnePassRoutes(TieredRouterProvider(RouterSet(lambda: llm_router, log_tier_calls=False)))
    return routes, str(path), llm_router, body, billed


async def test_one_pass_reads_an_unreadable_first_reply_as_malformed(tmp_path):
    """The proxy's own call came back without choices: that attempt's reply is malformed,
    retried (the router YAML retries malformed replies) through the proxy's router, and
    the client gets the retry's answer in the proxy's own response object."""
    from litellm_hooks._provider import attached_route

    routes, source, llm_router, body, billed = _one_pass_routes(tmp_path)
    data = await routes.start(body, source, llm_router)
    assert (data["model"], data["fallbacks"], data["num_retries"]) == ("cheap", ["mid"], 1)
    unreadable = litellm.ModelResponse()
    unreadable.choices = []
    served = await routes.finish(data, unreadable)
    assert served is unreadable and served.choices[0].message.content == "from cheap"
    result = attached_route(body["litellm_logging_obj"])
    assert [(a.tier, a.outcome, a.retried_on) for a in result.attempts] == [("cheap", "served", ["malformed"])]
    assert billed == [float(result.cost_usd)]


async def test_one_pass_hands_a_fallbacks_answer_to_the_engine_as_the_next_attempts(tmp_path):
    """LiteLLM's router served the proxy's call from its fallback (mid's deployment): cheap
    is recorded as failed over, counted once per LiteLLM try, and mid's answer is judged
    and served without calling mid again."""
    from litellm_hooks._provider import attached_route
    from litellm_hooks._settings import deployments

    routes, source, llm_router, body, billed = _one_pass_routes(tmp_path)
    data = await routes.start(body, source, llm_router)
    from_mid = await llm_router.acompletion(model="mid", messages=data["messages"])
    assert from_mid._hidden_params["model_id"] == deployments(llm_router, "mid")[0]["model_info"]["id"]
    router, _ = routes.provider.routers.get(source)
    counted: list[tuple[str, bool]] = []
    router.breaker = type("Breaker", (), {"allow": lambda self, tier: True,
                                          "record": lambda self, tier, ok: counted.append((tier, ok))})()
    served = await routes.finish(data, from_mid)
    assert served.choices[0].message.content == "from mid"
    result = attached_route(body["litellm_logging_obj"])
    assert [(a.tier, a.outcome, a.error_kind) for a in result.attempts] == [
        ("cheap", "transport_error", "failed_over"), ("mid", "served", None)]
    assert counted == [("cheap", False), ("cheap", False), ("mid", True)]  # 1 + num_retries tries of cheap
    assert billed == [float(result.cost_usd)] and result.cost_usd == result.attempts[1].cost_usd


def test_example_configs_agree():
    from decimal import Decimal

    proxy = yaml.safe_load((REPO / "examples" / "litellm_config.yaml").read_text())
    names = {m["model_name"] for m in proxy["model_list"]}
    tiered = next(m for m in proxy["model_list"] if m["litellm_params"]["model"].startswith("tiered_router/"))
    router = load_config(REPO / "examples" / tiered["litellm_params"]["tiered_router_config"])
    assert set(router.tier_names) <= names
    for tier in router.tiers:
        deployment = next(m for m in proxy["model_list"] if m["model_name"] == tier.name)
        assert deployment["litellm_params"]["model"].endswith(tier.model_id)
    # the price LiteLLM holds against a key's budget: the ladder's worst case, every tier called
    prices = [router.price_of(tier) for tier in router.tiers]
    assert Decimal(str(tiered["model_info"]["input_cost_per_token"])) == sum(p.input_per_mtok for p in prices) / 10 ** 6
    assert Decimal(str(tiered["model_info"]["output_cost_per_token"])) == \
        sum(p.output_per_mtok for p in prices) / 10 ** 6
    readme = (REPO / "README.md").read_text()
    for key in ("input_cost_per_token", "output_cost_per_token"):  # the README's copy of the example
        assert f"{key}: {format(Decimal(str(tiered['model_info'][key])), 'f')}" in readme
    callback = proxy["litellm_settings"]["callbacks"]
    assert getattr(litellm_hooks, callback.split(".")[-1]) is litellm_hooks.proxy_handler_instance
    (provider,) = proxy["litellm_settings"]["custom_provider_map"]
    assert provider["provider"] == litellm_hooks.PROVIDER
    assert getattr(litellm_hooks, provider["custom_handler"].split(".")[-1]) is litellm_hooks.tiered_router_provider


async def test_provider_names_the_missing_router_yaml(monkeypatch):
    """The operator's error, as a 500 naming it (a bare exception would be reported by
    LiteLLM as a bug of its own)."""
    from litellm.llms.custom_llm import CustomLLMError

    monkeypatch.delenv("TIERED_ROUTER_CONFIG", raising=False)
    with pytest.raises(CustomLLMError) as info:
        await litellm_hooks.TieredRouterProvider().acompletion(
            model="tiered", messages=[{"role": "user", "content": "hi"}], optional_params={},
            litellm_params={"metadata": {}})
    assert info.value.status_code == 500
    detail = json.loads(info.value.message)
    assert detail["error"] == "router_misconfigured" and "tiered_router_config" in detail["message"]


def test_the_provider_loads_at_start_what_the_first_routed_request_would(monkeypatch):
    # LiteLLM loads its default tokenizer on the first custom-provider call and boto3 on the
    # first Bedrock call; the provider, built while the proxy loads, loads both then. Both
    # are unloaded here first (earlier tests may have loaded them; both come back as before
    # at teardown).
    from litellm_hooks._provider import TieredRouterProvider

    monkeypatch.delitem(vars(litellm.main), "encoding", raising=False)
    monkeypatch.delitem(sys.modules, "boto3", raising=False)
    TieredRouterProvider()
    assert "encoding" in vars(litellm.main) and "boto3" in sys.modules


def test_what_cannot_be_preloaded_is_left_to_the_first_request(monkeypatch):
    from litellm_hooks import _preload

    real = _preload.importlib.import_module

    def refuse_boto3(name, *args):
        if name == "boto3":
            raise ImportError("no boto3 here")
        return real(name, *args)

    monkeypatch.setattr(_preload.importlib, "import_module", refuse_boto3)
    assert _preload.preload_first_request() == [name for name, _ in _preload.LOADERS if name != "boto3"]


def test_every_preload_finds_what_it_loads_in_the_installed_litellm():
    # The loaders name LiteLLM internals, which move between releases; one that no longer
    # loads would be skipped silently, so the pinned range is checked here (both ends in CI).
    from litellm_hooks import _preload

    assert _preload.preload_first_request() == [name for name, _ in _preload.LOADERS]


def test_an_answer_that_came_whole_streams_as_openai_chunks():
    """An escalated tier answered whole: the client gets it as chunks of the stream it was
    reading (its id, created and model), tool calls whole, then the finish reason."""
    from langchain_tiered_router.core import TierAnswer
    from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

    from litellm_hooks._stream_handoff import client_chunks

    template = ModelResponseStream(id="chatcmpl-1", created=7, model="tiered",
                                   choices=[StreamingChoices(index=0, delta=Delta(content="x"))])
    answer = TierAnswer(text="", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "t1"}],
                        stop_reason="tool_use")
    chunks = list(client_chunks(answer, template))
    assert {(c.id, c.created, c.model) for c in chunks} == {("chatcmpl-1", 7, "tiered")}
    (call,) = [t for c in chunks for t in c.choices[0].delta.tool_calls or []]
    assert (call.id, call.function.name, call.function.arguments) == ("t1", "get_weather", '{"city": "Oslo"}')
    assert [c.choices[0].finish_reason for c in chunks][-1] == "tool_calls"
    text = list(client_chunks(TierAnswer(text='{"total": 12}', stop_reason="end_turn"), None))
    assert [c.choices[0].delta.content for c in text] == ['{"total": 12}', None]
    assert text[-1].choices[0].finish_reason == "stop"
    # a tier's own usage chunk never reaches the client: the routed usage comes last instead
    usage_only = ModelResponseStream(id="u", choices=[StreamingChoices(index=0, delta=Delta())],
                                     usage=litellm.Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5))
    assert list(client_chunks(usage_only, template)) == []


def test_headers_of_a_failed_route_name_no_serving_tier():
    """A route that served nothing has no tier to name (the record's tier is null too):
    the headers say where it started and what each attempt did."""
    from langchain_tiered_router.core import RouteRequest
    from langchain_tiered_router.core.build import build_router
    from langchain_tiered_router.core.errors import LadderExhaustedError
    from langchain_tiered_router.core.testing import ScriptedBackend

    router = build_router({"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                                     {"name": "top", "model_id": "amazon.nova-pro-v1:0"}],
                           "gates": [{"kind": "regex", "pattern": "^never$"}], "on_exhausted": "raise",
                           "telemetry": {"sinks": []}}, telemetry=False)
    with pytest.raises(LadderExhaustedError) as info:
        router.route(RouteRequest("hi"), ScriptedBackend({"*": "an answer"}))
    headers = litellm_hooks.routing_headers(info.value.result)
    assert "x-tiered-router-tier" not in headers and headers["x-tiered-router-start-tier"] == "cheap"
    assert headers["x-tiered-router-attempts"] == "cheap:gate_failed,top:gate_failed"
    assert headers["x-tiered-router-escalated"] == "true"


def test_a_tier_that_falls_back_to_a_tiered_model_by_any_list_is_refused():
    """``"*"`` entries and ``default_fallbacks`` apply to every group: a tier they send
    back to a tiered model would route again without end (54 calls, then recursion)."""
    from types import SimpleNamespace

    from langchain_tiered_router.core import ConfigError
    from litellm_hooks._settings import check_tiers_against

    groups = {"cheap": "bedrock/converse/amazon.nova-micro-v1:0", "frontier": "bedrock/converse/x",
              "tiered": "tiered_router/tiered"}
    model_list = [{"model_name": n, "litellm_params": {"model": m}} for n, m in groups.items()]
    config = load_config({"tiers": [{"name": "cheap", "model_id": "amazon.nova-micro-v1:0"},
                                    {"name": "frontier", "model_id": "x", "price": {"input_per_mtok": 1,
                                                                                    "output_per_mtok": 1}}],
                          "telemetry": {"sinks": []}})

    def router(**settings):
        lists = {"fallbacks": None, "context_window_fallbacks": None, "content_policy_fallbacks": None,
                 "default_fallbacks": None, **settings}
        return SimpleNamespace(get_model_names=lambda: list(groups), **lists,
                               get_model_list=lambda model_name: [d for d in model_list
                                                                  if d["model_name"] == model_name])

    check_tiers_against(config, router())
    for settings in ({"fallbacks": [{"*": ["tiered"]}]}, {"default_fallbacks": ["tiered"]},
                     {"content_policy_fallbacks": [{"cheap": ["tiered"]}]}):
        with pytest.raises(ConfigError, match="falls back to tiered, which is a tiered model"):
            check_tiers_against(config, router(**settings))


def test_a_tiered_model_litellm_cannot_price_is_said_with_the_price_that_holds_its_budget(tmp_path, caplog):
    """LiteLLM reserves a request's worst-case cost against the caller's ``max_budget``
    only at a price it knows, and it cannot price ``tiered_router/...``: the hook names
    each tiered model with no per-token price in its ``model_info``, with the price of
    its ladder's worst case (every tier called), and is quiet about one that has it."""
    from types import SimpleNamespace

    from langchain_tiered_router.core.build import build_router
    from litellm_hooks._settings import warn_if_unpriced

    source = tmp_path / "router.yaml"
    source.write_text(yaml.safe_dump({"tiers": [
        {"name": "cheap", "model_id": "a", "price": {"input_per_mtok": 0.035, "output_per_mtok": 0.14}},
        {"name": "frontier", "model_id": "b", "price": {"input_per_mtok": 3, "output_per_mtok": 15}}],
        "telemetry": {"sinks": []}}))
    router = build_router(str(source), telemetry=False)

    def proxy(model_info: dict) -> SimpleNamespace:
        model_list = [{"model_name": "cheap", "litellm_params": {"model": "bedrock/converse/a"}},
                      {"model_name": "tiered", "litellm_params": {"model": "tiered_router/tiered",
                                                                   "tiered_router_config": str(source)},
                       "model_info": model_info}]
        return SimpleNamespace(get_model_names=lambda: [d["model_name"] for d in model_list],
                               get_model_list=lambda model_name: [d for d in model_list
                                                                  if d["model_name"] == model_name])

    with caplog.at_level("WARNING", logger="litellm_hooks"):
        warn_if_unpriced(str(source), router, proxy({"mode": "chat"}))
    (warning,) = [r.getMessage() for r in caplog.records if r.name.startswith("litellm_hooks")]
    assert "model tiered sets no per-token price" in warning and "holds no budget reservation" in warning
    assert "input_cost_per_token: 0.000003035, output_cost_per_token: 0.00001514" in warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="litellm_hooks"):
        warn_if_unpriced(str(source), router, proxy({"input_cost_per_token": 3.035e-6,
                                                     "output_cost_per_token": 1.514e-5}))
    assert not caplog.records


def test_a_misconfigured_router_yaml_names_its_file_not_the_proxys_folders():
    """The client's error names the router YAML's file and the key; the proxy's folders
    stay in its log (LiteLLM redacts paths on /chat/completions, not on /v1/messages,
    where the client read /srv/.../typo.yaml)."""
    from langchain_tiered_router.core import ConfigError
    from litellm_hooks._provider import misconfigured

    error = misconfigured(ConfigError("unknown key", path="retri", source="/srv/secret-folder/typo.yaml"), "tiered")
    detail = json.loads(error.message)
    assert detail["message"] == "typo.yaml: retri: unknown key" and detail["config_file"] == "typo.yaml"
    assert "/srv" not in error.message


def test_what_the_hook_remembers_of_model_names_is_bounded():
    """Clients may send any model name, each remembered as routed or not (and one-pass or
    not): a stream of made-up names must not grow the proxy's memory without end."""
    from litellm_hooks._hook import TieredRouterHook
    from litellm_hooks._one_pass import OnePassRoutes

    class Router:  # a LiteLLM router serving no model of these names
        @staticmethod
        def get_model_list(model_name: str) -> list:
            return []

    hook, routes, router = TieredRouterHook(), OnePassRoutes(provider=None), Router()
    for i in range(5000):
        assert hook._routed(router, f"made-up-{i}") is False
        assert routes.target(router, f"made-up-{i}") is None
    assert 0 < len(hook._routed_models) <= 1024 and 0 < len(routes._targets) <= 1024


def test_a_sync_routing_call_gets_its_requests_deadline_as_its_timeout():
    """A sync classifier's or grader's call through LiteLLM is made with a prompt, not the
    request: its ``timeout`` is still cut to the time its request has left."""
    import time
    from types import SimpleNamespace

    from langchain_tiered_router.core import RouteRequest
    from langchain_tiered_router.core.deadline import routing_call_for
    from litellm_hooks._backend import LiteLLMRouterBackend

    sent: list[dict] = []

    def completion(**kwargs):
        sent.append(kwargs)
        raise RuntimeError("no model here")

    backend = LiteLLMRouterBackend(SimpleNamespace(completion=completion, acompletion=None))
    tier = SimpleNamespace(name="cheap", model_id="amazon.nova-micro-v1:0", params={}, timeout_s=60.0)
    with pytest.raises(RuntimeError):
        backend.ask(tier, "grade this")  # outside a request: the tier's own timeout
    with routing_call_for(RouteRequest(text="hi", deadline=time.monotonic() + 2.0)), pytest.raises(RuntimeError):
        backend.ask(tier, "grade this")
    assert sent[0]["timeout"] == 60.0 and 0 < sent[1]["timeout"] <= 2.0
