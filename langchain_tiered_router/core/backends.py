"""A backend answers one request on one tier; each integration brings its own.

The core never talks to Bedrock, LangChain or LiteLLM itself: ``TieredChatBedrock``
passes a backend that invokes its per-tier ``ChatBedrockConverse``, the LiteLLM hook
one that calls the proxy's router, the eval harness one that replays recorded answers.
Backends raise ``TransportError`` (retried, then escalated by config) or
``MalformedReplyError`` (escalated) so the engine can tell them from a bad answer.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from .errors import TransportError
from .tiers import Tier
from .types import RouteRequest, TierAnswer

__all__ = ["Backend", "classify_transport_error"]


class Backend(ABC):
    @abstractmethod
    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        """Answer ``request`` with ``tier``'s model."""

    async def acall(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        return await asyncio.to_thread(self.call, tier, request)

    def ask(self, tier: Tier, prompt: str) -> TierAnswer:
        """A one-turn text call, for routing's own calls (LLM classifier, self-grade)."""
        return self.call(tier, RouteRequest(text=prompt))

    async def aask(self, tier: Tier, prompt: str) -> TierAnswer:
        return await self.acall(tier, RouteRequest(text=prompt))


_THROTTLE_CODES = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException",
                   "Throttling", "RequestLimitExceeded"}
_SERVER_CODES = {"InternalServerException", "ServiceUnavailableException", "ModelNotReadyException",
                 "ModelTimeoutException", "InternalFailure", "ServiceUnavailable"}


def classify_transport_error(exc: BaseException, *, tier: str, model_id: str) -> TransportError | None:
    """Map a botocore / network exception to a ``TransportError``, or ``None`` if it is not one.

    Reads class names and error codes only, so the core needs no botocore import.
    """
    name = type(exc).__name__
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    else:
        status = None
    if code in _THROTTLE_CODES or name in _THROTTLE_CODES or status == 429:
        kind = "throttled"
    elif code in _SERVER_CODES or name in _SERVER_CODES or (isinstance(status, int) and status >= 500):
        kind = "server_error"
    elif name in {"ReadTimeoutError", "ConnectTimeoutError", "TimeoutError", "ReadTimeout",
                  "ConnectTimeout", "Timeout"}:
        kind = "timeout"
    elif name in {"EventStreamError", "IncompleteReadError", "ResponseStreamingError",
                  "ProtocolError", "ChunkedEncodingError", "IncompleteRead", "StreamCutError"}:
        kind = "stream_cut"
    elif name in {"EndpointConnectionError", "ConnectionClosedError", "ConnectionError",
                  "ConnectionRefusedError", "ConnectionResetError"}:
        kind = "connection"
    else:
        return None
    return TransportError(f"{name}: {exc}", tier=tier, model_id=model_id, kind=kind, cause=exc)
