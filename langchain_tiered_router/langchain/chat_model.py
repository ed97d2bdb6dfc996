"""``TieredChatBedrock``: a LangChain chat model that routes each call up a tier ladder.

It drops in where ``ChatBedrockConverse`` stood (``prompt | llm | parser``). One
``Router`` (the core) decides; one ``ChatBedrockConverse`` per tier answers, all on one
shared boto3 client. The reply is the served tier's message, with
``response_metadata["routing"]`` saying which tier answered and why, and what every
attempt and the baseline tier cost.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import threading
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Mapping, Sequence

from langchain_core.callbacks import (AsyncCallbackManager, AsyncCallbackManagerForLLMRun, CallbackManager,
                                      CallbackManagerForLLMRun)
from langchain_core.language_models import BaseChatModel, LanguageModelInput, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator

from ..core.bedrock_ids import check_bedrock_ids
from ..core.config import RouterConfig, load_config
from ..core.engine import Router
from ..core.errors import ConfigError, LadderExhaustedError
from ..core.gates import response_format_gates
from ..core.build import build_router
from ..core.tiers import Tier
from ..core.tool_calls import ForcedToolGate, forced_tool, tool_schemas
from ..core.types import RouteRequest, RoutingResult
from . import failed_runs
from ._convert import request_text
from ._param_check import check_params_on_failure
from ._profile import ladder_profile
from ._runs import ATTEMPT_RUNS, AttemptRuns, child_manager
from ._serial import LC_NAMESPACE, LC_SECRETS, dumped_config
from ._sessions import RUN_CONFIG, call_session
from ._streaming import as_chunk, final_chunk, served_metadata
from .callbacks import report_cancelled
from .backend import REFUSED_KWARG, LangChainBackend, as_ai_message
from .errors import as_langchain_error
from .structured import judged_tools, native_output, schema_gate, structured_parser
from .tool_readers import readers_of, remember

__all__ = ["TieredChatBedrock"]

GATES_KWARG = "tiered_gates"  # bound by with_structured_output; never sent to Bedrock


class TieredChatBedrock(BaseChatModel):
    """Routes each request to the cheapest Bedrock tier that clears the gates.

    Per-call options: ``session_id=`` (or ``config={"metadata": {"session_id": ...}}``,
    else ``configurable.session_id``, else a LangGraph ``configurable.thread_id``) keeps a
    conversation on one tier; ``tier=`` (or metadata ``requested_tier``) asks
    for a tier by name, ``model=`` for a tier by model id, both subject to the
    config's ``access`` rules; ``caller=`` (or metadata ``caller``) names who asks, as
    typed principals (``"team:ops"``, a list of them; a bare name is a user id), which
    session pins are scoped to as well.
    """

    config: RouterConfig = Field(repr=False)  # it may hold keys, DSN and Redis passwords: printing a chain showed them
    """The router config: a ``RouterConfig``, a dict, or a path to a YAML file."""
    client: Any = Field(default=None, exclude=True)
    """A boto3 ``bedrock-runtime`` client shared by every tier (made from the config if unset)."""
    bedrock_client: Any = Field(default=None, exclude=True)
    """A boto3 ``bedrock`` control-plane client, shared likewise (inference-profile lookups)."""
    temperature: float | None = Field(default=None, ge=0, le=1)  # Converse's range, sent to every tier
    """Default temperature of every tier; a tier's own ``temperature`` wins."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Default output cap of every tier; a tier's own ``max_tokens`` wins."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Default stop sequences of every tier."""
    # ``ChatBedrockConverse``'s own request settings, taken where it took them: each is
    # every tier's default (a tier's ``model_kwargs`` of the same name wins), and is sent
    # on every tier call, as ``.bind()`` and per-call kwargs are.
    top_p: float | None = Field(default=None, ge=0, le=1)
    system: list[str | dict[str, Any]] | None = None
    guardrail_config: dict[str, Any] | None = Field(default=None, alias="guardrails")
    additional_model_request_fields: dict[str, Any] | None = None
    additional_model_response_field_paths: list[str] | None = None
    performance_config: dict[str, Any] | None = None
    request_metadata: dict[str, str] | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None
    output_config: dict[str, Any] | None = None
    guard_last_turn_only: bool | None = None
    timeout: float | None = Field(default=None, gt=0)
    """Read timeout (seconds) of the shared client, when it is made here (default: the
    config's ``transport.timeout_s``; a tier's ``timeout_s`` gets a client of its own)."""
    max_retries: int = Field(default=0, ge=0, le=20)
    """botocore's own retries on the shared client. 0 by default: the router retries
    (``config.retry``) and records each retry; botocore retrying too would hide them."""
    api_key: SecretStr | None = Field(default=None, alias="bedrock_api_key")
    """A Bedrock API key (bearer token) instead of AWS credentials."""
    credentials_profile_name: str | None = Field(default=None, exclude=True)
    """An AWS profile for the clients made here (default: boto3's credential chain)."""
    aws_access_key_id: SecretStr | None = Field(default=None, exclude=True)
    aws_secret_access_key: SecretStr | None = Field(default=None, exclude=True)
    aws_session_token: SecretStr | None = Field(default=None, exclude=True)
    telemetry: bool = True
    """Record each request to the config's telemetry sinks."""
    streaming: bool | None = None
    """``True``: ``invoke`` takes the streaming path too (answers arrive through
    ConverseStream); ``False``: never stream, ``stream`` included (LangChain reads an
    explicit ``False`` so). Unset by default: a model LangChain rebuilds from its fields
    (``configurable_fields``) would otherwise pass the default as an explicit ``False``."""
    built: Any = Field(default=None, exclude=True, repr=False)
    """Internal: the router built from ``config``. LangChain rebuilds a model from its
    fields (``configurable_fields``); carrying the router over keeps its session pins
    and telemetry writers instead of starting new ones per call."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    _router: Router = PrivateAttr()
    _models: dict[str, Any] = PrivateAttr()
    _defaults: dict[str, Any] = PrivateAttr()  # ``_tier_defaults()``, as the tier models were built with
    _own_clients: bool = PrivateAttr(default=False)

    # -- building ------------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any):
        """A setting pydantic refuses (an unknown keyword, ``max_tokens=-5``) is a
        ``ConfigError`` naming it, as the same mistake in the config is."""
        try:
            super().__init__(*args, **kwargs)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "TieredChatBedrock"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ConfigError(f"{err['msg']}{more}", path=key) from None

    @field_validator("config", mode="before")
    @classmethod
    def _load_config(cls, value: Any) -> RouterConfig:
        return load_config(value)  # ConfigError (with its key path) propagates as itself

    @model_validator(mode="after")
    def _build(self) -> "TieredChatBedrock":
        # Runs again when LangChain rebuilds the model from its fields
        # (``configurable_fields``): the clients are fields, so they are reused.
        self._price_in_the_clients_region()
        built = previous = self.built if isinstance(self.built, _Built) else None
        if not (built is not None and built.config is self.config and built.telemetry == self.telemetry):
            # an id Bedrock cannot serve fails every call, escalated past in silence
            endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", None) if self.client is not None \
                else self.config.endpoint_url
            check_bedrock_ids((tier.model_id for tier in self.config.tiers),
                              endpoint_url=endpoint if isinstance(endpoint, str) else None, source=self.config._source)
            self.built = built = _Built.of(self.config, self.telemetry)
        own_client = self.client is None
        self._own_clients = own_client
        if own_client:
            self.client = self._make_client("bedrock-runtime")
        if self.bedrock_client is None:
            self.bedrock_client = self._make_client("bedrock")
        self._router = built.router
        self._defaults = self._tier_defaults()
        clients: dict[float, Any] = {}
        self._models = {tier.name: self._tier_model(i, tier, self._tier_client(tier, clients) if own_client else None)
                        for i, tier in enumerate(self._router.ladder)}
        derived = ladder_profile([m.profile for m in self._models.values()])
        # one given by the caller stands; one derived from the ladder it was rebuilt from does not
        if self.profile is None or (previous is not None and self.profile == previous.derived.get("profile")):
            self.profile = derived  # type: ignore[assignment]
        built.derived["profile"] = derived
        return self

    def _price_in_the_clients_region(self) -> None:
        """A caller's client calls Bedrock in its own region, and the tiers are priced there
        (a GovCloud client was billed at us-east-1's prices, silently): a config that names
        no region takes the client's; one that names another is a ``ConfigError``."""
        region = getattr(getattr(self.client, "meta", None), "region_name", None)
        if not isinstance(region, str) or not region or region == self.config.region_name:
            return
        if "region_name" in self.config.model_fields_set:
            raise ConfigError(f"the client calls Bedrock in {region}, but the config prices the tiers for "
                              f"{self.config.region_name}: set region_name to the client's region, or pass a "
                              "client of the config's", path="region_name")
        self.config = self.config.model_copy(update={"region_name": region})  # (the region is all prices read)

    def _tier_client(self, tier: Tier, clients: dict[float, Any]) -> Any:
        """The shared client, or one with the tier's own read timeout (one per timeout)."""
        default = self.timeout or self.config.transport.timeout_s
        if tier.timeout_s is None or tier.timeout_s == default:
            return self.client
        if tier.timeout_s not in clients:
            clients[tier.timeout_s] = self._make_client("bedrock-runtime", read_timeout=tier.timeout_s)
        return clients[tier.timeout_s]

    @property
    def executor(self) -> Any:
        """The threads the async paths run Bedrock calls on: ``transport.max_concurrency``
        of them (LangChain's default executor has min(32, cores + 4), 6 on 2 cores)."""
        return self.built.pool.get()

    def _make_client(self, service: str, read_timeout: float | None = None) -> Any:
        from botocore.config import Config as BotocoreConfig
        from langchain_aws.utils import create_aws_client

        transport = self.config.transport
        settings: dict[str, Any] = {"retries": {"total_max_attempts": 1 + self.max_retries, "mode": "standard"},
                                    "max_pool_connections": transport.max_concurrency}
        read_timeout = read_timeout or self.timeout or transport.timeout_s
        if read_timeout is not None:
            settings["read_timeout"] = read_timeout
        if transport.connect_timeout_s is not None:
            settings["connect_timeout"] = transport.connect_timeout_s
        # Bedrock checks every call's parameters again: botocore's check runs only on a
        # call it cannot serialise (``_param_check``), unless this botocore cannot be hooked
        for validate in ((True,) if transport.validate_params else (False, True)):
            try:
                client = create_aws_client(service, region_name=self.config.region_name,
                                           endpoint_url=self.config.endpoint_url,
                                           config=BotocoreConfig(**settings, parameter_validation=validate),
                                           api_key=self.api_key,
                                           credentials_profile_name=self.credentials_profile_name,
                                           aws_access_key_id=self.aws_access_key_id,
                                           aws_secret_access_key=self.aws_secret_access_key,
                                           aws_session_token=self.aws_session_token)
            except (ValueError, TypeError) as exc:  # botocore's own check of the region or the URL, or the profile
                key = "credentials_profile_name" if self.credentials_profile_name and "profile" in str(exc) \
                    else "endpoint_url"
                raise ConfigError(f"cannot make the {service} client: {exc}", path=key) from None
            if validate or check_params_on_failure(client):
                break
        return client

    def _tier_model(self, index: int, tier: Tier, client: Any = None) -> Any:
        from langchain_aws import ChatBedrockConverse

        params = dict(self._defaults)
        params.update(tier.params)  # the tier's own settings win
        if tier.provider:
            params["provider"] = tier.provider
        try:
            return ChatBedrockConverse(model=tier.model_id, client=client or self.client,
                                       bedrock_client=self.bedrock_client,
                                       region_name=self.config.region_name, **params)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            if not key:  # a check of the whole model: the only one that names a key is the provider's
                key = "provider" if "provider" in str(err["msg"]).lower() else "model_id"
            if key in _CONVERSE_SETTINGS and key not in tier.params:  # this model's own setting
                raise ConfigError(f"{err['msg']} (ChatBedrockConverse of tier {tier.name!r})", path=key) from None
            own = key in ("provider", "max_tokens", "temperature", "model", "model_id")
            raise ConfigError(err["msg"], path=f"tiers[{index}].{key}" if own else f"tiers[{index}].model_kwargs.{key}"
                              ) from None
        except (TypeError, ValueError) as exc:  # a model_kwargs key ChatBedrockConverse takes, with a bad value
            raise ConfigError(f"ChatBedrockConverse refused the tier's settings: {exc}"[:300],
                              path=f"tiers[{index}].model_kwargs") from None
        except Exception as exc:  # noqa: BLE001 - langchain-aws asks Bedrock which model an application profile runs
            from botocore.exceptions import BotoCoreError, ClientError

            if not isinstance(exc, (BotoCoreError, ClientError)):
                raise
            raise ConfigError(f"langchain-aws could not ask Bedrock which model this application inference profile "
                              f"runs ({type(exc).__name__}: {str(exc)[:200]}); set model_kwargs: {{base_model_id: "
                              f"<the profile's model id>}} to skip that call", path=f"tiers[{index}].model_id") from None

    def _tier_defaults(self) -> dict[str, Any]:
        """The settings every tier's ``ChatBedrockConverse`` gets from this model (set ones only)."""
        params = {"temperature": self.temperature, "max_tokens": self.max_tokens, "stop_sequences": self.stop,
                  **{name: getattr(self, name) for name in _CONVERSE_SETTINGS}}
        return {k: v for k, v in params.items() if v is not None}

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "TieredChatBedrock":
        """pydantic copies fields without validating them, so the tier models would keep the
        old settings and a new config would not be read: a copy with ``update`` is built
        again from its fields, as LangChain's ``configurable_fields`` builds one."""
        if not update:
            return super().model_copy(deep=deep)
        names = {info.alias: name for name, info in type(self).model_fields.items() if info.alias}
        update = {names.get(key, key): value for key, value in update.items()}
        # the fields the caller set (a default passed on would count as set: ``streaming``),
        # and what this model built that the copy may reuse
        fields = {k: v for k, v in self.__dict__.items()
                  if k in type(self).model_fields and (k in self.model_fields_set or k in _REUSED)}
        if self._own_clients and not {"client", "bedrock_client"} & set(update) and _CLIENT_SETTINGS & set(update):
            fields["client"] = fields["bedrock_client"] = None  # made here from settings that change
        return type(self)(**{**fields, **update})

    @classmethod
    def from_config(cls, path: str | Path | dict | RouterConfig, **kwargs: Any) -> "TieredChatBedrock":
        """A model from a YAML file (or a dict / ``RouterConfig``); ``kwargs`` set other fields."""
        return cls(config=path, **kwargs)

    @property
    def router(self) -> Router:
        return self._router

    @property
    def tier_models(self) -> dict[str, Any]:
        """The ``ChatBedrockConverse`` of each tier, by tier name, cheapest first."""
        return dict(self._models)

    # -- LangChain identity ------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "tiered-chat-bedrock"

    @property
    def model_name(self) -> str:
        """The ladder by tier names, ``tiered(<cheapest>><...>><top>)``. Not the model ids:
        LangChain's ``create_agent`` takes a model whose name matches a model it knows for
        one with native structured output, and the top tier's id would speak for the
        cheapest (the profile says what every tier has). Traces get the ids
        (``_get_ls_params``)."""
        return f"tiered({'>'.join(self._router.ladder.names)})"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # every setting of this model that changes an answer: LangChain's cache keys on these.
        # Asked on every call: the private attribute read straight (pydantic's ``__getattr__``)
        return {**self.built.identity, **self.__pydantic_private__["_defaults"]}  # type: ignore[index]

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """LangChain's own result (``asdict()``, then ``stop`` and the call's kwargs),
        without the deprecated ``dict()`` and the warnings filter it goes through on
        every call."""
        return {**self._identifying_params, "_type": self._llm_type, "stop": stop, **kwargs}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        """LangChain's generic params, without its attribute probing (asked on every call)."""
        model = kwargs.get("model")
        params = LangSmithParams(ls_provider="amazon_bedrock", ls_model_type="chat",
                                 ls_model_name=model if isinstance(model, str) else self.built.model_name)
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Sequence | None = None) -> int:
        """Counted by a tier's ``ChatBedrockConverse``: the first tier whose model Bedrock's
        CountTokens API supports (an exact count, one call), else the cheapest tier's
        (LangChain's estimate, as plain ``ChatBedrockConverse`` gives on that model).
        ``trim_messages(token_counter=llm)`` and the summarisation middleware count so."""
        from langchain_aws.utils import count_tokens_api_supported_for_model

        models = list(self._models.values())
        exact = next((m for m in models if count_tokens_api_supported_for_model(m._get_base_model())), None)
        return (exact or models[0]).get_num_tokens_from_messages(messages, tools=tools)

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        """The LLM cache's key as LangChain makes it for a model it does not serialise:
        what the answers depend on (``_identifying_params``: the routing config but for
        its telemetry, this model's settings) and the call's kwargs. Its key for a
        serialisable one is the whole dump, which names where telemetry goes: models that
        differ only there would not share cached answers."""
        return str(sorted({**self._get_invocation_params(stop=stop, **kwargs), **kwargs}.items()))

    # -- LangChain serialisation (``_serial``) -------------------------------------------

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return list(LC_NAMESPACE)

    @property
    def lc_secrets(self) -> dict[str, str]:
        return dict(LC_SECRETS)

    def to_json(self) -> Any:
        """A constructor entry, the router config inline (``_serial.dumped_config``). A
        config value it must not or cannot carry (a credential, an object) is a
        ``not_implemented`` entry there, which ``loads`` refuses as it refuses any value
        LangChain could not serialise; not an error here, since LangChain dumps the model
        itself on its first call."""
        serialized = super().to_json()
        if serialized["type"] == "constructor":  # always: the class is serialisable
            serialized["kwargs"]["config"] = dumped_config(self.config)
        return serialized

    # -- requests ------------------------------------------------------------------------

    def _tier_for_model(self, model: str) -> str:
        ladder = self._router.ladder
        if model in ladder:
            return model
        tier = ladder.by_model_id(model)
        if tier is None:
            raise ConfigError(f"model {model!r} is neither a tier name nor a tier's model id; "
                              f"the ladder has {', '.join(t.model_id for t in ladder)}", path="model")
        return tier.name

    def _request(self, messages: list[BaseMessage], kwargs: dict[str, Any], metadata: dict[str, Any],
                 run_id: Any = None) -> tuple[RouteRequest, dict[str, Any]]:
        kwargs = dict(kwargs)
        structured = list(kwargs.pop(GATES_KWARG, None) or [])
        try:  # a response_format (create_agent's native structured output) judges text answers, as on the proxy
            formats = response_format_gates(kwargs)
        except ConfigError as exc:  # refused at the tier call, so the request is recorded
            formats, kwargs[REFUSED_KWARG] = [], f"response_format: {exc}"
        kwargs.pop("stream", None)
        requested = kwargs.pop("tier", None) or metadata.get("requested_tier")
        model = kwargs.pop("model", None)
        if model:
            requested = self._tier_for_model(model)
        forced: list[Any] = []
        if not structured and kwargs.get("tools") and kwargs.get("tool_choice"):
            # a tier that cannot force the call is asked without tool_choice: its text escalates
            forces, tool = forced_tool(kwargs["tool_choice"])
            forced = [ForcedToolGate(tool)] if forces else []
        request = RouteRequest(
            text=request_text(messages), payload=messages,
            session_id=call_session(kwargs.pop("session_id", None), metadata),
            requested_tier=requested, caller=kwargs.pop("caller", None) or metadata.get("caller"),
            # a structured-output schema judges both kinds: a text answer to a forced tool call fails it
            gates=structured + formats + forced, tool_gates=structured + forced,
            tools=tool_schemas(kwargs.get("tools"), judged_elsewhere=judged_tools(structured),
                               readers=readers_of(kwargs.get("tools"))),
            metadata={"integration": "langchain"})
        failed_runs.mark(request, run_id)
        return request, kwargs

    def _backend(self, stop: list[str] | None, kwargs: dict[str, Any], runs: AttemptRuns | None) -> LangChainBackend:
        # the private attribute read straight: pydantic's ``__getattr__`` costs a request 1-8 µs
        models = self.__pydantic_private__["_models"]  # type: ignore[index]
        return LangChainBackend(models, stop=stop, kwargs=kwargs, runs=runs, executor=self.executor)

    @staticmethod
    def _runs(run_manager: Any) -> AttemptRuns:
        """The attempt runs of this LLM run; made once per run (``_generate_with_cache``
        already made them for a ``_stream`` LangChain may choose)."""
        current = ATTEMPT_RUNS.get()
        if run_manager is None:
            return current or AttemptRuns()
        if current is not None and current.parent_run_id == run_manager.run_id:
            return current
        return AttemptRuns.under(run_manager)

    # -- the answer ---------------------------------------------------------------------

    def _routed_generation(self, result: RoutingResult) -> ChatGeneration:
        """The served tier call's own generation (its ``text`` is its message's, which
        keeps its content), its message carrying the routing."""
        assert result.served is not None and result.served.answer is not None
        answer = result.served.answer
        message = as_ai_message(answer)
        meta = {k: v for k, v in message.response_metadata.items() if k != "model_name"}
        meta.update(served_metadata(result))
        # The tier call's own message, made for this call (an attempt run got a copy):
        # changed in place, not copied. Its id and name are the tier call's, not this
        # run's (LangChain sets the run's id).
        message.response_metadata, message.id, message.name = meta, None, None
        raw = answer.raw
        return raw if isinstance(raw, ChatGeneration) and raw.message is message else ChatGeneration(message=message)

    # -- sync paths ---------------------------------------------------------------------

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        runs = self._runs(run_manager)
        request, call_kwargs = self._request(messages, kwargs, runs.metadata, runs.parent_run_id)
        backend = self._backend(stop, call_kwargs, runs)
        try:
            result = self.built.router.route(request, backend)
        except LadderExhaustedError as exc:
            raise as_langchain_error(exc) from exc.__cause__
        finally:
            backend.detach()
        return ChatResult(generations=[self._routed_generation(result)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        runs = self._runs(run_manager)
        request, call_kwargs = self._request(messages, kwargs, runs.metadata, runs.parent_run_id)
        backend = self._backend(stop, call_kwargs, runs)
        routed = self.built.router.stream(request, backend)
        last = None
        try:
            for chunk in routed:
                last = as_chunk(chunk)
                yield last
        except LadderExhaustedError as exc:
            raise as_langchain_error(exc) from exc.__cause__
        finally:
            routed.close()
            backend.detach()
        yield final_chunk(routed.result, last)

    @staticmethod
    def _routing_kwargs(run_manager: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with the tier and the caller the run's metadata names
        (``requested_tier``, ``caller``) as ``tier=`` and ``caller=``: LangChain's LLM cache
        keys on the kwargs, not the metadata, so a cached cheap answer was served to a
        request for another tier, and an allowed caller's answer to one the access rules
        refuse. The kwargs mean the same to the router; ones given win."""
        metadata = getattr(run_manager, "metadata", None) or {}
        extra = {}
        if "tier" not in kwargs and metadata.get("requested_tier"):
            extra["tier"] = metadata["requested_tier"]
        if "caller" not in kwargs and metadata.get("caller"):
            extra["caller"] = metadata["caller"]
        return {**kwargs, **extra} if extra else kwargs

    def _generate_with_cache(self, messages: list[BaseMessage], stop: list[str] | None = None,
                             run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        # LangChain calls ``_stream`` without the run manager: hand it over by context.
        token = ATTEMPT_RUNS.set(self._runs(run_manager) if run_manager else None)
        try:
            return super()._generate_with_cache(messages, stop=stop, run_manager=run_manager,
                                                **self._routing_kwargs(run_manager, kwargs))
        finally:
            ATTEMPT_RUNS.reset(token)

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        # The call's config, for its ``configurable`` session keys (``_sessions``).
        token = RUN_CONFIG.set(config)
        try:
            return super().invoke(input, config, stop=stop, **kwargs)
        finally:
            RUN_CONFIG.reset(token)

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        token = RUN_CONFIG.set(config)
        try:
            return await super().ainvoke(input, config, stop=stop, **kwargs)
        finally:
            RUN_CONFIG.reset(token)

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        config = ensure_config(config)
        config["run_id"] = run_id = config.get("run_id") or uuid.uuid4()
        runs = self._stream_runs(CallbackManager, config, run_id)
        inner = super().stream(input, config, stop=stop, **kwargs)
        try:
            while True:
                token, config_token = ATTEMPT_RUNS.set(runs), RUN_CONFIG.set(config)
                try:
                    chunk = next(inner)
                except StopIteration:
                    return
                finally:
                    RUN_CONFIG.reset(config_token)
                    ATTEMPT_RUNS.reset(token)
                yield chunk
        finally:
            inner.close()

    def _stream_runs(self, cls: type, config: RunnableConfig, run_id: uuid.UUID) -> AttemptRuns:
        """The attempt runs under the coming LLM run (what its ``run_manager.get_child()``
        would be), for LangChain's ``stream``, which does not pass its run manager down."""
        configured = cls.configure(config.get("callbacks"), self.callbacks, self.verbose, config.get("tags"),
                                   self.tags, config.get("metadata"), self.metadata)
        metadata = dict(config.get("metadata") or {})
        if not configured.inheritable_handlers:
            return AttemptRuns(None, metadata, run_id)
        return AttemptRuns(child_manager(cls, run_id, configured.inheritable_handlers, configured.inheritable_tags,
                                         configured.inheritable_metadata), metadata, run_id)

    # -- async paths --------------------------------------------------------------------

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        runs = self._runs(run_manager)
        request, call_kwargs = self._request(messages, kwargs, runs.metadata, runs.parent_run_id)
        backend = self._backend(stop, call_kwargs, runs)
        try:
            result = await self.built.router.aroute(request, backend)
        except LadderExhaustedError as exc:
            raise as_langchain_error(exc) from exc.__cause__
        except asyncio.CancelledError as exc:  # the route is closed and billed; no on_llm_error comes
            report_cancelled(run_manager, exc)
            raise
        finally:
            backend.detach()
        return ChatResult(generations=[self._routed_generation(result)])

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any
                       ) -> AsyncIterator[ChatGenerationChunk]:
        runs = self._runs(run_manager)
        request, call_kwargs = self._request(messages, kwargs, runs.metadata, runs.parent_run_id)
        backend = self._backend(stop, call_kwargs, runs)
        routed = self.built.router.astream(request, backend)
        last = None
        try:
            async for chunk in routed:
                last = as_chunk(chunk)
                yield last
        except LadderExhaustedError as exc:
            raise as_langchain_error(exc) from exc.__cause__
        finally:
            await routed.aclose()
            backend.detach()
        yield final_chunk(routed.result, last)

    async def _agenerate_with_cache(self, messages: list[BaseMessage], stop: list[str] | None = None,
                                    run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any
                                    ) -> ChatResult:
        token = ATTEMPT_RUNS.set(self._runs(run_manager) if run_manager else None)
        try:
            return await super()._agenerate_with_cache(messages, stop=stop, run_manager=run_manager,
                                                       **self._routing_kwargs(run_manager, kwargs))
        finally:
            ATTEMPT_RUNS.reset(token)

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        config = ensure_config(config)
        config["run_id"] = run_id = config.get("run_id") or uuid.uuid4()
        runs = self._stream_runs(AsyncCallbackManager, config, run_id)
        inner = super().astream(input, config, stop=stop, **kwargs)
        try:
            while True:
                token, config_token = ATTEMPT_RUNS.set(runs), RUN_CONFIG.set(config)
                try:
                    chunk = await inner.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    RUN_CONFIG.reset(config_token)
                    ATTEMPT_RUNS.reset(token)
                yield chunk
        finally:
            await inner.aclose()

    # -- tools and structured output -------------------------------------------------------

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: dict | str | None = None, strict: bool | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools for every tier (OpenAI tool format; Bedrock ``toolSpec`` dicts and
        ``cachePoint`` markers, which cache the tool definitions before them, kept).

        ``tool_choice`` (``"auto"``, ``"any"``, a tool name) is resolved per tier at call
        time, against what that tier's model supports. Each call of a tool is judged as
        the code that runs it will read it (``tool_readers``): a ``BaseTool``, a
        function or a pydantic class by its pydantic model, a TypedDict with its
        ``Optional`` fields nullable.
        """
        system = [t for t in tools if _is_system_tool(t)]
        if system:  # sent as toolConfig, not tools; Nova models only: a ladder's other tiers refuse them
            raise ValueError(f"Bedrock system tools ({', '.join(map(_system_tool_name, system))}) are not routed: "
                             "they run on Nova models only, and a tiered model sends its tools to every tier; "
                             "bind them on a ChatBedrockConverse of a Nova model")
        bound = [_formatted_tool(t, strict) for t in tools]
        remember(tools, bound)
        return self.bind(tools=bound, tool_choice=tool_choice, **kwargs)

    def with_structured_output(self, schema: dict[str, Any] | type, *, include_raw: bool = False,
                               method: str = "function_calling", strict: bool | None = None,
                               **kwargs: Any) -> Runnable[LanguageModelInput, dict | Any]:
        """Structured output, with the schema also applied as a gate: a tier whose answer
        the parser would not accept escalates.

        ``function_calling`` (the default): a forced tool call, judged on its arguments as
        the parser reads them (``structured.schema_gate``). ``json_schema``: Bedrock's own
        structured output (``outputConfig.textFormat``, as ChatBedrockConverse sends it),
        judged on the answer's text. ``prompt_prefill`` is not routed (it rewrites the
        conversation per model): it warns and uses ``function_calling``. Other keyword
        arguments are as on ``ChatBedrockConverse``: bound to the model for
        ``json_schema`` (``stop=...``), ignored by ``function_calling``.
        """
        if method != "function_calling" and strict is not None:
            warnings.warn(f"The 'strict' parameter only applies to method='function_calling'; it is ignored "
                          f"for method='{method}'.", stacklevel=2)
        if method == "json_schema":
            output_config, gate, json_parser = native_output(schema)
            llm = self.bind(output_config=output_config, **{GATES_KWARG: [gate]},
                            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema}, **kwargs)
            if include_raw:
                assign = RunnablePassthrough.assign(parsed=itemgetter("raw") | json_parser,
                                                    parsing_error=lambda _: None)
                return RunnableMap(raw=llm) | assign.with_fallbacks([RunnablePassthrough.assign(parsed=lambda _: None)],
                                                                    exception_key="parsing_error")
            return llm | json_parser
        if method not in ("function_calling", "json_mode"):
            warnings.warn(f"TieredChatBedrock does not route method={method!r}; it uses 'function_calling'",
                          stacklevel=2)
        tool = convert_to_openai_tool(schema, strict=strict)
        name = tool["function"]["name"]
        llm = self.bind_tools([schema], tool_choice=name, strict=strict,
                              ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
                              **{GATES_KWARG: [schema_gate(schema, tool)]})
        parser: Runnable = structured_parser(schema, tool)
        if include_raw:
            parser_assign = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
            parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
            return RunnableMap(raw=llm) | parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
        return llm | parser


# LangChain reads ``_generate``'s signature on every call (does it take a run manager?);
# a signature set on the function is returned as it is instead of being worked out anew.
for _hook in (TieredChatBedrock._generate, TieredChatBedrock._agenerate):
    _hook.__signature__ = inspect.signature(_hook)  # type: ignore[attr-defined]


class _Pool:
    """A thread pool made on first use, kept with the router across rebuilds of the model."""

    def __init__(self, size: int):
        self.size = size
        self._executor: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="tiered-router-bedrock")
        return self._executor


_SYSTEM_TOOL_NAMES = ("nova_grounding", "nova_code_interpreter")


def _formatted_tool(tool: Any, strict: bool | None) -> Any:
    """A tool as ``bind_tools`` sends it to every tier: OpenAI's format, except a Bedrock
    ``toolSpec`` (as given, unless ``strict`` asks for its schema to be made strict, as
    ``ChatBedrockConverse.bind_tools`` does) and a ``cachePoint`` marker."""
    if isinstance(tool, dict) and "cachePoint" in tool:
        return tool
    if isinstance(tool, dict) and "toolSpec" in tool:
        if strict is None:
            return tool
        try:
            return convert_to_openai_tool(tool, strict=strict)
        except Exception:  # noqa: BLE001 - a spec LangChain cannot read: sent as given, marked strict
            return {**tool, "toolSpec": {**tool["toolSpec"], "strict": strict}}
    return convert_to_openai_tool(tool, strict=strict)


def _is_system_tool(tool: Any) -> bool:
    """A Bedrock system tool as langchain-aws's ``bind_tools`` takes one: a name, a
    ``NovaSystemTool``, or a ``systemTool`` entry."""
    return (isinstance(tool, str) and tool in _SYSTEM_TOOL_NAMES) or type(tool).__name__ == "NovaSystemTool" \
        or (isinstance(tool, dict) and "systemTool" in tool)


def _system_tool_name(tool: Any) -> str:
    if isinstance(tool, str):
        return tool
    if isinstance(tool, dict):
        return str((tool.get("systemTool") or {}).get("name", "systemTool"))
    return str(getattr(tool, "name", type(tool).__name__))


# the fields the clients made by the model are built from
_CLIENT_SETTINGS = frozenset({"config", "timeout", "max_retries", "api_key", "credentials_profile_name",
                              "aws_access_key_id", "aws_secret_access_key", "aws_session_token"})
# ``ChatBedrockConverse``'s request settings this model passes to every tier as it is
_CONVERSE_SETTINGS = ("top_p", "system", "guardrail_config", "additional_model_request_fields",
                      "additional_model_response_field_paths", "performance_config", "request_metadata",
                      "reasoning_effort", "service_tier", "output_config", "guard_last_turn_only")
# what a copy takes over from the model it copies though the caller did not set it
_REUSED = frozenset({"client", "bedrock_client", "built"})


def config_digest(config: RouterConfig) -> str:
    """What the answers depend on (tiers, gates, policy, transport; not where telemetry
    goes), as a short hash: LangChain's LLM cache keys on it."""
    try:
        data: Any = config.model_dump(mode="json", exclude={"telemetry"})
    except Exception:  # a value with no JSON form (a callable gate): its repr stands in
        data = repr(config.model_dump(exclude={"telemetry"}))
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=repr).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Built:
    """The router built from a config, with the names LangChain asks for on every call."""

    config: RouterConfig
    telemetry: bool
    router: Router
    pool: _Pool
    model_name: str
    identity: dict[str, Any]
    # what the first model built on it derived from its tier models ("profile"): a model
    # rebuilt from its fields carries that profile over, and must not keep it on another ladder
    derived: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, config: RouterConfig, telemetry: bool) -> "_Built":
        router = build_router(config, telemetry=telemetry)
        router.add_observer(failed_runs.observe)
        ladder = router.ladder
        identity = {"tiers": {t.name: t.model_id for t in ladder}, "baseline": ladder.baseline.name,
                    "policy": router.policy.name, "config": config_digest(config)}
        return cls(config, telemetry, router, _Pool(config.transport.max_concurrency),
                   "tiered:" + ">".join(t.model_id for t in ladder), identity)
