"""LiteLLM integration of langchain-tiered-router: the same router YAML, in a LiteLLM
proxy (a callback plus a provider, named in the proxy's config.yaml) or around a
plain ``litellm.Router`` (``TieredLiteLLMRouter``).

Proxy config::

    model_list:
      - model_name: tiered
        litellm_params: {model: tiered_router/tiered, tiered_router_config: router.yaml}
    litellm_settings:
      callbacks: litellm_hooks.proxy_handler_instance
      custom_provider_map:
        - {provider: tiered_router, custom_handler: litellm_hooks.tiered_router_provider}

The two instances below hold no config until the first request (nothing is read
at import); importing this package imports LiteLLM, whose integration it is.
"""

from ._backend import ChatPayload, LiteLLMRouterBackend
from ._hook import TieredRouterHook
from ._provider import TieredRouterProvider
from ._response import routing_headers, routing_summary
from ._router import TieredLiteLLMRouter
from ._settings import CONFIG_ENV, PROVIDER

__all__ = [
    "TieredRouterHook", "TieredRouterProvider", "TieredLiteLLMRouter", "LiteLLMRouterBackend", "ChatPayload",
    "routing_headers", "routing_summary", "proxy_handler_instance", "tiered_router_provider",
    "CONFIG_ENV", "PROVIDER",
]

# The names LiteLLM's config.yaml points at (LiteLLM's documented pattern).
proxy_handler_instance = TieredRouterHook()
tiered_router_provider = TieredRouterProvider()
