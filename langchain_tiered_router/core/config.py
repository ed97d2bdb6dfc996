"""The router config: one typed file that drives LangChain and LiteLLM alike.

Loaded in one place (``RouterConfig.from_yaml``), validated by pydantic with unknown
keys forbidden, and reported as ``ConfigError`` naming the key path
(``tiers[2].price.input_per_mtok``). ``to_yaml`` writes a file that loads back equal.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import random
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator,
                      model_validator)

from .access import parse_principal
from .bedrock_ids import bedrock_id_problem
from .confidence import DEFAULT_SENTINELS
from .config_file import check_config_data, read_config_file
from .errors import ConfigError, PricingError, UnknownTierError
from .pricing import Price, lookup_price, override_price
from .redact import redact_secrets
from .templates import check_template

__all__ = [
    "RouterConfig", "TierConfig", "PriceOverride", "PolicyConfig", "ClassifierConfig",
    "RetryConfig", "TransportConfig", "CircuitConfig", "PinningConfig", "TelemetryConfig", "SinkConfig", "ShadowConfig",
    "ComparatorConfig", "AccessConfig", "BatchConfig", "GateConfig", "load_config",
]


class _Strict(BaseModel):
    # NaN and infinity are never a setting; a number's range is on its field.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data: Any) -> Any:
        """``max_tokens: yes`` is YAML's True, which pydantic reads as 1 (every answer cut to
        one token). A bool is never a number's setting, so one given for a number is read as
        the word it was written as, which the number's field refuses at its own key. (A
        number written as a string, as an environment variable gives it, is still read.)"""
        if not isinstance(data, dict):
            return data
        numbers = _number_fields(cls)
        bools = [key for key, value in data.items() if isinstance(value, bool) and key in numbers]
        if not bools:
            return data
        return {**data, **{key: str(data[key]).lower() for key in bools}}


@functools.lru_cache(maxsize=None)
def _number_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names (and aliases) of ``model``'s fields that hold a number, not a bool."""
    return frozenset(name for field_name, field in model.model_fields.items() if _numeric(field.annotation)
                     for name in (field_name, field.alias) if name)


def _numeric(annotation: Any) -> bool:
    """Whether a field's type is int or float (perhaps optional)."""
    if annotation in (int, float):
        return True
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and bool(args) and all(
        a in (int, float) for a in args)


# Names that go into headers, pin keys and metrics: letters, digits and ". _ - @ : / +"
# (model names such as "Llama-3.1-405B-Inst@sambanova"); no spaces, quotes or controls.
TierName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:/+-]{0,127}$")]
NonBlank = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"\S")]
MAX_PRICE = 100_000  # USD per million tokens: far above any model's


def _json_values(value: Any) -> None:
    """Values passed on to a model API must be JSON: no dates, bytes or NaN from YAML tags."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if not all(isinstance(k, str) for k in node):
                raise ValueError("keys must be strings")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("numbers must be finite")
        elif not isinstance(node, (str, int, float, bool, type(None))):
            raise ValueError(f"values must be JSON values, got a {type(node).__name__}")


def _read_only_by(model: type[BaseModel], value: Any, info: Any, switch: str, readers: tuple[str, ...]) -> None:
    """A key the section's ``switch`` (its kind, backend or signal) never reads is a mistake,
    said: it was accepted and silently ignored (a ``redis_url`` without ``backend: redis``
    kept the state in each process). Called from a field validator, so it runs only for a
    key the file sets, and the error names that key; a key at its default changes nothing
    (a full ``model_dump()`` writes every key) and passes."""
    if value == model.model_fields[info.field_name].get_default(call_default_factory=True):
        return
    chosen = info.data.get(switch)
    if chosen is not None and chosen not in readers:
        raise ValueError(f"{info.field_name} is read only with {switch} {' or '.join(readers)}; with {switch} "
                         f"{chosen} it would be ignored (remove it, or set {switch}: {readers[0]})")


class PriceOverride(_Strict):
    """USD per million tokens; overrides the cost map for one tier."""

    input_per_mtok: Decimal = Field(ge=0, le=MAX_PRICE)
    output_per_mtok: Decimal = Field(ge=0, le=MAX_PRICE)
    cache_read_per_mtok: Decimal | None = Field(None, ge=0, le=MAX_PRICE)
    cache_write_per_mtok: Decimal | None = Field(None, ge=0, le=MAX_PRICE)
    cache_write_1h_per_mtok: Decimal | None = Field(None, ge=0, le=MAX_PRICE)  # a cache point with ttl: 1h

    def to_price(self) -> Price:
        return Price(self.input_per_mtok, self.output_per_mtok,
                     self.cache_read_per_mtok, self.cache_write_per_mtok, source="override",
                     cache_write_1h_per_mtok=self.cache_write_1h_per_mtok)


# ---- gates -------------------------------------------------------------------------

class JsonSchemaGateConfig(_Strict):
    """The answer (text, or tool-call arguments) must be JSON valid against ``schema``."""

    kind: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")  # checked when the gate is built (core.json_schema)
    source: Literal["auto", "text", "tool_args"] = "auto"
    # JSON after prose ("Sure! {...}") passes too: only for a reader that finds it there
    # (off: the text, a fenced block or a value it starts with, as JSON parsers read it)
    embedded: bool = False


class PydanticGateConfig(_Strict):
    """The answer must parse as the pydantic model at ``model`` (``package.module:Class``)."""

    kind: Literal["pydantic"]
    model: NonBlank
    source: Literal["auto", "text", "tool_args"] = "auto"
    embedded: bool = False  # as json_schema's


class RegexGateConfig(_Strict):
    """The answer must (or, with ``must_match: false``, must not) match ``pattern``."""

    kind: Literal["regex"]
    pattern: str = Field(min_length=1, max_length=10_000)
    must_match: bool = True
    ignore_case: bool = False


class RuleGateConfig(_Strict):
    """A business rule: ``function`` (``package.module:func``) takes (question, answer)
    and returns a bool or a (bool, reason) pair."""

    kind: Literal["rule"]
    function: NonBlank


class SelfGradeGateConfig(_Strict):
    """A cheap tier scores the answer against the question (0-10); pass at >= threshold."""

    kind: Literal["self_grade"]
    grader_tier: str | None = None  # default: the cheapest tier
    threshold: float = Field(7.0, ge=0, le=10)
    prompt: str | None = None  # placeholders {question} and {answer}; literal braces as {{ }}

    @field_validator("prompt")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        return check_template(value, ("question", "answer"), ("answer",)) if value is not None else None


class ConfidenceGateConfig(_Strict):
    """Escalate on a model-signalled doubt: a self-rating in the answer, an abstention
    sentinel, or mean token logprob where the model returns logprobs."""

    kind: Literal["confidence"]
    signal: Literal["any", "self_rating", "sentinel", "logprobs"] = "any"
    threshold: float = Field(0.7, ge=0, le=1)
    sentinels: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: list(DEFAULT_SENTINELS))
    missing: Literal["pass", "fail"] = "pass"

    @field_validator("sentinels")
    @classmethod
    def _some_sentinel(cls, value: list[str], info: Any) -> list[str]:
        _read_only_by(cls, value, info, "signal", ("any", "sentinel"))  # self_rating and logprobs look for no sentinel
        if not value and info.data.get("signal") == "sentinel":
            raise ValueError("signal 'sentinel' needs at least one sentinel")
        return value


class VerifierGateConfig(_Strict):
    """A trained cascade (a model file from ``tiered-router calibrate --policy cascade``):
    escalates when the predicted quality gained one tier up is worth its predicted cost."""

    kind: Literal["verifier"]
    path: NonBlank  # must exist when the router is built
    threshold: float | None = Field(None, ge=0, le=1e6)  # overrides the calibrated exchange rate lambda


class ConsistencyGateConfig(_Strict):
    """Ask ``tier`` the same request for a second opinion (a priced call) and pass when
    both replies reach the same final answer; put it on a tier other than ``tier``."""

    kind: Literal["consistency"]
    tier: str


class AllGateConfig(_Strict):
    """Every listed gate must pass (``a & b``)."""

    kind: Literal["all"]
    gates: list["GateConfig"] = Field(min_length=1)


class AnyGateConfig(_Strict):
    """At least one listed gate must pass (``a | b``); with none listed it could never pass."""

    kind: Literal["any"]
    gates: list["GateConfig"] = Field(min_length=1)


GateConfig = Annotated[
    Union[JsonSchemaGateConfig, PydanticGateConfig, RegexGateConfig, RuleGateConfig,
          SelfGradeGateConfig, ConfidenceGateConfig, VerifierGateConfig, ConsistencyGateConfig, AllGateConfig,
          AnyGateConfig],
    Field(discriminator="kind"),
]
AllGateConfig.model_rebuild()
AnyGateConfig.model_rebuild()


# ---- tiers, policy -----------------------------------------------------------------

class TierConfig(_Strict):
    """One rung of the ladder. Tiers are listed cheapest first."""

    name: TierName
    model_id: str = Field(min_length=1, max_length=2048, pattern=r"^\S+$")
    price: PriceOverride | None = None
    provider: str | None = Field(None, pattern=r"^[a-z][a-z0-9_-]{0,39}$")  # langchain-aws, for ARNs
    gates: list[GateConfig] | None = None  # replaces the top-level gates for this tier
    tool_gates: list[GateConfig] | None = None  # replaces the top-level tool_gates for this tier
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    timeout_s: float | None = Field(None, gt=0, le=3600)  # this tier's read timeout; default transport.timeout_s
    model_kwargs: dict[str, Any] = Field(default_factory=dict)  # passed to the model as they are

    @field_validator("temperature")
    @classmethod
    def _bedrock_temperature(cls, value: float | None, info: Any) -> float | None:
        """Every way a tier calls a Bedrock model sends its temperature where Bedrock takes 0-1:
        Converse's ``inferenceConfig.temperature`` (LangChain, LiteLLM's bedrock/converse,
        collect, batch Converse records) and each InvokeModel body a batch writes (Anthropic,
        Nova, Llama, Mistral, Titan). Up to 2 stays for a model elsewhere (a LiteLLM model
        group on OpenAI or Gemini, which take 0-2)."""
        model_id = info.data.get("model_id")
        if value is not None and value > 1 and model_id is not None and _on_bedrock(model_id):
            raise ValueError(f"Bedrock takes a temperature of 0 to 1 (Converse's inferenceConfig.temperature): "
                             f"every call of this tier would be refused at {value:g}")
        return value

    @field_validator("model_kwargs")
    @classmethod
    def _plain_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in ("max_tokens", "temperature"):
            if key in value:
                raise ValueError(f"set {key!r} on the tier itself, where its range is checked")
        _json_values(value)
        top_p = value.get("top_p")
        if isinstance(top_p, (int, float)) and not isinstance(top_p, bool) and not 0 <= top_p <= 1:
            raise ValueError(f"top_p is a probability, 0 to 1 (Bedrock's inferenceConfig.topP, and every other "
                             f"API's), got {top_p:g}")
        return value


def _on_bedrock(model_id: str) -> bool:
    """Whether ``model_id`` names a Bedrock model (Bedrock's own id or ARN, or LiteLLM's ``bedrock/`` spelling)."""
    return model_id.startswith("bedrock/") or bedrock_id_problem(model_id) is None


class RuleConfig(_Strict):
    """One rules-classifier rule: send to ``tier`` when a keyword or a length matches."""

    tier: str
    keywords: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list)
    min_chars: int | None = Field(None, ge=0, le=10_000_000)
    max_chars: int | None = Field(None, ge=0, le=10_000_000)

    @field_validator("max_chars")
    @classmethod
    def _max_not_below_min(cls, value: int | None, info: Any) -> int | None:
        low = info.data.get("min_chars")
        if value is not None and low is not None and value < low:
            raise ValueError(f"must be at least min_chars ({low})")
        return value

    @model_validator(mode="after")
    def _matches_something(self) -> "RuleConfig":
        if not self.keywords and self.min_chars is None and self.max_chars is None:
            raise ValueError("a rule needs keywords, min_chars or max_chars (send everything elsewhere with "
                             "default_tier)")
        return self


class ClassifierConfig(_Strict):
    """How a classifier predicts the starting tier.

    ``rules``: keyword and length rules, first match wins, else ``default_tier``.
    ``trained``: a model file written by ``tiered-router calibrate`` (``path``).
    ``llm``: asks ``llm_tier`` (default: the cheapest) for one of the tier names; an
    unreadable reply, or a call that failed after its retries, starts at ``default_tier``.
    """

    kind: Literal["rules", "trained", "llm"]
    rules: list[RuleConfig] = Field(default_factory=list)
    default_tier: str | None = None
    path: NonBlank | None = None  # trained: must exist when the router is built
    threshold: float | None = Field(None, ge=0, le=1e6)  # trained: overrides the calibrated exchange rate lambda
    llm_tier: str | None = None
    prompt: str | None = None  # llm: placeholders {tiers} and {request}; literal braces as {{ }}

    @field_validator("prompt")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        return check_template(value, ("tiers", "request"), ("request",)) if value is not None else None

    @field_validator("rules", "default_tier", "path", "threshold", "prompt")
    @classmethod
    def _keys_of_its_kind(cls, value: Any, info: Any) -> Any:
        # llm_tier is not here: `tiered-router estimate --classifier llm` reads it whatever the kind
        readers = {"rules": ("rules",), "default_tier": ("rules", "llm"), "path": ("trained",),
                   "threshold": ("trained",), "prompt": ("llm",)}[info.field_name]
        _read_only_by(cls, value, info, "kind", readers)
        return value

    @model_validator(mode="after")
    def _has_rules(self) -> "ClassifierConfig":
        if self.kind == "rules" and not self.rules:
            raise ValueError("a rules classifier needs at least one rule (or use policy.start_tier)")
        return self


class PolicyConfig(_Strict):
    """``cascade`` starts cheap (or where ``classifier`` says) and escalates on a failed
    gate; ``classifier`` serves the predicted tier (gates, if any, still escalate);
    ``confidence`` escalates when the answer's own confidence is below ``threshold``;
    ``auto`` serves the strategy ``tiered-router calibrate`` chose, from the model file
    at ``path`` (configured gates still apply on top)."""

    kind: Literal["cascade", "classifier", "confidence", "auto"] = "cascade"
    path: NonBlank | None = None  # auto: the model file written by `tiered-router calibrate`
    max_escalations: int = Field(2, ge=0, le=100)
    classifier: ClassifierConfig | None = None
    start_tier: str | None = None
    confidence: ConfidenceGateConfig | None = None

    @model_validator(mode="after")
    def _keys_of_its_kind(self) -> "PolicyConfig":
        """A key this kind of policy never reads is a mistake, said: a ``confidence``
        section left under a cascade silently turned off escalation on doubt."""
        reads = {"cascade": {"classifier", "start_tier"}, "classifier": {"classifier"},
                 "confidence": {"classifier", "start_tier", "confidence"}, "auto": {"path"}}[self.kind]
        for key in ("path", "classifier", "start_tier", "confidence"):
            if getattr(self, key) is not None and key not in reads:
                hint = {"confidence": "; to escalate on doubt in this policy, add a gate: {kind: confidence, ...}",
                        "path": "; a trained classifier's file goes in policy.classifier.path"}.get(key, "")
                raise ValueError(f"{key} is not read by a {self.kind} policy{hint}")
        return self


class RetryConfig(_Strict):
    """What a failed call does: a transport error (throttled, 5xx, timeout, cut stream)
    or a malformed reply is retried on the same tier ``max_retries`` times with
    exponential backoff and full jitter (a server's ``Retry-After`` is honoured, and a
    wait longer than ``max_backoff_s`` or the request's deadline escalates instead),
    then ``on_exhausted``. An error in ``escalate_on`` (the prompt is over this model's
    context window, the model is not enabled here, it cannot read an image or take tools)
    is not retried: a larger tier may take the request, so it escalates."""

    max_retries: int = Field(2, ge=0, le=10)
    backoff_s: float = Field(0.2, ge=0, le=60)
    max_backoff_s: float = Field(5.0, ge=0, le=600)
    jitter: bool = True
    retry_on: list[Literal["throttled", "server_error", "timeout", "stream_cut", "connection", "malformed",
                           "other"]] = Field(
        default_factory=lambda: ["throttled", "server_error", "timeout", "stream_cut", "connection", "malformed"])
    on_exhausted: Literal["escalate", "raise"] = "escalate"
    escalate_on: list[Literal["context_window", "model_unavailable", "unsupported_input", "validation"]] = Field(
        default_factory=lambda: ["context_window", "model_unavailable", "unsupported_input"])

    def delay(self, retry: int, retry_after: float | None = None, rng: Any = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): exponential, capped,
        drawn uniformly below that cap with ``jitter`` (so throttled clients do not retry
        in lockstep), and never less than the server's ``retry_after``."""
        cap = min(self.max_backoff_s, self.backoff_s * (2 ** (retry - 1)))
        if self.jitter:
            cap = (rng or random).uniform(0, cap)
        return max(cap, retry_after or 0.0)


class TransportConfig(_Strict):
    """Time and concurrency limits of tier calls.

    ``deadline_s`` is a request's whole budget: no call, retry, backoff or escalation
    starts after it, and an async call still running at the deadline is abandoned as a
    timeout (a sync call ends at its own ``timeout_s``). ``timeout_s`` is one call's
    read timeout (a tier's ``timeout_s`` overrides it). ``max_concurrency`` sizes what
    ``TieredChatBedrock`` runs its Bedrock calls on: the thread pool of ``ainvoke`` /
    ``astream`` and the boto3 connection pool. ``validate_params``: botocore checks
    every call's parameters before sending them (about 50 µs of CPU a call), which
    Bedrock does again; off, a malformed parameter is Bedrock's ``ValidationException``,
    and one botocore cannot serialise still gets botocore's ``ParamValidationError``."""

    deadline_s: float | None = Field(None, gt=0, le=86_400)
    timeout_s: float | None = Field(None, gt=0, le=3600)
    connect_timeout_s: float | None = Field(None, gt=0, le=600)
    max_concurrency: int = Field(64, ge=1, le=10_000)
    validate_params: bool = False


class CircuitConfig(_Strict):
    """A circuit breaker per tier: after ``failures`` transport failures in a row the
    tier is skipped (recorded as a skip) for ``cooldown_s``; then one request probes it
    (half-open): a success closes the circuit, a failure opens it again. ``backend:
    redis`` shares the state across replicas."""

    enabled: bool = True
    failures: int = Field(5, ge=1, le=1_000_000)
    cooldown_s: float = Field(30.0, gt=0, le=86_400)
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = Field(None, pattern=r"^(redis|rediss|unix)://\S+$")
    key_prefix: NonBlank = "tiered-router:circuit:"

    @field_validator("redis_url", "key_prefix")
    @classmethod
    def _keys_of_its_backend(cls, value: Any, info: Any) -> Any:
        _read_only_by(cls, value, info, "backend", ("redis",))
        return value


class PinningConfig(_Strict):
    """Keep a conversation on one tier so Bedrock prompt caches stay warm."""

    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    max_sessions: int = Field(10_000, ge=1, le=10_000_000)
    ttl_s: float = Field(3600, gt=0, le=30 * 86400)
    redis_url: str | None = Field(None, pattern=r"^(redis|rediss|unix)://\S+$")
    key_prefix: str = Field("tiered-router:pin:", max_length=200)

    @field_validator("max_sessions", "redis_url", "key_prefix")
    @classmethod
    def _keys_of_its_backend(cls, value: Any, info: Any) -> Any:
        _read_only_by(cls, value, info, "backend", ("memory",) if info.field_name == "max_sessions" else ("redis",))
        return value


class SinkConfig(_Strict):
    """One telemetry destination.

    Every kind writes from a background thread through a bounded queue (``queue_size``):
    a full queue drops the record and counts it, never blocking a request. For ``sqlite``
    and ``postgres``, ``durable: true`` writes each record to a write-ahead journal first
    (``journal_dir``; default ``<path>.journal`` for SQLite) and returns once it is on
    disk (group commit): no acknowledged record is lost, even to ``kill -9``.
    """

    kind: Literal["sqlite", "postgres", "jsonl", "otel", "logging"]
    path: NonBlank | None = None  # sqlite / jsonl
    dsn: NonBlank | None = None  # postgres: postgresql://user@host:port/db (or $TIERED_ROUTER_POSTGRES_DSN)
    logger: NonBlank = "langchain_tiered_router.telemetry"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "debug", "info", "warning", "error",
                   "critical"] = "INFO"
    batch_size: int = Field(2_000, ge=1, le=100_000)  # most rows one commit takes (it takes what is queued)
    flush_interval_s: float = Field(0.5, gt=0, le=3600)
    # how long the writer lets records gather after the first one before it commits them
    linger_s: float = Field(0.05, ge=0, le=60)
    queue_size: int = Field(10_000, ge=1, le=10_000_000)
    retry_s: float = Field(10.0, ge=0, le=3600)  # how long a batch waits for a store that is down
    durable: bool = False
    journal_dir: NonBlank | None = None

    @field_validator("logger", "level")
    @classmethod
    def _logging_keys(cls, value: Any, info: Any) -> Any:
        _read_only_by(cls, value, info, "kind", ("logging",))
        return value

    @model_validator(mode="after")
    def _keys_of_its_kind(self) -> "SinkConfig":
        """A key another kind of sink reads is a mistake, said (a postgres DSN given as a
        sqlite ``path`` made a local file named after it)."""
        if self.kind == "sqlite" and self.path and self.path.startswith(("postgresql://", "postgres://")):
            raise ValueError("path is a PostgreSQL DSN: write kind: postgres, dsn: ...")
        if self.path is not None and self.kind not in ("sqlite", "jsonl"):
            raise ValueError(f"path is read by the sqlite and jsonl sinks, not by {self.kind}"
                             + ("; the postgres sink takes dsn" if self.kind == "postgres" else ""))
        if (self.durable or self.journal_dir is not None) and self.kind not in ("sqlite", "postgres"):
            raise ValueError(f"durable and journal_dir are read by the sqlite and postgres sinks, not by {self.kind}")
        if self.dsn is not None and self.kind != "postgres":
            raise ValueError(f"dsn is read by the postgres sink, not by {self.kind}"
                             + ("; the sqlite sink takes path" if self.kind == "sqlite" else ""))
        return self


class ComparatorConfig(_Strict):
    """How a shadow answer of the baseline tier is compared with the served one."""

    kind: Literal["exact", "json_fields", "numeric", "llm_judge"] = "exact"
    fields: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)  # json_fields; default: all
    tolerance: float = Field(1e-6, ge=0, le=1e12)  # numeric
    # llm_judge; and, whatever the kind, `tiered-router collect`'s judge of prompts without a gold answer
    judge_tier: str | None = None

    @field_validator("fields", "tolerance")
    @classmethod
    def _keys_of_its_kind(cls, value: Any, info: Any) -> Any:
        _read_only_by(cls, value, info, "kind", ("json_fields",) if info.field_name == "fields" else ("numeric",))
        return value


class ShadowConfig(_Strict):
    """Send a fraction of lower-tier requests to the baseline too, in the background."""

    fraction: float = Field(0.0, ge=0, le=1)
    comparator: ComparatorConfig = Field(default_factory=ComparatorConfig)
    seed: int | None = Field(None, ge=-(2 ** 63), le=2 ** 63)
    max_in_flight: int = Field(8, ge=1, le=1000)


class TelemetryConfig(_Strict):
    store_text: bool = False
    sinks: list[SinkConfig] = Field(default_factory=lambda: [SinkConfig(kind="sqlite", path="tiered_router.db")])
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)


def _typed_principal(value: str) -> str:
    try:
        return parse_principal(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


class AccessConfig(_Strict):
    """Which callers may ask for a tier by name: typed principals (``team:ops``,
    ``team_alias:Ops``, ``key_alias:ci-key``, ``user:alice``, ``key:<hashed key>``) or
    ``*`` for every caller. Kinds never match each other: a key *aliased* ``ops`` is not
    the *team* ``ops``."""

    allow_tier_request: list[Annotated[str, AfterValidator(_typed_principal)]] = Field(default_factory=list)
    on_forbidden: Literal["reject", "ignore"] = "reject"


class BatchConfig(_Strict):
    """Bedrock batch inference (``tiered-router batch run``); read only by ``langchain_tiered_router.batch``.

    Records go to Bedrock as model invocation jobs, one wave per tier; a tier's group
    smaller than ``min_records_per_job`` (Bedrock's quota: 100 by default) goes
    on-demand when ``on_demand_below_min`` is on, else its records end unserved there.
    """

    bucket: str | None = Field(None, pattern=r"^s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](/.*)?$")
    role_arn: str | None = Field(None, pattern=r"^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+$")
    min_records_per_job: int = Field(100, ge=1)
    max_records_per_job: int = Field(50_000, ge=1)
    max_concurrent_jobs: int = Field(10, ge=1)
    poll_interval_s: float = Field(60.0, gt=0, le=86400)
    on_demand_below_min: bool = True
    discount: Decimal = Field(Decimal("0.5"), ge=0, lt=1)  # off on-demand, where the cost map has no batch price
    invocation_type: Literal["InvokeModel", "Converse"] = "InvokeModel"
    timeout_hours: int | None = Field(None, ge=24, le=168)
    max_resubmits: int = Field(2, ge=0)  # a record a failed or partial job never processed
    endpoint_url: str | None = None  # the bedrock control plane; default: the top-level endpoint_url
    s3_endpoint_url: str | None = None

    @field_validator("max_records_per_job")
    @classmethod
    def _max_not_below_min(cls, value: int, info: Any) -> int:
        low = info.data.get("min_records_per_job")
        if low is not None and value < low:
            raise ValueError(f"must be at least min_records_per_job ({low})")
        return value


class RouterConfig(_Strict):
    """The whole router: ladder, policy, gates, terminal behaviour, transport, telemetry."""

    # the YAML file it was read from: an error found when the router is built names it too
    _source: str | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        """Equal settings are equal configs, whichever file (if any) they were read from."""
        if not isinstance(other, RouterConfig):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    tiers: list[TierConfig] = Field(min_length=1)
    baseline: str | None = None
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    gates: list[GateConfig] = Field(default_factory=list)  # judge text answers
    tool_gates: list[GateConfig] = Field(default_factory=list)  # judge tool-calling answers (core.tool_calls)
    on_exhausted: Literal["flag", "raise"] = "flag"
    gate_timeout_s: float = Field(30.0, gt=0, le=3600)  # each judgement's time budget (core.gate_budget)
    region_name: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
    endpoint_url: str | None = Field(None, max_length=2048, pattern=r"^https?://[^\s/:?#]+(:\d{1,5})?(/\S*)?$")
    retry: RetryConfig = Field(default_factory=RetryConfig)
    transport: TransportConfig = Field(default_factory=TransportConfig)
    circuit: CircuitConfig = Field(default_factory=CircuitConfig)
    pinning: PinningConfig = Field(default_factory=PinningConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)
    batch: BatchConfig | None = None

    @field_validator("tiers")
    @classmethod
    def _unique_names(cls, tiers: list[TierConfig]) -> list[TierConfig]:
        names = [t.name for t in tiers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tier names must be unique; repeated: {', '.join(dupes)}")
        return tiers

    # -- loading ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> "RouterConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}", source=source)
        check_config_data(data, source=source)
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
            # a misspelt required key is two errors; the unknown key says more than the missing one
            err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
            raise ConfigError(_message(err), path=_format_loc(err["loc"]), source=source) from None
        except RecursionError:
            raise ConfigError("nested too deeply", source=source) from None
        config.check(source=source)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RouterConfig":
        """The config in a YAML file: at most 1 MiB of UTF-8, no duplicate keys, bounded
        nesting and aliases (``core.config_file``)."""
        config = cls.from_dict(read_config_file(path), source=str(path))
        config._model_files_beside(Path(path).parent)
        config._source = str(path)
        return config

    def _model_files_beside(self, folder: Path) -> None:
        """Relative model-file paths in a YAML file name files beside it, wherever the
        process runs (a service's working directory is seldom the config's); a path that
        only exists from the working directory is kept, as before. Sink paths (files the
        router writes) stay relative to the working directory."""
        def beside(value: str) -> str:
            if Path(value).is_absolute():
                return value
            there = folder / value
            return value if (not there.exists() and Path(value).exists()) else _tidy(str(there))

        self._map_model_files(beside)

    def _map_model_files(self, change: Any) -> None:
        """Replace each model-file path (the auto policy's, a trained classifier's, each
        verifier gate's) by ``change(path)``."""
        if self.policy.path:
            self.policy.path = change(self.policy.path)
        if self.policy.classifier is not None and self.policy.classifier.path:
            self.policy.classifier.path = change(self.policy.classifier.path)
        for _, gate in _walk_gates(self):
            if isinstance(gate, VerifierGateConfig):
                gate.path = change(gate.path)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The config as YAML; written to ``path`` when given. A relative model-file path
        (relative to the working directory here) is written relative to ``path``'s folder,
        where ``from_yaml`` looks for it, so the file loads back equal; without ``path``
        it stays relative to the working directory."""
        config = self
        if path is not None:
            config = self.model_copy(deep=True)
            config._map_model_files(functools.partial(_relative_to, folder=Path(path).parent))
        text = yaml.safe_dump(config.model_dump(mode="json", by_alias=True, exclude_defaults=True), sort_keys=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    # -- cross-references ---------------------------------------------------------

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.tiers]

    @property
    def baseline_name(self) -> str:
        return self.baseline or self.tiers[-1].name

    def price_of(self, tier: TierConfig) -> Price | None:
        """The tier's ``price:`` override (its missing cache rates at the cost map's ratios),
        else the cost map's price in ``region_name``. An application inference profile ARN
        (an opaque id the map cannot know) is priced as the ``model_kwargs.base_model_id``
        it names, in the ARN's own region."""
        model_id, region = tier.model_id, self.region_name
        base = tier.model_kwargs.get("base_model_id") or tier.model_kwargs.get("base_model")  # langchain-aws's alias
        if ":application-inference-profile/" in model_id and isinstance(base, str) and base:
            model_id, region = base, model_id.split(":")[3] or region
        if tier.price:
            return override_price(tier.price.to_price(), model_id, region)
        return lookup_price(model_id, region=region)

    def check(self, *, source: str | None = None) -> None:
        """Reject references to tiers that do not exist and tiers with no price."""
        names = self.tier_names

        def need(name: str | None, path: str) -> None:
            if name is not None and name not in names:
                raise UnknownTierError(f"unknown tier {name!r}; the ladder has {', '.join(names)}",
                                       path=path, source=source)

        need(self.baseline, "baseline")
        need(self.policy.start_tier, "policy.start_tier")
        if self.policy.classifier:
            c = self.policy.classifier
            need(c.default_tier, "policy.classifier.default_tier")
            need(c.llm_tier, "policy.classifier.llm_tier")
            for i, rule in enumerate(c.rules):
                need(rule.tier, f"policy.classifier.rules[{i}].tier")
            if c.kind == "trained" and not c.path:
                raise ConfigError("a trained classifier needs 'path'", path="policy.classifier.path", source=source)
        if self.circuit.enabled and self.circuit.backend == "redis" and not self.circuit.redis_url:
            raise ConfigError("a redis circuit breaker needs 'redis_url'", path="circuit.redis_url", source=source)
        if self.policy.kind == "auto" and not self.policy.path:
            raise ConfigError("an auto policy needs 'path' (a model file from tiered-router calibrate)",
                              path="policy.path", source=source)
        if self.policy.kind == "classifier" and self.policy.classifier is None:
            raise ConfigError("a classifier policy needs 'classifier'", path="policy.classifier", source=source)
        if self.pinning.enabled and self.pinning.backend == "redis" and not self.pinning.redis_url:
            raise ConfigError("a redis pin store needs 'redis_url'", path="pinning.redis_url", source=source)
        if self.retry.max_backoff_s < self.retry.backoff_s:
            raise ConfigError(f"max_backoff_s ({self.retry.max_backoff_s:g}) is below backoff_s "
                              f"({self.retry.backoff_s:g})", path="retry.max_backoff_s", source=source)
        for path, gate in _walk_gates(self):
            _check_turn(gate, path, source)
            if isinstance(gate, SelfGradeGateConfig):
                need(gate.grader_tier, f"{path}.grader_tier")
            if isinstance(gate, ConsistencyGateConfig):
                need(gate.tier, f"{path}.tier")
        need(self.telemetry.shadow.comparator.judge_tier, "telemetry.shadow.comparator.judge_tier")
        for i, tier in enumerate(self.tiers):
            if self.price_of(tier) is None:
                app = ":application-inference-profile/" in tier.model_id
                raise PricingError(
                    f"no price for model id {tier.model_id!r} in LiteLLM's cost map; "
                    "add price: {input_per_mtok: ..., output_per_mtok: ...}"
                    + (" (or model_kwargs: {base_model_id: <the profile's model id>})" if app else ""),
                    path=f"tiers[{i}].model_id", source=source)
        files: dict[Path, tuple[int, str]] = {}
        for i, sink in enumerate(self.telemetry.sinks):
            if sink.kind in ("sqlite", "jsonl") and not sink.path:
                raise ConfigError(f"a {sink.kind} sink needs 'path'", path=f"telemetry.sinks[{i}].path", source=source)
            if sink.kind in ("sqlite", "jsonl") and sink.path and sink.path != ":memory:" and Path(sink.path).is_dir():
                raise ConfigError(f"{sink.path} is a folder: a {sink.kind} sink writes one file (say "
                                  f"{Path(sink.path) / ('tiered_router.db' if sink.kind == 'sqlite' else 'records.jsonl')})",
                                  path=f"telemetry.sinks[{i}].path", source=source)
            if sink.kind in ("sqlite", "jsonl") and sink.path and sink.path != ":memory:":
                where = Path(sink.path).expanduser().absolute()
                other = files.setdefault(where, (i, sink.kind))
                if other[1] != sink.kind:  # one file written as a database and as lines: both broken
                    raise ConfigError(f"{sink.path} is also telemetry.sinks[{other[0]}]'s file, a {other[1]} "
                                      f"sink's: a {sink.kind} sink needs a file of its own",
                                      path=f"telemetry.sinks[{i}].path", source=source)
            if sink.kind == "postgres" and sink.durable and not sink.journal_dir:
                raise ConfigError("a durable postgres sink needs 'journal_dir' (a local folder)",
                                  path=f"telemetry.sinks[{i}].journal_dir", source=source)


def _tidy(path: str) -> str:
    """``svc/../m.npz`` as ``m.npz`` when both name the same file (through a symlinked
    folder, ``..`` is not the folder's parent in the path)."""
    tidy = os.path.normpath(path)
    return tidy if os.path.realpath(tidy) == os.path.realpath(path) else path


def _relative_to(path: str, folder: Path) -> str:
    """``path`` (absolute, or relative to the working directory) as a file in ``folder``
    names it: relative to ``folder`` when that names the same file, else absolute."""
    if os.path.isabs(path):
        return path
    try:
        relative = os.path.relpath(path, folder)
    except ValueError:  # another drive (Windows)
        return os.path.abspath(path)
    return relative if os.path.realpath(folder / relative) == os.path.realpath(path) else os.path.abspath(path)


def _walk_gates(config: RouterConfig):
    """(key path, gate config) of every gate, nested ones included; a path under
    ``tool_gates`` judges tool-calling turns, any other text answers."""
    def walk(gates: list, path: str):
        for i, gate in enumerate(gates):
            here = f"{path}[{i}]"
            yield here, gate
            if isinstance(gate, (AllGateConfig, AnyGateConfig)):
                yield from walk(gate.gates, f"{here}.gates")

    yield from walk(config.gates, "gates")
    yield from walk(config.tool_gates, "tool_gates")
    for t, tier in enumerate(config.tiers):
        if tier.gates:
            yield from walk(tier.gates, f"tiers[{t}].gates")
        if tier.tool_gates:
            yield from walk(tier.tool_gates, f"tiers[{t}].tool_gates")


# Gates that judge what an answer says: a tool-calling turn has no answer for them to read.
_TEXT_ONLY_GATES = (SelfGradeGateConfig, ConsistencyGateConfig, VerifierGateConfig)


def _check_turn(gate: Any, path: str, source: str | None) -> None:
    """A gate listed for one kind of turn must be able to judge it: ``gates`` judge text
    answers, ``tool_gates`` tool calls (``core.tool_calls``)."""
    on_tools = "tool_gates" in path
    reads = getattr(gate, "source", None)
    if not on_tools and reads == "tool_args":
        raise ConfigError("a gate with source 'tool_args' judges tool calls, but 'gates' judge text answers; "
                          "list it under 'tool_gates'", path=f"{path}.source", source=source)
    if on_tools and reads == "text":
        raise ConfigError("'tool_gates' judge tool calls, whose value is their arguments; source 'text' would "
                          "read the text beside the call (use 'auto' or 'tool_args', or list it under 'gates')",
                          path=f"{path}.source", source=source)
    if on_tools and isinstance(gate, _TEXT_ONLY_GATES):
        raise ConfigError(f"a {gate.kind} gate judges what a text answer says; a tool-calling turn has no such "
                          "answer (in 'tool_gates' use json_schema, pydantic, rule, regex or confidence)",
                          path=f"{path}.kind", source=source)


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"json_schema", "pydantic", "regex", "rule", "self_grade", "confidence",
                      "verifier", "consistency", "all", "any"} and out.endswith("]"):
            continue  # pydantic's discriminator tag is not a key in the file
        else:
            out += f".{part}" if out else str(part)
    return out


_GATE_MODELS = {"json_schema": JsonSchemaGateConfig, "pydantic": PydanticGateConfig, "regex": RegexGateConfig,
                "rule": RuleGateConfig, "self_grade": SelfGradeGateConfig, "confidence": ConfidenceGateConfig,
                "verifier": VerifierGateConfig, "consistency": ConsistencyGateConfig, "all": AllGateConfig,
                "any": AnyGateConfig}


def _keys_at(loc: tuple) -> list[str]:
    """The keys the config model at ``loc`` (a pydantic error location) accepts."""
    model: Any = RouterConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part in _GATE_MODELS and model is None:
            model = _GATE_MODELS[part]
            continue
        fields = getattr(model, "model_fields", None) or {}
        info = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if info is None:
            return []
        model = _model_in(info.annotation)
    fields = getattr(model, "model_fields", None) or {}
    return [info.alias or name for name, info in fields.items()]


def _model_in(annotation: Any) -> Any:
    """The config model inside ``list[X] | None``; ``None`` for a union of gate models."""
    import typing

    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item
        if item in (GateConfig, "GateConfig"):
            return None
        stack.extend(a for a in typing.get_args(item) if a is not type(None))
    return None


def _message(err: dict[str, Any]) -> str:
    """pydantic's message, said in the config's terms."""
    kind, msg = err.get("type", ""), str(err.get("msg", ""))
    if kind == "extra_forbidden":
        key = str(err["loc"][-1]) if err.get("loc") else "?"
        close = difflib.get_close_matches(key, _keys_at(tuple(err["loc"])), n=1)
        return f"unknown key {key[:80]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind in ("string_pattern_mismatch", "int_parsing", "float_parsing"):
        return f"{msg} (got {redact_secrets(str(err.get('input')))[:80]!r})"  # a URL's password: never shown
    if kind == "finite_number":
        return "must be a finite number (not NaN or infinity)"
    return msg.removeprefix("Value error, ")


def load_config(source: "RouterConfig | dict | str | Path") -> RouterConfig:
    """Accept a config object, a dict, or a path to a YAML file."""
    if isinstance(source, RouterConfig):
        return source
    if isinstance(source, dict):
        return RouterConfig.from_dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"a router config is a RouterConfig, a dict or the path of a YAML file, not "
                          f"{type(source).__name__}")
    return RouterConfig.from_yaml(source)
