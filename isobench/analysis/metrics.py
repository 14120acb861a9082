"""What is measured from each trial: the metric specs, their directions, and which trials count."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from isobench.results import TrialRecord

IDLE_SCENARIO = "idle"
PRIMARY_FALLBACK = ("block_lag_p95_ms", "rps", "idle_cpu_percent")
"""When no primary metric is declared (runs written before it was): the first of these present."""


@dataclass(frozen=True)
class MetricSpec:
    """A metric taken from each trial.

    Attributes:
        name: key in the analysis (``rps``, ``p95_ms``...).
        extract: trial → value, or None when the trial does not carry it.
        unit: display unit of the extracted value.
        better: ``"higher"`` or ``"lower"``.
        label: short human label (``req/s``, ``p95``); defaults to ``name``.
    """

    name: str
    extract: Callable[[TrialRecord], float | None]
    unit: str
    better: Literal["higher", "lower"] = "lower"
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name


def _load(stat_metric: str, stat: str, scale: float = 1.0) -> Callable[[TrialRecord], float | None]:
    def extract(trial: TrialRecord) -> float | None:
        value = trial.metric(stat_metric, stat)
        return None if value is None else value * scale

    return extract


def _requests(trial: TrialRecord) -> float | None:
    count = trial.metric("http_reqs", "count")
    return count if count else None


def _startup(trial: TrialRecord) -> float | None:
    return trial.startup_s


def _cpu_per_request(trial: TrialRecord) -> float | None:
    cpu, count = trial.telemetry.get("cpu_seconds"), _requests(trial)
    return None if cpu is None or count is None else float(cpu) / count * 1000.0


def _memory_peak(trial: TrialRecord) -> float | None:
    peak = trial.telemetry.get("rss_bytes_peak", trial.telemetry.get("memory_bytes_peak"))
    return None if peak is None else float(peak) / 2**20


def _net_per_request(trial: TrialRecord) -> float | None:
    rx, tx = trial.telemetry.get("net_rx_bytes"), trial.telemetry.get("net_tx_bytes")
    count = _requests(trial)
    if count is None or (rx is None and tx is None):
        return None
    return (float(rx or 0.0) + float(tx or 0.0)) / count


DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("rps", _load("http_reqs", "rate"), "req/s", "higher", "req/s"),
    MetricSpec("p50_ms", _load("http_req_duration", "med"), "ms", "lower", "p50"),
    MetricSpec("p95_ms", _load("http_req_duration", "p(95)"), "ms", "lower", "p95"),
    MetricSpec("p99_ms", _load("http_req_duration", "p(99)"), "ms", "lower", "p99"),
    MetricSpec("startup_s", _startup, "s", "lower", "startup"),
    MetricSpec("cpu_ms_per_req", _cpu_per_request, "ms", "lower", "CPU/req"),
    MetricSpec("mem_peak_mib", _memory_peak, "MiB", "lower", "memory peak"),
    MetricSpec("net_bytes_per_req", _net_per_request, "B", "lower", "net bytes/req"),
    # the validator workload: how late blocks are applied (absent for other workloads: skipped)
    MetricSpec("block_lag_p50_ms", _load("validator_block_lag", "med"), "ms", "lower",
               "block lag p50"),
    MetricSpec("block_lag_p95_ms", _load("validator_block_lag", "p(95)"), "ms", "lower",
               "block lag p95"),
    MetricSpec("cpu_percent", lambda t: t.telemetry.get("cpu_percent_mean"), "%", "lower",
               "CPU % of a core"),
)

IDLE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("idle_cpu_percent", lambda t: t.telemetry.get("cpu_percent_mean"), "%", "lower",
               "idle CPU"),
    MetricSpec("mem_peak_mib", _memory_peak, "MiB", "lower", "memory peak"),
    MetricSpec("startup_s", _startup, "s", "lower", "startup"),
)


def is_emulated(trial: TrialRecord) -> bool:
    """Whether a trial's facts mark its runtime as emulated (bool or ``"true"``)."""
    value = trial.facts.get("emulated", False)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def scenario_of(trial: TrialRecord) -> str | None:
    value = trial.facts.get("scenario")
    return None if value is None else str(value)


def usable(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    """Trials that count: finished ``ok`` and not warm-up."""
    return [t for t in trials if t.status == "ok" and not t.warmup]


METRIC_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(m.name for m in (*DEFAULT_METRICS, *IDLE_METRICS))
)
"""Every metric name a run can have (what ``--primary`` accepts)."""


def default_primary(present: Iterable[str]) -> str | None:
    """The primary metric of a run that declared none: see :data:`PRIMARY_FALLBACK`."""
    names = list(present)
    return next((n for n in PRIMARY_FALLBACK if n in names), names[0] if names else None)
