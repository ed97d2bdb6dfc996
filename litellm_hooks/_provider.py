"""The ``tiered_router`` LiteLLM provider: serves the answer the core routed.

Declared in the proxy's ``custom_provider_map``; a model whose
``litellm_params.model`` is ``tiered_router/<name>`` is what clients call. The
``TieredRouterHook`` pre-call hook has already routed the request by the time
LiteLLM calls this provider, so serving is a lookup: the served tier's own
response (its id, tool calls, usage) with a ``tiered_router`` field, its cost set
to the whole routed cost (every attempt and routing call, so LiteLLM's spend for
the key counts gate-failed attempts once each), or that answer replayed as a
stream for a gated route that had to be buffered.
"""

from __future__ import annotations

import copy
import json
from typing import Any, AsyncIterator, Iterator

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError

from langchain_tiered_router.core import RoutingResult

from ._hook import ROUTE_ID_KEY
from ._routes import ROUTES, RouteEntry, RouteTable

__all__ = ["TieredRouterProvider"]

_NOT_ROUTED = ("this request was not routed: add litellm_hooks.proxy_handler_instance to "
               "litellm_settings.callbacks (or use litellm_hooks.TieredLiteLLMRouter outside the proxy)")


def _route_id(litellm_params: Any) -> str | None:
    meta = (litellm_params or {}).get("metadata") or {}
    return meta.get(ROUTE_ID_KEY) if isinstance(meta, dict) else None


class TieredRouterProvider(CustomLLM):
    """Register as ``custom_provider_map: [{provider: tiered_router,
    custom_handler: litellm_hooks.tiered_router_provider}]``."""

    def __init__(self, table: RouteTable = ROUTES):
        super().__init__()
        self.table = table

    def _entry(self, litellm_params: Any) -> RouteEntry:
        entry = self.table.release(_route_id(litellm_params))
        if entry is None or entry.result is None or entry.result.answer is None:
            raise CustomLLMError(status_code=500, message=_NOT_ROUTED)
        return entry

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
        entry = self._entry(kwargs.get("litellm_params"))
        result, summary = entry.result, entry.summary
        assert result is not None and result.answer is not None
        raw = result.answer.raw
        response = copy.copy(raw)
        setattr(response, "tiered_router", summary)
        hidden = dict(getattr(raw, "_hidden_params", None) or {})
        hidden["tiered_router"] = summary
        if result.cost_usd is not None:
            hidden["response_cost"] = float(result.cost_usd)
        else:
            hidden.pop("response_cost", None)  # unknown: let LiteLLM price it, never 0
        response._hidden_params = hidden
        return response

    def completion(self, *args: Any, **kwargs: Any) -> Any:
        raise CustomLLMError(status_code=500, message="the tiered_router provider is async only (the proxy)")

    async def astreaming(self, *args: Any, **kwargs: Any) -> AsyncIterator[dict]:
        entry = self._entry(kwargs.get("litellm_params"))
        assert entry.result is not None
        for chunk in _replay(entry.result, entry.summary):
            yield chunk

    def streaming(self, *args: Any, **kwargs: Any) -> Iterator[dict]:
        raise CustomLLMError(status_code=500, message="the tiered_router provider is async only (the proxy)")


def _replay(result: RoutingResult, summary: dict[str, Any]) -> Iterator[dict]:
    """The buffered answer as LiteLLM generic stream chunks: text, tool calls, then
    the finish chunk with usage and the routing summary."""
    answer = result.answer
    assert answer is not None
    if answer.text:
        yield {"text": answer.text, "is_finished": False, "finish_reason": "", "usage": None, "index": 0,
               "tool_use": None}
    for i, call in enumerate(answer.tool_calls):
        yield {"text": "", "is_finished": False, "finish_reason": "", "usage": None, "index": 0,
               "tool_use": {"id": call.get("id") or f"call_{i}", "type": "function", "index": i,
                            "function": {"name": call.get("name"), "arguments": json.dumps(call.get("args") or {})}}}
    usage = answer.usage
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    yield {"text": "", "is_finished": True, "finish_reason": answer.stop_reason or "stop", "index": 0,
           "tool_use": None,
           "usage": {"prompt_tokens": prompt, "completion_tokens": usage.output_tokens,
                     "total_tokens": prompt + usage.output_tokens},
           "provider_specific_fields": {"tiered_router": summary}}
