"""What every InvokeModel body family provides, and the parts they share.

A family parses its request body into a ``Conversation``, renders an ``Answer`` as its
response body, and as the list of JSON chunks that InvokeModelWithResponseStream sends
(each one base64 in a ``chunk`` event). The last chunk carries Bedrock's
``amazon-bedrock-invocationMetrics``, as on the real service.
"""

from __future__ import annotations

from typing import Any, Protocol

from ._answer import Answer
from ._conversation import Conversation
from ._wire_errors import WireError

__all__ = ["InvokeFamily", "invocation_metrics", "require"]


class InvokeFamily(Protocol):
    name: str

    def parse(self, body: dict[str, Any]) -> Conversation: ...

    def render(self, answer: Answer, latency_ms: int) -> dict[str, Any]: ...

    def stream(self, answer: Answer, latency_ms: int) -> list[dict[str, Any]]: ...


def invocation_metrics(answer: Answer, latency_ms: int) -> dict[str, int]:
    """The ``amazon-bedrock-invocationMetrics`` object of a stream's last chunk."""
    usage = answer.usage
    metrics = {"inputTokenCount": usage.input_tokens, "outputTokenCount": usage.output_tokens,
               "invocationLatency": latency_ms, "firstByteLatency": min(latency_ms, 1)}
    if usage.cache_read is not None:
        metrics["cacheReadInputTokenCount"] = usage.cache_read
        metrics["cacheWriteInputTokenCount"] = usage.cache_write or 0
    return metrics


def require(body: dict[str, Any], key: str) -> Any:
    """A required body key, refused with the wording Bedrock uses for schema errors."""
    if key not in body:
        raise WireError.validation(f"Malformed input request: #: required key [{key}] not found, "
                                   "please reformat your input and try again.")
    return body[key]
