"""Unit tests of the validator driver's latency statistics and scenario parsing."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from isobench.errors import ConfigError
from isobench.workloads.validator.scenario import ChainScenario
from isobench.workloads.validator.stats import (
    TREND_STATS,
    LatencyHistogram,
    counter,
    rate,
    trend,
)


def test_percentiles_within_relative_error() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-4, 1.2) for _ in range(20_000)]
    hist = LatencyHistogram(relative_error=0.01)
    for v in values:
        hist.record(v)
    assert hist.count == len(values)
    assert hist.min == min(values) and hist.max == max(values)
    assert math.isclose(hist.mean, sum(values) / len(values), rel_tol=1e-9)
    for p in (1, 10, 50, 90, 95, 99, 99.9):
        exact = float(np.percentile(values, p, method="lower"))
        assert hist.percentile(p) == pytest.approx(exact, rel=0.011), p


def test_single_value_and_empty() -> None:
    hist = LatencyHistogram()
    assert math.isnan(hist.percentile(50))
    assert hist.trend_ms()["count"] == 0
    hist.record(0.0123)
    trend = hist.trend_ms()
    for key in ("avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"):
        assert trend[key] == pytest.approx(12.3), key


def test_lag_trend_is_in_ms_and_ordered() -> None:
    hist = LatencyHistogram()
    for ms in range(1, 101):
        hist.record(ms / 1000)
    trend = hist.trend_ms()
    assert trend["min"] == pytest.approx(1.0)
    assert trend["max"] == pytest.approx(100.0)
    assert trend["med"] == pytest.approx(50.0, rel=0.02)
    assert trend["p(95)"] == pytest.approx(95.0, rel=0.02)
    assert trend["min"] <= trend["med"] <= trend["p(90)"] <= trend["p(95)"] <= trend["max"]


def test_merge_equals_recording_everything() -> None:
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for i in range(1, 500):
        (a if i % 2 else b).record(i / 7000)
        both.record(i / 7000)
    a.merge(b)
    assert a.trend_ms() == pytest.approx(both.trend_ms())
    with pytest.raises(ValueError):
        a.merge(LatencyHistogram(relative_error=0.05))


def test_negative_values_clamp_to_zero() -> None:
    hist = LatencyHistogram()
    hist.record(-1.0)
    assert hist.min == 0.0 and hist.percentile(50) == 0.0


def test_summary_entries_have_k6_shapes() -> None:
    assert counter(30, 10.0) == {"type": "counter", "contains": "default",
                                 "values": {"count": 30, "rate": 3.0}}
    assert counter(5, 0, data=True)["values"] == {"count": 5, "rate": 0.0}
    assert counter(5, 0, data=True)["contains"] == "data"
    assert rate(1, 3)["values"] == {"rate": 0.25, "passes": 1, "fails": 3}
    hist = LatencyHistogram()
    hist.record(0.002)
    entry = trend(hist)
    assert (entry["type"], entry["contains"]) == ("trend", "time")
    assert set(TREND_STATS) <= set(entry["values"])


def test_scenario_defaults_and_parsing() -> None:
    sc = ChainScenario.from_mapping({"duration": "20s", "block_time": "500ms", "peers": "2",
                                     "name": "x"})
    assert (sc.duration, sc.block_time, sc.peers, sc.txs_per_block) == (20.0, 0.5, 2, 50)
    assert sc.block_deadline == 0.5
    assert ChainScenario.from_mapping({"executor": "idle", "duration": "3s"}).idle


@pytest.mark.parametrize(
    "bad",
    [{"bogus": 1}, {"forged_fraction": 1.5}, {"peers": -1}, {"duration": "soon"},
     {"executor": "ramping-vus"}, {"block_time": 0}],
)
def test_scenario_errors_name_the_fix(bad: dict) -> None:
    with pytest.raises(ConfigError) as info:
        ChainScenario.from_mapping(bad)
    assert info.value.fix
