"""Fixed-memory latency statistics for the validator driver, in k6's summary shapes.

A log-bucketed histogram (the DDSketch mapping): every recorded value lands in the bucket
``ceil(log_gamma(v))`` with ``gamma = (1 + r) / (1 - r)``, so any quantile is reported within a
relative error ``r`` (1 % by default) of a recorded value, whatever the run length. Min, max,
count and sum are exact.
"""

from __future__ import annotations

import math
from typing import Any

_FLOOR = 1e-9
"""Smallest distinguishable value (seconds); anything at or below it shares one bucket."""


class LatencyHistogram:
    """Latencies in seconds; summaries in milliseconds, like k6's ``http_req_duration``.

    Args:
        relative_error: bound on a quantile's relative error (0 < r < 1).
    """

    def __init__(self, relative_error: float = 0.01) -> None:
        if not 0 < relative_error < 1:
            raise ValueError("relative_error must be in (0, 1)")
        self._gamma = (1 + relative_error) / (1 - relative_error)
        self._log_gamma = math.log(self._gamma)
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def record(self, seconds: float) -> None:
        """Add one value (negative values are clamped to 0)."""
        value = max(seconds, 0.0)
        index = math.ceil(math.log(max(value, _FLOOR)) / self._log_gamma)
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: LatencyHistogram) -> None:
        """Add every value recorded in ``other`` (same relative error)."""
        if not math.isclose(other._gamma, self._gamma):
            raise ValueError("cannot merge histograms of different precision")
        for index, n in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0..100) in seconds; NaN when nothing was recorded."""
        if self.count == 0:
            return math.nan
        if p <= 0:
            return self.min
        if p >= 100:
            return self.max
        rank = p / 100 * (self.count - 1)
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen > rank:
                estimate = 2 * self._gamma**index / (self._gamma + 1)
                return min(max(estimate, self.min), self.max)
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def trend_ms(self) -> dict[str, float]:
        """k6 trend summary in milliseconds: avg, min, med, max, p(90), p(95), p(99)."""
        if self.count == 0:
            return {"avg": 0.0, "min": 0.0, "med": 0.0, "max": 0.0, "p(90)": 0.0, "p(95)": 0.0,
                    "p(99)": 0.0, "count": 0}
        ms = 1000.0
        return {
            "avg": self.mean * ms, "min": self.min * ms, "med": self.percentile(50) * ms,
            "max": self.max * ms, "p(90)": self.percentile(90) * ms,
            "p(95)": self.percentile(95) * ms, "p(99)": self.percentile(99) * ms,
            "count": self.count,
        }


TREND_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)", "p(99)")
"""The trend statistics every validator summary carries (k6's ``summaryTrendStats``)."""


def trend(hist: LatencyHistogram) -> dict[str, Any]:
    """k6 summary entry of a time trend (values in ms, plus ``count``)."""
    return {"type": "trend", "contains": "time", "values": hist.trend_ms()}


def counter(count: int | float, elapsed: float, *, data: bool = False) -> dict[str, Any]:
    """k6 summary entry of a counter: total and rate per second over ``elapsed`` seconds."""
    per_s = count / elapsed if elapsed > 0 else 0.0
    return {"type": "counter", "contains": "data" if data else "default",
            "values": {"count": count, "rate": per_s}}


def rate(passes: int, fails: int) -> dict[str, Any]:
    """k6 summary entry of a rate (``passes`` counts true values, as in ``http_req_failed``)."""
    total = passes + fails
    return {"type": "rate", "contains": "default",
            "values": {"rate": passes / total if total else 0.0, "passes": passes,
                       "fails": fails}}


