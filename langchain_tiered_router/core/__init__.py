"""The framework-free routing core: tiers, pricing, policies, gates, engine, telemetry.

Imports neither LangChain nor LiteLLM (a test checks it); both integrations sit on it.
"""

from .backends import Backend, TierStream
from .classifiers import Classifier, LLMClassifier, RulesClassifier, TierChoice, TrainedClassifier
from .config import RouterConfig, load_config
from .engine import AsyncRoutedStream, RoutedStream, Router
from .errors import (ConfigError, GateFailed, LadderExhaustedError, MalformedReplyError, PricingError, RouterError,
                     TierCallError, TierNotAllowedError, TransportError, UnknownTierError)
from .gates import (AllOf, AnyOf, ConfidenceGate, Gate, GateState, JsonSchemaGate, PydanticGate, RegexGate, RuleGate,
                    SelfGradeGate)
from .pinning import MemoryPinStore, PinStore, PinStoreUnavailable, RedisPinStore
from .policies import CascadePolicy, ClassifierPolicy, ConfidencePolicy, Policy
from .conversation import request_text
from .pricing import Price, Usage, estimate_tokens, lookup_price
from .tiers import Ladder, Tier
from .types import Attempt, AuxCall, GateVerdict, RouteRequest, RoutingResult, TierAnswer

__all__ = [
    "Backend", "TierStream", "Classifier", "LLMClassifier", "RulesClassifier", "TierChoice", "TrainedClassifier",
    "RouterConfig", "load_config", "Router", "RoutedStream", "AsyncRoutedStream",
    "ConfigError", "GateFailed", "LadderExhaustedError", "MalformedReplyError", "PricingError", "RouterError",
    "TierCallError", "TierNotAllowedError", "TransportError", "UnknownTierError",
    "AllOf", "AnyOf", "ConfidenceGate", "Gate", "GateState", "JsonSchemaGate", "PydanticGate", "RegexGate",
    "RuleGate", "SelfGradeGate",
    "MemoryPinStore", "PinStore", "PinStoreUnavailable", "RedisPinStore",
    "CascadePolicy", "ClassifierPolicy", "ConfidencePolicy", "Policy",
    "Price", "Usage", "estimate_tokens", "lookup_price", "request_text", "Ladder", "Tier",
    "Attempt", "AuxCall", "GateVerdict", "RouteRequest", "RoutingResult", "TierAnswer",
]
