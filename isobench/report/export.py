"""CSV and JSON exports of a run directory (pandas reads the CSVs as they are)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from isobench.report.rundata import load_run
from isobench.results import atomic_write_json
from isobench.stats import DEFAULT_METRICS, IDLE_METRICS, is_emulated, scenario_of

COMPARISON_FIELDS = (
    "runtime", "baseline", "metric", "label", "unit", "better", "emulated", "n_baseline",
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


def write_csv(run_dir: Path) -> list[Path]:
    """Write ``trials.csv`` (one row per trial, every metric and telemetry figure) and
    ``comparisons.csv`` (one row per runtime × metric) into ``run_dir``; return both paths."""
    data = load_run(run_dir, with_samples=False)
    specs = {s.name: s for s in (*DEFAULT_METRICS, *IDLE_METRICS)}
    telemetry_keys = sorted({k for t in data.trials for k in t.telemetry})
    base = ["runtime", "trial", "position", "round", "status", "warmup", "scenario", "emulated",
            "started_at", "ended_at", "error"]
    fields = base + list(specs) + [f"telemetry.{k}" for k in telemetry_keys]
    rows = []
    for t in data.trials:
        row: dict[str, Any] = {
            "runtime": t.runtime, "trial": t.trial, "position": t.position, "round": t.round,
            "status": t.status, "warmup": t.warmup, "scenario": scenario_of(t) or "",
            "emulated": is_emulated(t) or t.runtime in data.analysis["emulated"],
            "started_at": t.started_at, "ended_at": t.ended_at, "error": t.error,
        }
        for name, spec in specs.items():
            row[name] = spec.extract(t)
        for k in telemetry_keys:
            row[f"telemetry.{k}"] = t.telemetry.get(k)
        rows.append(row)
    trials_csv = _write(run_dir / "trials.csv", fields, rows)
    comps = []
    groups = [("", data.analysis["comparisons"])]
    if "idle" in data.analysis:
        groups.append(("idle", data.analysis["idle"]["comparisons"]))
    for scope, items in groups:
        for c in items:
            lo, hi = c["ci"] if c["ci"] else (None, None)
            comps.append({
                **c, "metric": f"{scope}.{c['metric']}" if scope else c["metric"],
                "n_baseline": c["n"][0], "n_runtime": c["n"][1], "ci_low": lo, "ci_high": hi,
            })
    comps_csv = _write(run_dir / "comparisons.csv", list(COMPARISON_FIELDS), comps)
    return [trials_csv, comps_csv]


def write_json(run_dir: Path) -> Path:
    """Write ``analysis.json``: the manifest's key facts plus the full analysis."""
    data = load_run(run_dir, with_samples=False)
    out = run_dir / "analysis.json"
    atomic_write_json(out, {
        "version": data.analysis["version"],
        "run": {k: data.manifest.get(k) for k in ("run_id", "created_at", "host", "config",
                                                  "resources", "pinning", "artifacts")},
        "analysis": data.analysis,
    })
    json.loads(out.read_text())
    return out
