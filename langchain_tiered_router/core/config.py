"""The router config: one typed file that drives LangChain and LiteLLM alike.

Loaded in one place (``RouterConfig.from_yaml``), validated by pydantic with unknown
keys forbidden, and reported as ``ConfigError`` naming the key path
(``tiers[2].price.input_per_mtok``). ``to_yaml`` writes a file that loads back equal.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .access import parse_principal
from .errors import ConfigError, PricingError, UnknownTierError
from .pricing import Price, lookup_price

__all__ = [
    "RouterConfig", "TierConfig", "PriceOverride", "PolicyConfig", "ClassifierConfig",
    "RetryConfig", "PinningConfig", "TelemetryConfig", "SinkConfig", "ShadowConfig",
    "ComparatorConfig", "AccessConfig", "BatchConfig", "GateConfig", "load_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PriceOverride(_Strict):
    """USD per million tokens; overrides the cost map for one tier."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None

    def to_price(self) -> Price:
        return Price(self.input_per_mtok, self.output_per_mtok,
                     self.cache_read_per_mtok, self.cache_write_per_mtok, source="override")


# ---- gates -------------------------------------------------------------------------

class JsonSchemaGateConfig(_Strict):
    """The answer (text, or tool-call arguments) must be JSON valid against ``schema``."""

    kind: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")
    source: Literal["auto", "text", "tool_args"] = "auto"


class PydanticGateConfig(_Strict):
    """The answer must parse as the pydantic model at ``model`` (``package.module:Class``)."""

    kind: Literal["pydantic"]
    model: str
    source: Literal["auto", "text", "tool_args"] = "auto"


class RegexGateConfig(_Strict):
    """The answer must (or, with ``must_match: false``, must not) match ``pattern``."""

    kind: Literal["regex"]
    pattern: str
    must_match: bool = True
    ignore_case: bool = False


class RuleGateConfig(_Strict):
    """A business rule: ``function`` (``package.module:func``) takes (question, answer)
    and returns a bool or a (bool, reason) pair."""

    kind: Literal["rule"]
    function: str


class SelfGradeGateConfig(_Strict):
    """A cheap tier scores the answer against the question (0-10); pass at >= threshold."""

    kind: Literal["self_grade"]
    grader_tier: str | None = None  # default: the cheapest tier
    threshold: float = Field(7.0, ge=0, le=10)
    prompt: str | None = None


class ConfidenceGateConfig(_Strict):
    """Escalate on a model-signalled doubt: a self-rating in the answer, an abstention
    sentinel, or mean token logprob where the model returns logprobs."""

    kind: Literal["confidence"]
    signal: Literal["any", "self_rating", "sentinel", "logprobs"] = "any"
    threshold: float = Field(0.7, ge=0, le=1)
    sentinels: list[str] = Field(default_factory=lambda: ["[[ESCALATE]]", "I don't know", "I am not sure"])
    missing: Literal["pass", "fail"] = "pass"


class VerifierGateConfig(_Strict):
    """A trained cascade (a model file from ``tiered-router calibrate --policy cascade``):
    escalates when the predicted quality gained one tier up is worth its predicted cost."""

    kind: Literal["verifier"]
    path: str
    threshold: float | None = None  # overrides the calibrated exchange rate lambda stored in the file


class ConsistencyGateConfig(_Strict):
    """Ask ``tier`` the same request for a second opinion (a priced call) and pass when
    both replies reach the same final answer; put it on a tier other than ``tier``."""

    kind: Literal["consistency"]
    tier: str


class AllGateConfig(_Strict):
    """Every listed gate must pass (``a & b``)."""

    kind: Literal["all"]
    gates: list["GateConfig"]


class AnyGateConfig(_Strict):
    """At least one listed gate must pass (``a | b``)."""

    kind: Literal["any"]
    gates: list["GateConfig"]


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

    name: str = Field(min_length=1)
    model_id: str = Field(min_length=1)
    price: PriceOverride | None = None
    provider: str | None = None  # needed by langchain-aws for ARNs (prompt routers, profiles)
    gates: list[GateConfig] | None = None  # replaces the top-level gates for this tier
    max_tokens: int | None = None
    temperature: float | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)


class RuleConfig(_Strict):
    """One rules-classifier rule: send to ``tier`` when a keyword or a length matches."""

    tier: str
    keywords: list[str] = Field(default_factory=list)
    min_chars: int | None = None
    max_chars: int | None = None


class ClassifierConfig(_Strict):
    """How a classifier predicts the starting tier.

    ``rules``: keyword and length rules, first match wins, else ``default_tier``.
    ``trained``: a model file written by ``tiered-router calibrate`` (``path``).
    ``llm``: asks ``llm_tier`` (default: the cheapest) for one of the tier names.
    """

    kind: Literal["rules", "trained", "llm"]
    rules: list[RuleConfig] = Field(default_factory=list)
    default_tier: str | None = None
    path: str | None = None
    threshold: float | None = None  # trained: overrides the calibrated exchange rate lambda
    llm_tier: str | None = None
    prompt: str | None = None


class PolicyConfig(_Strict):
    """``cascade`` starts cheap (or where ``classifier`` says) and escalates on a failed
    gate; ``classifier`` serves the predicted tier (gates, if any, still escalate);
    ``confidence`` escalates when the answer's own confidence is below ``threshold``;
    ``auto`` serves the strategy ``tiered-router calibrate`` chose, from the model file
    at ``path`` (configured gates still apply on top)."""

    kind: Literal["cascade", "classifier", "confidence", "auto"] = "cascade"
    path: str | None = None  # auto: the model file written by `tiered-router calibrate`
    max_escalations: int = Field(2, ge=0)
    classifier: ClassifierConfig | None = None
    start_tier: str | None = None
    confidence: ConfidenceGateConfig | None = None


class RetryConfig(_Strict):
    """What a transport error (throttled, 5xx, timeout, cut stream) does: retry the
    same tier ``max_retries`` times with exponential backoff, then ``on_exhausted``."""

    max_retries: int = Field(2, ge=0)
    backoff_s: float = Field(0.2, ge=0)
    max_backoff_s: float = Field(5.0, ge=0)
    retry_on: list[Literal["throttled", "server_error", "timeout", "stream_cut", "connection", "other"]] = Field(
        default_factory=lambda: ["throttled", "server_error", "timeout", "stream_cut", "connection"])
    on_exhausted: Literal["escalate", "raise"] = "escalate"

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): exponential, capped."""
        return min(self.max_backoff_s, self.backoff_s * (2 ** (retry - 1)))


class PinningConfig(_Strict):
    """Keep a conversation on one tier so Bedrock prompt caches stay warm."""

    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    max_sessions: int = Field(10_000, ge=1)
    ttl_s: float = Field(3600, gt=0)
    redis_url: str | None = None
    key_prefix: str = "tiered-router:pin:"


class SinkConfig(_Strict):
    """One telemetry destination."""

    kind: Literal["sqlite", "jsonl", "otel", "logging"]
    path: str | None = None  # sqlite / jsonl
    logger: str = "langchain_tiered_router.telemetry"
    level: str = "INFO"
    batch_size: int = Field(200, ge=1)
    flush_interval_s: float = Field(0.5, gt=0)


class ComparatorConfig(_Strict):
    """How a shadow answer of the baseline tier is compared with the served one."""

    kind: Literal["exact", "json_fields", "numeric", "llm_judge"] = "exact"
    fields: list[str] = Field(default_factory=list)
    tolerance: float = 1e-6
    judge_tier: str | None = None


class ShadowConfig(_Strict):
    """Send a fraction of lower-tier requests to the baseline too, in the background."""

    fraction: float = Field(0.0, ge=0, le=1)
    comparator: ComparatorConfig = Field(default_factory=ComparatorConfig)
    seed: int | None = None
    max_in_flight: int = Field(8, ge=1)


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
    poll_interval_s: float = Field(60.0, gt=0)
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

    tiers: list[TierConfig] = Field(min_length=1)
    baseline: str | None = None
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    gates: list[GateConfig] = Field(default_factory=list)
    on_exhausted: Literal["flag", "raise"] = "flag"
    region_name: str = "us-east-1"
    endpoint_url: str | None = None
    retry: RetryConfig = Field(default_factory=RetryConfig)
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
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(err["msg"], path=_format_loc(err["loc"]), source=source) from None
        config.check(source=source)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RouterConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror or exc}", source=str(path)) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from None
        return cls.from_dict(data, source=str(path))

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.model_dump(mode="json", by_alias=True, exclude_defaults=True), sort_keys=False)
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
        return tier.price.to_price() if tier.price else lookup_price(tier.model_id)

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
        if self.policy.kind == "auto" and not self.policy.path:
            raise ConfigError("an auto policy needs 'path' (a model file from tiered-router calibrate)",
                              path="policy.path", source=source)
        for path, gate in _walk_gates(self):
            if isinstance(gate, SelfGradeGateConfig):
                need(gate.grader_tier, f"{path}.grader_tier")
            if isinstance(gate, ConsistencyGateConfig):
                need(gate.tier, f"{path}.tier")
        need(self.telemetry.shadow.comparator.judge_tier, "telemetry.shadow.comparator.judge_tier")
        for i, tier in enumerate(self.tiers):
            if self.price_of(tier) is None:
                raise PricingError(
                    f"no price for model id {tier.model_id!r} in LiteLLM's cost map; "
                    "add price: {input_per_mtok: ..., output_per_mtok: ...}",
                    path=f"tiers[{i}].model_id", source=source)
        for i, sink in enumerate(self.telemetry.sinks):
            if sink.kind in ("sqlite", "jsonl") and not sink.path:
                raise ConfigError(f"a {sink.kind} sink needs 'path'", path=f"telemetry.sinks[{i}].path", source=source)


def _walk_gates(config: RouterConfig):
    def walk(gates: list, path: str):
        for i, gate in enumerate(gates):
            here = f"{path}[{i}]"
            yield here, gate
            if isinstance(gate, (AllGateConfig, AnyGateConfig)):
                yield from walk(gate.gates, f"{here}.gates")

    yield from walk(config.gates, "gates")
    for t, tier in enumerate(config.tiers):
        if tier.gates:
            yield from walk(tier.gates, f"tiers[{t}].gates")


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


def load_config(source: "RouterConfig | dict | str | Path") -> RouterConfig:
    """Accept a config object, a dict, or a path to a YAML file."""
    if isinstance(source, RouterConfig):
        return source
    if isinstance(source, dict):
        return RouterConfig.from_dict(source)
    return RouterConfig.from_yaml(source)
