"""What ``isobench run`` and ``report`` print to the terminal for one run: the comparison table,
resources, failed trials, ``-v``'s k6 end-of-test summary per arm, and, for an article preset, the
article's figures beside the measured ones (the analysis tables themselves: ``terminal``)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from isobench.analysis.claims import check_claims
from isobench.analysis.stats import EMULATED_VERDICT
from isobench.config.presets import get_preset
from isobench.results import TrialRecord

if TYPE_CHECKING:
    from isobench.report.rundata import RunData


def median_trial(trials: list[TrialRecord]) -> TrialRecord | None:
    """The trial whose request rate is the median of the runtime's trials (the one to show)."""
    ok = [t for t in trials if t.status == "ok"]
    if not ok:
        return None
    rates = [t.metric("http_reqs", "rate") or 0.0 for t in ok]
    target = statistics.median_low(rates)
    return ok[rates.index(target)]


def print_k6_summaries(console: Console, trials: list[TrialRecord], emulated: set[str]) -> None:
    from isobench.load.summary import render_summary

    for runtime in dict.fromkeys(t.arm for t in trials):
        trial = median_trial([t for t in trials if t.arm == runtime])
        if trial is None or not trial.load.get("metrics"):
            continue
        tag = f"  [yellow]({EMULATED_VERDICT})[/]" if runtime in emulated else ""
        console.rule(f"[bold]{runtime}[/]{tag}  median trial #{trial.trial + 1}", align="left")
        console.print(render_summary(trial.load), highlight=False, markup=False)


def print_claims(console: Console, preset_name: str, data: RunData, emulated: set[str]) -> None:
    preset = get_preset(preset_name)
    sizes = {rt: size for rt in preset.sides.values()
             if (size := data.manifest.image_size(rt)) is not None}
    checks = check_claims(preset, data.trials, sizes, {r: True for r in emulated})
    table = Table(title=f"{preset.name}: {preset.title}", show_lines=True)
    for col in (
        "claim",
        "article VM",
        "article container",
        "isobench VM",
        "isobench container",
        "verdict",
    ):
        table.add_column(col)
    for c in checks:

        def fmt(v: float | None, unit: str = c.unit) -> str:
            if v is None:
                return "—"
            if unit == "bytes":
                return f"{v / 1e9:.2f} GB"
            return f"{v:,.3g} {unit}"

        vm_rt = c.runtimes.get("vm", "vm")
        # a size is a size: only measured behaviour is marked emulated
        vm_tag = " (emulated)" if vm_rt in emulated and c.unit != "bytes" else ""
        table.add_row(
            c.label,
            fmt(c.article.get("vm")),
            fmt(c.article.get("container")),
            fmt(c.measured.get("vm")) + vm_tag,
            fmt(c.measured.get("container")),
            c.verdict,
        )
    console.print(table)
    if preset.note:
        console.print(f"[dim]{preset.note}[/]")


def _kb_per_s(value: float) -> str:
    """``92,587.52`` KB/s → ``92.6 MB/s``; ``21.2`` → ``21.2 KB/s``."""
    if value >= 1000:
        return f"{value / 1000:,.1f} MB/s"
    return f"{value:.1f} KB/s"


RESOURCE_COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("host CPU % of a core", "cpu_percent_mean", lambda v: f"{v:.2f}"),
    ("user CPU %", "cpu_user_percent", lambda v: f"{v:.2f}"),
    ("memory (RSS peak)", "rss_bytes_peak", lambda v: f"{v / 2**20:,.0f} MiB"),
    ("guest user CPU %", "guest_cpu_user_percent_mean", lambda v: f"{v:.2f}"),
    ("guest tasks", "guest_tasks_mean", lambda v: f"{v:.0f}"),
    ("network in+out", "net_kb_per_s", _kb_per_s),
)
"""The resource view (the second article's figures), per runtime: medians over its trials."""


def _resource_value(trial: TrialRecord, key: str) -> float | None:
    from isobench.analysis.claims import DERIVED

    if key in DERIVED:
        return DERIVED[key](trial)
    value = trial.telemetry.get(key)
    return None if value is None else float(value)


def print_resources(console: Console, trials: list[TrialRecord], emulated: set[str],
                    order: list[str]) -> None:
    """Host-view CPU, memory and network per runtime (and the VM guest's own view), runtimes in
    the analysis' ``order`` (baseline first, emulated last)."""
    ok = [t for t in trials if t.status == "ok" and t.telemetry]
    if not ok:
        return
    table = Table(title="what each runtime costs the host (median of trials; guest: inside the VM)")
    table.add_column("runtime")
    cols = [c for c in RESOURCE_COLUMNS if any(_resource_value(t, c[1]) is not None for t in ok)]
    for label, *_ in cols:
        table.add_column(label, justify="right")
    present = list(dict.fromkeys(t.arm for t in ok))
    for runtime in [r for r in order if r in present] + [r for r in present if r not in order]:
        mine = [t for t in ok if t.arm == runtime]
        cells = []
        for _, key, form in cols:
            values = [v for t in mine if (v := _resource_value(t, key)) is not None]
            cells.append(form(statistics.median(values)) if values else "–")
        name = runtime + (" (emulated)" if runtime in emulated else "")
        table.add_row(name, *cells)
    console.print(table)


def print_run(console: Console, run_dir: Path, *, verbose: bool = False,
              data: RunData | None = None) -> bool:
    """Print a finished (or interrupted) run: the verdicts and comparison first, then what each
    runtime costs, the article's claims (presets) and failed trials; the k6 end-of-test summary of
    each runtime's median trial only when ``verbose``. True when a trial or threshold failed.

    ``data`` is the run as :func:`isobench.report.rundata.load_run` read and analysed it (loaded
    here when not given), so a command that also writes files analyses once."""
    from isobench.report.cpu_split import print_cpu_split
    from isobench.report.rundata import load_run
    from isobench.report.terminal import print_comparison

    data = data or load_run(run_dir)
    trials = data.trials
    emulated = {t.arm for t in trials if t.facts.get("emulated")}
    if verbose:
        print_k6_summaries(console, trials, emulated)
    print_comparison(console, data.analysis, data.manifest)
    print_resources(console, trials, emulated, list(data.analysis.runtimes))
    print_cpu_split(console, trials, list(data.analysis.runtimes))
    if data.manifest.config.preset:
        print_claims(console, data.manifest.config.preset, data, emulated)
    failed = [t for t in trials if t.status != "ok"]
    for t in failed:
        console.print(f"[red]failed[/] {t.arm} #{t.trial + 1}: {escape(t.error or '')}")
    thresholds_failed = any(
        not outcome.get("ok", True)
        for t in trials
        for outcomes in (t.load.get("thresholds") or {}).values()
        if isinstance(outcomes, dict)
        for outcome in outcomes.values()
        if isinstance(outcome, dict)
    )
    return bool(failed) or thresholds_failed
