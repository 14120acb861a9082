"""Estimators: exact Student-t/TOST values, rounds needed, and why pairing within rounds pays.

All checks are deterministic (fixed data and seeds); expected values are computed here by hand
from the formulas in the docstrings, independently of the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from isobench.analysis.estimators import (
    min_detectable,
    paired_log,
    paired_ratio_ci,
    ratio_ci,
    rounds_for_effect,
    rounds_needed,
)

LOGR = np.array([0.012, -0.018, 0.004, 0.021, -0.007, 0.010, -0.003, 0.015])


def test_paired_t_interval_and_tost_match_the_formulas() -> None:
    res = paired_log(LOGR[None, :], np.random.default_rng(0), margin=0.05, bootstrap=False)
    n, mean, sd = LOGR.size, LOGR.mean(), LOGR.std(ddof=1)
    se = sd / math.sqrt(n)
    assert res.est[0] == pytest.approx(mean)
    assert res.lo95[0] == pytest.approx(mean - sps.t.ppf(0.975, n - 1) * se)
    assert res.hi90[0] == pytest.approx(mean + sps.t.ppf(0.95, n - 1) * se)
    assert res.p[0] == pytest.approx(sps.ttest_1samp(LOGR, 0.0).pvalue)
    p_low = sps.t.sf((mean - math.log(0.95)) / se, n - 1)
    p_high = sps.t.cdf((mean - math.log(1.05)) / se, n - 1)
    assert res.p_tost[0] == pytest.approx(max(p_low, p_high))
    # duality: TOST p < 0.05 exactly when the 90 % CI lies inside the margin
    for margin in (0.01, 0.02, 0.03, 0.05):
        r = paired_log(LOGR[None, :], np.random.default_rng(0), margin=margin, bootstrap=False)
        inside = r.lo90[0] >= math.log1p(-margin) and r.hi90[0] <= math.log1p(margin)
        assert inside == (r.p_tost[0] < 0.05), margin


def test_union_is_never_narrower_than_either_part() -> None:
    rng = np.random.default_rng(3)
    both = paired_log(LOGR[None, :], rng, margin=0.05)
    t_only = paired_log(LOGR[None, :], rng, margin=0.05, bootstrap=False)
    assert both.lo95[0] <= t_only.lo95[0] and both.hi95[0] >= t_only.hi95[0]
    assert both.p[0] >= t_only.p[0]


def test_pairing_within_rounds_removes_the_shared_drift() -> None:
    drift = np.array([0.82, 1.18, 0.95, 1.07, 1.0, 0.88, 1.12, 0.97])
    noise = 1 + LOGR / 4  # ±0.5 % per trial
    a = 1000 * drift * noise
    b = 900 * drift * noise[::-1]
    paired = paired_ratio_ci(a, b, seed=1, margin=0.05)
    unpaired = ratio_ci(a, b, seed=1, margin=0.05)
    assert paired is not None and unpaired is not None
    assert paired.estimator == "paired" and unpaired.estimator == "unpaired"
    assert paired.low < 0.9 < paired.high and unpaired.low < 0.9 < unpaired.high
    assert (paired.high - paired.low) * 5 < unpaired.high - unpaired.low
    assert paired.high < 1 < unpaired.high  # only the paired one can tell


def test_paired_needs_two_positive_pairs() -> None:
    assert paired_ratio_ci([1.0], [2.0]) is None
    assert paired_ratio_ci([1.0, 0.0], [2.0, 1.0]) is None
    assert paired_ratio_ci([1.0, 2.0], [2.0]) is None
    est = ratio_ci([0.0, 1.0, 2.0], [0.0, 2.0, 4.0])  # zeros: no log scale, bootstrap alone
    assert est is not None and est.ratio == pytest.approx(2.0) and est.spread is None


def test_rounds_needed_matches_a_hand_count_and_is_monotone() -> None:
    def by_hand(d: float, s: float, n: int, m: float) -> int:
        for big_n in range(n + 1, 1001):
            se = s / math.sqrt(big_n)
            room = min(d - math.log(1 - m), math.log(1 + m) - d)
            if sps.t.ppf(0.975, big_n - 1) * se < abs(d) or sps.t.ppf(0.95, big_n - 1) * se <= room:
                return big_n - n
        raise AssertionError("unreachable")

    for d, s in ((0.0, 0.05), (-0.03, 0.04), (0.1, 0.2), (0.045, 0.03)):
        assert rounds_needed(d, s, 3, 0.05) == by_hand(d, s, 3, 0.05)
    spreads = [0.01, 0.02, 0.04, 0.08, 0.16]
    needs = [rounds_needed(-0.02, s, 3, 0.05) for s in spreads]
    assert all(x is not None for x in needs)
    assert needs == sorted(needs) and needs[0] < needs[-1]  # noisier → more rounds
    total = {n + (rounds_needed(-0.02, 0.08, n, 0.05) or 0) for n in range(3, 8)}
    assert len(total) == 1  # the target N does not depend on how many rounds are done
    assert rounds_needed(0.0, None, 3, 0.05) is None
    unpaired = rounds_needed(-0.02, 0.08, 3, 0.05, paired=False)
    assert unpaired is not None and unpaired <= needs[3]  # more df per round


def test_min_detectable_effect_and_rounds_for_it() -> None:
    s = 0.05
    mde5 = min_detectable(s, 5)
    assert mde5 == pytest.approx((sps.t.ppf(0.975, 4) + sps.t.ppf(0.8, 4)) * s / math.sqrt(5))
    rounds = rounds_for_effect(s, 0.05)
    assert rounds is not None
    assert min_detectable(s, rounds) <= 0.05 < min_detectable(s, rounds - 1)
    assert rounds_for_effect(None, 0.05) is None
