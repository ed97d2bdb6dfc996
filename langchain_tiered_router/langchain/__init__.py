"""The LangChain integration: ``TieredChatBedrock`` and gates as output parsers.

Importing this package imports LangChain (the ``langchain`` extra); the core
(``langchain_tiered_router.core``) never does.
"""

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in an install without the extra
    raise ImportError("TieredChatBedrock needs the 'langchain' extra: "
                      "pip install 'langchain-tiered-router[langchain]'") from exc

from .backend import LangChainBackend
from .chat_model import TieredChatBedrock, schema_gate
from .parsers import GateOutputParser, escalation_chain, transport_exceptions, with_tier_fallbacks

__all__ = [
    "TieredChatBedrock", "LangChainBackend", "GateOutputParser", "escalation_chain", "with_tier_fallbacks",
    "transport_exceptions", "schema_gate", "TieredRouterCallbackHandler",
]


def __getattr__(name: str):
    if name == "TieredRouterCallbackHandler":  # loads the telemetry sinks only when asked for
        from .callbacks import TieredRouterCallbackHandler

        return TieredRouterCallbackHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
