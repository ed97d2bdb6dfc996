"""What a classifier reads and a gate sees of a conversation, decided once for every integration.

LangChain hands the router messages, LiteLLM OpenAI-style dicts; both reduce them to
``(role, text)`` turns and call ``request_text``, so the same router YAML routes the
same conversation to the same tier whichever way it arrives.
"""

from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ["request_text", "USER", "ASSISTANT", "SYSTEM", "TOOL"]

USER, ASSISTANT, SYSTEM, TOOL = "user", "assistant", "system", "tool"


def request_text(turns: Iterable[tuple[str, str]]) -> str:
    """The last user turn's text (the question being asked now).

    Not the whole transcript: keyword and length rules written for a question should not
    change meaning as a conversation grows, and a grader judges the answer to this
    question. A conversation with no user turn falls back to its last non-system turn.
    """
    kept: Sequence[tuple[str, str]] = [(role, text) for role, text in turns]
    for role, text in reversed(kept):
        if role == USER:
            return text
    for role, text in reversed(kept):
        if role != SYSTEM:
            return text
    return ""
