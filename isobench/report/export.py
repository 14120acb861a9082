"""Exports of a run directory: CSV (pandas reads it as it is), JSON, Markdown.

``analysis.json`` (schema :data:`EXPORT_VERSION`) carries the run's set-up and every comparison with
its CI and verdict; ``comparison.md`` is a table ready for a pull-request comment. ``run`` and
``report`` write them into the run directory; ``--export-json/-csv/-markdown PATH`` copies them
where the user wants (as hyperfine and k6 users expect).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from isobench.analysis import verdicts
from isobench.analysis.stats import DEFAULT_METRICS, IDLE_METRICS, is_emulated, scenario_of
from isobench.report import fmt
from isobench.report.rundata import RunData, load_run
from isobench.results import atomic_write_json, atomic_write_text

COMPARISON_FIELDS = (
    "arm", "baseline", "metric", "label", "unit", "better", "emulated", "n_baseline",
    "n_runtime", "ratio", "ci_low", "ci_high", "change_pct", "p", "p_adjusted", "significant",
    "direction", "mde_pct", "verdict", "primary", "verdict_kind", "estimator", "n_pairs",
    "p_tost", "p_tost_adjusted", "rounds_needed",
)


def _write(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path


def write_csv(run_dir: Path, data: RunData | None = None) -> list[Path]:
    """Write ``trials.csv`` (one row per trial, every metric and telemetry figure) and
    ``comparisons.csv`` (one row per arm × metric) into ``run_dir``; return both paths.

    ``arm`` names the arm (before trials format 2 that column was called ``runtime``);
    ``trials.csv``'s ``runtime`` column is the runtime the arm ran (the same name unless the
    arm is a runtime with options of its own)."""
    data = data or load_run(run_dir, with_samples=False)
    specs = {s.name: s for s in (*DEFAULT_METRICS, *IDLE_METRICS)}
    telemetry_keys = sorted({k for t in data.trials for k in t.telemetry})
    base = ["arm", "runtime", "trial", "position", "round", "status", "warmup", "scenario",
            "emulated", "started_at", "ended_at", "error"]
    fields = base + list(specs) + [f"telemetry.{k}" for k in telemetry_keys]
    rows = []
    for t in data.trials:
        row: dict[str, Any] = {
            "arm": t.arm, "runtime": t.runtime_name, "trial": t.trial, "position": t.position,
            "round": t.round,
            "status": t.status, "warmup": t.warmup, "scenario": scenario_of(t) or "",
            "emulated": is_emulated(t) or t.arm in data.analysis.emulated,
            "started_at": t.started_at, "ended_at": t.ended_at, "error": t.error,
        }
        for name, spec in specs.items():
            row[name] = spec.extract(t)
        for k in telemetry_keys:
            row[f"telemetry.{k}"] = t.telemetry.get(k)
        rows.append(row)
    trials_csv = _write(run_dir / "trials.csv", fields, rows)
    comps = []
    groups = [("", data.analysis.comparisons)]
    if data.analysis.idle is not None:
        groups.append(("idle", data.analysis.idle.comparisons))
    for scope, items in groups:
        for c in items:
            lo, hi = c["ci"] if c["ci"] else (None, None)
            comps.append({
                **c, "arm": c["runtime"],
                "metric": f"{scope}.{c['metric']}" if scope else c["metric"],
                "n_baseline": c["n"][0], "n_runtime": c["n"][1], "ci_low": lo, "ci_high": hi,
            })
    comps_csv = _write(run_dir / "comparisons.csv", list(COMPARISON_FIELDS), comps)
    return [trials_csv, comps_csv]


EXPORT_VERSION = 1
"""Version of ``analysis.json``'s outer layout (``{"version", "export_version", "run",
"analysis"}``; ``version`` is the analysis' own schema version)."""


def analysis_document(data: RunData) -> dict[str, Any]:
    """The JSON export: the run's set-up (manifest facts) plus the full analysis."""
    return {
        "version": data.analysis.version,
        "export_version": EXPORT_VERSION,
        "run": {k: data.manifest.get(k) for k in ("run_id", "created_at", "host", "config",
                                                  "resources", "pinning", "artifacts")},
        "analysis": data.analysis.to_json(),
    }


def write_json(run_dir: Path, out: Path | None = None, data: RunData | None = None) -> Path:
    """Write ``analysis.json`` (or ``out``): the manifest's key facts plus the full analysis."""
    data = data or load_run(run_dir, with_samples=False)
    out = out or run_dir / "analysis.json"
    atomic_write_json(out, analysis_document(data))
    json.loads(out.read_text())
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(data: RunData) -> str:
    """A Markdown summary for a pull-request comment: the primary metric per runtime with its
    change, 95 % CI and verdict, then every other metric's change as ``±x % [lo, hi]``."""
    a = data.analysis
    baseline = a.baseline
    metrics = list(a.metrics)
    primary = a.primary or (metrics[0]["name"] if metrics else None)
    ci = f"{(1 - a.alpha) * 100:g} %"
    lines = [
        f"### isobench: {data.manifest.config.workload or '?'} — runtimes vs {baseline}",
        "",
        *[f"- {_md(text)}" for text in verdicts.headline(a.raw)],
        "",
    ]
    meta = next((m for m in metrics if m["name"] == primary), None)
    if meta is not None:
        unit = meta.get("unit", "")
        lines += [f"| runtime | {_md(meta['label'])} (median) | change vs {baseline} [{ci} CI] "
                  "| verdict |", "|---|---:|---:|---|"]
        for rt in a.runtimes:
            entry = a.per_runtime.get(rt, {}).get("metrics", {}).get(primary)
            median = fmt.value(entry["median"], unit) if entry else "\u2013"
            name = f"{rt} (emulated)" if rt in a.emulated else rt
            if rt == baseline:
                lines.append(f"| {_md(name)} | {median} | baseline | |")
                continue
            comp = a.comparison(rt, primary) if primary else None
            verdict = verdicts.kind_text(comp) if comp else "not compared"
            change = verdicts.change_text(comp) if comp and comp.get("ci_pct") else "\u2013"
            lines.append(f"| {_md(name)} | {median} | {change} | {_md(verdict)} |")
    others = [m for m in metrics if m["name"] != primary]
    compared = [rt for rt in a.runtimes if rt != baseline]
    if others and compared:
        lines += ["", f"<details><summary>other metrics (change vs baseline, {ci} CI)</summary>",
                  "", "| metric | " + " | ".join(
                      _md(f"{rt} (emulated)" if rt in a.emulated else rt)
                      for rt in compared) + " |",
                  "|---|" + "---:|" * len(compared)]
        for m in others:
            cells = []
            for rt in compared:
                comp = a.comparison(rt, m["name"])
                cells.append(verdicts.change_text(comp) if comp and comp.get("ci_pct")
                             else "\u2013")
            lines.append(f"| {_md(m['label'])} ({m.get('unit', '')}) | " + " | ".join(cells) + " |")
        lines += ["", "</details>"]
    emulated = list(a.emulated)
    if emulated:
        lines += ["", f"_{', '.join(emulated)}: emulated (no hardware virtualisation) — figures "
                      "shown for completeness, no verdict._"]
    n = {rt: a.per_runtime.get(rt, {}).get("n_trials", 0) for rt in a.runtimes}
    lines += ["", "_trials per runtime: " + ", ".join(f"{rt} {k}" for rt, k in n.items())
              + f"; run `{data.manifest.run_id}`._", ""]
    return "\n".join(lines)


def write_markdown(run_dir: Path, out: Path | None = None, data: RunData | None = None) -> Path:
    """Write ``comparison.md`` (or ``out``): see :func:`markdown`."""
    data = data or load_run(run_dir, with_samples=False)
    out = out or run_dir / "comparison.md"
    atomic_write_text(out, markdown(data))
    return out


def export_to(run_dir: Path, *, json_path: Path | None = None, csv_path: Path | None = None,
              markdown_path: Path | None = None, data: RunData | None = None) -> list[Path]:
    """The ``--export-*`` flags: write the requested formats to the given paths (the CSV is the
    comparisons table); return the paths written."""
    if not (json_path or csv_path or markdown_path):
        return []
    data = data or load_run(run_dir, with_samples=False)
    written: list[Path] = []
    if json_path:
        written.append(write_json(run_dir, json_path, data))
    if markdown_path:
        written.append(write_markdown(run_dir, markdown_path, data))
    if csv_path:
        _, comps = write_csv(run_dir, data)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(csv_path, comps.read_text())
        written.append(csv_path)
    return written
