"""Before/after: the same runtime in two runs, ratio B/A with a bootstrap CI per metric."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from isobench.analysis.stats import (
    DEFAULT_METRICS,
    analyze,
    assign_verdicts,
    change_text,
    kind_text,
    usable,
)
from isobench.report import fmt
from isobench.report.rundata import load_run
from isobench.results import TrialRecord

ALPHA = 0.05

STYLES = {"better": "green", "worse": "red", "ns": "grey50", "emulated": "yellow", "none": ""}


def compare_runs(run_a: Path, run_b: Path, *, seed: int = 0, min_effect: float = 0.05) -> dict:
    """Compare every runtime present in both runs: ratio B/A of medians with CI per metric.

    Each runtime's trials from run A become arm ``<rt>@A`` and from run B ``<rt>@B``; the
    analysis of :func:`isobench.analysis.stats.analyze` runs per runtime with A as the baseline,
    unpaired (the two runs' rounds share no time), with run A's primary metric and margin; then
    :func:`isobench.analysis.stats.assign_verdicts` decides them all together: each runtime's
    primary comparison alone, Holm over every secondary (runtime × metric) comparison.

    Returns:
        ``{"run_a", "run_b", "runtimes", "primary", "comparisons": [...], "method", "warnings"}``
        (``primary``: the primary metric the gates' ``primary`` means) where each
        comparison carries ``runtime`` (the plain name), ``metric``, ``ratio``, ``ci``,
        ``change_pct``, ``verdict_kind``, ``significant``, ``direction`` and ``verdict``.
    """
    a, b = load_run(run_a, with_samples=False), load_run(run_b, with_samples=False)
    common = [rt for rt in a.analysis.runtimes if rt in b.analysis.runtimes]
    trials: list[TrialRecord] = []
    emulated = set(a.analysis.emulated) | set(b.analysis.emulated)
    for tag, data in (("A", a), ("B", b)):
        for t in usable(data.trials):
            if t.arm in common:
                trials.append(_relabel(t, f"{t.arm}@{tag}"))
    comparisons: list[dict[str, Any]] = []
    warnings: list[str] = []
    method: dict[str, Any] = {}
    config = a.manifest.config
    margin = config.margin
    primary = ""
    # One analysis per runtime (its A arm is the baseline), then the verdicts over the union.
    for rt in common:
        mine = [t for t in trials if t.arm in (f"{rt}@A", f"{rt}@B")]
        result = analyze(mine, baseline=f"{rt}@A", metrics=DEFAULT_METRICS, seed=seed,
                         min_effect=min_effect, emulated=[f"{rt}@A", f"{rt}@B"]
                         if rt in emulated else [], primary=config.primary,
                         margin=margin, paired=False)
        primary = result["primary"] or primary
        method = result["method"]
        warnings += result["warnings"]
        for c in result["comparisons"]:
            comparisons.append({**c, "runtime": rt, "baseline": f"{rt}@A", "emulated": False,
                                "emulated_runtime": rt in emulated})
    warnings = setup_differences(a.manifest, b.manifest) + warnings
    family = assign_verdicts(comparisons, alpha=ALPHA, margin=margin)
    return {
        "run_a": str(run_a), "run_b": str(run_b), "runtimes": common, "primary": primary or None,
        "only_in_a": [rt for rt in a.analysis.runtimes if rt not in common],
        "only_in_b": [rt for rt in b.analysis.runtimes if rt not in common],
        "comparisons": comparisons, "warnings": warnings,
        "method": {**method, "multiple_comparisons": (
            f"primary metric ({primary}) of each runtime tested alone at \u03b1 = {ALPHA}; "
            f"Holm\u2013Bonferroni over the {family} secondary comparisons (runtime \u00d7 "
            f"metric), family-wise \u03b1 = {ALPHA}: a secondary difference is significant only "
            "when its adjusted p < \u03b1; CIs shown are unadjusted 95 %")},
    }


SETUP_KEYS = (
    ("workload", ("config", "workload")), ("scenario", ("config", "scenario")),
    ("workload options", ("config", "workload_options")), ("resources", ("resources",)),
    ("pinning", ("pinning",)), ("host CPU", ("host", "cpu_model")), ("kernel", ("host", "kernel")),
    ("image", ("artifacts", "key")),
)
"""What must match for a before/after comparison to isolate one change."""


def setup_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """One warning per set-up difference between two runs' manifests (besides the change the
    user made on purpose, each one is a second variable in the comparison)."""
    out = []
    for label, path in SETUP_KEYS:
        va: Any = a
        vb: Any = b
        for key in path:
            va = va.get(key) if isinstance(va, Mapping) else None
            vb = vb.get(key) if isinstance(vb, Mapping) else None
        if va != vb:
            out.append(f"the runs differ in {label}: the comparison measures that too")
    return out


def _relabel(t: TrialRecord, name: str) -> TrialRecord:
    return TrialRecord(**{**t.__dict__, "arm": name})


def print_run_comparison(console: Console, result: dict) -> None:
    """Print the before/after table: per runtime and metric, B/A with CI and the verdict."""
    table = Table(title=f"B/A: {result['run_b']} vs {result['run_a']}", header_style="bold")
    for col, justify in (("runtime", "left"), ("metric", "left"), ("B/A [95 % CI]", "right"),
                         ("change", "right"), ("verdict", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in result["comparisons"]:
        style = STYLES[fmt.status_of(c)]
        name = c["runtime"] + (" (emulated)" if c.get("emulated_runtime") else "")
        change = change_text(c) if c.get("change_pct") is not None else "\u2013"
        table.add_row(name, c["label"], fmt.ratio_cell(c), change, kind_text(c), style=style)
    console.print(table)
    for rt in result["only_in_a"] + result["only_in_b"]:
        console.print(f"[grey50]{rt}: present in one run only, not compared[/]")
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"[grey50]multiple comparisons: {result['method']['multiple_comparisons']}[/]")
