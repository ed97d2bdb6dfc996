"""On-demand calls for what batch cannot take: small remainders, graders, classifiers, shadows.

A ``Backend`` over the real boto3 ``bedrock-runtime`` client that sends the same
bodies a batch record carries (``formats.model_input``) to InvokeModel, or to
Converse for ``invocation_type: Converse``, so either path reads back the same way.
Errors are the core's: ``TransportError`` for throttling, 5xx and timeouts,
``MalformedReplyError`` for a body of the wrong shape.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.backends import Backend, tier_call_error
from ..core.errors import MalformedReplyError
from ..core.tiers import Tier
from ..core.types import RouteRequest, TierAnswer
from .formats import Prompt, model_input, parse_output

__all__ = ["OnDemandBackend", "prompt_of"]


def prompt_of(request: RouteRequest) -> Prompt:
    """The batch ``Prompt`` a request carries, or its text as one user message."""
    if isinstance(request.payload, Prompt):
        return request.payload
    return Prompt((("user", request.text),))


class OnDemandBackend(Backend):
    def __init__(self, client: Any, invocation_type: str = "InvokeModel"):
        self.client = client
        self.invocation_type = invocation_type

    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        prompt = prompt_of(request)
        body = model_input(tier, prompt, self.invocation_type)
        counts: tuple[int, int] | None = None
        try:
            if self.invocation_type == "Converse":
                output: Any = self.client.converse(modelId=tier.model_id, **body)
            else:
                reply = self.client.invoke_model(modelId=tier.model_id, body=json.dumps(body),
                                                 contentType="application/json", accept="application/json")
                raw = reply["body"].read()
                headers = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                if "x-amzn-bedrock-input-token-count" in headers:
                    counts = (int(headers["x-amzn-bedrock-input-token-count"]),
                              int(headers.get("x-amzn-bedrock-output-token-count") or 0))
        except Exception as exc:  # noqa: BLE001 - sorted into the core's error kinds
            raise tier_call_error(exc, tier) from exc
        if self.invocation_type != "Converse":
            try:
                output = json.loads(raw)
            except ValueError as exc:
                raise MalformedReplyError(f"the reply is not JSON ({exc})", tier=tier.name,
                                          model_id=tier.model_id) from None
        return parse_output(tier, output, prompt, self.invocation_type, counts)
