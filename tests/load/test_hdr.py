"""HDR-style histogram: accuracy against numpy, merging, wire form, constant memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from isobench.load.hdr import LogHistogram
from isobench.load.metrics import MetricStore

PCTS = [1, 10, 50, 75, 90, 95, 99, 99.9, 99.99]


@pytest.mark.parametrize("seed", [1, 2])
def test_percentiles_match_numpy_within_relative_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.lognormal(mean=0.0, sigma=1.5, size=1_000_000)  # ms, heavy tail
    h = LogHistogram()
    for chunk in np.array_split(data, 50):
        h.record_many(chunk)
    assert h.count == data.size
    for p in PCTS:
        exact = float(np.percentile(data, p, method="inverted_cdf"))  # nearest rank, as h
        got = h.percentile(p)
        assert abs(got - exact) / exact <= 1.001e-3, (p, got, exact)
        linear = float(np.percentile(data, p))
        assert abs(got - linear) / linear < 5e-3, (p, got, linear)
    assert h.min == data.min() and h.max == data.max()
    assert h.mean == pytest.approx(data.mean(), rel=1e-9)
    assert h.stat("p(99.99)") == h.percentile(99.99)
    assert h.stat("med") == h.percentile(50)


def test_zeros_and_huge_values_are_kept_in_range() -> None:
    h = LogHistogram()
    h.record_many(np.array([0.0, 0.0, 0.0, 5.0, 1e12]))
    assert h.percentile(50) == 0.0
    assert h.max == 1e12 and h.percentile(100) == 1e12
    assert h.percentile(80) <= 1e12


def test_merge_and_roundtrip_equal_single_histogram() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.exponential(2.0, 50_000), rng.exponential(20.0, 50_000)
    ha, hb, hall = LogHistogram(), LogHistogram(), LogHistogram()
    ha.record_many(a)
    hb.record_many(b)
    hall.record_many(np.concatenate([a, b]))
    merged = LogHistogram.from_dict(ha.to_dict())
    merged.merge(LogHistogram.from_dict(hb.to_dict()))
    assert np.array_equal(merged.counts, hall.counts)
    for p in PCTS:
        assert merged.percentile(p) == hall.percentile(p)


def test_memory_is_flat_over_millions_of_requests() -> None:
    """10 M request rows through the store: the histograms' memory never grows."""
    store = MetricStore([{"scenario": "s", "name": "r"}], [{"scenario": "s"}], t_start=0.0)
    sizes = {m: hs[0].nbytes for m, hs in store.trends.items()}
    rng = np.random.default_rng(4)
    batch = 200_000
    snapshots = []
    tracemalloc.start()
    for i in range(50):
        a = np.empty((batch, 10))
        a[:, 0], a[:, 1], a[:, 8], a[:, 9] = 0, 200, 300, 80
        a[:, 2:6] = float(i)
        a[:, 5] += 1e-6
        a[:, 6] = a[:, 7] = i + rng.lognormal(-7, 1, batch)
        store.record_array(a)
        store.rows.append((0, 200, i, i, i, i, i + 1e-3, i + 1e-3, 300, 80))  # the list path too
        store.flush()
        store.tick(float(i + 1))
        del a
        if i in (9, 49):
            snapshots.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    assert store.reqs[0] == 50 * (batch + 1)
    assert store.trends["http_req_duration"][0].count == 50 * (batch + 1)
    assert {m: hs[0].nbytes for m, hs in store.trends.items()} == sizes
    # 8 M more values recorded between the two snapshots; memory grew by < 0.01 byte per value
    # (only 40 one-second time-series rows were added)
    assert snapshots[1] - snapshots[0] < 80_000, snapshots


def test_short_final_bucket_is_folded_not_spiked() -> None:
    """16 in-flight requests finishing 10 ms after the last tick must not read as 1,600 req/s."""
    from isobench.load.metrics import MetricStore

    store = MetricStore.__new__(MetricStore)
    store.timeseries = [{"t": 1.0, "reqs": 100, "errors": 0, "rate": 100.0, "data_received": 10,
                         "data_sent": 5}]
    store._last_tick, store._last_span = 1.0, 1.0

    class _Sec:
        reqs, errors, data_received, data_sent = 16, 0, 2, 1

    store._sec = _Sec()  # type: ignore[assignment]
    row = store.tick(1.01, final=True)
    assert len(store.timeseries) == 1 and row["reqs"] == 116
    assert abs(row["rate"] - 116 / 1.01) < 1e-6


def test_coarsen_keeps_percentiles_within_both_errors() -> None:
    import numpy as np

    from isobench.load.hdr import LogHistogram

    values = np.random.default_rng(3).lognormal(0.0, 1.2, size=200_000)
    fine = LogHistogram()
    fine.record_many(values)
    coarse = fine.coarsen(0.01)
    assert coarse.count == fine.count and coarse.max == fine.max and coarse.sum == fine.sum
    assert np.count_nonzero(coarse.counts) < np.count_nonzero(fine.counts) / 5
    for p in (1, 50, 90, 99, 99.9, 99.99):
        exact = float(np.percentile(values, p, method="inverted_cdf"))
        assert abs(coarse.percentile(p) - exact) / exact <= 0.011 + 1e-3, p
    wire = coarse.to_dict()
    assert LogHistogram.from_dict(wire).percentile(50) == coarse.percentile(50)
