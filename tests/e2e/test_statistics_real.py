"""The statistics on real runs: an A/A run finds no difference; an injected, known slowdown (a CPU
quota of 80 % on one arm) is found, with the right size inside its CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _run(tmp_path: Path, bench: str, *flags: str) -> dict:
    path = tmp_path / "bench.yaml"
    path.write_text(bench)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "isobench.cli", "run", "-f", str(path), "--out", str(out),
         "--no-report", *flags],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((out / "summary.json").read_text())


def _rps(summary: dict, runtime: str) -> dict:
    for c in summary["comparisons"]:
        if c["runtime"] == runtime and c["metric"] == "rps":
            return c
    raise AssertionError(f"no rps comparison for {runtime}: {summary['comparisons']}")


def test_aa_run_finds_no_difference(tmp_path: Path, need_root: None) -> None:
    summary = _run(
        tmp_path,
        "workload: burn\nruntimes: [native]\ntrials: 5\nduration: 3s\nwarmup: 1s\naa: true\n",
    )
    assert {c["runtime"] for c in summary["comparisons"]} == {"native-b"}
    significant = [c for c in summary["comparisons"] if c["significant"]]
    assert significant == [], significant


def test_injected_cpu_quota_is_detected_with_its_size(tmp_path: Path, need_root: None) -> None:
    summary = _run(
        tmp_path,
        "workload: burn\ntrials: 5\nduration: 4s\nwarmup: 1s\n"
        "arms:\n  full: {runtime: native}\n  quota80: {runtime: native, cpu_quota: 0.8}\n",
    )
    rps = _rps(summary, "quota80")
    assert rps["significant"], rps
    low, high = rps["ci"]
    assert low <= 0.8 <= high or abs(rps["ratio"] - 0.8) < 0.05, rps
    assert high < 0.95, rps
