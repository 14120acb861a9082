"""Plots as inline SVG strings (matplotlib, Agg backend, no network, no files)."""

from __future__ import annotations

import io
import re
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from isobench.load.hdr import LogHistogram
from isobench.report import fmt
from isobench.results import Sample, TrialRecord
from isobench.results_model import Analysis

PALETTE = ("#1f5fa8", "#d1495b", "#2e933c", "#b07a16", "#6f4aa1", "#00798c", "#8c564b")
EMULATED_COLOR = "#9a9a9a"
plt.rcParams.update({
    "font.family": "DejaVu Sans", "font.size": 9, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.color": "#e6e6e6", "svg.fonttype": "none",
    "axes.titlesize": 10, "axes.titleweight": "bold",
})


def colors(runtimes: Sequence[str], emulated: Sequence[str]) -> dict[str, str]:
    out, i = {}, 0
    for rt in runtimes:
        if rt in emulated:
            out[rt] = EMULATED_COLOR
        else:
            out[rt] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def to_svg(fig: Figure) -> str:
    """Render a figure to an inline ``<svg>`` element and close it."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:]
    return re.sub(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"', r"\1", svg, count=1)


def metric_bars(analysis: Analysis, metric: str, title: str, unit: str) -> str | None:
    """Median per runtime with its bootstrap 95 % CI as an error bar."""
    runtimes = [rt for rt in analysis.runtimes
                if metric in analysis.per_runtime.get(rt, {}).get("metrics", {})]
    if not runtimes:
        return None
    col = colors(analysis.runtimes, analysis.emulated)
    med, err_lo, err_hi = [], [], []
    for rt in runtimes:
        entry = analysis.per_runtime[rt]["metrics"][metric]
        m = entry["median"]
        lo, hi = entry["ci"] or (m, m)
        med.append(m)
        err_lo.append(max(0.0, m - lo))
        err_hi.append(max(0.0, hi - m))
    fig, ax = plt.subplots(figsize=(5.2, 0.55 * len(runtimes) + 0.9))
    y = range(len(runtimes))
    bars = ax.barh(list(y), med, xerr=[err_lo, err_hi], color=[col[r] for r in runtimes],
                   capsize=4, height=0.6, error_kw={"ecolor": "#333", "lw": 1})
    for bar, rt in zip(bars, runtimes, strict=True):
        if rt in analysis.emulated:
            bar.set_hatch("///")
            bar.set_edgecolor("#666")
    ax.set_yticks(list(y), [f"{r} (emulated)" if r in analysis.emulated else r
                            for r in runtimes])
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title, loc="left")
    for i, m in enumerate(med):
        ax.text(m + err_hi[i], i, f"  {fmt.value(m)}", va="center", fontsize=8)
    ax.margins(x=0.15)
    ax.grid(axis="y", visible=False)
    return to_svg(fig)


def size_bars(sizes: Mapping[str, int | None], emulated: Sequence[str]) -> str | None:
    items = [(rt, s) for rt, s in sizes.items() if s]
    if not items:
        return None
    col = colors([rt for rt, _ in items], emulated)
    fig, ax = plt.subplots(figsize=(5.2, 0.55 * len(items) + 0.9))
    mib = [s / 2**20 for _, s in items]
    ax.barh(range(len(items)), mib, color=[col[rt] for rt, _ in items], height=0.6)
    ax.set_yticks(range(len(items)), [rt for rt, _ in items])
    ax.invert_yaxis()
    ax.set_xlabel("MiB")
    ax.set_title("Image size (artifact each runtime runs)", loc="left")
    for i, v in enumerate(mib):
        ax.text(v, i, f"  {v:,.0f} MiB", va="center", fontsize=8)
    ax.margins(x=0.18)
    ax.grid(axis="y", visible=False)
    return to_svg(fig)


def _percentile_key(stat: str) -> float | None:
    if stat == "med":
        return 50.0
    match = re.fullmatch(r"p\(([\d.]+)\)", stat)
    return float(match.group(1)) if match else None


LATENCY_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99)
"""Percentiles drawn on the latency chart, where the data holds enough requests for them."""


def merged_latency(trials: Sequence[TrialRecord]) -> dict[str, LogHistogram]:
    """Per runtime, the request-duration histograms of its usable trials merged into one."""
    out: dict[str, LogHistogram] = {}
    for t in trials:
        if t.status != "ok" or t.warmup:
            continue
        wire = (t.load.get("histograms") or {}).get("http_req_duration")
        if not wire or not wire.get("count"):
            continue
        hist = LogHistogram.from_dict(wire)
        if t.arm in out:
            out[t.arm].merge(hist)
        else:
            out[t.arm] = hist
    return out


def _curve_from_summaries(trials: Sequence[TrialRecord]) -> dict[str, dict[float, float]]:
    """Older runs without histograms: the median over trials of each summary percentile."""
    per_rt: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t in trials:
        entry = t.load.get("metrics", {}).get("http_req_duration") or {}
        dur = entry.get("values", entry)  # k6's shape {"values": {...}}, or a flat one
        for stat, v in dur.items():
            q = _percentile_key(stat)
            if q is not None and v is not None:
                per_rt[t.arm][q].append(float(v))
    return {rt: {q: sorted(v)[len(v) // 2] for q, v in qs.items()} for rt, qs in per_rt.items()}


def latency_curves(trials: Sequence[TrialRecord], analysis: Analysis) -> str | None:
    """Latency percentiles p50 … p99.99, one line per runtime, log-scaled "nines" x-axis.

    From the merged histograms of each runtime's trials (every request counts once); a
    percentile is drawn only where the runtime served at least 10 requests beyond it. Runs
    recorded before histograms were kept fall back to the median over trials of each summary
    percentile.
    """
    merged = merged_latency(trials)
    if merged:
        curves = {
            rt: {q: h.percentile(q) for q in LATENCY_PERCENTILES if h.count * (1 - q / 100) >= 10}
            for rt, h in merged.items()
        }
        title = "Latency percentiles (all requests of all trials)"
    else:
        curves = _curve_from_summaries(trials)
        title = "Latency percentiles (median over trials)"
    curves = {rt: c for rt, c in curves.items() if c}
    if not curves:
        return None
    col = colors(analysis.runtimes, analysis.emulated)
    fig, ax = plt.subplots(figsize=(5.6, 3.3))
    ticks: set[float] = set()
    for rt in analysis.runtimes:
        if rt not in curves:
            continue
        qs = sorted(curves[rt])
        xs = [-_log10(100 - q) for q in qs]
        ys = [curves[rt][q] for q in qs]
        ticks.update(qs)
        style = "--" if rt in analysis.emulated else "-"
        label = f"{rt} (emulated)" if rt in analysis.emulated else rt
        ax.plot(xs, ys, style, marker="o", ms=3.5, color=col.get(rt), label=label)
    ordered = sorted(ticks)
    ax.set_xticks([-_log10(100 - q) for q in ordered], [f"p{q:g}" for q in ordered])
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylabel("latency, ms (log)")
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=8)
    return to_svg(fig)


def _log10(x: float) -> float:
    import math

    return math.log10(max(x, 1e-6))


def startup_strip(trials: Sequence[TrialRecord], analysis: Analysis) -> str | None:
    """Every trial's startup time as a dot, the median as a bar."""
    runtimes = [rt for rt in analysis.runtimes
                if any(t.arm == rt and t.startup_s is not None for t in trials)]
    if not runtimes:
        return None
    col = colors(analysis.runtimes, analysis.emulated)
    fig, ax = plt.subplots(figsize=(5.2, 0.55 * len(runtimes) + 0.9))
    for i, rt in enumerate(runtimes):
        vals = sorted(t.startup_s for t in trials if t.arm == rt and t.startup_s is not None)
        ax.scatter(vals, [i] * len(vals), color=col[rt], s=18, alpha=0.75, zorder=3)
        mid = vals[len(vals) // 2]
        ax.plot([mid, mid], [i - 0.3, i + 0.3], color="#222", lw=2, zorder=4)
        ax.text(max(vals), i, f"   {mid:.3g} s", va="center", fontsize=8)
    ax.set_yticks(range(len(runtimes)), runtimes)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g} s"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("seconds, launch to first HTTP 200 (log)")
    ax.set_title("Startup time (dots: trials, bar: median)", loc="left")
    ax.margins(x=0.2)
    ax.grid(axis="y", visible=False)
    return to_svg(fig)


SERIES = {
    # metric: (title, unit kind) — the second article's graphs first; unit kinds scale below
    "cpu_percent": ("CPU, % of one core (host view)", "%"),
    "cpu_user_percent": ("CPU user time, % of one core", "%"),
    "rss_bytes": ("Memory (resident set)", "bytes"),
    "net_rx_rate": ("Network received", "B/s"),
    "net_tx_rate": ("Network sent", "B/s"),
    "load_rate": ("Requests served per second", "req/s"),
    "load_p95": ("p95 latency per second", "ms"),
    "disk_write_rate": ("Disk writes", "B/s"),
    "cpu_system_percent": ("CPU system time, % of one core", "%"),
    "mem_cgroup_bytes": ("Memory (cgroup)", "bytes"),
}
"""Time series shown in the report, in this order, with a human title and their unit."""


def _scale(unit: str, peak: float) -> tuple[float, str]:
    """(divisor, unit shown) so the axis reads in plain numbers: KB/s or MB/s, MiB or GiB."""
    if unit == "B/s":
        return (1e6, "MB/s") if peak >= 1e6 else (1e3, "KB/s")
    if unit in ("bytes", "B"):
        return (2**30, "GiB") if peak >= 2**30 else (2**20, "MiB")
    return 1.0, unit


def _by_second(items: Sequence[Sample]) -> dict[int, float]:
    """A trial's samples as whole seconds since its first sample → value (last one wins)."""
    t0 = min(s.timestamp for s in items)
    return {round(s.timestamp - t0): s.value for s in items}


def time_series(
    samples: Sequence[Sample], analysis: Analysis, max_metrics: int = 8
) -> list[tuple[str, str]]:
    """One chart per time-series metric: per runtime the median over its trials second by
    second, with a band from the lowest to the highest trial. Host view where a sample has a
    ``source``; metrics that stay at zero are left out. Returns ``[(metric, svg)]``."""
    groups: dict[str, dict[tuple[str, Any], list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for s in samples:
        meta = s.metadata
        if s.metric not in SERIES or "runtime" not in meta \
                or meta.get("source", "host") not in ("host", "load"):
            continue
        groups[s.metric][(meta["runtime"], meta.get("trial"))].append(s)
    series = {m: g for m, g in groups.items()
              if max(len(v) for v in g.values()) >= 3
              and any(s.value != 0 for v in g.values() for s in v)}
    chosen = sorted(series, key=lambda m: list(SERIES).index(m))[:max_metrics]
    col = colors(analysis.runtimes, analysis.emulated)
    out = []
    for metric in chosen:
        title, unit = SERIES[metric]
        peak = max(abs(s.value) for v in series[metric].values() for s in v)
        div, shown = _scale(unit, peak)
        per_rt: dict[str, list[dict[int, float]]] = defaultdict(list)
        for (rt, _trial), items in series[metric].items():
            per_rt[rt].append(_by_second(items))
        fig, ax = plt.subplots(figsize=(5.6, 2.9))
        for rt in [r for r in analysis.runtimes if r in per_rt]:
            seconds = sorted({t for trial in per_rt[rt] for t in trial})
            rows = [[trial[t] / div for trial in per_rt[rt] if t in trial] for t in seconds]
            med = [float(np.median(r)) for r in rows]
            label = f"{rt} (emulated)" if rt in analysis.emulated else rt
            color = col.get(rt, "#444")
            ax.fill_between(seconds, [min(r) for r in rows], [max(r) for r in rows],
                            color=color, alpha=0.15, lw=0)
            ax.plot(seconds, med, color=color, lw=1.4, label=label,
                    ls="--" if rt in analysis.emulated else "-")
        ax.set_xlabel("seconds since the trial's measurement started")
        ax.set_ylabel(shown)
        ax.set_ylim(bottom=0)
        ax.set_title(f"{title}, {shown}", loc="left")
        ax.legend(frameon=False, fontsize=8, ncol=2)
        out.append((metric, to_svg(fig)))
    return out


def change_chart(analysis: Analysis) -> str | None:
    """Every comparison as % change vs the baseline with its 95 % CI, the primary metric first.

    Red: worse, green: better, blue: equivalent within the margin (shaded band), grey:
    inconclusive. Emulated runtimes are left out (they decide nothing).
    """
    comps = [c for c in analysis.comparisons
             if not c["emulated"] and c.get("ratio") is not None and c.get("ci_pct")]
    if not comps:
        return None
    names = analysis.metric_names
    comps.sort(key=lambda c: (not c.get("primary"), c["metric"] != analysis.primary,
                              names.index(c["metric"]) if c["metric"] in names else 99,
                              c["runtime"]))
    palette = {"better": "#2e933c", "worse": "#c0392b", "equivalent": "#1f5fa8",
               "none": "#8a8a8a"}
    fig, ax = plt.subplots(figsize=(6.0, 0.3 * len(comps) + 1.1))
    margin = 100.0 * analysis.margin
    ax.axvspan(-margin, margin, color="#1f5fa8", alpha=0.08, lw=0)
    for i, c in enumerate(comps):
        lo, hi = c["ci_pct"]
        kind = "equivalent" if c.get("verdict_kind") == "equivalent" else c.get("direction",
                                                                               "none")
        color = palette.get(kind, palette["none"])
        ax.plot([lo, hi], [i, i], color=color, lw=2.2, solid_capstyle="butt")
        ax.plot([c["change_pct"]], [i], "o", color=color, ms=4)
    ax.axvline(0.0, color="#333", lw=0.8)
    labels = [f"{c['runtime']} \u00b7 {c['label']}" + (" (primary)" if c.get("primary") else "")
              for c in comps]
    ax.set_yticks(range(len(comps)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:+g} %"))
    ci = f"{(1 - analysis.alpha) * 100:g} %"
    ax.set_xlabel(f"change vs {analysis.baseline}, % ({ci} CI; band: \u00b1{margin:g} % "
                  "margin)")
    ax.set_title("Every comparison: change vs the baseline", loc="left")
    ax.grid(axis="y", visible=False)
    return to_svg(fig)


GUEST_VIEWS = (
    # (title, host metric, guest metrics summed, scale, unit)
    ("CPU", "cpu_percent", ("guest_cpu_user_percent", "guest_cpu_system_percent"), 1.0,
     "% of one CPU"),
    ("memory", "rss_bytes", ("guest_mem_used_bytes",), 2**20, "MiB"),
)


def guest_vs_host(samples: Sequence[Sample]) -> list[tuple[str, str]]:
    """For each VM runtime, CPU and memory over time as the host pays them (every QEMU thread,
    QEMU's RSS) beside what the guest sees inside (its own /proc) — where the second article's
    "mpstat inside the VM" figure comes from. Two SVGs per runtime that has guest samples."""
    series: dict[tuple[str, str, Any], dict[float, float]] = defaultdict(dict)
    wanted = {m for _, host, guest, _, _ in GUEST_VIEWS for m in (host, *guest)}
    vm_runtimes = set()
    for s in samples:
        meta = s.metadata
        if s.metric not in wanted:
            continue
        source = meta.get("source", "host")
        if source == "guest":
            vm_runtimes.add(str(meta.get("runtime")))
        key = (s.metric, str(meta.get("runtime")), meta.get("trial"))
        series[key][s.timestamp] = s.value
    out = []
    for runtime in sorted(vm_runtimes):
        for title, host_metric, guest_metrics, scale, unit in GUEST_VIEWS:
            fig, ax = plt.subplots(figsize=(5.6, 2.9))
            trials = sorted({t for (m, rt, t) in series if rt == runtime and m == host_metric},
                            key=str)
            drawn = False
            for trial in trials:
                host = series.get((host_metric, runtime, trial), {})
                guest: dict[float, float] = defaultdict(float)
                for m in guest_metrics:
                    for ts, v in series.get((m, runtime, trial), {}).items():
                        guest[ts] += v
                if not host or not guest:
                    continue
                t0 = min(min(host), min(guest))
                for points, color, label in ((guest, "#d97706", "inside the guest"),
                                             (host, "#1d4ed8", "what the host pays")):
                    times = sorted(points)
                    ax.plot([t - t0 for t in times], [points[t] / scale for t in times],
                            color=color, lw=1.1, alpha=0.8, label=None if drawn else label)
                drawn = True
            if not drawn:
                plt.close(fig)
                continue
            ax.set_xlabel("seconds since trial start")
            ax.set_ylabel(unit)
            ax.set_title(f"{runtime}: {title}, guest view vs host view", loc="left")
            ax.legend(frameon=False, fontsize=8)
            out.append((f"{runtime}-{title}", to_svg(fig)))
    return out


WATERFALL_COLORS = {"worse": "#d1495b", "better": "#2e933c", "none": "#9aa5b1",
                    "total": "#1f5fa8"}


def waterfall(ladder: Mapping[str, Any], baseline: str) -> str | None:
    """An ``isobench explain`` ladder as a waterfall: one row per step, its bar running from the
    cumulative ratio before the step to the one after it (red worse, green better, grey when
    the step's 95 % CI includes 1), the step's CI as an error bar at its end (scaled by the
    cumulative ratio before it); the last row is the end-to-end ratio measured directly.

    ``ladder`` is :meth:`isobench.analysis.ladder.LadderResult.to_json`. None when no step
    has a ratio.
    """
    steps = [s for s in ladder.get("steps", [])]
    if not steps or all(s.get("ratio") is None for s in steps):
        return None
    better = ladder.get("better", "higher")
    rows: list[tuple[str, float, float, tuple[float, float] | None, str, str]] = []
    before = 1.0
    for s in steps:
        ratio = s.get("ratio")
        if ratio is None or s.get("low") is None or s.get("high") is None:
            rows.append((s["label"], before, before, None, "none", "too few trials"))
            continue
        after = before * ratio
        ci: tuple[float, float] | None = (before * s["low"], before * s["high"])
        kind = {"slower": "worse", "faster": "better"}.get(s.get("verdict", ""), "none")
        text = (f"{fmt_pct(ratio)} [{fmt_pct(s['low'])}, {fmt_pct(s['high'])}]")
        rows.append((s["label"], before, after, ci, kind, text))
        before = after
    total = ladder.get("total") or {}
    if total.get("ratio") is not None:
        rows.append((f"end to end, measured: {total['arm']}", 1.0, total["ratio"],
                     (total["low"], total["high"]), "total",
                     f"{fmt_pct(total['ratio'])} [{fmt_pct(total['low'])}, "
                     f"{fmt_pct(total['high'])}]"))
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(rows) + 1.2))
    for i, (_, start, end, ci, kind, text) in enumerate(rows):
        left, width = min(start, end), abs(end - start)
        ax.barh(i, max(width, 1e-4), left=left, height=0.6, color=WATERFALL_COLORS[kind],
                edgecolor="#555" if kind == "total" else "none")
        if ci is not None:
            ax.errorbar([end], [i], xerr=[[max(0.0, end - ci[0])], [max(0.0, ci[1] - end)]],
                        fmt="none", ecolor="#333", capsize=3, lw=1)
        if i + 1 < len(rows) and rows[i + 1][4] != "total":
            ax.plot([end, end], [i + 0.3, i + 0.7], color="#777", lw=0.8, ls=":")
        ax.text(1.02, i, text, va="center", fontsize=8, transform=ax.get_yaxis_transform(),
                fontweight="bold" if kind == "total" else "normal")
    ax.axvline(1.0, color="#333", lw=0.8)
    ax.set_yticks(range(len(rows)), [_short(r[0]) for r in rows], fontsize=8)
    ax.invert_yaxis()
    unit = ladder.get("metric_label", ladder.get("metric", ""))
    ax.set_xlabel(f"{unit}, ratio to {baseline} ({'higher' if better == 'higher' else 'lower'} "
                  "is better)")
    ax.set_title(f"Where the gap comes from: {unit}, each step's change [95 % CI]",
                 loc="left")
    ax.margins(x=0.08)
    ax.grid(axis="y", visible=False)
    return to_svg(fig)


def fmt_pct(ratio: float) -> str:
    """A ratio as a signed percent change: 0.873 → ``−12.7 %``."""
    return f"{(ratio - 1) * 100:+.1f} %".replace("-", "\u2212")


def _short(text: str, width: int = 46) -> str:
    """A label on at most two lines of ``width`` characters."""
    lines = textwrap.wrap(text, width, break_on_hyphens=False)
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder="\u2026")]
    return "\n".join(lines)
