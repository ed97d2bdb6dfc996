"""The prompts ``collect`` asks every tier: from a JSONL file or a telemetry store.

A prompts file holds one JSON object per line::

    {"id": "q-17", "prompt": "How many ...?", "gold": "18"}
    {"id": "c-3", "system": "You are terse.", "messages": [{"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Summarise: ..."}]}

``prompt`` or ``messages`` (content a string or a list of ``{"text": ...}`` blocks; a
``system`` role message is moved to ``system``), optional ``system``, ``id`` (default: a
digest of the conversation, so reruns find the same item) and ``gold`` (alias
``reference``), the answer to grade against. What the router's classifiers read of a
conversation is its last user message; that is the item's ``prompt`` in the output.
A line may carry both ``prompt`` and ``messages`` only when the prompt is that last user
message (as every line ``collect`` writes does, so its output can be asked again); a
different prompt is refused, naming the line, rather than one of the two being dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ...core.conversation import blocks_text
from .decoding import utf8_lines
from .errors import PromptsError

__all__ = ["PromptItem", "FromRecords", "read_prompts", "prompts_from_records", "sample_prompts"]


@dataclass(frozen=True)
class PromptItem:
    """One request to ask every tier: the conversation, and the gold answer if known."""

    id: str
    messages: tuple[tuple[str, str], ...]  # (role, text), ending on a user turn
    system: str | None = None
    gold: str | None = None
    given_messages: bool = False  # the input had ``messages`` (kept in the output)

    @property
    def text(self) -> str:
        """The last user message: what the router's classifiers read at run time."""
        return next(text for role, text in reversed(self.messages) if role == "user")

    @property
    def chars(self) -> int:
        return sum(len(text) for _, text in self.messages) + len(self.system or "")

    def to_record(self) -> dict[str, Any]:
        """The item's fields in a recorded-outcomes line (outcomes are added by the caller)."""
        out: dict[str, Any] = {"id": self.id, "prompt": self.text}
        if self.given_messages:
            out["messages"] = [{"role": r, "content": t} for r, t in self.messages]
        if self.system:
            out["system"] = self.system
        if self.gold is not None:
            out["gold"] = self.gold
        return out


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for block in value:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
            else:
                raise PromptsError(f"{where}: a content block without text ({json.dumps(block)[:60]})")
        return blocks_text(parts)  # one line per block, as every integration reads it
    raise PromptsError(f"{where}: message content must be a string or a list of text blocks")


def _digest(messages: Sequence[tuple[str, str]], system: str | None) -> str:
    canonical = json.dumps([system, list(messages)], ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _item(raw: Any, where: str) -> PromptItem:
    if not isinstance(raw, dict):
        raise PromptsError(f"{where}: expected a JSON object")
    system = raw.get("system")
    if system is not None and not isinstance(system, str):
        raise PromptsError(f"{where}: 'system' must be a string")
    given = "messages" in raw and raw["messages"] is not None
    if given:
        if not isinstance(raw["messages"], list) or not raw["messages"]:
            raise PromptsError(f"{where}: 'messages' must be a non-empty list")
        messages = []
        for n, message in enumerate(raw["messages"]):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
                raise PromptsError(f"{where}: messages[{n}] needs a role of user, assistant or system")
            text = _content(message.get("content"), f"{where}: messages[{n}]")
            if message["role"] == "system":
                system = text if system is None else f"{system}\n{text}"
            else:
                messages.append((message["role"], text))
        if not messages or messages[-1][0] != "user":
            raise PromptsError(f"{where}: the conversation must end on a user message")
        prompt = raw.get("prompt")
        if prompt is not None and prompt != messages[-1][1]:
            # the tiers are asked the messages; a different prompt beside them would be
            # dropped without a word, or be what the user meant to ask
            raise PromptsError(f"{where}: both 'prompt' and 'messages', and the prompt is not the last user "
                               "message; keep one (a line collect wrote has both, the same)")
    elif isinstance(raw.get("prompt"), str) and raw["prompt"].strip():
        messages = [("user", raw["prompt"])]
    else:
        raise PromptsError(f"{where}: needs 'prompt' (a non-empty string) or 'messages'")
    gold = raw.get("gold", raw.get("reference"))
    if gold is not None and not isinstance(gold, str):
        gold = json.dumps(gold) if isinstance(gold, (dict, list)) else str(gold)
    item_id = raw.get("id")
    return PromptItem(str(item_id) if item_id is not None else _digest(messages, system), tuple(messages), system,
                      gold, given)


def read_prompts(path: str | Path) -> list[PromptItem]:
    """Every prompt in a JSONL file; a bad line or a repeated id is an error naming its line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PromptsError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = utf8_lines(data, path, PromptsError)
    items: list[PromptItem] = []
    where: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        here = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise PromptsError(f"{here}: not valid JSON ({exc.msg})") from None
        item = _item(raw, here)
        if item.id in where:
            raise PromptsError(f"{here}: id {item.id!r} repeats {where[item.id]}")
        where[item.id] = here
        items.append(item)
    if not items:
        raise PromptsError(f"{path} holds no prompts")
    return items


@dataclass
class FromRecords:
    """Prompts read from telemetry, and what was left out and why."""

    items: list[PromptItem]
    without_text: int
    duplicates: int


def prompts_from_records(records: Iterable[Any]) -> FromRecords:
    """One prompt per routed request whose text was stored (``telemetry.store_text``),
    keyed by request id; a prompt text seen before is asked once."""
    items, seen = [], set()
    without_text = duplicates = 0
    for record in records:
        text = getattr(record, "prompt_text", None)
        if not text:
            without_text += 1
            continue
        if text in seen:
            duplicates += 1
            continue
        seen.add(text)
        items.append(PromptItem(str(record.request_id), (("user", text),)))
    return FromRecords(items, without_text, duplicates)


def sample_prompts(items: Sequence[PromptItem], n: int) -> list[PromptItem]:
    """A uniform sample of ``n`` that every rerun draws the same (the smallest sha256 of
    the ids), kept in input order."""
    if n >= len(items):
        return list(items)
    keyed = sorted(items, key=lambda i: hashlib.sha256(i.id.encode("utf-8")).digest())
    keep = {i.id for i in keyed[:n]}
    return [i for i in items if i.id in keep]
