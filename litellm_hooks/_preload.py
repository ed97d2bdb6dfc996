"""Load, while the proxy starts, what LiteLLM would load on the first routed request.

A fresh proxy's first request was several times slower than the next because LiteLLM
loads parts of its request path on first use. py-spy (non-blocking) on a fresh proxy
named them:

* LiteLLM's default tokenizer (tiktoken's ``cl100k_base``, about 0.4 s), which it hands
  every call to a custom provider, and boto3, imported on the first Bedrock call to
  resolve credentials (about 0.1 s);
* modules its proxy imports inside request handlers (the MCP server manager and MCP key
  auth, read for the headers a request may forward; the OpenTelemetry phase logger; the
  shadow-eval snapshot; the continuation pre-call check), about 0.2 s together;
* the bundled model cost map that its Bedrock Converse transformation parses on first
  use (about 30 ms);
* the pydantic models of a chat request (deployment parameters, the key and its view, the
  response) whose schemas LiteLLM defers to first use (about 40 ms; building all of its
  1,400 deferred models would add 2.3 s to the start for the same gain).

The provider is built while the proxy loads its config, so it loads them then (LiteLLM
loads the tokenizer at import itself under ``LITELLM_DISABLE_LAZY_LOADING``). The names
are LiteLLM internals that move between releases: whatever is missing or fails to load
is skipped and left to the first request, as before.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable

__all__ = ["preload_first_request", "LOADERS"]

log = logging.getLogger("litellm_hooks")


def _module(name: str) -> Callable[[], Any]:
    return lambda: importlib.import_module(name)


def _call(module: str, function: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), function)()


def _models(module: str, *names: str) -> Callable[[], Any]:
    def build() -> None:
        found = importlib.import_module(module)
        for name in names:
            getattr(found, name).model_rebuild()  # a no-op once built
    return build


LOADERS: tuple[tuple[str, Callable[[], Any]], ...] = (
    ("litellm tokenizer", lambda: importlib.import_module("litellm.main").encoding),  # a lazy module attribute
    ("boto3", _module("boto3")),
    ("mcp server manager", _module("litellm.proxy.mcp_server.mcp_server_manager")),
    ("mcp key auth", _module("litellm.proxy.mcp_server.auth.user_api_key_auth_mcp")),
    ("otel phase logger", _call("litellm.integrations.otel.runtime", "_otel_runtime")),
    ("shadow eval logger", _module("litellm.integrations.shadow_eval_logger")),
    ("continuation check", _module("litellm.router_utils.pre_call_checks.continuation_prefill_check")),
    ("bedrock cost map", _call("litellm.llms.bedrock.common_utils", "_get_local_model_cost_map")),
    ("router models", _models("litellm.types.router", "GenericLiteLLMParams", "ModelGroupInfo")),
    ("response models", _models("litellm.types.utils", "ModelResponse", "Choices", "Message", "Usage")),
    ("key models", _models("litellm.proxy._types", "LiteLLM_VerificationTokenView", "UserAPIKeyAuth")),
)


def preload_first_request() -> list[str]:
    """Run each of ``LOADERS`` now; the names that loaded."""
    loaded = []
    for name, load in LOADERS:
        try:
            load()
        except Exception as exc:  # noqa: BLE001 - an optimisation: the first request loads it as before
            log.debug("not preloaded: %s (%s)", name, exc)
        else:
            loaded.append(name)
    return loaded
