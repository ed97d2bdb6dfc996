"""The routing metric on hand-computed fixtures, for two tiers and three."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_tiered_router.analysis.eval.metrics import (LadderTable, Point, apgr, cpt, headroom_recovered,
                                                            oracle_point, random_savings_at, summarize_run)

# four requests: cheap right on 0 and 1; strong right on 0, 2, 3
TABLE = LadderTable(["cheap", "strong"], q=np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]),
                    c=np.array([[1.0, 10.0]] * 4), base=1)


def test_a_cascade_pays_every_tier_it_touched():
    served = np.array([0, 0, 1, 1])
    cost = np.array([1.0, 1.0, 11.0, 11.0])  # cheap everywhere, strong where it escalated
    run = summarize_run(TABLE, served, cost)
    # cost 4 * 1 + 2 * 10 = 24 of a 40 baseline; quality 4/4 vs 3/4
    assert run["savings"] == pytest.approx(1 - 24 / 40)
    assert run["quality"] == 1.0 and run["baseline_quality"] == 0.75
    assert run["parity"] == pytest.approx(4 / 3)


def test_a_classifier_pays_one_tier():
    run = summarize_run(TABLE, np.array([0, 0, 1, 1]), np.array([1.0, 1.0, 10.0, 10.0]))
    assert run["savings"] == pytest.approx(1 - 22 / 40)


def test_apgr_and_cpt_by_hand():
    # points of a perfect scorer: k = 0..4 requests to the strong tier, best first
    points = [Point(0.0, 0.5, 4), Point(0.25, 0.75, 13), Point(0.5, 1.0, 22), Point(0.75, 0.75, 31),
              Point(1.0, 0.75, 40)]
    # PGR = (q - 0.5) / 0.25 -> [0, 1, 2, 1, 1] at x = 0, .25, .5, .75, 1
    assert apgr(TABLE, points) == pytest.approx(0.25 * (0.5 + 1.5 + 1.5 + 1.0))
    assert cpt(TABLE, points, 0.5) == 0.25 and cpt(TABLE, points, 0.8) == 0.25


def test_random_mix_and_oracle_two_tiers():
    # random: quality (1 - x) * 0.5 + x * 0.75; parity 0.9 -> quality 0.675 -> x = 0.7
    assert random_savings_at(TABLE, 0.9) == pytest.approx(1 - (0.3 * 4 + 0.7 * 40) / 40)
    oracle = oracle_point(TABLE)
    # cheap wherever it is at least as good as strong: requests 0 and 1
    assert oracle.quality == 1.0 and oracle.cost == 22.0 and oracle.base_share == 0.5


def test_random_mix_and_oracle_over_three_tiers():
    # mid is right wherever strong is, at a third of the price: the best blend is mid alone
    table = LadderTable(["cheap", "mid", "strong"],
                        q=np.array([[1, 1, 1], [0, 1, 1], [0, 0, 0], [0, 1, 1]], dtype=float),
                        c=np.array([[1.0, 3.0, 9.0]] * 4), base=2)
    assert random_savings_at(table, 1.0) == pytest.approx(1 - 12 / 36)
    # a blend of cheap (quality 1/4) and mid (3/4) reaching parity 0.5 (quality 3/8): 3/4 cheap
    assert random_savings_at(table, 0.5) == pytest.approx(1 - (0.75 * 4 + 0.25 * 12) / 36)
    oracle = oracle_point(table)
    # cheapest tier as good as the baseline: cheap, mid, cheap (all wrong), mid
    assert oracle.cost == 1 + 3 + 1 + 3 and oracle.quality == 0.75
    assert headroom_recovered(0.5, 0.25, 0.75) == pytest.approx(0.5)
    assert headroom_recovered(0.5, 0.8, 0.75) is None  # no headroom: nothing to recover
    # a fraction of a point between them is no headroom either (it read -313.6 % for 91.2 / 92.1 / 92.4 %)
    assert headroom_recovered(0.912, 0.921, 0.924) is None
    assert headroom_recovered(0.912, 0.90, 0.92) == pytest.approx(0.6)


def test_the_oracle_takes_the_cheapest_tier_on_each_requests_own_cost():
    # request 1: cheap is right but writes ten times the tokens, so mid (also right) costs less there
    table = LadderTable(["cheap", "mid", "strong"], q=np.array([[1, 1, 1], [1, 1, 1]], dtype=float),
                        c=np.array([[1.0, 3.0, 9.0], [30.0, 3.0, 9.0]]), base=2)
    oracle = oracle_point(table)
    assert oracle.cost == 1 + 3 and oracle.quality == 1.0
