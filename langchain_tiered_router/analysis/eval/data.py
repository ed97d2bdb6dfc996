"""Labelled eval data: the recorded-outcomes JSONL format and RouteLLM's recordings.

Recorded outcomes, one JSON object per line::

    {"id": "q-17", "prompt": "text", "messages": [{"role": "user", "content": "..."}],
     "outcomes": {"cheap":    {"correct": true, "response": "...", "input_tokens": 120, "output_tokens": 80},
                  "frontier": {"score": 0.4}}}

Outcome keys are tier names of the router config; ``score`` in [0, 1] may stand for
``correct``. Missing token counts are estimated as ceil(characters / 4) (of the prompt,
of the response) and each item says so. RouteLLM's CSVs are read directly, with the
prompts its authors list as contaminated left out.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ...core.conversation import blocks_text, request_text
from ...core.errors import RouterError
from ...core.pricing import Usage, estimate_tokens
from ...core.text_lines import NotUtf8, utf8_lines

__all__ = ["EvalDataError", "Outcome", "EvalItem", "distinct_rows", "load_outcomes", "load_routellm", "load_mt_bench", "load_eval_data",
           "split_by_hash", "estimate_tokens", "ROUTELLM_CHEAP", "ROUTELLM_FRONTIER"]

log = logging.getLogger(__name__)

ROUTELLM_CHEAP = "mistralai/Mixtral-8x7B-Instruct-v0.1"
ROUTELLM_FRONTIER = "gpt-4-1106-preview"
CONTAMINATION_LISTING = "contaminated_prompts.jsonl"  # RouteLLM's: prompts that leaked into training
MAX_TOKENS = 10**12  # a token count past this is a typo or an overflow, not a recording
MMLU_OUTPUT_TOKENS = 1  # MMLU recordings hold no answer text: the answer is one choice letter


class EvalDataError(RouterError):
    """Eval data that cannot be used; the message names the file and line (``line``)."""

    def __init__(self, message: str, *, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass
class Outcome:
    score: float  # 1.0 correct, 0.0 wrong, or a graded score in [0, 1]
    response: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_tokens: bool = False
    output_unknown: bool = False  # neither output_tokens nor the answer: costed at MMLU_OUTPUT_TOKENS
    cache_read_tokens: int = 0  # prompt caching, billed at the cache rates (``collect`` records them)
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of the writes, those to an hour-long cache (their own rate)

    @property
    def usage(self) -> Usage:
        """What the call was billed on."""
        return Usage(self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens,
                     self.cache_write_1h_tokens)


@dataclass
class EvalItem:
    id: str
    prompt: str
    outcomes: dict[str, Outcome]
    messages: list[dict[str, Any]] = field(default_factory=list)


def _row_key(item: EvalItem) -> str:
    """The request and what every tier did with it; not the row's id."""
    outcomes = sorted((t, o.score, o.response, o.input_tokens, o.output_tokens, o.cache_read_tokens,
                       o.cache_write_tokens, o.cache_write_1h_tokens) for t, o in item.outcomes.items())
    return json.dumps([item.prompt, item.messages, outcomes], sort_keys=True, default=str)


def distinct_rows(items: Sequence[EvalItem]) -> tuple[list[EvalItem], int]:
    """The items without rows that repeat an earlier one (the same request, the same
    outcome on every tier), and how many did. A calibration's promise is about distinct
    requests: a row copied three times is one piece of evidence, not three. The same
    prompt answered differently (sampled again) is another observation and stays."""
    seen: set[str] = set()
    kept = []
    for item in items:
        key = _row_key(item)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept, len(items) - len(kept)


def _score(value: Any, where: str, tier: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvalDataError(f"{where}: outcome {tier!r} score {value!r} is not a number")
    score = float(value)
    if not 0 <= score <= 1:
        raise EvalDataError(f"{where}: outcome {tier!r} score {score} is outside [0, 1]")
    return score


# prompt caching's counts, where an outcome has them; the hour-long writes are a part of the writes
_CACHE_KEYS = ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens")


def _tokens(value: Any, where: str, tier: str, key: str) -> int:
    """A recorded token count: a whole number >= 0 (1e3 and 120.0 are read as such)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            or (isinstance(value, float) and (not math.isfinite(value) or value != int(value)))):
        raise EvalDataError(f"{where}: outcome {tier!r} {key} {value!r} is not a whole number >= 0")
    if value > MAX_TOKENS:
        raise EvalDataError(f"{where}: outcome {tier!r} {key} {value!r} is above {MAX_TOKENS:,} tokens "
                            "(a typo or an overflow, not a recording)")
    return int(value)


def _outcome(raw: Any, prompt: str, where: str, tier: str, labelled: bool) -> Outcome:
    if not isinstance(raw, dict):
        raise EvalDataError(f"{where}: outcome {tier!r} is not an object")
    response = raw.get("response")
    if response is not None and not isinstance(response, str):
        raise EvalDataError(f"{where}: outcome {tier!r} response is {type(response).__name__}, not text")
    if not labelled:
        if response is None:
            raise EvalDataError(f"{where}: outcome {tier!r} has no 'response' text")
        score = math.nan if raw.get("score") is None and raw.get("correct") is None else (
            _score(raw["score"], where, tier) if raw.get("score") is not None else float(bool(raw["correct"])))
    elif raw.get("score") is not None:
        score = _score(raw["score"], where, tier)
    elif isinstance(raw.get("correct"), bool):
        score = float(raw["correct"])
    elif raw.get("correct") is not None:
        raise EvalDataError(f"{where}: outcome {tier!r} 'correct' is {raw['correct']!r}; expected true or false "
                            "(or a 'score' in [0, 1])")
    else:
        raise EvalDataError(f"{where}: outcome {tier!r} has neither 'correct' (bool) nor 'score'")
    inp, out = raw.get("input_tokens"), raw.get("output_tokens")
    cache = {key: _tokens(raw[key], where, tier, key) for key in _CACHE_KEYS if raw.get(key) is not None}
    if cache.get("cache_write_1h_tokens", 0) > cache.get("cache_write_tokens", 0):
        raise EvalDataError(f"{where}: outcome {tier!r} cache_write_1h_tokens {cache['cache_write_1h_tokens']} is "
                            f"more than its cache_write_tokens {cache.get('cache_write_tokens', 0)}: the hour-long "
                            "writes are a part of the writes")
    return Outcome(
        score=score, response=response,
        input_tokens=_tokens(inp, where, tier, "input_tokens") if inp is not None else estimate_tokens(prompt),
        output_tokens=(_tokens(out, where, tier, "output_tokens") if out is not None
                       else estimate_tokens(response) if response else MMLU_OUTPUT_TOKENS),
        estimated_tokens=inp is None or out is None, output_unknown=out is None and not response,
        **cache)


def load_outcomes(path: str | Path, tiers: Sequence[str] | None = None, *, labelled: bool = True) -> list[EvalItem]:
    """Read a recorded-outcomes JSONL file; every bad line is an error naming it.

    With ``tiers``, an outcome for an unknown tier and a missing outcome are errors.
    ``labelled=False`` reads answers that carry no grade (the emulator replays those):
    the score is NaN and each outcome needs its ``response``.
    """
    path = Path(path)
    lines = _text_lines(path)
    items: list[EvalItem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(_item(line, number, f"{path}:{number}", tiers, labelled))
        except EvalDataError as exc:
            exc.line = number
            raise
    if not items:
        raise EvalDataError(f"{path} holds no records")
    return items


def _text_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvalDataError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return utf8_lines(data)
    except NotUtf8 as exc:
        raise EvalDataError(f"{path}:{exc.line}: {exc}", line=exc.line) from None


def _turns_of(messages: Any, where: str) -> list[tuple[str, str]]:
    """(role, text) of each turn of a Converse- or OpenAI-style message list."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise EvalDataError(f"{where}: 'messages' must be a list of objects with 'role' and 'content'")
    turns = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, list):  # content blocks: [{"text": ...}] or [{"type": "text", "text": ...}]
            text = blocks_text(content)
        elif content is None:  # an assistant turn that only called tools (OpenAI writes null): no text
            text = ""
        else:
            text = str(content)
        turns.append((str(m.get("role")), text))
    return turns


def _prompt_of(messages: Any, where: str) -> tuple[str, str]:
    """(what routing reads, the whole conversation's text): the text the integrations
    route on (``core.request_text``: the last user turn), so a model calibrated on these
    rows decides on what it will be served; token counts not recorded are estimated
    from every turn, all of which Bedrock bills."""
    turns = _turns_of(messages, where)
    return request_text(turns), "\n".join(text for _, text in turns)


def _lone_surrogate(value: Any) -> str | None:
    """A string in ``value`` that UTF-8 cannot encode (a lone UTF-16 surrogate escape)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return value[exc.start]
        return None
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        bad = _lone_surrogate(child)
        if bad is not None:
            return bad
    return None


def _item(line: str, number: int, where: str, tiers: Sequence[str] | None, labelled: bool) -> EvalItem:
    try:
        raw = json.loads(line)
    except RecursionError:
        raise EvalDataError(f"{where}: not JSON (nested too deeply)") from None
    except ValueError as exc:
        raise EvalDataError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("outcomes"), dict):
        raise EvalDataError(f"{where}: expected an object with 'outcomes'")
    if "\\u" in line and (bad := _lone_surrogate(raw)) is not None:
        raise EvalDataError(f"{where}: text holds a lone UTF-16 surrogate (\\u{ord(bad):04x}), which is not a character")
    messages = raw.get("messages") or []
    prompt = raw.get("prompt")
    billed = prompt
    if messages:
        asked, whole = _prompt_of(messages, where)  # checks the list even beside a 'prompt'
        if prompt is not None and prompt != asked:
            # routed on the prompt here but on the last user turn when served: refused, as collect does
            raise EvalDataError(f"{where}: both 'prompt' and 'messages', and the prompt is not the last user "
                                "message (what the router reads); keep one (a line collect wrote has both, the same)")
        prompt, billed = asked, whole  # every turn is billed: missing token counts are estimated from all
    if prompt is None:
        raise EvalDataError(f"{where}: missing 'prompt'")
    if not isinstance(prompt, str):
        raise EvalDataError(f"{where}: 'prompt' is {type(prompt).__name__}, not text")
    outcomes = {str(t): _outcome(o, billed if isinstance(billed, str) else prompt, where, str(t), labelled)
                for t, o in raw["outcomes"].items()}
    if tiers is not None:
        unknown = sorted(set(outcomes) - set(tiers))
        if unknown:
            raise EvalDataError(f"{where}: unknown tier {unknown[0]!r}; the router has {', '.join(tiers)}")
    return EvalItem(str(raw.get("id", number)), prompt, outcomes, list(messages))


def _contaminated(folder: Path) -> set[str]:
    listing = folder / CONTAMINATION_LISTING
    if not listing.exists():
        return set()
    return {json.loads(line)["eval_prompt"] for line in _text_lines(listing)
            if line.strip()}


def _truth(value: str, where: str) -> float:
    text = value.strip().lower()
    if text in ("true", "1", "1.0"):
        return 1.0
    if text in ("false", "0", "0.0"):
        return 0.0
    raise EvalDataError(f"{where}: expected True/False, got {value!r}")


def load_mt_bench(folder: Path, *, cheap_tier: str = "cheap", frontier_tier: str = "frontier",
                  drop_contaminated: bool = True) -> list[EvalItem]:
    """MT-Bench: one item per (question, turn); GPT-4's 1-10 grade / 10 is the score.

    The second turn's prompt is both user turns; the answer is the judged conversation's
    last assistant block. Questions whose first turn is listed as contaminated are dropped.
    """
    questions = {}
    for line in _text_lines(folder / "question.jsonl"):
        if line.strip():
            q = json.loads(line)
            questions[q["question_id"]] = q
    skip = _contaminated(folder) if drop_contaminated else set()
    models = {ROUTELLM_CHEAP: cheap_tier, ROUTELLM_FRONTIER: frontier_tier}
    grades: dict[tuple[int, int], dict[str, Outcome]] = {}
    for number, line in enumerate(_text_lines(folder / "judgements.jsonl"), 1):
        if not line.strip():
            continue
        j = json.loads(line)
        tier = models.get(j.get("model"))
        q = questions.get(j.get("question_id"))
        if tier is None or q is None or q["turns"][0].strip() in skip:
            continue
        turn = int(j["turn"])
        prompt = "\n\n".join(q["turns"][:turn])
        answer = str(j.get("user_prompt", "")).rsplit("### Assistant A:", 1)[-1].split("<|The End of", 1)[0].strip()
        if not 1 <= float(j["score"]) <= 10:
            raise EvalDataError(f"{folder / 'judgements.jsonl'}:{number}: score {j['score']} is not 1-10")
        grades.setdefault((q["question_id"], turn), {})[tier] = Outcome(
            float(j["score"]) / 10, answer, estimate_tokens(prompt), estimate_tokens(answer), True)
    return [EvalItem(f"mt_bench:{qid}:{turn}", "\n\n".join(questions[qid]["turns"][:turn]), outcomes)
            for (qid, turn), outcomes in sorted(grades.items()) if len(outcomes) == 2]


def load_routellm(path: str | Path, *, cheap_tier: str = "cheap", frontier_tier: str = "frontier",
                  drop_contaminated: bool = True) -> list[EvalItem]:
    """RouteLLM's GSM8K CSV, one MMLU CSV, a folder of them (``mmlu/responses``), or the
    ``mt_bench`` folder.

    Their Mixtral answers become ``cheap_tier``'s outcomes, GPT-4's ``frontier_tier``'s.
    Token counts are estimated (ceil(chars / 4)); MMLU has no answer text, so its
    output is counted as one token (a choice letter).
    """
    path = Path(path)
    if path.is_dir() and (path / "judgements.jsonl").exists():
        return load_mt_bench(path, cheap_tier=cheap_tier, frontier_tier=frontier_tier,
                             drop_contaminated=drop_contaminated)
    if path.is_dir():
        files = sorted(path.glob("*.csv")) or sorted((path / "responses").glob("*.csv"))
    else:
        files = [path]
    if not files:
        raise EvalDataError(f"no RouteLLM CSV under {path}")
    csv.field_size_limit(10_000_000)
    items: list[EvalItem] = []
    dropped = 0
    for file in files:
        folder = file.parent.parent if file.parent.name == "responses" else file.parent
        skip = _contaminated(folder) if drop_contaminated else set()
        if drop_contaminated and not (folder / CONTAMINATION_LISTING).exists():
            log.warning("%s: no %s beside it, so every row is kept (RouteLLM's folders ship one; copied away "
                        "from it, the prompts RouteLLM lists as contaminated are measured too)",
                        file, CONTAMINATION_LISTING)
        try:
            with open(file, encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                missing = [c for c in ("prompt", ROUTELLM_CHEAP, ROUTELLM_FRONTIER) if c not in (reader.fieldnames or [])]
                if missing:
                    raise EvalDataError(f"{file}: not a RouteLLM responses CSV (no column {missing[0]!r})")
                for row_no, row in enumerate(reader, start=2):
                    prompt = row["prompt"]
                    if prompt in skip:
                        dropped += 1
                        continue
                    outcomes = {}
                    for tier, model in ((cheap_tier, ROUTELLM_CHEAP), (frontier_tier, ROUTELLM_FRONTIER)):
                        response = row.get(f"{model}_response")
                        outcomes[tier] = Outcome(
                            _truth(row[model], f"{file}:{row_no}"), response, estimate_tokens(prompt),
                            estimate_tokens(response) if response else MMLU_OUTPUT_TOKENS, True,
                            output_unknown=not response)  # MMLU's folder keeps no answer text: said
                    items.append(EvalItem(f"{file.stem}:{row_no}", prompt, outcomes))
        except OSError as exc:
            raise EvalDataError(f"cannot read {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise EvalDataError(f"{file}: not UTF-8 ({exc.reason}); save the file as UTF-8") from None
    if not items:
        why = f" ({dropped} rows left out as contaminated prompts)" if dropped else ""
        raise EvalDataError(f"{path} holds no records{why}")
    return items


def load_eval_data(path: str | Path, fmt: str, tiers: Sequence[str], *, cheap_tier: str, baseline_tier: str,
                   all_tiers: bool = False) -> list[EvalItem]:
    """Either format, checked against the router's tiers: every item needs the cheapest
    and the baseline tier's outcome, and with ``all_tiers`` every tier's (a router that
    may serve any tier is measured on all of them)."""
    if fmt == "routellm":
        if cheap_tier == baseline_tier:
            raise EvalDataError(f"{path}: RouteLLM recordings hold a weak and a strong model, read as the cheapest "
                                f"tier and the baseline tier; here both are {cheap_tier!r}: make the top tier the "
                                "baseline, or use recorded outcomes (jsonl)")
        if len(tiers) > 2:
            raise EvalDataError(f"{path}: RouteLLM recordings hold two models, and the router has {len(tiers)} tiers "
                                f"({', '.join(tiers)}); use a two-tier config, or recorded outcomes (jsonl) for "
                                "every tier")
        items = load_routellm(path, cheap_tier=cheap_tier, frontier_tier=baseline_tier)
    elif fmt == "jsonl":
        items = load_outcomes(path, tiers)
    else:
        raise EvalDataError(f"unknown data format {fmt!r}; use jsonl or routellm")
    needs = list(tiers) if all_tiers and fmt == "jsonl" else [cheap_tier, baseline_tier]
    for item in items:
        for needed in needs:
            if needed not in item.outcomes:
                raise EvalDataError(f"{path}: item {item.id!r} has no outcome for tier {needed!r}")
    return items


def split_by_hash(items: Iterable[EvalItem], fraction: float) -> tuple[list[EvalItem], list[EvalItem]]:
    """Deterministic split by sha256 of the prompt: (calibration, test)."""
    cal, test = [], []
    for item in items:
        bucket = int.from_bytes(hashlib.sha256(item.prompt.encode("utf-8")).digest()[:8], "big") / 2 ** 64
        (cal if bucket < fraction else test).append(item)
    return cal, test
