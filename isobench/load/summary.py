"""k6-style results: threshold verdicts, the summary JSON (``handleSummary`` shape) and the
end-of-test text (k6 v1 "compact" layout: thresholds first, then totals by category)."""

from __future__ import annotations

import math
from typing import Any

from isobench.load.metrics import MetricStore
from isobench.load.scenario import ScenarioSet
from isobench.load.thresholds import (
    METRIC_TYPES,
    MetricKey,
    Threshold,
    ThresholdOutcome,
    parse_key,
    trend_stats_needed,
)

_TIME_METRICS = {m for m, t in METRIC_TYPES.items() if t == "trend"}
_CATEGORIES = (
    ("HTTP", ("http_req_blocked", "http_req_connecting", "http_req_duration", "http_req_failed",
              "http_req_receiving", "http_req_sending", "http_req_tls_handshaking",
              "http_req_waiting", "http_reqs")),
    ("EXECUTION", ("dropped_iterations", "iteration_duration", "iterations", "vus", "vus_max")),
    ("NETWORK", ("data_received", "data_sent")),
)


def observe(store: MetricStore, key: MetricKey, t: Threshold) -> float:
    """The value a threshold is compared with."""
    agg = t.aggregate
    kind = METRIC_TYPES[key.name]
    if kind == "trend":
        return store.metric_values(key, [agg])[agg]
    return float(store.metric_values(key, [])[agg])


def evaluate_thresholds(store: MetricStore, sset: ScenarioSet) -> list[ThresholdOutcome]:
    """Every threshold's verdict on the store as it is now."""
    out = []
    for key, items in sset.parsed_thresholds().items():
        for t in items:
            v = observe(store, key, t)
            out.append(ThresholdOutcome(str(key), t, v, t.passes(v)))
    return out


HISTOGRAM_EXPORT_ERROR = 0.01
"""Relative error of the latency histogram kept in each summary (trials.jsonl)."""


def build_summary(store: MetricStore, sset: ScenarioSet, outcomes: list[ThresholdOutcome], *,
                  aborted: bool = False) -> dict[str, Any]:
    """The k6 ``handleSummary`` data object (JSON-serialisable)."""
    stats = list(sset.summary_trend_stats)
    for s in trend_stats_needed({k: v for k, v in _by_metric(outcomes).items()}):
        if s not in stats:
            stats.append(s)
    metrics: dict[str, Any] = {}
    keys = [MetricKey(n) for n in METRIC_TYPES if n != "http_req_tls_handshaking"]
    keys += [parse_key(o.metric) for o in outcomes if parse_key(o.metric).tags]
    for key in keys:
        kind = METRIC_TYPES[key.name]
        if (key.name == "dropped_iterations" and not any(store.dropped)) or (
            key.name == "checks" and not store.checks
        ):
            continue
        values = store.metric_values(key, stats if kind == "trend" else [])
        entry: dict[str, Any] = {
            "type": kind,
            "contains": "time" if key.name in _TIME_METRICS else (
                "data" if key.name.startswith("data_") else "default"),
            "values": {k: _clean(v) for k, v in values.items()},
        }
        mine = [o for o in outcomes if o.metric == str(key)]
        if mine:
            entry["thresholds"] = {o.threshold.source: {"ok": o.ok} for o in mine}
        metrics[str(key)] = entry
    thresholds: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        thresholds.setdefault(o.metric, {})[o.threshold.source] = {"ok": o.ok,
                                                                   "value": _clean(o.observed)}
    checks = [{"name": c.name, "path": "::" + c.name, "id": str(i), "passes": c.passes,
               "fails": c.fails} for i, c in enumerate(store.checks)]
    return {
        "metrics": metrics,
        "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e",
                       "groups": [], "checks": checks},
        "thresholds": thresholds,
        "state": {"isStdOutTTY": False, "isStdErrTTY": False,
                  "testRunDurationMs": round(store.duration_s * 1000.0, 3),
                  "aborted": aborted},
        "options": {"summaryTrendStats": stats},
        # not k6's: the request-duration distribution itself, so reports can merge trials and
        # draw any percentile later (1 % relative error, a few KB; see LogHistogram.coarsen)
        "histograms": {
            "http_req_duration": store.trend("http_req_duration").coarsen(
                HISTOGRAM_EXPORT_ERROR).to_dict(),
        },
    }


def _by_metric(outcomes: list[ThresholdOutcome]) -> dict[str, list[Threshold]]:
    out: dict[str, list[Threshold]] = {}
    for o in outcomes:
        out.setdefault(o.metric, []).append(o.threshold)
    return out


def _clean(v: float) -> float:
    return 0.0 if isinstance(v, float) and (math.isinf(v) or math.isnan(v)) else v


# -- text rendering -----------------------------------------------------------------------------
def fmt_time(ms: float) -> str:
    """k6's duration format: 1.2s, 12.34ms, 56.7µs, 0s."""
    if ms == 0:
        return "0s"
    if ms >= 60_000:
        m, s = divmod(ms / 1000.0, 60)
        return f"{int(m)}m{s:.1f}s"
    if ms >= 1000:
        return f"{ms / 1000.0:.2f}s"
    if ms >= 1:
        return f"{ms:.2f}ms"
    return f"{ms * 1000.0:.2f}µs"


def fmt_bytes(n: float) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def _line(name: str, text: str, width: int = 40) -> str:
    return f"    {name}{'.' * max(width - len(name), 3)}: {text}"


def _metric_text(name: str, m: dict[str, Any], stats: list[str]) -> str:
    v, kind = m["values"], m["type"]
    if kind == "trend":
        f = fmt_time if m["contains"] == "time" else (lambda x: f"{x:g}")
        return " ".join(f"{s}={f(v[s]):<9}" for s in stats if s in v).rstrip()
    if kind == "rate":
        total = v["passes"] + v["fails"]
        return f"{v['rate'] * 100:.2f}%  {v['passes']} out of {total}"
    if kind == "counter":
        if m["contains"] == "data":
            return f"{fmt_bytes(v['count']):<8} {fmt_bytes(v['rate'])}/s"
        return f"{v['count']:<8.0f} {v['rate']:.2f}/s"
    return f"{v['value']:<8.0f} min={v['min']:.0f} max={v['max']:.0f}"


def render_summary(summary: dict[str, Any]) -> str:
    """The end-of-test text, as k6 prints it (thresholds first)."""
    lines: list[str] = []
    thresholds = summary.get("thresholds") or {}
    metrics = summary["metrics"]
    stats = summary.get("options", {}).get("summaryTrendStats", ["avg", "min", "med", "max"])
    if thresholds:
        lines += ["", "  █ THRESHOLDS", ""]
        for metric, items in thresholds.items():
            lines.append(f"    {metric}")
            for source, o in items.items():
                mark = "✓" if o["ok"] else "✗"
                agg = source.split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip()
                val = o["value"]
                if metrics.get(metric, {}).get("type") == "trend":
                    valtext = fmt_time(val)
                elif agg == "rate" and metrics.get(metric, {}).get("type") == "rate":
                    valtext = f"{val * 100:.2f}%"
                else:
                    valtext = f"{val:g}"
                lines.append(f"    {mark} '{source}' {agg}={valtext}")
            lines.append("")
        lines.append("")
    lines += ["  █ TOTAL RESULTS", ""]
    checks = summary["root_group"]["checks"]
    if checks:
        p = sum(c["passes"] for c in checks)
        f = sum(c["fails"] for c in checks)
        dur = max(summary["state"]["testRunDurationMs"] / 1000.0, 1e-9)
        tot = max(p + f, 1)
        lines.append(_line("checks_total", f"{p + f:<8} {(p + f) / dur:.2f}/s"))
        lines.append(_line("checks_succeeded", f"{p / tot * 100:.2f}% {p} out of {p + f}"))
        lines.append(_line("checks_failed", f"{f / tot * 100:.2f}%  {f} out of {p + f}"))
        lines.append("")
        for c in checks:
            if c["fails"] == 0:
                lines.append(f"    ✓ {c['name']}")
            else:
                total = c["passes"] + c["fails"]
                pct = c["passes"] / total * 100
                lines.append(f"    ✗ {c['name']}")
                lines.append(f"      ↳  {pct:.0f}% — ✓ {c['passes']} / ✗ {c['fails']}")
        lines.append("")
    for title, group in _CATEGORIES:
        shown = [n for n in group if n in metrics]
        if not shown:
            continue
        lines.append(f"    {title}")
        for n in shown:
            lines.append(_line(n, _metric_text(n, metrics[n], stats)))
            for sub in sorted(k for k in metrics if k.startswith(n + "{")):
                tag = "{ " + sub[len(n) + 1:-1] + " }"
                lines.append(_line("  " + tag, _metric_text(sub, metrics[sub], stats)))
        lines.append("")
    dur = summary["state"]["testRunDurationMs"] / 1000.0
    status = " (aborted by a threshold)" if summary["state"].get("aborted") else ""
    lines.append(f"  test run duration: {dur:.1f}s{status}")
    return "\n".join(lines) + "\n"
