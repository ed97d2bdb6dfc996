"""What a classifier reads and a gate sees of a conversation, decided once for every integration.

LangChain hands the router messages, LiteLLM OpenAI-style dicts; both reduce them to
``(role, text)`` turns and call ``request_text``, so the same router YAML routes the
same conversation to the same tier whichever way it arrives.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

__all__ = ["request_text", "blocks_text", "USER", "ASSISTANT", "SYSTEM", "TOOL"]

USER, ASSISTANT, SYSTEM, TOOL = "user", "assistant", "system", "tool"


def blocks_text(blocks: Iterable[Any]) -> str:
    """The text of a turn given as content blocks: its text blocks (a string, or a mapping
    with a string ``text``: Converse's ``{"text"}``, OpenAI's and LangChain's
    ``{"type": "text", "text"}``) one per line, anything else (an image) left out.

    One join for every way in: LangChain joined blocks with "", the proxy and ``eval``
    with a newline, so a prompt in two blocks was routed on one text and certified on
    another (37 of 297 such requests on another tier)."""
    parts = []
    for block in blocks:
        if isinstance(block, str):
            parts.append(block)
        elif hasattr(block, "get") and isinstance(block.get("text"), str) and block.get("type", "text") == "text":
            parts.append(block["text"])
    return "\n".join(parts)


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
