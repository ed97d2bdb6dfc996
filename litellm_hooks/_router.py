"""The same routing for a plain ``litellm.Router`` user, without the proxy.

    router = TieredLiteLLMRouter(litellm.Router(model_list=[...]), "router.yaml")
    response = await router.acompletion(messages=[...], session_id="chat-1")
    response.tiered_router["tier"]    # the tier that served it

Each tier is the ``litellm.Router`` model group of the same name (or ``groups``).
Errors: ``LadderExhaustedError`` when nothing can be served (every tier failed; or, under
``on_exhausted: raise``, no answer passed the gates), which is also the LiteLLM type the
last tier call raised (``litellm.RateLimitError``...); a request refused before any call
is ``litellm.BadRequestError``; ``TierNotAllowedError`` for a forbidden ``tier=``.
Tier calls carry the caller's ``metadata`` to LiteLLM's callbacks, and never use the
inner router's fallbacks: the ladder is the fallback.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from litellm.utils import type_to_response_format_param

from langchain_tiered_router.core import Router, RoutingResult
from langchain_tiered_router.core.build import build_router
from langchain_tiered_router.core.config import load_config
from langchain_tiered_router.core.errors import ConfigError, LadderExhaustedError

from ._accounting import mark_routed
from ._backend import LiteLLMRouterBackend
from ._errors import as_bad_request, as_litellm_error
from ._request import BadChatRequest, route_request_from_messages
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
        params = dict(params)
        if isinstance(params.get("response_format"), type):  # a pydantic class, as litellm takes it
            params["response_format"] = type_to_response_format_param(params["response_format"])
        try:
            request = route_request_from_messages(messages, params, session_id=session_id, tier=tier,
                                                  caller=caller, metadata=metadata)
        except (BadChatRequest, ConfigError) as exc:  # the request's, not the router's: LiteLLM's 400
            raise as_bad_request(exc) from exc
        if metadata:  # to each tier call's LiteLLM callbacks (trace names, tags), as a plain router's
            request.payload["call_metadata"] = dict(metadata)
        return request

    @staticmethod
    def _response(result: RoutingResult) -> Any:
        """The served tier's response carrying the routing, every attempt's tokens as its
        ``usage`` and the routed cost as LiteLLM's ``response_cost``, as on the proxy.
        A copy: LiteLLM logs the tier call's own response after the call has returned (its
        async success callbacks), and must read that call's tokens and cost, not the route's."""
        response = mark_routed(copy.copy(result.answer.raw), result, routing_summary(result))  # type: ignore[union-attr]
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
        try:
            result = await self.router.aroute(request, self.backend)
        except LadderExhaustedError as exc:
            raise as_litellm_error(exc) from exc.__cause__
        return self._response(result)

    def completion(self, messages: Sequence[Mapping[str, Any]], *, session_id: str | None = None,
                   tier: str | None = None, caller: str | None = None,
                   metadata: Mapping[str, Any] | None = None, **params: Any) -> Any:
        self._not_streamed(params)
        request = self._request(messages, params, session_id, tier, caller, metadata)
        try:
            result = self.router.route(request, self.backend)
        except LadderExhaustedError as exc:
            raise as_litellm_error(exc) from exc.__cause__
        return self._response(result)
