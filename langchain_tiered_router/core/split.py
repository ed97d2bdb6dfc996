"""A traffic split: each request's tier drawn from a fixed mix, by a hash of its text.

When nothing about a request tells the tiers apart (the signals learned on one task
carry no meaning on the next), a blend of tiers still saves what its mix saves, and
its parity is the mix of the tiers' parities, which calibration can bound tightly from
every labelled request. The draw is a hash, not a random number: the same prompt always
goes to the same tier (cache-friendly, reproducible), and the eval harness replays the
very rule this serves.

The mix is one number ``at`` along a path of tiers, from the baseline down to the
cheapest: between steps ``s`` and ``s + 1`` of the path, a share ``at - s`` of the
requests goes to the cheaper step, the rest to the dearer one.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Sequence

__all__ = ["split_unit", "split_segment", "split_step", "split_shares"]

_PERSON = b"tiered-split"  # not the hash that splits eval data into halves


def split_unit(text: str) -> float:
    """A number in [0, 1), uniform over texts and fixed for each."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def split_segment(at: float, steps: int) -> tuple[int, float]:
    """Where ``at`` falls on a path of ``steps`` (>= 2) tiers: the dearer step of the two
    it mixes, and the share of requests sent to the cheaper one."""
    at = min(max(at, 0.0), steps - 1.0)
    segment = min(int(math.floor(at)), steps - 2)
    return segment, at - segment


def split_step(at: float, unit: Any, steps: int) -> Any:
    """The step of a path of ``steps`` tiers that serves a request with ``unit`` at ``at``
    (a numpy array of units gives an array of steps: the harness replays every request
    through this same rule)."""
    if steps <= 1:
        return (unit < 0) * 0  # 0, or an int array of zeros
    segment, x = split_segment(at, steps)
    return segment + (unit < x) * 1


def split_shares(path: Sequence[str], at: float) -> dict[str, float]:
    """The expected share of requests per tier of ``path`` at ``at``."""
    shares = {name: 0.0 for name in path}
    if len(path) == 1:
        shares[path[0]] = 1.0
        return shares
    segment, x = split_segment(at, len(path))
    shares[path[segment]] += 1 - x
    shares[path[segment + 1]] += x
    return shares
