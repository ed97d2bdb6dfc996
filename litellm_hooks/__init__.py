"""LiteLLM integration of langchain-tiered-router: the same router YAML, in a LiteLLM
proxy (a provider that routes, plus a callback for the response headers) or around a
plain ``litellm.Router`` (``TieredLiteLLMRouter``).

Proxy config::

    model_list:
      - model_name: tiered
        litellm_params: {model: tiered_router/tiered, tiered_router_config: router.yaml}
    litellm_settings:
      callbacks: litellm_hooks.proxy_handler_instance
      custom_provider_map:
        - {provider: tiered_router, custom_handler: litellm_hooks.tiered_router_provider}

The callback routes a request itself, streamed or not, the proxy's own call being its
first attempt (``_one_pass``); ``tiered_router_one_pass: false`` among the model's
``litellm_params`` leaves every request to the provider.

Names load on first use: ``TieredLiteLLMRouter`` needs the ``litellm`` extra, the proxy
pieces (``proxy_handler_instance``, ``tiered_router_provider``) the ``proxy`` extra; a
missing one is an ``ImportError`` naming the extra. Nothing is read at import.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TieredRouterHook", "TieredRouterProvider", "TieredLiteLLMRouter", "LiteLLMRouterBackend", "ChatPayload",
    "routing_headers", "routing_summary", "proxy_handler_instance", "tiered_router_provider",
    "CONFIG_ENV", "PROVIDER",
]

_EXPORTS = {
    "TieredRouterHook": ("._hook", "proxy"), "TieredRouterProvider": ("._provider", "proxy"),
    "TieredLiteLLMRouter": ("._router", "litellm"), "LiteLLMRouterBackend": ("._backend", "litellm"),
    "ChatPayload": ("._backend", "litellm"), "routing_headers": ("._response", "litellm"),
    "routing_summary": ("._response", "litellm"), "CONFIG_ENV": ("._settings", "litellm"),
    "PROVIDER": ("._settings", "litellm"),
}
_INSTANCES = {"proxy_handler_instance": "TieredRouterHook", "tiered_router_provider": "TieredRouterProvider"}


def _load(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module, __name__)
    except ImportError as exc:
        raise ImportError(f"litellm_hooks needs the {extra!r} extra: pip install 'langchain-tiered-router[{extra}]' "
                          f"({exc})") from exc


def __getattr__(name: str) -> Any:
    # The names LiteLLM's config.yaml points at (its documented pattern): one instance each.
    if name in _INSTANCES:
        value = __getattr__(_INSTANCES[name])()
    elif name in _EXPORTS:
        value = getattr(_load(*_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
