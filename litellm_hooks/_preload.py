"""Load, while the proxy starts, what LiteLLM would load on the first routed request.

Two lazy loads made the first request through the ``tiered_router`` provider slower than
the next (py-spy on a fresh proxy): LiteLLM's default tokenizer (tiktoken's
``cl100k_base``, about 0.4 s), which it hands every call to a custom provider, and boto3,
which it imports on the first Bedrock call to resolve credentials (about 0.1 s). The
provider is built while the proxy loads its config, so it loads both then (LiteLLM loads
the tokenizer at import itself under ``LITELLM_DISABLE_LAZY_LOADING``). Whatever cannot
be loaded is left to the first request, as before.
"""

from __future__ import annotations

import importlib
import logging

__all__ = ["preload_first_request"]

log = logging.getLogger("litellm_hooks")


def preload_first_request() -> list[str]:
    """Load LiteLLM's default tokenizer and boto3 now; the names that loaded."""
    loaded = []
    for name, load in (("litellm tokenizer", lambda: importlib.import_module("litellm.main").encoding),
                       ("boto3", lambda: importlib.import_module("boto3"))):
        try:
            load()  # ``encoding`` is a lazy module attribute: reading it loads it
        except Exception as exc:  # noqa: BLE001 - an optimisation: the first request loads it as before
            log.debug("not preloaded: %s (%s)", name, exc)
        else:
            loaded.append(name)
    return loaded
