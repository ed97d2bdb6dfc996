"""langchain-tiered-router: send each Bedrock request to the cheapest tier that clears your bar.

Names are loaded on first use, so ``import langchain_tiered_router.core`` stays free of
LangChain and LiteLLM, and the LangChain names cost nothing until you touch them; without
the ``langchain`` extra they raise an ``ImportError`` that names it. Test doubles (the
local Bedrock emulator, a scripted backend) are in ``langchain_tiered_router.testing``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ below loads each name on first use
    from .core import (ConfidenceGate, ConfigError, Gate, JsonSchemaGate, LadderExhaustedError, PydanticGate,
                       RegexGate, RouteRequest, Router, RouterConfig, RouterError, RoutingResult, RuleGate,
                       SelfGradeGate, TierNotAllowedError, TransportError)
    from .langchain import GateOutputParser, TieredChatBedrock, with_tier_fallbacks
    from .langchain.callbacks import TieredRouterCallbackHandler

_EXPORTS = {
    # LangChain integration
    "TieredChatBedrock": "langchain_tiered_router.langchain",
    "GateOutputParser": "langchain_tiered_router.langchain",
    "with_tier_fallbacks": "langchain_tiered_router.langchain",
    "TieredRouterCallbackHandler": "langchain_tiered_router.langchain",
    # core
    "Router": "langchain_tiered_router.core",
    "RouterConfig": "langchain_tiered_router.core",
    "RouteRequest": "langchain_tiered_router.core",
    "RoutingResult": "langchain_tiered_router.core",
    "Gate": "langchain_tiered_router.core",
    "JsonSchemaGate": "langchain_tiered_router.core",
    "PydanticGate": "langchain_tiered_router.core",
    "RegexGate": "langchain_tiered_router.core",
    "RuleGate": "langchain_tiered_router.core",
    "SelfGradeGate": "langchain_tiered_router.core",
    "ConfidenceGate": "langchain_tiered_router.core",
    "RouterError": "langchain_tiered_router.core",
    "ConfigError": "langchain_tiered_router.core",
    "LadderExhaustedError": "langchain_tiered_router.core",
    "TierNotAllowedError": "langchain_tiered_router.core",
    "TransportError": "langchain_tiered_router.core",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'langchain_tiered_router' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
