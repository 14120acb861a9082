"""How long should a trial be, and does a warm-up pay? Measured, not guessed.

One real run with no warm-up and long trials (default: records-api, native and docker-bridge,
8 rounds of 23 s) records the load engine's per-second request counts. Every shorter design is a
window of those seconds: "5 s, no warm-up" is seconds 0–5 of each trial, "10 s after a 3 s
warm-up" is seconds 3–13, and so on. For each design the script prints

- the between-trial CV of each runtime's rate (what a trial's noise is),
- the CV of the per-round ratio docker-bridge / native (what decides a CI's width),
- the wall time a trial of that design costs (the run's measured per-trial fixed cost — launch,
  readiness, stop — plus warm-up plus load),
- the rounds needed for a ±3 % 95 % CI on the ratio (t ≈ 2, n = (2·CV / 0.03)²) and the wall
  time that takes for two runtimes: the design with the least wall time per precision wins.

Windows share their trials, so designs are compared side by side on the very same launches
(only the trial length and the discarded head differ), as the brief asks of benchmarks.

Usage::

    python benchmarks/trial_design.py                 # runs (~7 min), then analyses
    python benchmarks/trial_design.py --from RUN_DIR  # analyses an earlier run of this script
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

DESIGNS = [  # (warm-up s, load s)
    (0, 5), (0, 10), (0, 20),
    (3, 5), (3, 10), (3, 20),
]


def run(out: Path, rounds: int, workload: str, runtimes: str) -> None:
    cmd = [sys.executable, "-m", "isobench.cli", "run", "--workload", workload,
           "--runtimes", runtimes, "--trials", str(rounds), "--duration", "23s",
           "--warmup", "0s", "--out", str(out)]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def per_second(run_dir: Path) -> tuple[dict[tuple[str, int], list[float]], dict[str, float]]:
    """(arm, round) → request count per second of the load; arm → median fixed cost per trial
    (trial wall time minus the load's own seconds)."""
    counts: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    with (run_dir / "samples.jsonl").open() as f:
        for line in f:
            s = json.loads(line)
            if s["metric"] == "load_reqs":
                m = s["metadata"]
                counts[(m["runtime"], m["round"])].append((s["timestamp"], s["value"]))
    fixed: dict[str, list[float]] = defaultdict(list)
    with (run_dir / "trials.jsonl").open() as f:
        for line in f:
            t = json.loads(line)
            if t["status"] != "ok":
                continue
            arm = t.get("arm", t.get("runtime"))  # trials format 2 names the arm "arm"
            seconds = len(counts.get((arm, t["round"]), []))
            fixed[arm].append(t["ended_at"] - t["started_at"] - seconds)
    series = {k: [v for _, v in sorted(vals)] for k, vals in counts.items()}
    return series, {arm: statistics.median(v) for arm, v in fixed.items()}


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else float("nan")


def analyse(run_dir: Path, baseline: str, target: str, precision: float) -> None:
    series, fixed = per_second(run_dir)
    rounds = sorted({r for (_, r) in series})
    print(f"run: {run_dir}  rounds: {len(rounds)}  fixed cost per trial (launch+ready+stop): "
          + ", ".join(f"{a} {s:.1f} s" for a, s in sorted(fixed.items())))
    print(f"{'warm-up':>7} {'load':>5} | {'CV ' + baseline:>12} {'CV ' + target:>18} "
          f"{'CV ratio':>9} | {'s/trial':>7} {'rounds':>6} "
          f"{'wall for ±' + format(precision, '.0%'):>14}")
    for warm, load in DESIGNS:
        rates: dict[str, dict[int, float]] = defaultdict(dict)
        for (arm, r), per_s in series.items():
            window = per_s[warm:warm + load]
            if len(window) == load:
                rates[arm][r] = sum(window) / load
        both = [r for r in rounds if r in rates[baseline] and r in rates[target]]
        ratios = [rates[target][r] / rates[baseline][r] for r in both]
        cv_b = cv(list(rates[baseline].values()))
        cv_t = cv(list(rates[target].values()))
        cv_r = cv(ratios)
        per_trial = statistics.fmean(fixed.values()) + warm + load
        need = max(2.0, (2.0 * cv_r / precision) ** 2)
        wall = need * 2 * per_trial
        print(f"{warm:>6}s {load:>4}s | {cv_b:>11.1%} {cv_t:>18.1%} {cv_r:>9.1%} | "
              f"{per_trial:>6.1f}s {need:>6.1f} {wall / 60:>12.1f} min")
    print("rounds = (2·CV_ratio / precision)², at least 2; wall = rounds × 2 runtimes × s/trial")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="run_dir", type=Path, help="analyse this run directory")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--workload", default="records-api")
    ap.add_argument("--baseline", default="native")
    ap.add_argument("--target", default="docker-bridge")
    ap.add_argument("--precision", type=float, default=0.03)
    a = ap.parse_args()
    run_dir = a.run_dir
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="isobench-trial-design-")) / "run"
        run(run_dir, a.rounds, a.workload, f"{a.baseline},{a.target}")
    analyse(run_dir, a.baseline, a.target, a.precision)


if __name__ == "__main__":
    main()
