"""The statistics on real runs, against effects whose size is known exactly.

* **A/A** (the baseline twice): no comparison may be significant at a family-wise
  α = 0.001 (Holm-adjusted p < 0.001 with a CI excluding 1). Holm controls the family-wise
  error at any level, so a correct tool fails one run with probability ≤ 0.1 %; a failed run gets
  one independent rerun (another plan seed), so the test fails ≤ 0.1 %² = 10⁻⁶ of CI runs.
* **A known work effect** (``isobench calibrate --work-units 56 --factors 2``): one arm does ×2
  the CPU work per request of the burn workload's ``/work`` loop, so its req/s ratio is known in
  advance, ``(c0 + a·u)/(c0 + 2·a·u)`` ∈ [0.500, ~0.515] (``isobench.run.calibrate``: c0, the fixed
  cost of a request, is measured to be ≤ 2–6 % of one on the shared 2-core host). The truth must
  lie in the reported 95 % CI widened to twice its half-widths. A simulation of the tool's own
  ``stats.ratio_ci`` (6 trials an arm, 2000 runs each, normal and heavy-tailed t₃ noise) found
  the plain 95 % CI missing the truth in 3.7 % / 4.5 % of runs and the doubled CI in 0.20 % /
  0.25 %; with one independent rerun when the first run fails, a correct tool fails
  ≈ 0.25 %² ≈ 6·10⁻⁶ of CI runs. The effect must also be significant (Holm over ~10 metrics:
  p < 0.005 for the smallest): Welch's t on the log values has the noncentrality
  ln 2 / (CV·√(2/6)), and a one-run miss has probability 10⁻¹⁰ at a trial-to-trial CV of 10 %,
  3·10⁻⁴ at 15 % (and 3 % at 20 %: the shared host's worst bursts, 7 jobs on 2 cores, reached
  CV ≈ 25 %; a CI runner runs one test at a time, at CV ≈ 1–4 %). Twice: ≪ 10⁻⁶ at CV ≤ 15 %.
* **A CFS quota** (0.25 CPU on one arm): direction only — significantly slower. Its true size
  depends on how much CPU the unlimited arm got, so no size is asserted. The server is saturated
  (``/work``), so unless the host leaves the unlimited arm under 25 % of its core the quota
  removes most of its CPU: many standard errors, with a rerun when the first run fails; a
  correct tool fails far below 10⁻⁴ of CI runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

AA_ALPHA = 0.001
CI_WIDENING = 2.0
WORK_UNITS = 56
"""×2 is 112 units, ~3.9 ms of CPU: every request stays below CPython's 5 ms GIL switch interval."""


def _cli(args: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isobench.cli", *args, "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )


def _run(tmp_path: Path, bench: str) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "bench.yaml"
    path.write_text(bench)
    out = tmp_path / "run"
    proc = _cli(["run", "-f", str(path), "--no-report"], out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((out / "summary.json").read_text())


def _rps(summary: dict, runtime: str) -> dict:
    for c in summary["comparisons"]:
        if c["runtime"] == runtime and c["metric"] == "rps":
            return c
    raise AssertionError(f"no rps comparison for {runtime}: {summary['comparisons']}")


def _twice(attempt: Callable[[Path, int], None], tmp_path: Path) -> None:
    """``attempt`` a check; if it fails, once more, independently (another plan seed)."""
    try:
        attempt(tmp_path / "first", 1)
    except AssertionError as first:
        try:
            attempt(tmp_path / "second", 2)
        except AssertionError as second:
            raise AssertionError(f"failed twice: {first} / {second}") from second
        warnings.warn(f"first run failed, its independent rerun passed: {first}", stacklevel=2)


def test_aa_run_finds_no_difference(tmp_path: Path, need_root: None) -> None:
    def attempt(where: Path, seed: int) -> None:
        summary = _run(where, "workload: burn\nruntimes: [native]\ntrials: 5\nduration: 2s\n"
                              f"warmup: 0.5s\naa: true\nseed: {seed}\n")
        assert {c["runtime"] for c in summary["comparisons"]} == {"native-b"}
        false = [
            c["verdict"] for c in summary["comparisons"]
            if c["p_adjusted"] is not None and c["p_adjusted"] < AA_ALPHA
            and (c["ci"][0] > 1.0 or c["ci"][1] < 1.0)
        ]
        assert false == [], false

    _twice(attempt, tmp_path)


def test_known_work_effect_is_measured_with_its_size(tmp_path: Path, need_root: None) -> None:
    """×2 the work per request: the req/s ratio's (widened) CI holds the known truth."""

    def attempt(where: Path, seed: int) -> None:
        proc = _cli(["calibrate", "--work-units", str(WORK_UNITS), "--factors", "2",
                     "--trials", "6", "--duration", "2s", "--warmup", "0.5s",
                     "--seed", str(seed)], where)
        assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
        report = json.loads((where / "calibration.json").read_text())
        (row,) = report["rows"]
        assert row["units"] == 2 * WORK_UNITS, row
        assert 0.5 <= row["truth_low"] <= row["truth"] <= row["truth_high"] <= 0.53, row
        assert row["significant"], row
        ratio, (low, high) = row["ratio"], row["ci"]
        wide_low = ratio - CI_WIDENING * (ratio - low)
        wide_high = ratio + CI_WIDENING * (high - ratio)
        assert wide_low <= row["truth_high"] and row["truth_low"] <= wide_high, (
            f"truth {row['truth']:.4f} outside the doubled CI [{wide_low:.4f}, {wide_high:.4f}]"
            f" of {ratio:.4f}"
        )

    _twice(attempt, tmp_path)


def test_cpu_quota_makes_it_significantly_slower(tmp_path: Path, need_root: None) -> None:
    """A CFS quota of 0.25 CPU on a saturated server: slower, significantly (no size asserted)."""

    def attempt(where: Path, seed: int) -> None:
        summary = _run(
            where,
            "workload: burn\nworkload_options: {work_units: 76}\ntrials: 5\nduration: 2s\n"
            f"warmup: 0.5s\nseed: {seed}\n"
            "arms:\n  full: {runtime: native}\n  quota25: {runtime: native, cpu_quota: 0.25}\n",
        )
        rps = _rps(summary, "quota25")
        assert rps["significant"] and rps["direction"] == "worse", rps

    _twice(attempt, tmp_path)
