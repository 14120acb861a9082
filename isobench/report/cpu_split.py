"""Where the CPU goes: per runtime, the host's busy time split into parts, % of one core.

Each cell is the median over the runtime's usable trials (ok, not warm-up) of that part's seconds
divided by the telemetry window (:mod:`isobench.telemetry.cpusplit`): 100 % is one core busy for
the whole window. In each trial the additive parts add up to the host's busy time exactly (``rest
of the host`` is the remainder); medians of parts need not add up to the median total. A trial
whose measured parts exceed the host's busy time beyond the tolerance fails the check, and the
table says how many did. A part missing from a trial (no docker-proxy in that run) counts as 0 in
it; a part no trial of a runtime had is shown as "–".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from rich.console import Console
from rich.table import Table

from isobench.results import TrialRecord
from isobench.telemetry.cpusplit import Split, split

KERNEL_NOTE = {
    1: "kernel interrupt time (/proc/stat), already inside the parts above: this kernel charges "
       "an interrupt to the process it interrupted (tick accounting)",
    0: "kernel interrupt time (/proc/stat), inside 'rest of the host' (IRQ time accounting)",
    -1: "kernel interrupt time (/proc/stat), inside the parts above or the rest (the kernel's "
        "accounting mode is unknown)",
}


@dataclass(frozen=True)
class Row:
    """One line of the table: a label, its kind and a % of one core per runtime (None: –)."""

    label: str
    kind: str  # "total", "part", "within", "kernel"
    cells: dict[str, float | None]


@dataclass(frozen=True)
class SplitTable:
    runtimes: list[str]
    rows: list[Row]
    trials: dict[str, int]
    failed_check: dict[str, int]
    irq_in_processes: int


def _median_row(label: str, kind: str, splits: dict[str, list[Split]], key: str,
                pick: str) -> Row:
    cells: dict[str, float | None] = {}
    for rt, items in splits.items():
        values = []
        present = False
        for s in items:
            parts = {p.key: p for p in getattr(s, pick)}
            part = parts.get(key)
            present = present or part is not None
            values.append(s.percent(part.seconds) if part is not None else 0.0)
        cells[rt] = statistics.median(values) if present and values else None
    return Row(label, kind, cells)


RANKS = ("workload", "helper: ", "daemon: ", "load generator", "isobench itself", "rest")


def _rank(key_label: tuple[str, str]) -> tuple[int, str]:
    """Parts in the order of the split: workload, helpers, daemons, ..., rest last."""
    label = key_label[1]
    return next((i for i, r in enumerate(RANKS) if label.startswith(r)), len(RANKS)), label


def build(trials: Sequence[TrialRecord], order: Sequence[str] = ()) -> SplitTable | None:
    """The table over usable trials, runtimes in ``order`` first; None when no trial has a
    split (runs recorded before it existed)."""
    splits: dict[str, list[Split]] = {}
    for t in trials:
        if t.status != "ok" or t.warmup:
            continue
        s = split(t.telemetry)
        if s is not None and s.wall > 0:
            splits.setdefault(t.arm, []).append(s)
    if not splits:
        return None
    runtimes = [r for r in order if r in splits] + [r for r in splits if r not in order]
    splits = {r: splits[r] for r in runtimes}
    rows = [Row("host total (busy)", "total",
                {r: statistics.median(s.percent(s.busy) for s in items)
                 for r, items in splits.items()})]
    for pick, kind in (("parts", "part"), ("within", "within"), ("kernel", "kernel")):
        labels = dict.fromkeys((p.key, p.label) for items in splits.values() for s in items
                               for p in getattr(s, pick))
        ordered = sorted(labels, key=_rank) if kind == "part" else list(labels)
        new = [_median_row(label, kind, splits, key, pick) for key, label in ordered]
        # the workload's own split right under the workload's row
        if kind == "within":
            rows[2:2] = new
        else:
            rows += new
    modes = {s.irq_in_processes for items in splits.values() for s in items}
    return SplitTable(
        runtimes=runtimes, rows=rows, trials={r: len(v) for r, v in splits.items()},
        failed_check={r: sum(not s.ok for s in v) for r, v in splits.items()},
        irq_in_processes=modes.pop() if len(modes) == 1 else -1)


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _label(row: Row) -> str:
    if row.kind == "within":
        return f"  of the workload: {row.label}"
    if row.kind == "kernel":
        return f"  {row.label}"
    return row.label


def sentences(table: SplitTable) -> list[str]:
    """One line per runtime helper: "docker-bridge: docker-proxy used 38.2 % of a core"."""
    out = []
    for row in table.rows:
        if not row.label.startswith("helper: "):
            continue
        for rt, value in row.cells.items():
            if value is not None:
                out.append(f"{rt}: {row.label.removeprefix('helper: ')} used {value:.1f} % of a "
                           f"core (median of {table.trials[rt]} trials)")
    return out


def checks(table: SplitTable) -> str:
    """The sum check over every trial, one line."""
    bad = {r: n for r, n in table.failed_check.items() if n}
    total = sum(table.trials.values())
    if not bad:
        return (f"parts add up to the host total in each trial; no trial's measured parts exceed "
                f"it beyond the tolerance ({total}/{total} trials)")
    return ("parts EXCEED the host total beyond the tolerance (something counted twice) in: "
            + ", ".join(f"{r} {n}/{table.trials[r]}" for r, n in bad.items()))


def print_cpu_split(console: Console, trials: Sequence[TrialRecord],
                    order: Sequence[str] = ()) -> None:
    """The terminal table (nothing when no trial has a split)."""
    table = build(trials, order)
    if table is None:
        return
    out = Table(title="where the CPU goes (% of one core, median of usable trials)")
    out.add_column("part")
    for rt in table.runtimes:
        out.add_column(f"{rt}\nn={table.trials[rt]}", justify="right")
    kernel_shown = False
    for row in table.rows:
        if row.kind == "kernel" and not kernel_shown:
            out.add_row("[grey50]kernel interrupt time (beside the parts, see below)[/]")
            kernel_shown = True
        style = "bold" if row.kind == "total" else "grey50" if row.kind != "part" else ""
        out.add_row(_label(row), *(_cell(row.cells.get(r)) for r in table.runtimes),
                    style=style)
    console.print(out)
    for line in sentences(table):
        console.print(f"  {line}")
    console.print(f"[grey50]{checks(table)}; {KERNEL_NOTE[table.irq_in_processes]}[/]")


STYLES = {"total": "font-weight:bold", "part": "", "sub": "color:#666;font-size:90%"}
"""Inline styles of the HTML rows (this block needs nothing from report.css)."""


def html_cpu_split(trials: Sequence[TrialRecord], order: Sequence[str] = ()) -> str:
    """The HTML section body ('' when no trial has a split)."""
    table = build(trials, order)
    if table is None:
        return ""
    head = "".join(f"<th>{escape(r)}<br><small>n={table.trials[r]}</small></th>"
                   for r in table.runtimes)
    body = []
    for row in table.rows:
        style = STYLES.get(row.kind, STYLES["sub"])
        cells = "".join(f"<td style=\"text-align:right\">{_cell(row.cells.get(r))}</td>"
                        for r in table.runtimes)
        body.append(f"<tr style=\"{style}\"><td>{escape(_label(row).strip())}</td>{cells}</tr>")
    notes = "".join(f"<li>{escape(s)}</li>" for s in sentences(table))
    return (f"<table class=\"cpu-split\"><thead><tr><th>part (% of one core)</th>{head}</tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + f"<p>{escape(checks(table))}. Kernel rows: "
              f"{escape(KERNEL_NOTE[table.irq_in_processes])}. Each cell is a median over "
              f"trials, so the cells need not add up; in every trial the parts do.</p>")
