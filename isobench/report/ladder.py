"""The ``isobench explain`` ladder in the reports: a terminal table and an HTML section with a
waterfall chart. A run directory holds a ladder when ``ladder.json`` (written by
``isobench.run.explain``) is beside its manifest; the effects are recomputed from the trials, as
every report does."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isobench.analysis.ladder import LadderResult, Step, agreement_text, analyze_ladder
from isobench.analysis.metrics import IDLE_METRICS
from isobench.analysis.verdicts import interval, pct
from isobench.report import plots
from isobench.report.rundata import RunData, metric_specs_from_manifest

LADDER_FILE = "ladder.json"
WRAP = ' style="white-space:normal"'
VERDICT_WORDS = {"slower": "worse", "faster": "better", "equivalent": "equivalent",
                 "inconclusive": "inconclusive", "too_few": "too few trials"}


def read_ladder(run_dir: Path) -> dict[str, Any] | None:
    """The ladder definition of a run (``ladder.json``), or None when the run has none."""
    path = run_dir / LADDER_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def ladder_result(data: RunData, ladder: Mapping[str, Any]) -> LadderResult | None:
    """The ladder's effects on the run's primary metric, from the run's trials."""
    primary = data.analysis.primary
    specs = {s.name: s for s in (*metric_specs_from_manifest(data.manifest), *IDLE_METRICS)}
    spec = specs.get(str(primary))
    steps = [Step(s["arm"], s["label"], s.get("note", "")) for s in ladder.get("steps", [])]
    if spec is None or len(steps) < 2:
        return None
    config = data.manifest.get("config") or {}
    seed = int((data.manifest.get("plan") or {}).get("seed", 0) or 0)
    return analyze_ladder(data.trials, steps, spec, seed=seed,
                          margin=float(config.get("margin", 0.05)),
                          alpha=float(config.get("alpha", 0.05)))


def _change(ratio: float | None, low: float | None, high: float | None) -> str:
    if ratio is None or low is None or high is None:
        return "\u2013"
    return f"{pct((ratio - 1) * 100)} % {interval((low - 1) * 100, (high - 1) * 100)}"


def ladder_lines(result: LadderResult, ladder: Mapping[str, Any]) -> list[str]:
    """The terminal table: one line per step (ratio to the step before, 95 % CI, verdict),
    the end-to-end line, the product check and the notes."""
    steps = ladder.get("steps", [])
    width = max(len(s["label"]) for s in steps) + 2
    lines = [f"{result.metric_label} ({result.better} is better), each step vs the one before:",
             f"{'step':<{width}} {'arm':<15} {'ratio':>6}  {'change [95 % CI]':<26} verdict"]
    lines.append(f"{steps[0]['label']:<{width}} {steps[0]['arm']:<15} {'1':>6}  "
                 f"{'baseline':<26}")
    for s in (*result.steps, result.total):
        ratio = "\u2013" if s.ratio is None else f"{s.ratio:.3f}"
        label = s.label if s is not result.total else "end to end"
        lines.append(f"{label:<{width}} {s.arm:<15} {ratio:>6}  "
                     f"{_change(s.ratio, s.low, s.high):<26} {VERDICT_WORDS.get(s.verdict, '')}")
    lines.append(agreement_text(result))
    lines += [f"note: {n}" for n in (*ladder.get("notes", []), *result.notes)]
    return lines


def ladder_section(data: RunData) -> str:
    """The HTML section of a ladder run ("" for other runs)."""
    ladder = read_ladder(data.root)
    result = ladder_result(data, ladder) if ladder else None
    if ladder is None or result is None:
        return ""
    e = html.escape
    chart = plots.waterfall(result.to_json(), ladder["steps"][0]["arm"])
    by_arm = {s["arm"]: s for s in ladder["steps"]}
    rows = []
    for s in (*result.steps, result.total):
        spec = by_arm.get(s.arm, {}) if s is not result.total else {}
        what = ", ".join(f"{k}={v}" for k, v in (spec.get("options") or {}).items())
        if spec.get("client"):
            what += (", " if what else "") + f"client={spec['client']}"
        cls = {"slower": "worse", "faster": "better"}.get(s.verdict, "ns")
        ratio = "\u2013" if s.ratio is None else f"{s.ratio:.3f}"
        rows.append(
            f"<tr><th class=\"rt\">"
            f"{e(s.label if s is not result.total else 'end to end (measured)')}"
            f"<small{WRAP}>{e(s.note)}</small></th><td>{e(s.arm)}<small{WRAP}>"
            f"{e(spec.get('runtime', ''))} {e(what)}</small></td>"
            f"<td class=\"{cls}\">{e(ratio)}<small>"
            f"{e(_change(s.ratio, s.low, s.high))}</small></td>"
            f"<td class=\"{cls}\">{e(VERDICT_WORDS.get(s.verdict, ''))}</td></tr>")
    table = ("<div class=\"scroll\"><table class=\"verdict\"><thead><tr><th>step</th>"
             "<th>arm<small>runtime, options</small></th><th>ratio to the step before"
             "<small>95 % CI</small></th><th>verdict</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table></div>")
    notes = "".join(f"<li>{e(n)}</li>" for n in (*ladder.get("notes", []), *result.notes))
    check = agreement_text(result)
    banner = "note" if result.agree else "banner warn"
    inner = (f"<p class=\"note\">From <b>{e(ladder.get('from', ''))}</b> to "
             f"<b>{e(ladder.get('to', ''))}</b>, one layer a step, every step an arm of this "
             "interleaved run; each ratio is paired by round with the step before.</p>"
             + (f"<figure class=\"plot\">{chart}</figure>" if chart else "") + table
             + f"<p class=\"{banner}\">{e(check)}</p><ul class=\"note\">{notes}</ul>")
    return f"<section><h2>Why is it slower? Step by step</h2>{inner}</section>"
