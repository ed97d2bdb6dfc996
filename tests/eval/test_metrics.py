"""The routing metric on hand-computed fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_tiered_router.analysis.eval.metrics import (TierTable, apgr, cpt, oracle_point, random_savings_at,
                                                       score_curve, summarize_run)

# four requests: cheap right on 0 and 1; strong right on 0, 2, 3
TABLE = TierTable(q_cheap=np.array([1.0, 1.0, 0.0, 0.0]), q_strong=np.array([1.0, 0.0, 1.0, 1.0]),
                  c_cheap=np.array([1.0, 1.0, 1.0, 1.0]), c_strong=np.array([10.0, 10.0, 10.0, 10.0]))


def test_a_cascade_pays_every_tier_it_touched():
    served_strong = np.array([False, False, True, True])
    run = summarize_run(TABLE, served_strong, paid_cheap=np.ones(4, bool))
    # cost 4 * 1 (every cheap call) + 2 * 10 = 24 of a 40 baseline; quality 4/4 vs 3/4
    assert run["savings"] == pytest.approx(1 - 24 / 40)
    assert run["quality"] == 1.0 and run["baseline_quality"] == 0.75
    assert run["parity"] == pytest.approx(4 / 3)


def test_a_classifier_pays_one_tier():
    run = summarize_run(TABLE, np.array([False, False, True, True]), paid_cheap=np.array([True, True, False, False]))
    assert run["savings"] == pytest.approx(1 - 22 / 40)


def test_curve_apgr_and_cpt_by_hand():
    # a perfect scorer: the two requests cheap gets wrong first
    _, curve = score_curve(TABLE, np.array([0.1, 0.2, 0.9, 0.8]), cascade=False)
    qualities = [p.quality for p in curve.points]
    # k strongest to the strong tier: +item 2, +item 3, +item 1 (cheap was right there), +item 0
    assert qualities == pytest.approx([0.5, 0.75, 1.0, 0.75, 0.75])
    # PGR = (q - 0.5) / 0.25 -> [0, 1, 2, 1, 1] at x = 0, .25, .5, .75, 1
    assert apgr(TABLE, curve) == pytest.approx(0.25 * (0.5 + 1.5 + 1.5 + 1.0))
    assert cpt(TABLE, curve, 0.5) == 0.25 and cpt(TABLE, curve, 0.8) == 0.25
    assert curve.points[2].cost == pytest.approx(1 + 1 + 10 + 10)


def test_random_mix_and_oracle():
    # random: quality (1 - x) * 0.5 + x * 0.75; parity 0.9 -> quality 0.675 -> x = 0.7
    assert random_savings_at(TABLE, 0.9) == pytest.approx(1 - (0.3 * 4 + 0.7 * 40) / 40)
    oracle = oracle_point(TABLE)
    assert oracle.quality == 1.0 and oracle.cost == 22.0 and oracle.strong_share == 0.5
