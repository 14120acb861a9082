"""``isobench suite micro``: the classic native/container/VM micro-benchmark table, one command.

Each benchmark (a workload plug-in of ``isobench.workloads.micro``) is its own interleaved run into
``<out>/<benchmark>/`` (the ordinary :class:`isobench.run.orchestrator.RunOrchestrator`: same
trials, pinning, statistics). The suite then reads every run back
(``isobench.report.rundata.load_run``, which analyses each with its workload's own metrics) and
builds ONE table: a row per benchmark metric, a column per runtime holding the ratio of medians to
the baseline with its 95 % CI and the verdict; emulated runtimes (a VM under TCG) are labelled and
make no claim. The table is printed and written as ``<out>/suite.md`` and ``<out>/suite.json``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobench.config.presets import MICRO_BENCHMARKS
from isobench.config.presets import SUITE_DEFAULT_RUNTIMES as DEFAULT_RUNTIMES
from isobench.errors import ConfigError, IsobenchError
from isobench.results_model import Analysis

SUITES = {"micro": MICRO_BENCHMARKS}
FULL = {"duration": "10s", "warmup": "2s", "trials": 5}
QUICK = {"duration": "3s", "warmup": "1s", "trials": 3}
SUITE_VERSION = 1


@dataclass(frozen=True)
class SuitePlan:
    """What ``isobench suite`` runs: benchmarks × runtimes, each run's benchfile overrides, and
    the workload options of the benchmarks that have some (``--option fio.fio_buffer=huge``)."""

    suite: str
    benchmarks: tuple[str, ...]
    runtimes: tuple[str, ...]
    out: Path
    overrides: Mapping[str, Any]
    workload_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def benchfile_data(self, benchmark: str) -> dict[str, Any]:
        data = {**self.overrides, "workload": benchmark, "runtimes": list(self.runtimes)}
        if self.workload_options.get(benchmark):
            data["workload_options"] = dict(self.workload_options[benchmark])
        return data


def parse_options(items: Sequence[str], known: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["fio.fio_buffer=huge", "redis.clients=100"]`` → ``{"fio": {"fio_buffer": "huge"},
    "redis": {"clients": 100}}`` (each value read as a YAML scalar, as in a benchfile), or a
    one-line ConfigError naming the form or the benchmarks ``known``. Pure."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, eq, raw = item.partition("=")
        bench, dot, key = target.partition(".")
        if not (eq and dot and bench and key):
            raise ConfigError(f"--option {item!r} is not BENCHMARK.OPTION=VALUE",
                              fix="e.g. --option fio.fio_buffer=huge")
        if bench not in known:
            raise ConfigError(f"--option {item!r}: no benchmark {bench!r} in this suite",
                              fix=f"one of: {', '.join(known)}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        out.setdefault(bench, {})[key] = value
    return out


def check_options(options: Mapping[str, Mapping[str, Any]], benchmarks: Sequence[str]) -> None:
    """A one-line ConfigError, before anything is built, when a benchmark's options are not
    its workload's (:meth:`Workload.check_options`), name a benchmark the run leaves out, or
    cannot run here (its ``check()``, e.g. ``fio_buffer: huge`` with no huge page free)."""
    from isobench import plugins

    for bench, opts in options.items():
        if bench not in benchmarks:
            raise ConfigError(f"--option names {bench}, which this run leaves out",
                              fix=f"add {bench} to --only or drop its --option")
        cls = plugins.load("workload", bench)
        cls.check_options(opts)
        reason = cls(opts).check()
        if reason:
            raise ConfigError(f"{bench}: {reason}")


def plan_suite(
    suite: str,
    runtimes: Sequence[str] | None,
    only: Sequence[str] | None,
    out: Path,
    *,
    quick: bool = False,
    trials: int | None = None,
    extra: Mapping[str, Any] | None = None,
    options: Sequence[str] = (),
    telemetry: bool = False,
) -> SuitePlan:
    """Validate the request (unknown suite/benchmark → ConfigError naming the valid ones;
    ``options``, ``BENCHMARK.OPTION=VALUE`` items, as :func:`parse_options` and
    :func:`check_options` take them).

    Without ``telemetry`` the trials run no sampler: the table holds only the benchmarks' own
    figures, and isobench's sampling (on the load generator's CPUs, beside the clients) cost
    the server figures 3-7 % on the 2-core host (``benchmarks/micro_byhand.py
    --with-telemetry-too``, ``benchmarks/observer_effect.py``). With it, each benchmark's run
    directory also gets the CPU split and resource figures."""
    if suite not in SUITES:
        raise ConfigError(f"unknown suite '{suite}'", fix=f"use one of: {', '.join(SUITES)}")
    known = SUITES[suite]
    benchmarks = tuple(only) if only else known
    bad = [b for b in benchmarks if b not in known]
    if bad:
        raise ConfigError(f"suite {suite} has no benchmark {', '.join(bad)}",
                          fix=f"--only takes some of: {', '.join(known)}")
    overrides: dict[str, Any] = dict(QUICK if quick else FULL)
    if not telemetry:
        overrides["telemetry"] = {"samplers": []}
    if trials is not None:
        overrides["trials"] = trials
    overrides.update({k: v for k, v in (extra or {}).items() if v is not None})
    workload_options = parse_options(options, known)
    check_options(workload_options, benchmarks)
    return SuitePlan(suite, benchmarks, tuple(runtimes or DEFAULT_RUNTIMES), out, overrides,
                     workload_options)


# --- the table ------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:,.{min(digits, 3)}f}"


def cell_text(cell: Mapping[str, Any] | None) -> str:
    """``0.97 [0.95, 0.99] worse`` / ``1.00 [0.98, 1.02] ≈`` / ``emulated`` / ``—``."""
    if not cell:
        return "\u2014"
    if cell.get("ratio") is None:
        return f"no figure ({cell.get('note', 'no trials')})"
    text = f"{cell['ratio']:.2f}"
    if cell.get("ci"):
        text += f" [{cell['ci'][0]:.2f}, {cell['ci'][1]:.2f}]"
    return f"{text} {cell['mark']}"


MARKS = {"slower": "worse", "faster": "better", "emulated": "emulated",
         "too_few": "too few trials", "inconclusive": "inconclusive"}


def _mark(comparison: Mapping[str, Any]) -> str:
    """The cell's verdict word, from the analysis' three-way verdict (``verdict_kind``)."""
    kind = str(comparison.get("verdict_kind", "inconclusive"))
    if kind == "equivalent":
        return f"\u2248 (within \u00b1{comparison.get('margin_pct', 5):g} %)"
    return MARKS.get(kind, kind)


def build_table(
    runs: Mapping[str, Mapping[str, Any]], runtimes: Sequence[str], baseline: str = "native"
) -> dict[str, Any]:
    """The suite table from each benchmark's analysis (pure).

    Args:
        runs: benchmark → ``{"analysis": <its Analysis>, "dir": str}`` or
            ``{"error": "<one line>"}`` when the benchmark could not run at all.
        runtimes: the columns, in order (the baseline's is its median, the others' ratios).
        baseline: the runtime the ratios are to.

    Returns:
        ``{"baseline", "runtimes", "emulated", "rows": [{"benchmark", "metric", "label", "unit",
        "better", "baseline": {"median", "ci", "n"}, "cells": {rt: {...}}}], "errors"}``.
    """
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    failed: dict[str, dict[str, int]] = {}
    emulated: set[str] = set()
    for bench, run in runs.items():
        if "error" in run:
            errors[bench] = str(run["error"])
            continue
        analysis: Analysis = run["analysis"]
        emulated |= set(analysis.emulated)
        per_runtime = analysis.per_runtime
        for rt, info in per_runtime.items():
            if info.get("n_failed"):
                failed.setdefault(bench, {})[rt] = int(info["n_failed"])
        if not analysis.metrics:
            errors[bench] = "no trial produced a figure"
        for metric in analysis.metrics:
            name = metric["name"]
            base = ((per_runtime.get(baseline) or {}).get("metrics") or {}).get(name)
            row: dict[str, Any] = {
                "benchmark": bench, "metric": name, "label": metric.get("label", name),
                "unit": metric.get("unit", ""), "better": metric.get("better"),
                "baseline": None if base is None else
                {"median": base["median"], "ci": base.get("ci"), "n": base["n"]},
                "cells": {},
            }
            for rt in runtimes:
                if rt == baseline:
                    continue
                comp = analysis.comparison(rt, name)
                if comp is None or comp.get("ratio") is None:
                    n_failed = int((per_runtime.get(rt) or {}).get("n_failed", 0))
                    n_base, n_ok = (0, 0) if comp is None else (comp.get("n") or [0, 0])
                    mine = (((per_runtime.get(rt) or {}).get("metrics") or {}).get(name) or {})
                    note = no_figure_note(int(n_ok), n_failed, n_base=int(n_base),
                                          median=mine.get("median"))
                    row["cells"][rt] = {"ratio": None, "note": note, "n_ok": int(n_ok),
                                        "n_failed": n_failed}
                    continue
                row["cells"][rt] = {
                    "ratio": comp.get("ratio"), "ci": comp.get("ci"),
                    "significant": comp.get("significant"), "direction": comp.get("direction"),
                    "emulated": bool(comp.get("emulated")), "p_adjusted": comp.get("p_adjusted"),
                    "n": comp.get("n"), "verdict": comp.get("verdict"), "mark": _mark(comp),
                }
            rows.append(row)
    return {"version": SUITE_VERSION, "baseline": baseline, "runtimes": list(runtimes),
            "emulated": sorted(emulated), "rows": rows, "errors": errors, "failed": failed,
            "complete": not errors and not failed}


def no_figure_note(n_ok: int, n_failed: int, *, n_base: int = 2,
                   median: float | None = None) -> str:
    """Why a cell has no ratio: ``3 trials failed`` / ``1 ok trial, 2 failed: too few for a
    ratio`` / ``no trials`` / ``median 0: no ratio (a figure of 0 or below on one side)``. A
    ratio needs at least two ok trials on each side (``n_base``: the baseline's) and figures
    above 0 (the ratio is estimated on logarithms: 0 retransmits have none)."""
    if not n_ok:
        plural = "s" if n_failed != 1 else ""
        return f"{n_failed} trial{plural} failed" if n_failed else "no trials"
    if n_ok < 2 or n_base < 2:
        failed = f", {n_failed} failed" if n_failed else ""
        return f"{n_ok} ok trial{'s' if n_ok > 1 else ''}{failed}: too few for a ratio"
    where = f"median {median:.3g}: " if median is not None else ""
    return f"{where}no ratio (a figure of 0 or below on one side)"


def column_title(runtime: str, emulated: Sequence[str]) -> str:
    return f"{runtime} (emulated)" if runtime in emulated else runtime


def markdown(table: Mapping[str, Any]) -> str:
    """The table as Markdown (what ``suite.md`` holds)."""
    base, emulated = table["baseline"], table["emulated"]
    others = [rt for rt in table["runtimes"] if rt != base]
    head = ["benchmark", "metric", f"{base} (median)",
            *(f"{column_title(rt, emulated)} ÷ {base}" for rt in others)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        b = row["baseline"]
        base_text = "\u2014" if b is None else f"{_fmt(b['median'])} {row['unit']}".strip()
        cells = [cell_text(row["cells"].get(rt)) for rt in others]
        lines.append("| " + " | ".join([row["benchmark"], row["label"], base_text, *cells]) + " |")
    notes = [
        "",
        f"Each cell: ratio runtime ÷ {base} [95 % CI] and the verdict: better/worse (the CI "
        "excludes 1; each benchmark's first metric is its primary, tested alone, the others "
        "after Holm\u2013Bonferroni), \u2248 (equivalent: the 90 % CI lies within the margin), "
        "inconclusive (neither: more trials would decide). Whether higher or lower is better "
        "depends on the metric (ops/s, MB/s: higher; latency, seconds: lower).",
    ]
    if "settings" in table:
        sampled = table["settings"].get("telemetry", {}).get("samplers") != []
        notes.append("Telemetry: " + (
            "on (each benchmark's run directory has its CPU split and resource figures; "
            "isobench's sampling shares the load generator's CPUs with the clients)." if sampled
            else "off (no sampler ran during the trials: the figures are the benchmarks' own, "
            "undisturbed; --telemetry adds the CPU split and resource figures)."))
    options = table.get("workload_options") or {}
    if options:
        notes.append("Workload options (`--option`): " + "; ".join(
            f"{bench}: " + ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))
            for bench, opts in sorted(options.items())) + ".")
    if emulated:
        notes.append(f"{', '.join(emulated)}: emulated (no hardware virtualisation here, TCG): "
                     "figures shown, no claim made.")
    for bench, error in table["errors"].items():
        notes.append(f"{bench}: did not run: {error}")
    for bench, counts in table.get("failed", {}).items():
        shown = ", ".join(f"{rt} {n}" for rt, n in sorted(counts.items()))
        notes.append(f"{bench}: failed trials ({shown}); reasons in {bench}/trials.jsonl")
    return "\n".join(lines + notes) + "\n"


def print_table(console: Any, table: Mapping[str, Any]) -> None:
    """The table on a rich console (the same content as ``suite.md``)."""
    from rich.table import Table

    base, emulated = table["baseline"], table["emulated"]
    others = [rt for rt in table["runtimes"] if rt != base]
    out = Table(title=f"isobench suite {table.get('suite', '')}: ratio to {base} [95 % CI]")
    out.add_column("benchmark")
    out.add_column("metric")
    out.add_column(f"{base} (median)", justify="right")
    for rt in others:
        out.add_column(column_title(rt, emulated), justify="right")
    for row in table["rows"]:
        b = row["baseline"]
        base_text = "\u2014" if b is None else f"{_fmt(b['median'])} {row['unit']}".strip()
        out.add_row(row["benchmark"], row["label"], base_text,
                    *(cell_text(row["cells"].get(rt)) for rt in others))
    console.print(out)
    for line in markdown(table).split("\n\n", 1)[1].strip().splitlines():
        console.print(line, highlight=False)


# --- running it -----------------------------------------------------------------------------------


EventsFactory = Callable[[str], Any]


def run_suite(
    plan: SuitePlan, events_for: EventsFactory, say: Callable[[str], None]
) -> dict[str, Any]:
    """Run every benchmark of ``plan`` (one RunOrchestrator each), then write and return the table.

    A benchmark that cannot run at all (its build or a runtime check fails) is recorded in the
    table's ``errors`` and the suite goes on; failed trials stay in their run directories and
    show as such in their cells. Ctrl-C propagates (the orchestrator has already stopped
    everything).
    """
    from isobench.config.benchfile import load_benchfile
    from isobench.report.rundata import load_run
    from isobench.results import RunStore, atomic_write_json, atomic_write_text
    from isobench.run.orchestrator import RunOrchestrator

    plan.out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Any]] = {}
    started = time.time()
    walls: dict[str, float] = {}
    baseline = "native"
    for bench in plan.benchmarks:
        bench_file = load_benchfile(None, plan.benchfile_data(bench))
        baseline = bench_file.baseline_runtime
        run_dir = plan.out / bench
        say(f"{bench}: {', '.join(plan.runtimes)} → {run_dir}")
        t0 = time.time()
        affinity = os.sched_getaffinity(0)  # the orchestrator pins this process to its load CPUs
        try:
            with events_for(bench) as events:
                RunOrchestrator(bench_file, RunStore(run_dir), events).run()
            data = load_run(run_dir, with_samples=False)
            runs[bench] = {"analysis": data.analysis, "dir": str(run_dir)}
        except IsobenchError as exc:
            runs[bench] = {"error": str(exc)}
            say(f"{bench}: did not run: {exc}")
        finally:
            os.sched_setaffinity(0, affinity)
        walls[bench] = time.time() - t0
    table = build_table(runs, plan.runtimes, baseline)
    table["suite"] = plan.suite
    table["wall_s"] = {"total": time.time() - started, **walls}
    table["settings"] = dict(plan.overrides)
    table["workload_options"] = {b: dict(o) for b, o in plan.workload_options.items()}
    table["runs"] = {b: r.get("dir") for b, r in runs.items()}
    atomic_write_json(plan.out / "suite.json", table)
    atomic_write_text(plan.out / "suite.md", markdown(table))
    return table
