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
    """A CFS quota of 0.8 CPU on one arm. The expected throughput ratio is 0.8 over the CPU share
    the unlimited arm really used (a server at 94 % of a core loses 0.8/0.94, not 0.8): the
    detected ratio's CI must hold that expected size, and the slowdown must be significant."""
    summary = _run(
        tmp_path,
        "workload: burn\ntrials: 6\nduration: 4s\nwarmup: 1s\n"
        "arms:\n  full: {runtime: native}\n  quota80: {runtime: native, cpu_quota: 0.8}\n",
    )
    rps = _rps(summary, "quota80")
    assert rps["significant"] and rps["direction"] == "worse", rps
    used = summary["per_runtime"]["full"]["metrics"]["cpu_percent"]["median"] / 100.0
    assert used > 0.8, f"the unlimited arm used only {used:.0%} of a core: no quota to hit"
    expected = 0.8 / min(used, 1.0)
    low, high = rps["ci"]
    assert low <= expected <= high or abs(rps["ratio"] - expected) < 0.03, (expected, rps)
