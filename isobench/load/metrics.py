"""Metric store: raw per-request rows in, k6 metrics (HDR histograms) and a 1 s time series out.

VUs append one tuple per finished request to :attr:`MetricStore.rows` (the only per-request Python
work); :meth:`MetricStore.flush` turns the batch into numpy arrays every ~100 ms and records them
into per-request-kind histograms, so memory stays constant however long the run.

Row layout (perf_counter seconds): ``(rid, status, t0, tc0, tc1, tw1, tfirst, tend, nrecv, nsent)``
with ``t0`` the intended start of the request, ``tc0``/``tc1`` start/end of connecting (equal when
the connection is reused), ``tw1`` end of writing the request, ``tfirst`` first response byte,
``tend`` last byte. k6 timings follow: blocked = tc0-t0, connecting = tc1-tc0, sending = tw1-tc1,
waiting = tfirst-tw1, receiving = tend-tfirst, duration = blocked + sending + waiting + receiving
(so in arrival-rate executors any lag behind the schedule is part of the latency: no coordinated
omission).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from isobench.load.hdr import LogHistogram
from isobench.load.thresholds import MetricKey

HTTP_TRENDS = (
    "http_req_blocked",
    "http_req_connecting",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
    "http_req_duration",
)
Row = tuple[int, int, float, float, float, float, float, float, int, int]


@dataclass
class CheckStat:
    """Pass/fail counts of one check on one request kind."""

    name: str
    rid: int
    passes: int = 0
    fails: int = 0


@dataclass
class _Second:
    reqs: int = 0
    errors: int = 0
    data_received: int = 0
    data_sent: int = 0
    durations: list[npt.NDArray[np.float64]] = field(default_factory=list)


class MetricStore:
    """All metrics of one run (or of one worker process; stores merge).

    Args:
        req_tags: tags of each request kind (index = rid): scenario, name, method, custom tags.
        scen_tags: tags of each scenario (index = sid).
        t_start: perf_counter time the test started (time series origin).
    """

    def __init__(
        self, req_tags: list[dict[str, str]], scen_tags: list[dict[str, str]], t_start: float
    ) -> None:
        self.req_tags = req_tags
        self.scen_tags = scen_tags
        self.t_start = t_start
        self.rows: list[Row] = []
        self.iter_rows: list[tuple[int, float, float]] = []
        n = len(req_tags)
        self.trends: dict[str, list[LogHistogram]] = {
            m: [LogHistogram() for _ in range(n)] for m in HTTP_TRENDS
        }
        self.iter_hist = [LogHistogram() for _ in scen_tags]
        self.reqs = [0] * n
        self.failed = [0] * n
        self.recv = [0] * n
        self.sent = [0] * n
        self.dropped = [0] * len(scen_tags)
        self.checks: list[CheckStat] = []
        self.vus = 0
        self.vus_min = math.inf
        self.vus_max_seen = 0
        self.vus_max = 0
        self.timeseries: list[dict[str, Any]] = []
        self._sec = _Second()
        self._last_tick = t_start
        self._last_span = 1.0
        self.duration_s = 0.0

    # -- hot-path helpers ------------------------------------------------------------------------
    def add_check(self, name: str, rid: int) -> CheckStat:
        """Register a check (at setup); VUs bump ``.passes`` / ``.fails`` directly."""
        c = CheckStat(name, rid)
        self.checks.append(c)
        return c

    def set_vus(self, active: int, allocated: int) -> None:
        self.vus = active
        self.vus_min = min(self.vus_min, active)
        self.vus_max_seen = max(self.vus_max_seen, active)
        self.vus_max = max(self.vus_max, allocated)

    # -- batching --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Record pending rows into histograms and the current second's bucket."""
        rows = self.rows.copy()  # VUs hold a reference to this list: empty it in place
        self.rows.clear()
        if rows:
            self.record_array(np.array(rows, dtype=np.float64))
        it = self.iter_rows.copy()
        self.iter_rows.clear()
        if it:
            a = np.array(it, dtype=np.float64)
            sids = a[:, 0].astype(np.intp)
            dur = (a[:, 2] - a[:, 1]) * 1000.0
            for sid in np.unique(sids):
                self.iter_hist[int(sid)].record_many(dur[sids == sid])

    def record_array(self, a: npt.NDArray[np.float64]) -> None:
        """Record rows already in array form (shape (n, 10), the row layout above)."""
        rid = a[:, 0].astype(np.intp)
        status = a[:, 1]
        t0, tc0, tc1, tw1, tfirst, tend = (a[:, i] for i in range(2, 8))
        ms = 1000.0
        blocked = np.maximum(tc0 - t0, 0.0) * ms
        values = {
            "http_req_blocked": blocked,
            "http_req_connecting": (tc1 - tc0) * ms,
            "http_req_sending": np.maximum(tw1 - tc1, 0.0) * ms,
            "http_req_waiting": np.maximum(tfirst - tw1, 0.0) * ms,
            "http_req_receiving": np.maximum(tend - tfirst, 0.0) * ms,
            "http_req_duration": blocked + np.maximum(tend - tc1, 0.0) * ms,
        }
        failed = (status == 0) | (status >= 400)
        kinds = np.unique(rid)
        for k in kinds:
            ki = int(k)
            sel = slice(None) if kinds.size == 1 else rid == k
            for name, v in values.items():
                self.trends[name][ki].record_many(v[sel])
            self.reqs[ki] += int(a[sel, 0].size)
            self.failed[ki] += int(np.count_nonzero(failed[sel]))
            self.recv[ki] += int(a[sel, 8].sum())
            self.sent[ki] += int(a[sel, 9].sum())
        s = self._sec
        s.reqs += int(a.shape[0])
        s.errors += int(np.count_nonzero(failed))
        s.data_received += int(a[:, 8].sum())
        s.data_sent += int(a[:, 9].sum())
        s.durations.append(values["http_req_duration"])

    def _fold_into_last(self, now: float) -> dict[str, Any]:
        s, self._sec = self._sec, _Second()
        row = self.timeseries[-1]
        span = self._last_span + max(now - self._last_tick, 0.0)
        self._last_tick = now
        for key, extra in (("reqs", s.reqs), ("errors", s.errors),
                           ("data_received", s.data_received), ("data_sent", s.data_sent)):
            row[key] += extra
        row["rate"] = row["reqs"] / span if span > 0 else 0.0
        return row

    def pending_reqs(self) -> int:
        """Requests recorded since the last :meth:`tick`."""
        return self._sec.reqs

    def tick(self, now: float, final: bool = False) -> dict[str, Any]:
        """Close the current 1 s bucket (call once a second, after :meth:`flush`).

        The ``final`` bucket (the graceful stop) is usually a fraction of a second; a rate over
        it would spike (16 in-flight requests ending in 10 ms read as 1,600 req/s), so when it
        spans under half a second its counts are folded into the previous row instead.
        """
        if final and self.timeseries and now - self._last_tick < 0.5:
            return self._fold_into_last(now)
        s, self._sec = self._sec, _Second()
        span = max(now - self._last_tick, 1e-9)
        self._last_tick = now
        self._last_span = span
        d = np.concatenate(s.durations) if s.durations else np.zeros(0)
        pct = np.percentile(d, [50, 90, 95, 99]) if d.size else [0.0] * 4
        row = {
            "t": round(now - self.t_start, 3),
            "reqs": s.reqs,
            "errors": s.errors,
            "rate": s.reqs / span,
            "p50": float(pct[0]),
            "p90": float(pct[1]),
            "p95": float(pct[2]),
            "p99": float(pct[3]),
            "data_received": s.data_received,
            "data_sent": s.data_sent,
            "vus": self.vus,
        }
        self.timeseries.append(row)
        return row

    # -- queries ---------------------------------------------------------------------------------
    def _rids(self, tags: Iterable[tuple[str, str]]) -> list[int]:
        t = list(tags)
        return [i for i, rt in enumerate(self.req_tags) if all(rt.get(k) == v for k, v in t)]

    def _sids(self, tags: Iterable[tuple[str, str]]) -> list[int]:
        t = list(tags)
        return [i for i, st in enumerate(self.scen_tags) if all(st.get(k) == v for k, v in t)]

    def trend(self, name: str, tags: Iterable[tuple[str, str]] = ()) -> LogHistogram:
        """The merged histogram of a trend metric over matching request kinds / scenarios."""
        if name == "iteration_duration":
            parts = [self.iter_hist[i] for i in self._sids(tags)]
        else:
            parts = [self.trends[name][i] for i in self._rids(tags)]
        out = LogHistogram()
        for h in parts:
            out.merge(h)
        return out

    def metric_values(self, key: MetricKey, stats: list[str]) -> dict[str, float]:
        """k6 ``values`` of one metric (``stats`` = trend statistics to include)."""
        name, tags = key.name, key.tags
        dur = max(self.duration_s, 1e-9)
        if name in HTTP_TRENDS or name == "iteration_duration":
            h = self.trend(name, tags)
            return {s: h.stat(s) for s in stats}
        if name == "http_req_tls_handshaking":
            return {s: 0.0 for s in stats}
        if name in ("http_req_failed", "checks"):
            if name == "checks":
                rids = set(self._rids((k, v) for k, v in tags if k != "check"))
                want = dict(tags).get("check")
                sel = [c for c in self.checks if c.rid in rids and want in (None, c.name)]
                passes = sum(c.passes for c in sel)
                fails = sum(c.fails for c in sel)
            else:  # k6: a "pass" of http_req_failed is a failed request
                rids = set(self._rids(tags))
                passes = sum(self.failed[i] for i in rids)
                fails = sum(self.reqs[i] for i in rids) - passes
            total = passes + fails
            return {"rate": passes / total if total else 0.0, "passes": passes, "fails": fails}
        if name in ("http_reqs", "data_received", "data_sent"):
            src = {"http_reqs": self.reqs, "data_received": self.recv, "data_sent": self.sent}
            count = float(sum(src[name][i] for i in self._rids(tags)))
            return {"count": count, "rate": count / dur}
        if name == "iterations":
            count = float(sum(self.iter_hist[i].count for i in self._sids(tags)))
            return {"count": count, "rate": count / dur}
        if name == "dropped_iterations":
            count = float(sum(self.dropped[i] for i in self._sids(tags)))
            return {"count": count, "rate": count / dur}
        if name == "vus":
            lo = 0 if self.vus_min is math.inf else self.vus_min
            return {"value": float(self.vus), "min": float(lo), "max": float(self.vus_max_seen)}
        if name == "vus_max":
            v = float(self.vus_max)
            return {"value": v, "min": v, "max": v}
        raise KeyError(name)

    # -- merging (multi-process) -----------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """Everything needed to merge this store into another (JSON-serialisable)."""
        return {
            "trends": {m: [h.to_dict() for h in hs] for m, hs in self.trends.items()},
            "iter_hist": [h.to_dict() for h in self.iter_hist],
            "reqs": self.reqs, "failed": self.failed, "recv": self.recv, "sent": self.sent,
            "dropped": self.dropped,
            "checks": [(c.name, c.rid, c.passes, c.fails) for c in self.checks],
            "vus_max": self.vus_max, "vus_max_seen": self.vus_max_seen,
            "timeseries": self.timeseries, "duration_s": self.duration_s,
        }

    def merge_state(self, st: Mapping[str, Any]) -> None:
        """Add a worker's :meth:`to_state` into this store."""
        for m, hs in st["trends"].items():
            for i, d in enumerate(hs):
                self.trends[m][i].merge(LogHistogram.from_dict(d))
        for i, d in enumerate(st["iter_hist"]):
            self.iter_hist[i].merge(LogHistogram.from_dict(d))
        for attr in ("reqs", "failed", "recv", "sent", "dropped"):
            mine = getattr(self, attr)
            for i, v in enumerate(st[attr]):
                mine[i] += v
        by_key = {(c.name, c.rid): c for c in self.checks}
        for name, rid, p, f in st["checks"]:
            c = by_key.get((name, rid)) or self.add_check(name, rid)
            by_key[(name, rid)] = c
            c.passes += p
            c.fails += f
        self.vus_max += st["vus_max"]
        self.vus_max_seen += st["vus_max_seen"]
        self.vus_min = 0
        self.duration_s = max(self.duration_s, st["duration_s"])
        self.timeseries = merge_timeseries(self.timeseries, st["timeseries"])


def merge_timeseries(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sum two workers' series second by second (percentiles: request-weighted max, approx.)."""
    out: list[dict[str, Any]] = []
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x is None or y is None:
            out.append(dict(x or y or {}))
            continue
        row = dict(x)
        for k in ("reqs", "errors", "rate", "data_received", "data_sent", "vus"):
            row[k] = x[k] + y[k]
        for k in ("p50", "p90", "p95", "p99"):
            row[k] = max(x[k], y[k])
        out.append(row)
    return out
