"""The LiteLLM proxy callback: the ``x-tiered-router-*`` response headers.

Routing happens in the ``tiered_router`` provider (``_provider.py``). A provider can
add no plain response header of its own (LiteLLM prefixes provider headers with
``llm_provider-``), so this callback's ``async_post_call_response_headers_hook``
reads the routing the provider attached to the request's logging object and turns it
into headers. For a stream the proxy asks after the first chunk is in, so the tier
streaming (or, for a gated route, the whole routing) is known by then.
"""

from __future__ import annotations

from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ._provider import attached_route
from ._response import routing_headers

__all__ = ["TieredRouterHook"]


class TieredRouterHook(CustomLogger):
    """Register as ``litellm_settings.callbacks: litellm_hooks.proxy_handler_instance``."""

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: dict | None = None,
                                                    litellm_call_info: dict | None = None) -> dict | None:
        logging_obj = data.get("litellm_logging_obj") if isinstance(data, dict) else None
        result = attached_route(logging_obj) or attached_route(getattr(response, "logging_obj", None))
        return routing_headers(result) if result is not None else None
