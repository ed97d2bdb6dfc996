"""Where the router YAML lives and which proxy models are tiered.

A proxy model is tiered when its ``litellm_params.model`` is ``tiered_router/<name>``.
Its router YAML is ``litellm_params.tiered_router_config`` (relative to the proxy's
config.yaml) or, when absent, the ``TIERED_ROUTER_CONFIG`` environment variable. Each tier is served by the proxy
model group of the same name. One core ``Router`` is built per YAML file, when the
provider is loaded with the proxy's config (else on first use), warmed (its classifier's
model and text embedding loaded), and checked against the proxy's model list on first use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import yaml

from langchain_tiered_router.core import ConfigError, Router, RouterConfig, load_config
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.pricing import MTOK

from ._backend import LiteLLMRouterBackend

__all__ = ["PROVIDER", "CONFIG_ENV", "ONE_PASS_PARAM", "one_pass_switch", "check_deployment", "tiered_config_source",
           "provider_config_source",
           "RouterSet", "check_tiers_against", "deployments_region", "model_names", "deployments", "proxy_llm_router"]

log = logging.getLogger("litellm_hooks")

PROVIDER = "tiered_router"
CONFIG_ENV = "TIERED_ROUTER_CONFIG"
ENV_REFERENCE = "os.environ/"  # how a LiteLLM config names an environment variable
ONE_PASS_PARAM = "tiered_router_one_pass"
_OWN_PARAMS = ("tiered_router_config", ONE_PASS_PARAM)
_SWITCHES = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
# ``tiered_router_config`` of each tiered deployment as the proxy's config file writes it,
# by its ``litellm_params.model`` (read at start): LiteLLM drops an ``os.environ/NAME``
# whose NAME is not set from the params it hands over, so only the file still says it was set.
_WRITTEN: dict[str, list[Any]] = {}


def one_pass_switch(value: Any, model: str = "") -> bool:
    """``tiered_router_one_pass`` as a bool; anything else is the operator's mistake,
    said at start (a ``"maybe"`` was taken as on, without a word)."""
    if isinstance(value, bool):
        return value
    switch = _SWITCHES.get(str(value).strip().lower()) if isinstance(value, (str, int)) else None
    if switch is None:
        raise ConfigError(f"model {model!r}: {ONE_PASS_PARAM} is {value!r}; it takes true or false",
                          path=f"litellm_params.{ONE_PASS_PARAM}")
    return switch


def check_deployment(litellm_params: Mapping[str, Any]) -> None:
    """A tiered deployment's own settings, as the config file gives them: a misspelt one
    (``tiered_router_cofig``) routed by ``$TIERED_ROUTER_CONFIG``, or not at all, without
    a word. Not for a call's parameters, where a client's body may add any key."""
    model = str(litellm_params.get("model") or "")
    for key in litellm_params:
        if isinstance(key, str) and key.startswith("tiered_router") and key not in _OWN_PARAMS:
            raise ConfigError(f"model {model!r}: unknown setting {key!r} (the router's are "
                              f"{', '.join(_OWN_PARAMS)})", path=f"litellm_params.{key}")
    if ONE_PASS_PARAM in litellm_params:
        one_pass_switch(litellm_params[ONE_PASS_PARAM], model)


def tiered_config_source(litellm_params: Mapping[str, Any] | None) -> str | None:
    """The router YAML of a deployment, or ``None`` when it is not a tiered model."""
    params = litellm_params or {}
    model = str(params.get("model") or "")
    if not model.startswith(PROVIDER + "/"):
        return None
    if "tiered_router_config" not in params:
        written = _WRITTEN.get(model) or [None]
        if all(isinstance(w, str) and w.startswith(ENV_REFERENCE) for w in written):
            # every deployment of it names a variable the proxy found unset: not the env's YAML
            raise ConfigError(f"model {model!r}: tiered_router_config is {written[0]}, and "
                              f"${written[0][len(ENV_REFERENCE):]} is not set",
                              path="litellm_params.tiered_router_config")
    if "tiered_router_config" in params and not params["tiered_router_config"]:
        # LiteLLM reads ``os.environ/NAME`` of an unset NAME as empty: falling back to
        # $TIERED_ROUTER_CONFIG would route this model by another model's YAML
        raise ConfigError(f"model {model!r}: tiered_router_config is empty (an os.environ/ variable that is not "
                          "set?)", path="litellm_params.tiered_router_config")
    source = params.get("tiered_router_config") or os.environ.get(CONFIG_ENV)
    if not source:
        raise ConfigError(f"model {model!r} needs litellm_params.tiered_router_config or ${CONFIG_ENV}",
                          path="litellm_params.tiered_router_config")
    source = str(source)
    if source.startswith(ENV_REFERENCE):  # LiteLLM's reference to a variable, as read from the config file
        name = source[len(ENV_REFERENCE):]
        if not os.environ.get(name):
            raise ConfigError(f"model {model!r}: tiered_router_config is {source}, and ${name} is not set",
                              path="litellm_params.tiered_router_config")
        source = os.environ[name]
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


def _tiered_groups(llm_router: Any, groups: set[str]) -> set[str]:
    """The model groups served by a tiered model (a ``tiered_router/...`` deployment)."""
    return {g for g in groups if any(str((d.get("litellm_params") or {}).get("model", "")).startswith(PROVIDER + "/")
                                     for d in deployments(llm_router, g))}


def _fallback_targets(llm_router: Any, group: str) -> set[str]:
    """The groups LiteLLM's router may fail ``group`` over to: its three fallback lists
    (the group's own entries and the ``"*"`` ones every group takes) and its
    ``default_fallbacks``."""
    targets: set[str] = set()
    # LiteLLM keeps them in the router's settings (reading them off the router is deprecated)
    settings = llm_router.settings() if callable(getattr(llm_router, "settings", None)) else llm_router
    for kind in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        for entry in getattr(settings, kind, None) or ():
            for key in (group, "*"):
                if isinstance(entry, Mapping) and isinstance(entry.get(key), (list, tuple)):
                    targets.update(str(t) for t in entry[key])
    default = getattr(llm_router, "default_fallbacks", None)
    if isinstance(default, (list, tuple)):
        targets.update(str(t) for t in default)
    return targets


def check_tiers_against(config: RouterConfig, llm_router: Any) -> None:
    """Every tier must be a model group of the proxy, and none a tiered model, directly or
    by a LiteLLM fallback (a tier call would route again, without end); warn when a
    group's model id differs from the tier's, since the core prices the tier's id."""
    groups = set(model_names(llm_router))
    tiered = _tiered_groups(llm_router, groups)
    for i, tier in enumerate(config.tiers):
        if tier.name not in groups:
            raise ConfigError(f"tier {tier.name!r} is not a model_name of the LiteLLM config "
                              f"(it has {', '.join(sorted(groups))})", path=f"tiers[{i}].name")
        loops = ({tier.name} | _fallback_targets(llm_router, tier.name)) & tiered
        if loops:
            how = "is" if tier.name in loops else f"falls back to {', '.join(sorted(loops))}, which is"
            raise ConfigError(f"tier {tier.name!r} {how} a tiered model (tiered_router/...): its calls would be "
                              "routed again, without end; a tier must be a model group that calls a model",
                              path=f"tiers[{i}].name")
        for deployment in deployments(llm_router, tier.name):
            model = str((deployment.get("litellm_params") or {}).get("model", ""))
            if not model.endswith(tier.model_id):
                log.warning("tier %s has model_id %s but its LiteLLM deployment calls %s; telemetry prices %s",
                            tier.name, tier.model_id, model, tier.model_id)


def _deployment_region(params: Mapping[str, Any]) -> str | None:
    """Where LiteLLM calls Bedrock for a deployment, as it decides: its ``aws_region_name``,
    else the region of a model ARN, else the environment's (``AWS_REGION_NAME``,
    ``AWS_REGION``, ``AWS_DEFAULT_REGION``): a deployment that names none was priced in
    us-east-1 while LiteLLM called GovCloud."""
    region = params.get("aws_region_name")
    if region:
        return str(region)
    model = str(params.get("model") or "")
    arn = model[model.find("arn:"):] if "arn:" in model else ""
    if arn.count(":") >= 4 and arn.split(":")[3]:
        return arn.split(":")[3]
    return next((os.environ[k] for k in ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION") if os.environ.get(k)),
                None)


def deployments_region(config: RouterConfig, llm_router: Any) -> str | None:
    """The region the tiers' deployments call Bedrock in (``_deployment_region``) when the
    router YAML names none and they all name another: the tiers are priced there (a
    GovCloud deployment was billed at us-east-1's prices, silently). A YAML that names
    another region is a ``ConfigError``; deployments in several regions are warned about."""
    regions = {str(r) for t in config.tiers for d in deployments(llm_router, t.name)
               if (r := _deployment_region(d.get("litellm_params") or {}))}
    if not regions or regions == {config.region_name}:
        return None
    if len(regions) > 1:
        log.warning("the tiers' deployments call Bedrock in %s; the router YAML prices every tier in %s (set "
                    "price: on the tiers that cost otherwise)", ", ".join(sorted(regions)), config.region_name)
        return None
    (region,) = regions
    if "region_name" in config.model_fields_set:
        raise ConfigError(f"the tiers' deployments call Bedrock in {region} (aws_region_name), but the router YAML "
                          f"prices them in {config.region_name}: set region_name: {region}", path="region_name")
    return region


def warn_if_unpriced(source: str, router: Router, llm_router: Any) -> None:
    """LiteLLM holds a budget reservation for a request (``max_budget`` on a key, team or
    user) only at a price it knows, and it cannot price ``tiered_router/...``: say so for
    each tiered group of ``source`` whose ``model_info`` sets no per-token price, with
    the price that covers the worst case (every tier of the ladder called)."""
    groups = [g for g in model_names(llm_router)
              if any(_source_of(d) == source and not _priced(d) for d in deployments(llm_router, g))]
    if not groups:
        return
    prices = [t.price for t in router.ladder if t.price is not None and t.price.known]
    worst = ""
    if len(prices) == len(router.ladder):
        per_in = sum(p.input_per_mtok for p in prices) / MTOK  # type: ignore[misc]
        per_out = sum(p.output_per_mtok for p in prices) / MTOK  # type: ignore[misc]
        worst = (f" (every tier called: model_info: {{input_cost_per_token: {format(per_in, 'f')}, "
                 f"output_cost_per_token: {format(per_out, 'f')}}})")
    log.warning("model %s sets no per-token price in its model_info, so LiteLLM holds no budget reservation for its "
                "requests: concurrent requests of a key, team or user near its max_budget are not held back "
                "(the routed cost is still charged after each). Set the ladder's worst case%s",
                ", ".join(sorted(groups)), worst)


def _source_of(deployment: Mapping[str, Any]) -> str | None:
    try:
        return tiered_config_source(deployment.get("litellm_params"))
    except ConfigError:
        return None


def _priced(deployment: Mapping[str, Any]) -> bool:
    info = deployment.get("model_info") or {}
    return info.get("input_cost_per_token") is not None and info.get("output_cost_per_token") is not None


class RouterSet:
    """One core ``Router`` and one backend per router YAML, built once and shared.

    ``log_tier_calls=False`` (the proxy): the tier calls are ``no-log``, the routed request
    being the one LiteLLM logs (``_accounting``)."""

    def __init__(self, get_llm_router: Any, observers: Any = None, *, log_tier_calls: bool = True):
        self._get_llm_router = get_llm_router
        self._observers = observers
        self._log_tier_calls = log_tier_calls
        self._routers: dict[str, tuple[Router, LiteLLMRouterBackend]] = {}
        self._configs: dict[str, RouterConfig] = {}
        self._checked: set[str] = set()
        self._lock = threading.Lock()

    def get(self, source: str) -> tuple[Router, LiteLLMRouterBackend]:
        built = self._routers.get(source)
        if built is not None and source in self._checked:
            return built
        with self._lock:
            built = self._routers.get(source) or self._build(source)
            llm_router = self._get_llm_router()
            if llm_router is not None and source not in self._checked:
                check_tiers_against(self._configs[source], llm_router)
                region = deployments_region(self._configs[source], llm_router)
                if region is not None:  # priced where the deployments call Bedrock: built again before any request
                    built = self._build(source, self._configs[source].model_copy(update={"region_name": region}))
                warn_if_unpriced(source, built[0], llm_router)
                self._checked.add(source)
            return built

    def _build(self, source: str, config: RouterConfig | None = None) -> tuple[Router, LiteLLMRouterBackend]:
        config = config if config is not None else load_config(source)
        router = build_router(config, observers=self._observers)
        warm(router)
        self._configs[source] = config
        built = (router, LiteLLMRouterBackend(self._get_llm_router, log_tier_calls=self._log_tier_calls))
        self._routers[source] = built
        return built

    def prebuild_from_proxy_config(self) -> None:
        """Build the routers of the proxy's tiered models now, while the proxy loads its
        config (it loads the providers first), so that no request pays for it. A router
        that cannot be built is left to the first request, which reports why."""
        sources = _proxy_tiered_sources()
        for source in sources:
            with self._lock:
                if source in self._routers:
                    continue
                try:
                    self._build(source)
                except Exception as exc:  # noqa: BLE001 - reported again, as the request's error, on first use
                    log.warning("router %s not built at startup: %s", source, exc)
        if sources:
            self._check_once_the_proxy_is_up([s for s in sources if s in self._routers])

    def _check_once_the_proxy_is_up(self, sources: list[str], wait_s: float = 300.0) -> None:
        """Check the built routers' ladders against the proxy's model list as soon as the
        proxy has made it (after loading the providers), so the start log names a tier
        that is not a model group or loops back to a tiered model; before, only the first
        request found it, as a 500. A thread of its own: the proxy's start is not held."""
        def check() -> None:
            deadline = time.monotonic() + wait_s
            while self._get_llm_router() is None:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.1)
            for source in sources:
                try:
                    self.get(source)
                except Exception as exc:  # noqa: BLE001 - each request reports it again, as its error
                    log.error("router %s cannot route on this proxy's models (checked at start): %s", source, exc)

        threading.Thread(target=check, name="tiered-router-start-check", daemon=True).start()


def warm(router: Router) -> None:
    """Load what a router's first request would otherwise load: the start classifier's
    model file and the text embedding the trained models read."""
    if router.policy.calls_model_to_start:
        return
    from langchain_tiered_router.core import RouteRequest

    try:
        router.policy.choose_start(RouteRequest(text="warm-up"), router.ladder, None)
        gates = [*router.gates, *router.tool_gates,
                 *(g for gs in [*router.tier_gates.values(), *router.tier_tool_gates.values()] for g in gs)]
        if any(hasattr(g, "model") for g in gates) or hasattr(router.policy, "model"):
            from langchain_tiered_router.core.embedding import load_embedding

            load_embedding()
    except Exception:  # noqa: BLE001 - warming is an optimisation; the request reports real errors
        log.debug("warming router failed", exc_info=True)


def _proxy_tiered_sources() -> list[str]:
    """The router YAMLs of the tiered models in the config file the proxy is loading."""
    try:
        from litellm.proxy import proxy_server
    except ImportError:  # pragma: no cover - the proxy extras are not installed
        return []
    config_file = getattr(proxy_server, "user_config_file_path", None)
    if not config_file or not Path(config_file).is_file():
        return []
    try:
        config = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    sources = []
    _WRITTEN.clear()
    for deployment in config.get("model_list") or []:
        params = (deployment or {}).get("litellm_params")
        if isinstance(params, Mapping) and str(params.get("model") or "").startswith(PROVIDER + "/"):
            _WRITTEN.setdefault(str(params["model"]), []).append(params.get("tiered_router_config"))
    for deployment in config.get("model_list") or []:
        try:
            params = (deployment or {}).get("litellm_params")
            if isinstance(params, Mapping) and str(params.get("model") or "").startswith(PROVIDER + "/"):
                check_deployment(params)  # first: a misspelt key explains a missing one
            source = tiered_config_source(params)
        except ConfigError as exc:  # its requests will say so too; the operator reads it at start
            log.warning("model %r cannot route: %s", (deployment or {}).get("model_name"), exc)
            continue
        if source and source not in sources:
            sources.append(source)
    return sources
