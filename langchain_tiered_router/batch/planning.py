"""How a tier's waiting records become jobs: sizes within Bedrock's per-job limits, and names.

Bedrock refuses a job below its minimum number of records (a quota, 100 by default)
or above its maximum (50,000 by default). A group is split into the fewest jobs
within the maximum, of equal sizes, as long as each stays at or above the minimum;
otherwise into full jobs plus a remainder, and a remainder below the minimum goes
on-demand (or is refused, by config).
"""

from __future__ import annotations

import math
import re

__all__ = ["split_sizes", "job_name"]


def split_sizes(n: int, min_records: int, max_records: int) -> tuple[list[int], int]:
    """(job sizes, records left over below the minimum) for a group of ``n`` records."""
    if n < min_records:
        return [], n
    count = math.ceil(n / max_records)
    if n // count >= min_records:
        base, extra = divmod(n, count)
        return [base + (1 if i < extra else 0) for i in range(count)], 0
    full = n // max_records
    sizes = [max_records] * full
    rest = n - full * max_records
    if rest >= min_records:
        return sizes + [rest], 0
    return sizes, rest


def job_name(run_id: str, tier: str, wave: int, chunk: int) -> str:
    """A job name Bedrock accepts (letters, digits, hyphens; at most 63 characters), unique per run."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", tier).strip("-")[:20] or "tier"
    return f"tr-{run_id}-{slug}-w{wave}-c{chunk}"[:63]
