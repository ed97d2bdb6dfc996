"""The model profile of a ladder: what LangChain may assume of whichever tier answers.

LangChain reads ``BaseChatModel.profile`` to decide for the caller: ``create_agent``
asks the model for native structured output when the profile says it has it, and
``SummarizationMiddleware`` sizes a fractional trigger from ``max_input_tokens``. A
request may be served by any tier, so a capability holds for the ladder only when every
tier's profile says it does, and a limit is the smallest tier's. A tier without a
profile (a model id LangChain has no data for) leaves the ladder without one, as a
plain ``ChatBedrockConverse`` of it would be.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["ladder_profile"]

LIMITS = ("max_input_tokens", "max_output_tokens")
# Facts about one model, not capabilities: no ladder value.
PER_MODEL = ("name", "status", "release_date", "last_updated", "reasoning_effort_levels", "reasoning_effort_default")


def ladder_profile(profiles: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """Each capability every tier has (``True`` only when all say so, ``False`` when
    one says no, left out when one does not say), each limit at its smallest."""
    if not profiles or any(not p for p in profiles):
        return None
    out: dict[str, Any] = {}
    keys = {k for p in profiles for k in p} - set(PER_MODEL)
    for key in sorted(keys):
        values = [p.get(key) for p in profiles]
        if key in LIMITS:
            if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                out[key] = min(values)
        elif any(v is False for v in values):
            out[key] = False
        elif all(v is True for v in values):
            out[key] = True
    names = [p.get("name") for p in profiles]
    if all(isinstance(n, str) for n in names):
        out["name"] = "tiered: " + " > ".join(names)
    return out
