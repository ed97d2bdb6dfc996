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

from ._accounting import mark_routed
from ._backend import LiteLLMRouterBackend
from ._request import route_request_from_messages
from ._response import routing_summary
from ._settings import check_tiers_against, deployments_region

__all__ = ["TieredLiteLLMRouter"]


class TieredLiteLLMRouter:
    """Routes chat requests up the tier ladder of ``config`` through ``router``."""

    def __init__(self, router: Any, config: Any, *, groups: Mapping[str, str] | None = None,
                 observers: Sequence[Any] | None = None, telemetry: bool = True):
        self.config = load_config(config)
        if not groups:
            check_tiers_against(self.config, router)
            region = deployments_region(self.config, router)
            if region is not None:  # priced where the deployments call Bedrock
                self.config = self.config.model_copy(update={"region_name": region})
        self.llm_router = router
        self.router: Router = build_router(self.config, observers=observers, telemetry=telemetry)
        self.backend = LiteLLMRouterBackend(router, groups)

    def _request(self, messages, params, session_id, tier, caller, metadata):
        return route_request_from_messages(messages, params, session_id=session_id, tier=tier, caller=caller,
                                           metadata=metadata)

    @staticmethod
    def _response(result: RoutingResult) -> Any:
        """The served tier's response carrying the routing, every attempt's tokens as its
        ``usage`` and the routed cost as LiteLLM's ``response_cost``, as on the proxy."""
        response = mark_routed(result.answer.raw, result, routing_summary(result))  # type: ignore[union-attr]
        response._hidden_params["routing_result"] = result
        return response

    @staticmethod
    def _not_streamed(params: Mapping[str, Any]) -> None:
        if params.get("stream"):
            raise ValueError("TieredLiteLLMRouter answers whole responses (a gate judges the whole answer before "
                             "it is served); stream=True is not supported here: route streams through the proxy")

    async def acompletion(self, messages: Sequence[Mapping[str, Any]], *, session_id: str | None = None,
                          tier: str | None = None, caller: str | None = None,
                          metadata: Mapping[str, Any] | None = None, **params: Any) -> Any:
        """Route one chat request; returns the served tier's ``ModelResponse``."""
        self._not_streamed(params)
        request = self._request(messages, params, session_id, tier, caller, metadata)
        return self._response(await self.router.aroute(request, self.backend))

    def completion(self, messages: Sequence[Mapping[str, Any]], *, session_id: str | None = None,
                   tier: str | None = None, caller: str | None = None,
                   metadata: Mapping[str, Any] | None = None, **params: Any) -> Any:
        self._not_streamed(params)
        request = self._request(messages, params, session_id, tier, caller, metadata)
        return self._response(self.router.route(request, self.backend))
