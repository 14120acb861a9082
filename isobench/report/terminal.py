"""The comparison table in the terminal (rich)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from isobench.analysis.sequential import half_width_pct
from isobench.analysis.stats import (
    EMULATED_VERDICT,
    runtime_sentence,
    short_verdict,
)
from isobench.analysis.verdicts import level
from isobench.report import fmt
from isobench.report.rundata import network_paths_text
from isobench.results_model import Analysis, as_manifest

STYLES = {"better": "green", "worse": "red", "ns": "grey50", "emulated": "yellow", "none": ""}
KIND_STYLES = {"slower": "red", "faster": "green", "equivalent": "cyan", "inconclusive": "grey50",
               "emulated": "yellow", "too_few": "grey50"}
COLUMNS = (
    ("rps", "req/s"), ("p50_ms", "p50"), ("p95_ms", "p95"), ("block_lag_p95_ms", "block lag p95"),
    ("idle_cpu_percent", "idle CPU"), ("mem_peak_mib", "memory"), ("startup_s", "startup"),
)


def _metric_cell(analysis: Analysis, runtime: str, metric: str, unit: str) -> Text:
    entry = analysis.per_runtime.get(runtime, {}).get("metrics", {}).get(metric)
    if entry is None:
        return Text("\u2013", style="grey50")
    text = Text(fmt.value(entry["median"]))
    if runtime == analysis.baseline:
        text.append("\nbaseline\n", style="grey50")
        return text
    comp = analysis.comparison(runtime, metric)
    if comp is not None and comp.get("ratio") is not None:
        style = STYLES[fmt.status_of(comp)]
        lo, hi = comp["ci"]
        text.append(f"\n\u00d7{fmt.ratio(comp['ratio'])}", style=style)
        text.append(f"\n[{fmt.ratio(lo)}, {fmt.ratio(hi)}]", style=style or "grey50")
    return text


def _verdict(analysis: Analysis, runtime: str) -> Text:
    """The primary verdict, then the secondary metrics that differ after Holm."""
    if runtime == analysis.baseline:
        return Text("baseline", style="grey50")
    comps = [c for c in analysis.comparisons if c["runtime"] == runtime]
    if not comps:
        return Text("no data to compare", style="grey50")
    if any(c["emulated"] for c in comps):
        return Text(EMULATED_VERDICT, style="bold yellow")
    out = Text()
    main = analysis.primary_comparison(runtime)
    if main is not None:
        out.append(short_verdict(main), style=KIND_STYLES.get(main["verdict_kind"], ""))
    for c in comps:
        if not c.get("primary") and c.get("verdict_kind") in ("slower", "faster"):
            out.append("\n" if out else "")
            out.append(short_verdict(c), style=STYLES[c["direction"]])
    return out


def print_headline(console: Console, analysis: Analysis) -> None:
    """One plain sentence per runtime: its primary comparison's verdict."""
    primary = next((m for m in analysis.metrics if m.get("primary")), None)
    if primary is None:
        return
    margin = analysis.margin * 100
    console.print(f"[bold]verdict[/] on {primary['label']} (primary metric; equivalence margin "
                  f"\u00b1{margin:g} %):")
    for rt in analysis.runtimes:
        text = runtime_sentence(analysis.raw, rt)
        if text is None:
            continue
        comp = analysis.primary_comparison(rt)
        kind = comp["verdict_kind"] if comp else "too_few"
        console.print(Text("  " + text, style=KIND_STYLES.get(kind, "")))
    widths = half_widths(analysis)
    if widths:
        console.print("  CI half-width (precision of each verdict): " + ", ".join(widths))


def half_widths(analysis: Analysis) -> list[str]:
    """``docker-bridge ±4.1 % (95 % CI)`` per compared, non-emulated runtime: half the width
    of its primary ratio's CI on the log scale (what ``--precision`` targets)."""
    out = []
    for rt in analysis.runtimes:
        comp = analysis.primary_comparison(rt)
        if comp is None or comp.get("emulated"):
            continue
        hw = half_width_pct(comp.get("ci"))
        if hw is not None:
            out.append(f"{rt} \u00b1{hw:.1f} % ({level(comp)} CI)")
    return out


def print_comparison(
    console: Console, analysis: Analysis, manifest: Mapping[str, Any]
) -> None:
    """Print the one comparison table, the host-noise line and the method lines.

    Args:
        console: where to print.
        analysis: the run's analysis (:func:`isobench.analysis.stats.analyze`, typed).
        manifest: the run's manifest (for image sizes and the workload name).
    """
    baseline = analysis.baseline
    print_headline(console, analysis)
    units = {m["name"]: m["unit"] for m in analysis.metrics}
    run = as_manifest(manifest)
    title = f"isobench \u2014 {run.config.workload or 'workload'} vs {baseline}"
    table = Table(title=title, title_style="bold", show_lines=True, header_style="bold")
    table.add_column("runtime", no_wrap=True)
    shown = [(m, label) for m, label in COLUMNS if m in units]
    primary = analysis.primary
    if primary in units and all(m != primary for m, _ in shown):
        shown.insert(0, (str(primary), analysis.metric_label(primary)))
    for m, label in shown:
        unit = "" if units[m] == label else f" {units[m]}"
        star = " (primary)" if m == primary else ""
        table.add_column(f"{label}{unit}{star}", justify="right", no_wrap=True)
    table.add_column("image", justify="right", no_wrap=True)
    table.add_column("verdict: primary; secondaries that differ (Holm)", min_width=22)
    base_size = run.image_size(baseline)
    for rt in analysis.runtimes:
        info = analysis.per_runtime.get(rt, {})
        name = Text(rt, style="bold")
        if info.get("emulated"):
            name.append(" (emulated)", style="yellow")
        name.append(f"\nn={info.get('n_trials', 0)}", style="grey50")
        if info.get("n_failed"):
            name.append(f", {info['n_failed']} failed", style="red")
        cells = [_metric_cell(analysis, rt, m, units[m]) for m, _ in shown]
        size = run.image_size(rt)
        size_text = Text(fmt.human_bytes(size))
        if size is not None and base_size and rt != baseline:
            size_text.append(f"\n\u00d7{size / base_size:.2f}", style="grey50")
        table.add_row(name, *cells, size_text, _verdict(analysis, rt))
    console.print(table)
    noise = analysis.noise
    parts = []
    for rt in analysis.runtimes:
        cv = noise.get(rt, {}).get("primary_cv")
        if cv is not None:
            parts.append(f"{rt} {cv * 100:.1f} %")
    if parts:
        metric = next(iter(noise.values())).get("primary_metric", "")
        console.print(f"[bold]host noise[/] (CV of {metric}): " + ", ".join(parts))
    paths = network_paths_text(manifest)
    if paths:
        console.print(f"[bold]network path[/]: {paths}")
    for warning in analysis.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    method = analysis.method
    console.print(f"[grey50]verdicts: {method.get('verdicts', '')}[/]")
    console.print(f"[grey50]multiple comparisons: {method.get('multiple_comparisons', '')}[/]")
    console.print(f"[grey50]CIs: {method.get('ratio', '')}[/]")
