"""What the report reads of a record, and only that.

A record read back whole holds every attempt's twenty-odd fields, the reasons, errors,
metadata and (with ``store_text``) the texts: about 5.5 KB each, so a report over a few
million requests needed tens of GB. The report reads a dozen fields: ``ReportRecord``
keeps those, each attempt as the six keys the tier table reads, and the repeated
strings (tier names, outcomes, statuses) once.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

from ...core.telemetry.record import RoutingRecord

__all__ = ["ReportRecord", "ATTEMPT_KEYS"]

# what the tier table reads of an attempt (``summary._tier_rows``) and drift of a record
ATTEMPT_KEYS = ("tier", "outcome", "input_tokens", "output_tokens", "cost_usd", "gate_passed")
_NONE: tuple = ()


def _name(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


class ReportRecord:
    """The fields of a ``RoutingRecord`` that the report, its drift check and its plot read."""

    __slots__ = ("request_id", "ts", "tier", "baseline_tier", "escalated", "flagged", "cost_usd",
                 "baseline_cost_usd", "aux_calls", "attempts", "shadow_score", "shadow_cost_usd", "shadow_status")

    def __init__(self, record: RoutingRecord):
        self.request_id = record.request_id
        self.ts = record.ts
        self.tier, self.baseline_tier = _name(record.tier), _name(record.baseline_tier)
        self.escalated, self.flagged = record.escalated, record.flagged
        self.cost_usd: Decimal | None = record.cost_usd
        self.baseline_cost_usd: Decimal | None = record.baseline_cost_usd
        self.aux_calls = tuple({"cost_usd": c.get("cost_usd")} for c in record.aux_calls) or _NONE
        self.attempts = tuple({k: _name(a.get(k)) for k in ATTEMPT_KEYS} for a in record.attempts) or _NONE
        self.shadow_score = record.shadow_score
        self.shadow_cost_usd = record.shadow_cost_usd
        self.shadow_status = _name(record.shadow_status)

    @property
    def shadowed(self) -> bool:
        return self.shadow_status == "done" and self.shadow_score is not None
