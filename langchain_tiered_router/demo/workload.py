"""Demo workloads in the recorded-outcomes format, and the readers of real recordings.

The recorded-outcomes format (JSONL, one request per line)::

    {"id": "...", "prompt": "...", "kind": "...",
     "outcomes": {"<tier>": {"response": "...", "correct": true, "input_tokens": 12, "output_tokens": 30}}}

(``score`` in [0, 1] may stand for ``correct``; token counts are optional). The
emulator replays ``response`` per tier; the demo uses ``correct``/``score`` as the
quality label of whichever tier served.

Both readers are the eval harness's (``analysis.eval.data``: ``load_outcomes`` for the
recorded-outcomes format, ``load_routellm`` for RouteLLM's CSVs); this module only maps
their items to the demo's, which also carry the ``kind`` and ``difficulty`` the
workload generator writes.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..core.errors import TelemetryError
from ..core.text_lines import utf8_lines

__all__ = ["Outcome", "Item", "load_items", "recorded_items", "routellm_items", "write_items",
           "bundled_workload_path"]


@dataclass
class Outcome:
    response: str
    score: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"response": self.response}
        if self.score is not None and self.score in (0.0, 1.0):
            out["correct"] = bool(self.score)
        elif self.score is not None:
            out["score"] = self.score
        if self.input_tokens is not None:
            out["input_tokens"] = self.input_tokens
        if self.output_tokens is not None:
            out["output_tokens"] = self.output_tokens
        return out


@dataclass
class Item:
    id: str
    prompt: str
    outcomes: dict[str, Outcome]
    kind: str = ""
    difficulty: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "prompt": self.prompt}
        if self.kind:
            out["kind"] = self.kind
        if self.difficulty:
            out["difficulty"] = self.difficulty
        out["outcomes"] = {k: v.to_dict() for k, v in self.outcomes.items()}
        return out


def bundled_workload_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "demo" / "workload.jsonl"


def recorded_items(path: str | Path) -> list[Item]:
    """Read a recorded-outcomes JSONL file with the harness's reader; a bad line is
    reported with its number. Token counts the file does not give stay unknown here, so
    the emulator counts the prompt it is really sent."""
    from ..analysis.eval.data import EvalDataError, load_outcomes

    try:
        records = load_outcomes(path)
    except EvalDataError as exc:
        raise TelemetryError(str(exc)) from None
    extra = _kinds(Path(path))
    return [Item(r.id, r.prompt, {t: _outcome(o) for t, o in r.outcomes.items()}, *extra.get(r.id, ("", "")))
            for r in records]


def _outcome(o: Any) -> Outcome:
    known = not o.estimated_tokens
    return Outcome(o.response or "", o.score, o.input_tokens if known else None, o.output_tokens if known else None)


def _kinds(path: Path) -> dict[str, tuple[str, str]]:
    """The generator's ``kind`` and ``difficulty`` per id (fields the harness does not read)."""
    out = {}
    for number, line in enumerate(utf8_lines(path.read_bytes()), start=1):
        if line.strip():
            raw = json.loads(line)
            out[str(raw.get("id", number))] = (str(raw.get("kind", "")), str(raw.get("difficulty", "")))
    return out


def routellm_items(path: str | Path, *, tiers: tuple[str, str] = ("cheap", "frontier"),
                   exclude_contaminated: bool = True) -> list[Item]:
    """RouteLLM's recorded responses as demo items with two tiers, read by the eval
    harness's reader (contaminated prompts left out, as the RouteLLM authors do)."""
    from ..analysis.eval.data import EvalDataError, load_routellm

    try:
        records = load_routellm(path, cheap_tier=tiers[0], frontier_tier=tiers[1],
                                drop_contaminated=exclude_contaminated)
    except EvalDataError as exc:
        raise TelemetryError(str(exc)) from None
    except (OSError, csv.Error) as exc:
        raise TelemetryError(f"cannot read {path}: {exc}") from None
    stem = Path(path).stem
    return [Item(f"{stem}-{n}", r.prompt, {t: Outcome(o.response or "", o.score) for t, o in r.outcomes.items()},
                 kind=stem)
            for n, r in enumerate(records, start=1)]


def load_items(path: str | Path) -> list[Item]:
    """A ``.csv`` (RouteLLM) or recorded-outcomes JSONL file."""
    path = Path(path)
    if not path.exists():
        raise TelemetryError(f"no such file: {path}")
    if path.suffix.lower() == ".csv":
        return routellm_items(path)
    return recorded_items(path)


def write_items(items: Iterable[Item], path: str | Path) -> Path:
    path = Path(path)
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
    return path
