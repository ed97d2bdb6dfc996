"""Model ids as Bedrock accepts them, and prompt routers.

The ``modelId`` in a path may be a bare model id, a cross-region inference profile
(``us.amazon.nova-micro-v1:0``), or an ARN (foundation model, inference profile,
prompt router), URL-encoded by botocore. A prompt router picks one of its models per
request; the emulator picks by the script's routes, then by its rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._script import EmulatorScript, PromptRouterScript
from ._wire_errors import WireError

__all__ = ["base_model_id", "body_model_id", "family_of", "is_prompt_router", "RouteChoice", "route"]

_REGION_PREFIX = re.compile(r"^(us|eu|apac|us-gov|global|jp|au|ca)\.")

# The routers AWS provides in every account (default-prompt-router/<family>), with the
# two models each one chooses between, cheapest first.
_DEFAULT_ROUTERS = {
    "anthropic.claude": ["anthropic.claude-3-haiku-20240307-v1:0",
                         "anthropic.claude-3-5-sonnet-20240620-v1:0"],
    "meta.llama": ["meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0"],
    "amazon.nova": ["amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"],
}


def base_model_id(model_id: str) -> str:
    """``arn:...:inference-profile/us.amazon.nova-micro-v1:0`` -> ``amazon.nova-micro-v1:0``."""
    tail = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    return _REGION_PREFIX.sub("", tail)


def family_of(model_id: str) -> str:
    """The InvokeModel body family: anthropic, nova, mistral_chat, mistral, llama4, meta, titan, or other."""
    base = base_model_id(model_id)
    for prefix, family in (("anthropic.", "anthropic"), ("amazon.nova", "nova"),
                           ("mistral.mistral-large-2407", "mistral_chat"), ("mistral.pixtral-large", "mistral_chat"),
                           ("mistral.", "mistral"), ("meta.llama4", "llama4"), ("meta.", "meta"),
                           ("amazon.titan-text", "titan")):
        if base.startswith(prefix):
            return family
    return "other"


def is_prompt_router(model_id: str) -> bool:
    return model_id.startswith("arn:") and (":prompt-router/" in model_id
                                            or ":default-prompt-router/" in model_id)


@dataclass(frozen=True)
class RouteChoice:
    """Where one request goes: the model that answers, and the router that chose it."""

    model_id: str
    router_arn: str | None = None


def _router_config(script: EmulatorScript, arn: str) -> PromptRouterScript:
    if arn in script.prompt_routers:
        return script.prompt_routers[arn]
    if ":default-prompt-router/" in arn and not script.strict:
        family = arn.rsplit("/", 1)[-1].split(":")[0]
        if family in _DEFAULT_ROUTERS:
            return PromptRouterScript(models=_DEFAULT_ROUTERS[family])
    raise WireError("ResourceNotFoundException", f"The prompt router {arn} was not found.")


def route(script: EmulatorScript, model_id: str, prompt: str) -> RouteChoice:
    """Which model answers: the path's model id, or the pick of the prompt router it names."""
    if not is_prompt_router(model_id):
        known = model_id in script.models or base_model_id(model_id) in script.models
        if script.strict and not known:
            raise WireError.validation("The provided model identifier is invalid.")
        return RouteChoice(model_id)
    config = _router_config(script, model_id)
    for rule in config.routes:
        if re.search(rule.match, prompt):
            return RouteChoice(rule.model, model_id)
    if config.rule == "first":
        chosen = config.models[0]
    elif config.rule == "last":
        chosen = config.models[-1]
    else:
        chosen = config.models[0] if len(prompt) < config.threshold_chars else config.models[-1]
    return RouteChoice(chosen, model_id)


def body_model_id(script: EmulatorScript, model_id: str) -> str:
    """The model whose InvokeModel body format applies: a router's first candidate."""
    return _router_config(script, model_id).models[0] if is_prompt_router(model_id) else model_id
