"""What ``isobench run`` prints at the end: a k6 summary per runtime, the comparison table, and,
for an article preset, the article's figures beside the measured ones."""

from __future__ import annotations

import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

from isobench.claims import check_claims
from isobench.presets import get_preset
from isobench.results import RunStore, TrialRecord


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

    for runtime in dict.fromkeys(t.runtime for t in trials):
        trial = median_trial([t for t in trials if t.runtime == runtime])
        if trial is None or not trial.load.get("metrics"):
            continue
        tag = "  [yellow](emulated — not comparable)[/]" if runtime in emulated else ""
        console.rule(f"[bold]{runtime}[/]{tag}  median trial #{trial.trial + 1}", align="left")
        console.print(render_summary(trial.load), highlight=False, markup=False)


def print_claims(console: Console, preset_name: str, store: RunStore, emulated: set[str]) -> None:
    preset = get_preset(preset_name)
    manifest = store.read_manifest()
    sizes = (manifest.get("artifacts") or {}).get("sizes") or {}
    checks = check_claims(preset, store.trials(), sizes, {r: True for r in emulated})
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
        vm_tag = " (emulated)" if vm_rt in emulated else ""
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


def print_run(console: Console, run_dir: Path) -> bool:
    """Print a finished (or interrupted) run; True when a trial failed or a threshold failed."""
    from isobench.report.rundata import load_run
    from isobench.report.terminal import print_comparison

    store = RunStore(run_dir)
    data = load_run(run_dir)
    trials = store.trials()
    emulated = {t.runtime for t in trials if t.facts.get("emulated")}
    print_k6_summaries(console, trials, emulated)
    print_comparison(console, data.analysis, data.manifest)
    preset = (data.manifest.get("config") or {}).get("preset")
    if preset:
        print_claims(console, preset, store, emulated)
    failed = [t for t in trials if t.status != "ok"]
    for t in failed:
        console.print(f"[red]failed[/] {t.runtime} #{t.trial + 1}: {t.error}")
    thresholds_failed = any(
        not outcome.get("ok", True)
        for t in trials
        for outcomes in (t.load.get("thresholds") or {}).values()
        if isinstance(outcomes, dict)
        for outcome in outcomes.values()
        if isinstance(outcome, dict)
    )
    return bool(failed) or thresholds_failed
