"""Telling a damaged stored record from a good one, with the reason in a few words.

A record is damaged when its text is not JSON, its JSON is not an object, or a field
the report reads is missing or of the wrong kind: money that is not a decimal, that is
NaN or infinite, or a cost below zero (savings may be negative: an escalated request
can cost more than the baseline). Every such case raises ``DamagedRecord`` with the
reason; the store says which file and row or line it came from, and the report skips
and counts it (``store.read_store``).

Only what the report reads is checked: a wrong kind there would crash a sum or a sort,
or put NaN in a headline. Other fields (prompt text, metadata) are kept as they are.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from ...core.errors import TelemetryError
from ...core.telemetry.record import RoutingRecord

__all__ = ["DamagedRecord", "parse_record", "score_problem"]

_REQUIRED = tuple(f.name for f in fields(RoutingRecord) if f.default is MISSING and f.default_factory is MISSING)
_COSTS = ("cost_usd", "baseline_cost_usd", "shadow_cost_usd")  # never below zero
_OPTIONAL_TEXT = ("tier", "shadow_status")
_KINDS = {list: "a JSON array", str: "a JSON string", int: "a JSON number", float: "a JSON number",
          bool: "JSON true or false", type(None): "JSON null"}


class DamagedRecord(TelemetryError):
    """One stored record the report cannot use; the message is the reason, without the place."""


def parse_record(text: str | bytes) -> RoutingRecord:
    """The record in one stored JSON text, or ``DamagedRecord`` saying what is wrong."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DamagedRecord(f"not UTF-8 (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1})") from None
    if not isinstance(text, str):
        raise DamagedRecord(f"the stored record is {_shown(text)}, not JSON text")
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError
        raise DamagedRecord(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DamagedRecord(f"{_KINDS.get(type(data), 'a JSON value')}, not a record object")
    missing = [name for name in _REQUIRED if name not in data]
    if len(missing) == 1:
        raise DamagedRecord(f"missing field {missing[0]}")
    if missing:
        shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
        raise DamagedRecord(f"missing {len(missing)} of the record's fields ({shown})")
    _check_fields(data)
    try:
        return RoutingRecord.from_json_dict(data)
    except (ValueError, TypeError, ArithmeticError) as exc:  # a case the checks above missed
        raise DamagedRecord(f"{type(exc).__name__}: {exc}") from None


def _check_fields(data: dict[str, Any]) -> None:
    if not isinstance(data["request_id"], str) or not data["request_id"]:
        raise DamagedRecord(f"request_id is {_shown(data['request_id'])}, not a non-empty string")
    if not isinstance(data["baseline_tier"], str):
        raise DamagedRecord(f"baseline_tier is {_shown(data['baseline_tier'])}, not a string")
    for name in _OPTIONAL_TEXT:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise DamagedRecord(f"{name} is {_shown(data[name])}, not a string or null")
    if not _finite_real(data["ts"]):
        raise DamagedRecord(f"ts is {_shown(data['ts'])}, not a finite number of seconds")
    for name in ("escalated", "flagged"):
        if data[name] not in (True, False):  # 0 and 1 pass too
            raise DamagedRecord(f"{name} is {_shown(data[name])}, not true or false")
    if data.get("shadow_score") is not None:  # a comparator's score is in 0..1 (parity reads it as a quality)
        problem = score_problem(data["shadow_score"])
        if problem is not None:
            raise DamagedRecord(f"shadow_score is {problem}: a comparator scores 0..1, or null")
    for name in (*_COSTS, "savings_usd"):
        _check_money(data.get(name), name, may_be_negative=name == "savings_usd")
    for key in ("attempts", "aux_calls"):
        calls = data[key]
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise DamagedRecord(f"{key} is {_shown(calls)}, not a list of objects")
        for i, call in enumerate(calls):
            _check_money(call.get("cost_usd"), f"{key}[{i}].cost_usd")
    for i, attempt in enumerate(data["attempts"]):
        if not isinstance(attempt.get("tier"), str):
            raise DamagedRecord(f"attempts[{i}].tier is {_shown(attempt.get('tier'))}, not a string")
        for name in ("input_tokens", "output_tokens"):
            value = attempt.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise DamagedRecord(f"attempts[{i}].{name} is {_shown(value)}, not a token count")


def _check_money(value: Any, name: str, *, may_be_negative: bool = False) -> None:
    if value is None:
        return  # unknown, which the report counts apart
    try:
        amount = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None:
        raise DamagedRecord(f"{name} is {_shown(value)}, not an amount in USD")
    if not amount.is_finite() or not math.isfinite(float(amount)):
        raise DamagedRecord(f"{name} is {_shown(value)}, not a finite amount")
    if amount < 0 and not may_be_negative:
        raise DamagedRecord(f"{name} is {_shown(value)}, below zero")


def _finite_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def score_problem(value: Any) -> str | None:
    """Why a label score is unusable (scores are 0..1), or None when it is fine."""
    if not _finite_real(value):
        return f"{_shown(value)}, not a number"
    if not 0 <= value <= 1:
        return f"{_shown(value)}, outside 0..1"
    return None


def _shown(value: Any) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
