"""The validator driver's k6-style summary, for one node or aggregated over several replicas.

A driver's raw outcome is a :class:`ReplicaResult` (counts and latency histograms, not
percentiles, so that replicas merge exactly). :func:`summarize` turns one or more of them into
the ``{"metrics": {name: {"type", "contains", "values"}}, ...}`` summary: counts are summed,
histograms merged (a percentile over every block of every node), rates taken over the longest
replica's run. With ``replicas=True`` it adds what shows how many nodes fit on one runtime:
``validator_replicas``, ``validator_block_lag_worst_p95`` (the worst node's p95 block lag, ms)
and ``validator_blocks_missed_worst``, plus a per-replica digest under ``"replicas"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from isobench.workloads.validator.scenario import ChainScenario
from isobench.workloads.validator.stats import TREND_STATS, LatencyHistogram, counter, rate, trend

TRENDS = ("validator_block_lag", "validator_snapshot_latency", "validator_gossip_lag",
          "validator_ping_rtt")
"""Histograms every driver keeps, in summary order."""

BYTE_COUNTS = ("validator_gossip_bytes_sent", "validator_gossip_bytes_received")
"""Counts reported as data (bytes)."""


@dataclass
class RpcOutcome:
    """The JSON-RPC read load's totals."""

    ok: int = 0
    failed: int = 0
    dropped: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class ReplicaResult:
    """What one driver measured against one node.

    Attributes:
        counts: the ``validator_*`` counters (including ``BYTE_COUNTS``), in summary order.
        histograms: one histogram per name of ``TRENDS`` (seconds).
        elapsed: seconds from the first block to the last ack.
        rpc: the RPC load's totals, None when none ran.
        endpoint: the node driven.
        seed: the scenario seed the driver used.
    """

    counts: dict[str, int]
    histograms: dict[str, LatencyHistogram]
    elapsed: float
    rpc: RpcOutcome | None = None
    endpoint: str = ""
    seed: int = 0

    def lag_p95_ms(self) -> float:
        """This node's p95 block lag in ms (0 when no block was applied)."""
        return float(self.histograms["validator_block_lag"].trend_ms()["p(95)"])


def _merged(hists: Sequence[LatencyHistogram]) -> LatencyHistogram:
    out = LatencyHistogram()
    for hist in hists:
        out.merge(hist)
    return out


def gauge(value: float, low: float, high: float, *, time: bool = False,
          **extra: float) -> dict[str, Any]:
    """k6 summary entry of a gauge (``value``, ``min``, ``max``) with optional extra values."""
    return {"type": "gauge", "contains": "time" if time else "default",
            "values": {"value": value, "min": low, "max": high, **extra}}


def summarize(results: Sequence[ReplicaResult], sc: ChainScenario, *,
              replicas: bool = False) -> dict[str, Any]:
    """The k6 ``handleSummary``-shaped summary of one or more drivers' results.

    Args:
        results: one per node, in replica order (at least one).
        sc: the base scenario (replica ``i`` ran it with ``seed + i``).
        replicas: add the replica metrics and the per-replica digest.

    Raises:
        ValueError: ``results`` is empty.
    """
    if not results:
        raise ValueError("summarize needs at least one result")
    elapsed = max(r.elapsed for r in results)
    totals: dict[str, int] = {}
    for result in results:
        for name, value in result.counts.items():
            totals[name] = totals.get(name, 0) + value
    metrics: dict[str, Any] = {k: counter(v, elapsed) for k, v in totals.items()
                               if k not in BYTE_COUNTS}
    for name in TRENDS:
        metrics[name] = trend(_merged([r.histograms[name] for r in results]))
    for name in BYTE_COUNTS:
        metrics[name] = counter(totals.get(name, 0), elapsed, data=True)
    rpcs = [r.rpc for r in results if r.rpc is not None]
    errors: dict[str, int] = {}
    if rpcs:
        ok, failed = sum(x.ok for x in rpcs), sum(x.failed for x in rpcs)
        dropped = sum(x.dropped for x in rpcs)
        metrics["http_reqs"] = counter(ok + failed, elapsed)
        metrics["http_req_duration"] = trend(_merged([x.latency for x in rpcs]))
        metrics["http_req_failed"] = rate(failed, ok)
        if dropped:
            metrics["dropped_iterations"] = counter(dropped, elapsed)
        for x in rpcs:
            for key, n in x.errors.items():
                errors[key] = errors.get(key, 0) + n
    summary = envelope(metrics, elapsed, sc, errors)
    if replicas:
        metrics.update(replica_metrics(results))
        summary["options"]["replicas"] = len(results)
        summary["replicas"] = [digest(i, r) for i, r in enumerate(results)]
    return summary


def replica_metrics(results: Sequence[ReplicaResult]) -> dict[str, Any]:
    """``validator_replicas`` and the worst replica's p95 lag (ms) and missed blocks."""
    n = len(results)
    lags = [r.lag_p95_ms() for r in results]
    missed = [r.counts.get("validator_blocks_missed", 0) for r in results]
    return {
        "validator_replicas": gauge(n, n, n, count=n),
        "validator_block_lag_worst_p95": gauge(max(lags), min(lags), max(lags), time=True,
                                               replica=lags.index(max(lags))),
        "validator_blocks_missed_worst": gauge(max(missed), min(missed), max(missed),
                                               replica=missed.index(max(missed))),
    }


def digest(index: int, result: ReplicaResult) -> dict[str, Any]:
    """One replica's headline figures (the summary's ``"replicas"`` list)."""
    lag = result.histograms["validator_block_lag"].trend_ms()
    c = result.counts
    return {
        "replica": index, "endpoint": result.endpoint, "seed": result.seed,
        "blocks_sent": c.get("validator_blocks_sent", 0),
        "blocks_applied": c.get("validator_blocks_applied", 0),
        "blocks_missed": c.get("validator_blocks_missed", 0),
        "forged_rejected": c.get("validator_forged_rejected", 0),
        "snapshots": c.get("validator_snapshots", 0),
        "block_lag_ms": {k: lag[k] for k in ("med", "p(95)", "p(99)", "max")},
        "http_reqs": (result.rpc.ok + result.rpc.failed) if result.rpc else 0,
    }


def envelope(metrics: dict[str, Any], elapsed: float, sc: ChainScenario,
             errors: dict[str, int]) -> dict[str, Any]:
    """Wrap ``metrics`` in the rest of k6's ``handleSummary`` shape."""
    return {
        "metrics": metrics,
        "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e",
                       "groups": [], "checks": []},
        "thresholds": {},
        "state": {"isStdOutTTY": False, "isStdErrTTY": False,
                  "testRunDurationMs": round(elapsed * 1000.0, 3), "aborted": False},
        "options": {"summaryTrendStats": list(TREND_STATS), "scenario": sc.as_dict()},
        "errors": errors,
    }
