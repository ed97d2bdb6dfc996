"""Asking one tier one prompt through Bedrock's Converse API, with a real boto3 client.

The same client talks to Amazon Bedrock (``--live``, the user's credentials) or to a
Bedrock-wire endpoint such as the local emulator (``endpoint_url``). Converse is one
request shape for every model family, and its reply carries the token counts Bedrock
bills, so the recorded outcomes hold real counts, not estimates. Errors are the core's:
``TransportError`` for throttling, 5xx and timeouts (after botocore's own retries),
``MalformedReplyError`` for a reply without a message, ``TierCallError`` for the rest.
"""

from __future__ import annotations

from typing import Any

from ...core.backends import Backend, tier_call_error
from ...core.errors import MalformedReplyError
from ...core.optional import import_boto3
from ...core.pricing import Usage, converse_usage
from ...core.tiers import Tier
from ...core.types import RouteRequest, TierAnswer
from .prompts import PromptItem

__all__ = ["ConverseBackend", "runtime_client", "converse_body", "import_boto3"]

_INFERENCE_KEYS = {"max_tokens": ("maxTokens", int), "temperature": ("temperature", float),
                   "top_p": ("topP", float)}


def runtime_client(*, region: str, endpoint_url: str | None, max_connections: int, max_attempts: int = 5,
                   placeholder_credentials: bool = False) -> Any:
    """A boto3 ``bedrock-runtime`` client; ``placeholder_credentials`` signs with dummy keys
    (an emulator ignores signatures; they are sent nowhere but ``endpoint_url``)."""
    boto3 = import_boto3()
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": max_attempts},
                    max_pool_connections=max(10, max_connections), read_timeout=300)
    keys: dict[str, str] = {}
    if placeholder_credentials:
        keys = {"aws_access_key_id": "placeholder", "aws_secret_access_key": "placeholder"}
    return boto3.client("bedrock-runtime", region_name=region, endpoint_url=endpoint_url, config=config, **keys)


def converse_body(tier: Tier, item: PromptItem) -> dict[str, Any]:
    """The Converse request for ``tier``: the conversation, the tier's max_tokens /
    temperature / top_p, and its other model kwargs as additional model request fields."""
    body: dict[str, Any] = {"modelId": tier.model_id,
                            "messages": [{"role": role, "content": [{"text": text}]} for role, text in item.messages]}
    if item.system:
        body["system"] = [{"text": item.system}]
    inference, extra = {}, {}
    for key, value in tier.params.items():
        if key in _INFERENCE_KEYS and value is not None:
            name, cast = _INFERENCE_KEYS[key]
            inference[name] = cast(value)
        elif value is not None:
            extra[key] = value
    if inference:
        body["inferenceConfig"] = inference
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


class ConverseBackend(Backend):
    """``request.payload`` is a ``PromptItem``; a bare request (a judge prompt) is one user turn."""

    def __init__(self, client: Any):
        self.client = client

    def call(self, tier: Tier, request: RouteRequest) -> TierAnswer:
        item = request.payload if isinstance(request.payload, PromptItem) else \
            PromptItem("judge", (("user", request.text),))
        try:
            reply = self.client.converse(**converse_body(tier, item))
        except Exception as exc:  # noqa: BLE001 - sorted into the core's error kinds
            raise tier_call_error(exc, tier) from exc
        usage = reply.get("usage") if isinstance(reply, dict) else None
        usage = converse_usage(usage) if isinstance(usage, dict) else None
        try:
            blocks = reply["output"]["message"]["content"]
        except (KeyError, TypeError):
            raise MalformedReplyError("the Converse reply holds no output message", tier=tier.name,
                                      model_id=tier.model_id, usage=usage) from None
        text = "".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))
        return TierAnswer(text, usage or Usage(), model_id=tier.model_id, stop_reason=reply.get("stopReason"))
