"""Calibration with an exactly known effect: does the tool measure a slowdown of known size?

The burn workload's ``/work?units=N`` does N units of a deterministic pure-CPU loop. With the
server saturated on its pinned CPU (a closed loop that always has a request waiting), its
throughput is ``1 / (c0 + N·u)``: ``c0`` the fixed CPU cost of a request (HTTP parsing, the
response), ``u`` the cost of one unit. An arm doing ``b`` units against a baseline doing ``a``
therefore has the throughput ratio ``(c0 + a·u) / (c0 + b·u)`` — known in advance, unlike a CFS
quota's effect, which depends on how much CPU the unlimited arm happened to get.

``c0`` and ``u`` come from a short pre-measurement on the same runtime and CPU: the throughput at
N = 0 gives ``c0 ≤ 1/rps(0)`` (an upper bound: at N = 0 the load generator, not the server,
may be the limit) and the throughput at N = a gives ``u``. With ``a·u`` ≫ ``c0`` (on the
2-core reference host c0 ≤ 0.05–0.14 ms, u ≈ 35 µs, a·u ≈ 2.7 ms) the correction is small, and
the truth is bracketed by its values at ``c0 = 0`` and at the measured bound. That N units cost
N times one unit was checked in one pinned process: 31.25–31.48 µs a unit (fastest of 15) for
every N from 38 to 152.

A calibration is one interleaved run of four arms on one runtime: the baseline (``a`` units), an
A/A copy of it, and arms doing ×1.25 (a known −20 % in req/s) and ×20/19 (a known −5 %) the work.
Done when: each known effect is measured within ±2 percentage points and is significant, and the
A/A ratio's CI lies inside ±5 % (equivalent). Everything here but :func:`measure_costs` and
:func:`run_calibration` is pure.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from isobench.config.presets import CALIBRATION_RUNTIME, CALIBRATION_WORKLOAD

DEFAULT_UNITS = 76
"""Baseline work per request: a multiple of 4 and of 19, so ×1.25 (95) and ×20/19 (80) are whole
numbers of units; ~2.7 ms of CPU, below CPython's 5 ms GIL switch interval at every arm."""
DEFAULT_FACTORS = (1.0, 1.25, 20 / 19)
"""Work factors of the compared arms: A/A, a known 20 % and a known 5 % drop in req/s."""
TOLERANCE_PP = 2.0
"""A known effect counts as measured when within this many percentage points of the truth."""
AA_MARGIN = 0.05
"""An A/A pair is equivalent when its ratio's CI lies inside 1 ± this."""
METRIC = "rps"


def expected_ratio(c0: float, unit_cost: float, units_a: int, units_b: int) -> float:
    """Throughput ratio B/A at saturation: ``(c0 + a·u) / (c0 + b·u)``.

    Args:
        c0: fixed CPU seconds per request (≥ 0).
        unit_cost: CPU seconds per work unit (> 0).
        units_a: work units per request of the baseline arm A.
        units_b: work units per request of arm B.
    """
    if c0 < 0 or unit_cost <= 0 or units_a < 0 or units_b < 0:
        raise ValueError("c0 ≥ 0, unit_cost > 0 and units ≥ 0 are needed")
    if c0 == 0 and units_b == 0:
        raise ValueError("a request with no cost has no throughput")
    return (c0 + units_a * unit_cost) / (c0 + units_b * unit_cost)


@dataclass(frozen=True)
class Costs:
    """The measured costs of a request: ``c0`` (an upper bound) and ``u``, in seconds."""

    c0: float
    unit: float
    units: int
    rps_zero: float
    rps_units: float

    def overhead_share(self, units: int) -> float:
        """``c0`` as a share of a request of ``units`` units."""
        return self.c0 / (self.c0 + units * self.unit)


def costs_from_rates(rps_zero: float, rps_units: float, units: int) -> Costs:
    """Costs from the saturated throughput at N = 0 and at N = ``units``.

    ``c0 = 1/rps(0)`` and ``u = (1/rps(units) − c0) / units``. ValueError when the rates do not
    describe a per-unit cost (no units, a non-positive rate, or N = ``units`` not slower).
    """
    if units <= 0 or rps_zero <= 0 or rps_units <= 0:
        raise ValueError("positive rates and units are needed")
    c0 = 1.0 / rps_zero
    unit = (1.0 / rps_units - c0) / units
    if unit <= 0:
        raise ValueError(
            f"{units} units per request were not slower than none ({rps_units:.0f} vs "
            f"{rps_zero:.0f} req/s): the server is not the bottleneck"
        )
    return Costs(c0, unit, units, rps_zero, rps_units)


def truth_range(costs: Costs, units_a: int, units_b: int) -> tuple[float, float, float]:
    """(expected, low, high): the ratio at the measured ``c0`` and its range over [0, c0]."""
    at_bound = expected_ratio(costs.c0, costs.unit, units_a, units_b)
    at_zero = expected_ratio(0.0, costs.unit, units_a, units_b) if units_b else at_bound
    return at_bound, min(at_bound, at_zero), max(at_bound, at_zero)


@dataclass(frozen=True)
class ArmPlan:
    """One arm of a calibration: its name, work units and work factor against the baseline."""

    name: str
    units: int
    factor: float

    @property
    def label(self) -> str:
        if self.factor == 1.0:
            return "A/A"
        return f"known {(1 - 1 / self.factor) * 100:.0f} %"


def plan_arms(units: int, factors: Sequence[float] = DEFAULT_FACTORS) -> list[ArmPlan]:
    """The baseline arm (``units``) followed by one arm per factor (×1 is the A/A copy)."""
    if units <= 0:
        raise ValueError("the baseline needs at least one work unit")
    arms = [ArmPlan(f"w{units}", units, 1.0)]
    for factor in factors:
        if factor <= 0:
            raise ValueError(f"work factor {factor} is not positive")
        n = round(units * factor)
        name = f"w{n}-b" if n == units else f"w{n}"
        if any(a.name == name for a in arms):
            raise ValueError(f"work factor {factor} gives {n} units, already an arm")
        arms.append(ArmPlan(name, n, n / units))
    return arms


def benchfile_data(
    arms: Sequence[ArmPlan],
    *,
    runtime: str,
    trials: int,
    duration: str,
    warmup: str,
    seed: int,
    resources: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The benchfile (as data) of a run whose arms differ only in ``work_units``."""
    data: dict[str, Any] = {
        "workload": CALIBRATION_WORKLOAD,
        "trials": trials,
        "duration": duration,
        "warmup": warmup,
        "seed": seed,
        "arms": {
            a.name: {"runtime": runtime, "workload_options": {"work_units": a.units}}
            for a in arms
        },
    }
    if resources:
        data["resources"] = dict(resources)
    return data


def aa_equivalent(comparison: Mapping[str, Any]) -> bool:
    """An A/A pair passes when the shared three-way verdict calls it *equivalent*: its 90 % CI
    lies inside ``1 ± margin`` (two one-sided tests; ``isobench.analysis.verdicts``)."""
    return comparison.get("verdict_kind") == "equivalent"


def decided(comparison: Mapping[str, Any]) -> bool:
    """A known effect is found when the verdict says *slower* or *faster* (95 % CI excludes 1,
    the primary metric tested on its own)."""
    return comparison.get("verdict_kind") in ("slower", "faster")


@dataclass(frozen=True)
class Row:
    """One line of the calibration report."""

    label: str
    arm: str
    units: int
    truth: float
    truth_low: float
    truth_high: float
    ratio: float | None
    ci: tuple[float, float] | None
    significant: bool
    ok: bool

    @property
    def error_pp(self) -> float | None:
        return None if self.ratio is None else (self.ratio - self.truth) * 100

    @property
    def truth_in_ci(self) -> bool:
        return self.ci is not None and self.ci[0] <= self.truth <= self.ci[1]


def judge(
    arms: Sequence[ArmPlan], costs: Costs, comparisons: Sequence[Mapping[str, Any]]
) -> list[Row]:
    """The report rows: each compared arm's measured req/s ratio (from a run's summary
    ``comparisons``) next to its known truth, and whether it meets the done-when target."""
    base = arms[0]
    by_arm = {c["runtime"]: c for c in comparisons if c.get("metric") == METRIC}
    rows = []
    for arm in arms[1:]:
        truth, low, high = truth_range(costs, base.units, arm.units)
        c = by_arm.get(arm.name, {})
        ratio = c.get("ratio")
        ci = tuple(c["ci"]) if c.get("ci") else None
        significant = decided(c)
        if ratio is None or ci is None:
            ok = False
        elif arm.units == base.units:
            ok = aa_equivalent(c)
        else:
            ok = abs(ratio - truth) * 100 <= TOLERANCE_PP and significant
        rows.append(
            Row(arm.label, arm.name, arm.units, truth, low, high, ratio,
                (ci[0], ci[1]) if ci else None, significant, ok)
        )
    return rows


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, fmt)


def rps_noise(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Arm → coefficient of variation of its trials' req/s (from a run's summary)."""
    return {
        arm: entry.get("metrics", {}).get(METRIC, {}).get("cv")
        for arm, entry in summary.get("per_runtime", {}).items()
    }


def format_report(
    rows: Sequence[Row],
    costs: Costs,
    base_units: int,
    noise: Mapping[str, float | None] | None = None,
) -> list[str]:
    """The printed table (plain text lines), the host noise and a one-line conclusion."""
    lines = [
        f"costs: c0 ≤ {costs.c0 * 1e3:.3f} ms/request (1/{costs.rps_zero:.0f} req/s at 0 units), "
        f"u = {costs.unit * 1e6:.1f} µs/unit ({costs.rps_units:.0f} req/s at {costs.units}); "
        f"c0 is ≤ {costs.overhead_share(base_units) * 100:.1f} % of a {base_units}-unit request",
        f"{'arm':<10} {'units':>5}  {'truth':>15}  {'measured [95 % CI]':>26}  {'error':>8}  "
        f"{'in CI':>5}  verdict",
    ]
    for r in rows:
        truth = f"{r.truth:.4f}±{(r.truth_high - r.truth_low) / 2:.4f}"
        ci = f"[{_num(r.ci[0])}, {_num(r.ci[1])}]" if r.ci else "[—]"
        measured = f"{_num(r.ratio, '.4f')} {ci}"
        err = "—" if r.error_pp is None else f"{r.error_pp:+.2f} pp"
        if r.units == base_units:
            verdict = "equivalent (CI inside ±5 %)" if r.ok else "NOT shown equivalent"
        else:
            sig = "significant" if r.significant else "not significant"
            verdict = f"{'ok' if r.ok else 'FAIL'}: {sig}, target ±{TOLERANCE_PP:g} pp"
        lines.append(
            f"{r.label:<10} {r.units:>5}  {truth:>15}  {measured:>26}  {err:>8}  "
            f"{'yes' if r.truth_in_ci else 'no':>5}  {verdict}"
        )
    if noise:
        shown = ", ".join(f"{arm} {'—' if cv is None else f'{cv * 100:.1f} %'}"
                          for arm, cv in noise.items())
        lines.append(f"host noise (CV of req/s over trials): {shown}")
    passed = sum(r.ok for r in rows)
    lines.append(f"calibration {'passed' if passed == len(rows) else 'FAILED'}: "
                 f"{passed}/{len(rows)} targets met")
    return lines


def report_data(
    rows: Sequence[Row],
    costs: Costs,
    arms: Sequence[ArmPlan],
    noise: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """calibration.json: the costs, the arms, the noise and each row with its truth and
    measurement."""
    return {
        "costs": asdict(costs),
        "noise_cv": dict(noise or {}),
        "arms": [asdict(a) for a in arms],
        "tolerance_pp": TOLERANCE_PP,
        "aa_margin": AA_MARGIN,
        "rows": [
            {**asdict(r), "error_pp": r.error_pp, "truth_in_ci": r.truth_in_ci} for r in rows
        ],
        "passed": all(r.ok for r in rows),
    }


@dataclass(frozen=True)
class Calibration:
    """What :func:`run_calibration` measured."""

    rows: list[Row]
    costs: Costs
    arms: list[ArmPlan]
    noise: dict[str, float | None]

    def report(self) -> list[str]:
        return format_report(self.rows, self.costs, self.arms[0].units, self.noise)


# ----------------------------------------------------------------------------- measurement
EventsFactory = Callable[[], AbstractContextManager[Any]]
"""Makes the orchestrator's event sink (``orchestrator.Events``) afresh for each of a
calibration's runs."""


def _run(bench_data: dict[str, Any], out: Path, events: EventsFactory | None) -> dict[str, Any]:
    from isobench.config.benchfile import load_benchfile
    from isobench.results import RunStore
    from isobench.run.orchestrator import NullEvents, RunOrchestrator

    bench = load_benchfile(None, bench_data)
    affinity = os.sched_getaffinity(0)
    try:
        with events() if events else nullcontext(NullEvents()) as sink:
            store = RunOrchestrator(bench, RunStore(out), sink).run()
    finally:
        os.sched_setaffinity(0, affinity)  # the orchestrator pins this process to the load CPUs
    return store.read_interim_analysis()


def _median_rps(summary: Mapping[str, Any], arm: str) -> float:
    entry = summary["per_runtime"].get(arm, {}).get("metrics", {}).get(METRIC)
    if not entry:
        raise ValueError(f"the pre-measurement of {arm} has no successful trial")
    return float(entry["median"])


def measure_costs(
    out: Path,
    *,
    runtime: str,
    units: int,
    trials: int = 3,
    duration: str = "2s",
    seed: int = 1,
    resources: Mapping[str, Any] | None = None,
    events: EventsFactory | None = None,
) -> Costs:
    """Run the pre-measurement (N = 0 and N = ``units``, interleaved) into ``out``."""
    arms = [ArmPlan("n0", 0, 0.0), ArmPlan(f"n{units}", units, 1.0)]
    data = benchfile_data(arms, runtime=runtime, trials=trials, duration=duration,
                          warmup="0.5s", seed=seed, resources=resources)
    summary = _run(data, out, events)
    return costs_from_rates(_median_rps(summary, "n0"), _median_rps(summary, f"n{units}"), units)


def run_calibration(
    out: Path,
    *,
    runtime: str = CALIBRATION_RUNTIME,
    units: int = DEFAULT_UNITS,
    factors: Sequence[float] = DEFAULT_FACTORS,
    trials: int = 12,
    duration: str = "2s",
    warmup: str = "0.5s",
    seed: int = 1,
    resources: Mapping[str, Any] | None = None,
    events: EventsFactory | None = None,
) -> Calibration:
    """Pre-measure the costs (``out/costs``), then run the calibration arms (``out/run``);
    writes ``out/calibration.json``."""
    arms = plan_arms(units, factors)
    costs = measure_costs(out / "costs", runtime=runtime, units=units, seed=seed,
                          resources=resources, events=events)
    data = benchfile_data(arms, runtime=runtime, trials=trials, duration=duration,
                          warmup=warmup, seed=seed, resources=resources)
    summary = _run(data, out / "run", events)
    rows = judge(arms, costs, summary.get("comparisons", []))
    noise = rps_noise(summary)
    data = report_data(rows, costs, arms, noise)
    (out / "calibration.json").write_text(json.dumps(data, indent=2))
    return Calibration(rows, costs, arms, noise)
