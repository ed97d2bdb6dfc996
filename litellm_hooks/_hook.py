"""The LiteLLM proxy callback: one-pass routing and the ``x-tiered-router-*`` headers.

Routing happens here for a chat request to a tiered model (unless it is marked
``tiered_router_one_pass: false``): the pre-call step starts the route and hands its
first attempt to the proxy's own call, the post-call steps give that call's response,
stream (the streaming iterator) or error back to the route (``_one_pass.py``,
``_stream_handoff.py``). The models switched off are routed by the ``tiered_router``
provider (``_provider.py``).

A provider can add no plain response header of its own (LiteLLM prefixes provider
headers with ``llm_provider-``), so ``async_post_call_response_headers_hook`` reads the
routing attached to the request's logging object and turns it into headers. For a
stream the proxy asks after the first chunk is in, so the tier streaming (or, for a
gated route, the whole routing) is known by then.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from litellm.integrations.custom_logger import CustomLogger

from ._one_pass import OnePassRoutes
from ._provider import attached_route
from ._response import routing_headers
from ._settings import proxy_llm_router

__all__ = ["TieredRouterHook"]


class TieredRouterHook(CustomLogger):
    """Register as ``litellm_settings.callbacks: litellm_hooks.proxy_handler_instance``."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._one_pass: OnePassRoutes | None = None

    def _routes(self) -> OnePassRoutes:
        if self._one_pass is None:
            self._one_pass = OnePassRoutes(_loaded_provider)
        return self._one_pass

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> Any:
        if call_type not in ("completion", "acompletion") or not isinstance(data, dict):
            return None
        routes = self._routes()
        llm_router = proxy_llm_router()
        source = routes.target(llm_router, data.get("model"))
        return await routes.start(data, source, llm_router) if source is not None else None

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        return await self._one_pass.finish(data, response) if self._one_pass is not None else None

    def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                request_data: dict) -> AsyncIterator[Any]:
        """The route's stream for a streamed one-pass request; any other stream is handed
        back as it is (LiteLLM iterates what this returns: no extra step per chunk)."""
        if self._one_pass is None or not self._one_pass.routes_stream(request_data):
            return response
        return self._one_pass.stream(request_data, response)

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> Any:
        if self._one_pass is not None:
            self._one_pass.fail(request_data, original_exception)
        return None

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: dict | None = None,
                                                    litellm_call_info: dict | None = None) -> dict | None:
        if self._one_pass is not None and isinstance(data, dict) and data.get("stream"):
            await self._one_pass.handoff(data, response)  # a streamed route runs to its first chunk
        logging_obj = data.get("litellm_logging_obj") if isinstance(data, dict) else None
        result = attached_route(logging_obj) or attached_route(getattr(response, "logging_obj", None))
        return routing_headers(result) if result is not None else None


def _loaded_provider() -> Any:
    """The provider instance the proxy loaded from its ``custom_provider_map``."""
    import litellm_hooks

    return litellm_hooks.tiered_router_provider
