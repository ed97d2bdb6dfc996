"""The same routing for a plain ``litellm.Router`` user, without the proxy.

    router = TieredLiteLLMRouter(litellm.Router(model_list=[...]), "router.yaml")
    response = await router.acompletion(messages=[...], session_id="chat-1")
    response.tiered_router["tier"]    # the tier that served it

Each tier is the ``litellm.Router`` model group of the same name (or ``groups``).
Errors are the core's: ``LadderExhaustedError`` under ``on_exhausted: raise``,
``TierNotAllowedError`` for a forbidden ``tier=``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from langchain_tiered_router.core import Router, RoutingResult
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.config import load_config

from ._backend import LiteLLMRouterBackend
from ._request import route_request_from_messages
from ._response import routing_summary
from ._settings import check_tiers_against

__all__ = ["TieredLiteLLMRouter"]


class TieredLiteLLMRouter:
    """Routes chat requests up the tier ladder of ``config`` through ``router``."""

    def __init__(self, router: Any, config: Any, *, groups: Mapping[str, str] | None = None,
                 observers: Sequence[Any] | None = None, telemetry: bool = True):
        self.config = load_config(config)
        if not groups:
            check_tiers_against(self.config, router)
        self.llm_router = router
        self.router: Router = build_router(self.config, observers=observers, telemetry=telemetry)
        self.backend = LiteLLMRouterBackend(router, groups)

    def _request(self, messages, params, session_id, tier, caller, metadata):
        return route_request_from_messages(messages, params, session_id=session_id, tier=tier, caller=caller,
                                           metadata=metadata)

    @staticmethod
    def _response(result: RoutingResult) -> Any:
        response = result.answer.raw  # type: ignore[union-attr]
        summary = routing_summary(result)
        setattr(response, "tiered_router", summary)
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict):
            hidden["tiered_router"] = summary
            hidden["routing_result"] = result
        return response

    async def acompletion(self, messages: Sequence[Mapping[str, Any]], *, session_id: str | None = None,
                          tier: str | None = None, caller: str | None = None,
                          metadata: Mapping[str, Any] | None = None, **params: Any) -> Any:
        """Route one chat request; returns the served tier's ``ModelResponse``."""
        request = self._request(messages, params, session_id, tier, caller, metadata)
        return self._response(await self.router.aroute(request, self.backend))

    def completion(self, messages: Sequence[Mapping[str, Any]], *, session_id: str | None = None,
                   tier: str | None = None, caller: str | None = None,
                   metadata: Mapping[str, Any] | None = None, **params: Any) -> Any:
        request = self._request(messages, params, session_id, tier, caller, metadata)
        return self._response(self.router.route(request, self.backend))
