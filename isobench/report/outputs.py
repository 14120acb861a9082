"""What ``run`` and ``report`` write after the trials, and the gates they judge.

One place so both commands produce the same files: ``report.html``, ``trials.csv``,
``comparisons.csv``, ``analysis.json``, ``comparison.md`` in the run directory; the user's
``--export-*`` copies; then the ``--fail-if`` gates (see :mod:`isobench.analysis.gates`), whose
results are printed and written to ``gates.json``. Returns the exit code the gates decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from isobench import exitcodes
from isobench.analysis import gates
from isobench.report.export import export_to, write_csv, write_json, write_markdown
from isobench.report.rundata import RunData, load_run
from isobench.results import atomic_write_json
from isobench.results_model import Analysis


@dataclass(frozen=True)
class OutputRequest:
    """Which files to write and which gates to judge (from the command line)."""

    html: bool = True
    export_json: Path | None = None
    export_csv: Path | None = None
    export_markdown: Path | None = None
    fail_if: Sequence[str] = ()


def write_outputs(
    console: Console, run_dir: Path, request: OutputRequest, data: RunData | None = None
) -> int:
    """Write every output of ``run_dir`` and judge the gates; return OK or GATE_FAILED.

    The run is read and analysed once (``data``, from :func:`load_run`, or loaded here) and that
    one :class:`~isobench.results_model.Analysis` is handed to every writer and to the gates.
    """
    checked = gates.parse_gates(request.fail_if)  # bad gates fail before anything is written
    if data is None or (request.html and not data.samples):
        data = load_run(run_dir, with_samples=request.html)  # the HTML draws the time series
    written: list[Path] = []
    if request.html:
        from isobench.report.html import write_html

        written.append(write_html(run_dir, data))
    written += write_csv(run_dir, data)
    written.append(write_json(run_dir, data=data))
    written.append(write_markdown(run_dir, data=data))
    written += export_to(run_dir, json_path=request.export_json, csv_path=request.export_csv,
                         markdown_path=request.export_markdown, data=data)
    console.print("wrote " + ", ".join(str(p) for p in written), highlight=False)
    return judge_gates(console, checked, data.analysis, run_dir / "gates.json")


def judge_gates(
    console: Console, checked: Sequence[gates.Gate], analysis: Analysis, out: Path | None
) -> int:
    """Print each gate's outcome (and write them to ``out``); GATE_FAILED if any failed."""
    if not checked:
        return exitcodes.OK
    results = gates.evaluate(checked, analysis)
    style = {"passed": "green", "failed": "red", "skipped": "yellow"}
    for r in results:
        console.print(f"[{style[r.status]}]gate {r.status}[/] {r.gate.text} ({r.runtime}, "
                      f"{r.metric}): {r.reason}", highlight=False)
    if out is not None:
        atomic_write_json(out, {"version": 1, "gates": gates.to_json(results)})
    return exitcodes.GATE_FAILED if gates.failed(results) else exitcodes.OK
