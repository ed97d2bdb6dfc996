"""``tiered-router calibrate --from-db``: production shadows as calibration data.

Reads the telemetry store, turns shadow-sampled records into labelled items
(``analysis.shadow_labels``), and says what each label means and what the data cannot
tell before the calibration runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

__all__ = ["load_shadow_items", "MIN_LABELLED"]

MIN_LABELLED = 40  # below this, 10 folds of cross-fitting leave too few per fold to fit anything


def load_shadow_items(config_path: Path, db: str | Path, since: Optional[str], save_data: Optional[Path]
                      ) -> tuple[Any, Any, list[Any]]:
    from ..analysis.eval.data import EvalDataError, distinct_rows
    from ..analysis.shadow_labels import CANNOT_TELL, LABEL_MEANING, shadow_labels, write_outcomes
    from ..core.config import load_config
    from ..analysis.report.store import load_records
    from ..core.tiers import Ladder
    from .report import parse_since

    config = load_config(config_path)
    ladder = Ladder.from_config(config)
    ladder.warn_if_out_of_order()
    from ..core.redact import redact_secrets

    source = db if "://" in str(db) else Path(db)  # a DSN as given (a Path mangled it), else a file
    records, _ = load_records(source, since=parse_since(since) if since else None)
    db = redact_secrets(str(db))  # as printed below: no DSN password
    labels = shadow_labels(records, ladder)
    if not labels.items:
        if not labels.records:
            why = (f"--since {since} left none: give an earlier time" if since else
                   "the store is empty: route traffic with telemetry on first")
        elif labels.shadowed:
            why = f"{labels.shadowed:,} were shadow-sampled, and left out: {labels.left_out()}"
        else:
            why = "none was shadow-sampled: set telemetry.shadow.fraction above 0"
        raise EvalDataError(f"no labelled record in {db} ({labels.records:,} records read"
                            + (f" since {since}" if since else "") + f"; {why})")
    distinct = len(distinct_rows(labels.items)[0])  # a repeated request is one piece of evidence, as calibrated
    if distinct < MIN_LABELLED:
        repeats = (f" ({len(labels.items)} records; a request repeated with the same outcomes counts once)"
                   if distinct < len(labels.items) else "")
        raise EvalDataError(f"only {distinct} distinct shadow-labelled requests in {db}{repeats}; calibration needs "
                            f"at least {MIN_LABELLED}: wait for more traffic or raise telemetry.shadow.fraction")
    served = ", ".join(f"{tier} {n:,}" for tier, n in labels.served_by.items())
    print(f"labels from {len(labels.items):,} shadow-sampled records of {db} ({labels.records:,} records read"
          + (f"; shadowed but left out: {labels.left_out()}" if labels.left_out() else "")
          + f"); served by {served}; comparator {', '.join(labels.comparators) or 'unknown'}")
    print(f"  {LABEL_MEANING}")
    print(f"  {CANNOT_TELL}")
    if labels.estimated_baseline_tokens:
        print(f"  {labels.estimated_baseline_tokens} records predate shadow token counts: the baseline's tokens "
              "there are estimated as ceil(characters / 4)")
    if save_data is not None:
        print(f"wrote the labelled records to {write_outcomes(labels.items, save_data)}")
    return config, ladder, labels.items
