"""The ladder analysis (``isobench explain``) on synthetic trials whose step ratios are exact.

Arm ``k`` in round ``r`` serves ``base · d_r · Π_{i≤k} s_i`` req/s: ``d_r`` is a drift shared by
every arm of the round (as the interleaved plan makes it), ``s_i`` the known step ratios. The
per-round ratio of two consecutive arms is then exactly ``s_i`` in every round, so the paired
estimate is ``s_i`` (to float precision) and the product of the steps is the end-to-end ratio
exactly: nothing here is random, nothing can fail on a correct tool.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from isobench.analysis.ladder import Step, agreement_text, analyze_ladder, complete_rounds
from isobench.analysis.metrics import DEFAULT_METRICS
from isobench.results import TrialRecord

RPS = next(m for m in DEFAULT_METRICS if m.name == "rps")
P95 = next(m for m in DEFAULT_METRICS if m.name == "p95_ms")
STEPS = [Step("native", "baseline"), Step("a", "+ a"), Step("b", "+ b"), Step("c", "+ c"),
         Step("d", "+ d")]
RATIOS = [0.97, 1.0, 0.90, 0.75]
DRIFT = [1.0, 0.93, 1.08, 0.97, 1.12, 0.89]


def _trial(arm: str, rnd: int, rps: float, status: str = "ok") -> TrialRecord:
    return TrialRecord(arm=arm, trial=rnd, position=0, round=rnd, status=status,
                       started_at=0.0, ended_at=1.0,
                       load={"metrics": {"http_reqs": {"rate": rps, "count": rps * 10},
                                         "http_req_duration": {"p(95)": 1000.0 / rps}}})


def _trials(ratios: list[float] = RATIOS, drift: list[float] = DRIFT) -> list[TrialRecord]:
    out = []
    for r, d in enumerate(drift):
        value = 1000.0 * d
        out.append(_trial(STEPS[0].arm, r, value))
        for step, ratio in zip(STEPS[1:], ratios, strict=True):
            value *= ratio
            out.append(_trial(step.arm, r, value))
    return out


def test_each_step_is_its_exact_ratio_and_the_product_is_the_total() -> None:
    result = analyze_ladder(_trials(), STEPS, RPS, seed=3)
    assert [s.arm for s in result.steps] == ["a", "b", "c", "d"]
    assert [s.previous for s in result.steps] == ["native", "a", "b", "c"]
    for step, truth in zip(result.steps, RATIOS, strict=True):
        assert step.ratio == pytest.approx(truth, rel=1e-12)
        assert step.estimator == "paired" and step.n == len(DRIFT)
    total = math.prod(RATIOS)
    assert result.total.ratio == pytest.approx(total, rel=1e-12)
    assert result.product == pytest.approx(total, rel=1e-12)
    assert result.steps[-1].cumulative == pytest.approx(total, rel=1e-12)
    assert result.agree is True
    assert result.complete_rounds == len(DRIFT)
    assert "agree" in agreement_text(result) and "DO NOT" not in agreement_text(result)


def test_verdicts_follow_the_metric_direction() -> None:
    small_noise = [1.0 + 0.001 * (-1) ** i for i in range(len(DRIFT))]
    trials = []
    for r, d in enumerate(DRIFT):  # every step's per-round ratio jitters by ±0.1 %
        value = 1000.0 * d
        trials.append(_trial("native", r, value))
        for step, ratio in zip(STEPS[1:], RATIOS, strict=True):
            value *= ratio * small_noise[r]
            trials.append(_trial(step.arm, r, value))
    rps = analyze_ladder(trials, STEPS, RPS, seed=1)
    assert [s.verdict for s in rps.steps] == ["slower", "equivalent", "slower", "slower"]
    p95 = analyze_ladder(trials, STEPS, P95, seed=1)  # p95 = 1000/rps: lower is better
    assert [s.verdict for s in p95.steps] == ["slower", "equivalent", "slower", "slower"]
    assert p95.steps[0].ratio == pytest.approx(1 / rps.steps[0].ratio, rel=1e-9)


def test_failed_trials_pair_steps_on_other_rounds_so_the_product_may_differ() -> None:
    """Arm b fails in rounds 0-1, where a→c costs ×0.5 more: steps a→b and b→c are paired on
    rounds 2-5 only (exact ratios), the end-to-end ratio on all six (0.5 in two of them)."""
    trials = []
    for r, d in enumerate(DRIFT):
        value = 1000.0 * d
        trials.append(_trial("native", r, value))
        for step, ratio in zip(STEPS[1:], RATIOS, strict=True):
            value *= ratio * (0.5 if step.arm == "c" and r < 2 else 1.0)
            trials.append(_trial(step.arm, r, value, "failed" if step.arm == "b" and r < 2
                                 else "ok"))
    result = analyze_ladder(trials, STEPS, RPS, seed=1)
    assert result.complete_rounds == len(DRIFT) - 2
    assert [s.n for s in result.steps] == [6, 4, 4, 6]
    assert result.product == pytest.approx(math.prod(RATIOS), rel=1e-12)
    assert result.total.ratio == pytest.approx(math.prod(RATIOS) * 0.5 ** (2 / 6), rel=1e-12)


def test_the_check_says_when_product_and_total_disagree() -> None:
    result = analyze_ladder(_trials(), STEPS, RPS)
    total = dataclasses.replace(result.total, low=0.2, high=0.3)
    text = agreement_text(dataclasses.replace(result, total=total, agree=False))
    assert "DO NOT agree" in text and "different rounds" in text


def test_a_step_with_no_usable_trial_has_no_ratio_and_no_product() -> None:
    trials = [t for t in _trials() if t.arm != "c"]
    result = analyze_ladder(trials, STEPS, RPS)
    assert result.steps[2].ratio is None and result.steps[2].verdict == "too_few"
    assert result.steps[3].ratio is None  # c → d has no c either
    assert result.product is None and result.agree is None
    assert "not estimable" in agreement_text(result)
    assert result.total.ratio == pytest.approx(math.prod(RATIOS), rel=1e-12)


def test_complete_rounds_counts_rounds_with_one_value_of_every_arm() -> None:
    values = {"x": [(0, 1.0), (1, 1.0), (2, 1.0), (2, 2.0)], "y": [(0, 1.0), (2, 1.0)]}
    assert complete_rounds(values, ["x", "y"]) == 1


def test_a_ladder_needs_two_steps() -> None:
    with pytest.raises(ValueError):
        analyze_ladder(_trials(), STEPS[:1], RPS)
