"""Whether a tier's ``model_id`` can name a model on Bedrock Runtime, checked before any call.

The core prices any model LiteLLM's cost map knows (the eval harness replays OpenAI's
and Google's), so its config accepts any id; a tier that calls Bedrock cannot. An id
Bedrock does not know fails every request as ``model_unavailable``, which a ladder
escalates past: the tier never serves and nothing says why. So an integration that
calls Bedrock refuses, at construction, ids no Bedrock model has the shape of:

* a foundation model or inference profile: ``provider.model`` (``amazon.nova-micro-v1:0``,
  ``us.anthropic.claude-sonnet-4-5-20250929-v1:0``);
* an ARN (provisioned throughput, a custom or imported model, an application inference
  profile, a prompt router, a Marketplace endpoint).

LiteLLM's spelling (``bedrock/``, ``bedrock/converse/...``) is named, with the id to use.
Only a router that calls AWS's own endpoint is held to this: another ``endpoint_url`` (a
gateway, the emulator the replay demo serves recorded models from) serves what it serves.
"""

from __future__ import annotations

import re
from typing import Iterable

from .errors import ConfigError

__all__ = ["bedrock_id_problem", "check_bedrock_ids"]

# Bedrock's own pattern for a model id that is not an ARN is [a-zA-Z0-9-:.]+; every
# model and profile it serves has a provider (or a geography and a provider) before a dot.
_ID = re.compile(r"[a-z0-9][a-z0-9-]*\.[A-Za-z0-9][A-Za-z0-9.:_-]*")
_ARN = re.compile(r"arn:aws[a-z-]*:(bedrock|sagemaker):[a-z0-9-]*:\d*:\S+")
_LITELLM_ROUTES = ("converse/", "invoke/", "converse_like/")


def bedrock_id_problem(model_id: str) -> str | None:
    """Why ``model_id`` cannot name a Bedrock model, or None when it can."""
    if model_id.startswith("arn:"):
        return None if _ARN.fullmatch(model_id) else "is not a Bedrock ARN (arn:aws:bedrock:<region>:...)"
    if model_id.startswith("bedrock/"):
        rest = model_id[len("bedrock/"):]
        for route in _LITELLM_ROUTES:
            rest = rest.removeprefix(route)
        return f"is LiteLLM's spelling: Bedrock's id is {rest!r}"
    if _ID.fullmatch(model_id):
        return None
    return ("is not a Bedrock model id: Bedrock names its models provider.model (amazon.nova-micro-v1:0, "
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0) or by ARN")


def check_bedrock_ids(model_ids: Iterable[str], *, endpoint_url: str | None = None,
                      source: str | None = None) -> None:
    """A ``ConfigError`` at ``tiers[i].model_id`` for the first id Bedrock cannot serve;
    none when ``endpoint_url`` is not AWS's (that server decides what it serves)."""
    if endpoint_url and ".amazonaws.com" not in endpoint_url and ".api.aws" not in endpoint_url:
        return
    for i, model_id in enumerate(model_ids):
        problem = bedrock_id_problem(model_id)
        if problem is not None:
            raise ConfigError(f"{model_id!r} {problem}", path=f"tiers[{i}].model_id", source=source)
