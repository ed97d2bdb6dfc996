"""The results file: one JSON line per input record, in input order, written once at the end.

``status`` is ``served`` (an answer passed the gates), ``flagged`` (no tier passed;
the strongest answer, marked) or ``failed`` (no answer, or ``on_exhausted: raise``).
Money is a string of exact decimals. The file is written to a temporary name and
renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import contextlib
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..core.text_lines import json_text
from .cascade import Cascade
from .state import RecordState, RunState
from .telemetry import baseline_costs, request_id_for

__all__ = ["result_row", "write_results"]


def _money(value: Any) -> str | None:
    return None if value is None else format(value, "f")


def _sum(values: list[str | None]) -> str | None:
    total = Decimal(0)
    for v in values:
        if v is None:
            return None
        total += Decimal(v)
    return format(total, "f")


def result_row(run: RunState, record: RecordState, cascade: Cascade) -> dict[str, Any]:
    served = record.attempts[record.served] if record.served is not None else None
    raised = cascade.router.on_exhausted == "raise" and served is None
    status = "failed" if served is None else ("flagged" if record.flagged else "served")
    batch_base, on_demand_base = baseline_costs(cascade.pricing, record)
    return {
        "id": record.id,
        "record_id": record.record_id,
        "request_id": request_id_for(run, record),
        "status": status,
        "tier": served.tier if served else None,
        "model_id": served.model_id if served else None,
        "answer": served.text if served else None,
        "flagged": record.flagged,
        "flag_reason": record.flag_reason,
        "error": record.error if served is None else None,
        "exhausted": raised,
        "start_tier": record.start_tier,
        "attempts": [{"tier": a.tier, "mode": a.mode, "job": a.job, "outcome": a.outcome,
                      "gate_passed": a.gate_passed, "gate_reason": a.gate_reason, "error": a.error,
                      "input_tokens": a.input_tokens, "output_tokens": a.output_tokens, "cost_usd": a.cost_usd,
                      "retries": a.retries}
                     for a in record.attempts],
        "cost_usd": _sum([a.cost_usd for a in record.attempts] + [x.cost_usd for x in record.aux]),
        "baseline_cost_usd": _money(batch_base),
        "baseline_cost_on_demand_usd": _money(on_demand_base),
    }


def write_results(run: RunState, cascade: Cascade, path: str | Path) -> Path:
    """Write the results file; one that cannot be written is an ``OSError`` naming it (not
    the temporary file), and no temporary file is left behind. The CLI checks ``--out``
    before any job is created; this is the last word for callers of the API."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            for record in sorted(run.records, key=lambda r: r.index):
                fh.write(json_text(result_row(run, record, cascade)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OSError(f"cannot write the results to {path}: {exc.strerror or exc}") from None
    return path
