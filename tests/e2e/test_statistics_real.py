"""The statistics on real runs, against effects whose size is known exactly.

* **A/A** (the baseline twice): no comparison may be significant at a family-wise
  α = 0.001 (Holm-adjusted p < 0.001 with a CI excluding 1). Holm controls the family-wise
  error at any level, so a correct tool fails one run with probability ≤ 0.1 %; a failed run gets
  one independent rerun (another plan seed), so the test fails ≤ 0.1 %² = 10⁻⁶ of CI runs.
* **A known work effect** (``isobench calibrate --factors 1.25``): one arm does ×1.25 the CPU
  work per request of the burn workload's ``/work`` loop, so its req/s ratio is known in advance,
  ``(c0 + a·u)/(c0 + 1.25·a·u)`` ≈ 0.80 (``isobench.calibrate``; c0 is ≤ 2 % of a request, the
  truth is known to ±0.3 pp). The effect must be significant, and the truth must lie in the
  reported 95 % CI widened to twice its half-widths. A simulation of the tool's own ``ratio_ci``
  (6 trials an arm, normal and heavy-tailed t₃ noise, 2000 runs each; see the report of issue 10)
  found the plain 95 % CI missing the truth in ≤ 14 % of runs (the percentile bootstrap of a
  median of 6 is overconfident) and the doubled CI in ≤ 0.6 %; with one independent rerun when
  the first run fails, a correct tool fails ≤ 0.6 %² ≈ 4·10⁻⁵ of CI runs. A 20 % effect is
  ≥ 6 standard errors at the noise measured on the shared 2-core host (CV ≤ 10 %), so
  "not significant" twice has a probability far below that.
* **A CFS quota** (0.5 CPU on one arm): direction only — significantly slower. Its true size
  depends on how much CPU the unlimited arm got, so no size is asserted. The server is saturated
  (``/work``), so the quota removes ≥ 40 % of its CPU: ≥ 5 standard errors at CV ≤ 10 %, and a
  rerun when the first run fails; a correct tool fails far below 10⁻⁴ of CI runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

AA_ALPHA = 0.001
CI_WIDENING = 2.0


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
    """×1.25 the work per request: the req/s ratio's (widened) CI holds the known truth."""

    def attempt(where: Path, seed: int) -> None:
        proc = _cli(["calibrate", "--factors", "1.25", "--trials", "6", "--duration", "2s",
                     "--warmup", "0.5s", "--seed", str(seed)], where)
        assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
        report = json.loads((where / "calibration.json").read_text())
        (row,) = report["rows"]
        assert row["units"] == round(1.25 * report["arms"][0]["units"]), row
        assert 0.79 <= row["truth_low"] <= row["truth"] <= row["truth_high"] <= 0.815, row
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
    """A CFS quota of 0.5 CPU on a saturated server: slower, significantly (no size asserted)."""

    def attempt(where: Path, seed: int) -> None:
        summary = _run(
            where,
            "workload: burn\nworkload_options: {work_units: 76}\ntrials: 5\nduration: 2s\n"
            f"warmup: 0.5s\nseed: {seed}\n"
            "arms:\n  full: {runtime: native}\n  quota50: {runtime: native, cpu_quota: 0.5}\n",
        )
        rps = _rps(summary, "quota50")
        assert rps["significant"] and rps["direction"] == "worse", rps

    _twice(attempt, tmp_path)
