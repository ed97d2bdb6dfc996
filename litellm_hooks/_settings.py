"""Where the router YAML lives and which proxy models are tiered.

A proxy model is tiered when its ``litellm_params.model`` is ``tiered_router/<name>``.
Its router YAML is ``litellm_params.tiered_router_config`` (relative to the proxy's
config.yaml) or, when absent, the ``TIERED_ROUTER_CONFIG`` environment variable. Each tier is served by the proxy
model group of the same name. One core ``Router`` is built per YAML file, on first
use, and checked against the proxy's model list once.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Mapping

from langchain_tiered_router.core import ConfigError, Router, RouterConfig, load_config
from langchain_tiered_router.core.build import build_router

from ._backend import LiteLLMRouterBackend

__all__ = ["PROVIDER", "CONFIG_ENV", "tiered_config_source", "provider_config_source",
           "RouterSet", "check_tiers_against", "model_names", "deployments", "proxy_llm_router"]

log = logging.getLogger("litellm_hooks")

PROVIDER = "tiered_router"
CONFIG_ENV = "TIERED_ROUTER_CONFIG"


def tiered_config_source(litellm_params: Mapping[str, Any] | None) -> str | None:
    """The router YAML of a deployment, or ``None`` when it is not a tiered model."""
    params = litellm_params or {}
    model = str(params.get("model") or "")
    if not model.startswith(PROVIDER + "/"):
        return None
    source = params.get("tiered_router_config") or os.environ.get(CONFIG_ENV)
    if not source:
        raise ConfigError(f"model {model!r} needs litellm_params.tiered_router_config or ${CONFIG_ENV}",
                          path="litellm_params.tiered_router_config")
    return str(_resolve(Path(source).expanduser()))


def provider_config_source(model: str, params: Mapping[str, Any]) -> str:
    """The router YAML of a call the ``tiered_router`` provider receives: the deployment's
    ``tiered_router_config`` (LiteLLM passes it among the call's parameters), else the env."""
    return str(tiered_config_source({**params, "model": f"{PROVIDER}/{model}"}))


def proxy_llm_router() -> Any:
    """The proxy's ``llm_router``, read at call time: the proxy builds it after loading
    the callbacks and providers, and rebuilds it when models change."""
    from litellm.proxy import proxy_server

    return proxy_server.llm_router


def _resolve(path: Path) -> Path:
    """A relative path is read beside the proxy's config.yaml first, then from the
    working directory, so ``tiered_router_config: router.yaml`` works from anywhere."""
    if path.is_absolute():
        return path
    try:
        from litellm.proxy import proxy_server

        config_file = getattr(proxy_server, "user_config_file_path", None)
    except ImportError:  # pragma: no cover - the proxy extras are not installed
        config_file = None
    if config_file:
        beside = Path(config_file).parent / path
        if beside.exists():
            return beside.resolve()
    return path.resolve()


def model_names(llm_router: Any) -> list[str]:
    registry = getattr(llm_router, "registry", None)
    return list(registry().names()) if registry else list(llm_router.get_model_names())


def deployments(llm_router: Any, model_name: str) -> list[Mapping[str, Any]]:
    registry = getattr(llm_router, "registry", None)
    found = registry().deployments(model_name) if registry else llm_router.get_model_list(model_name=model_name)
    return list(found or [])


def check_tiers_against(config: RouterConfig, llm_router: Any) -> None:
    """Every tier must be a model group of the proxy; warn when a group's model id
    differs from the tier's, since the core prices the tier's id."""
    groups = set(model_names(llm_router))
    for i, tier in enumerate(config.tiers):
        if tier.name not in groups:
            raise ConfigError(f"tier {tier.name!r} is not a model_name of the LiteLLM config "
                              f"(it has {', '.join(sorted(groups))})", path=f"tiers[{i}].name")
        for deployment in deployments(llm_router, tier.name):
            model = str((deployment.get("litellm_params") or {}).get("model", ""))
            if not model.endswith(tier.model_id):
                log.warning("tier %s has model_id %s but its LiteLLM deployment calls %s; telemetry prices %s",
                            tier.name, tier.model_id, model, tier.model_id)


class RouterSet:
    """One core ``Router`` and one backend per router YAML, built lazily and shared."""

    def __init__(self, get_llm_router: Any, observers: Any = None):
        self._get_llm_router = get_llm_router
        self._observers = observers
        self._routers: dict[str, tuple[Router, LiteLLMRouterBackend]] = {}
        self._lock = threading.Lock()

    def get(self, source: str) -> tuple[Router, LiteLLMRouterBackend]:
        with self._lock:
            if source not in self._routers:
                config = load_config(source)
                llm_router = self._get_llm_router()
                if llm_router is not None:
                    check_tiers_against(config, llm_router)
                router = build_router(config, observers=self._observers)
                self._routers[source] = (router, LiteLLMRouterBackend(self._get_llm_router))
            return self._routers[source]
