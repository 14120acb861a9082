"""The primary metric: declared by each workload, overridable (CLI, benchfile), used by analyze."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from isobench.analysis.stats import analyze
from isobench.config import scenarios
from isobench.config.benchfile import load_benchfile, parse_margin
from isobench.errors import ConfigError
from isobench.results import TrialRecord
from isobench.workloads.burn import BurnWorkload
from isobench.workloads.records_api.workload import RecordsApiWorkload
from isobench.workloads.validator.workload import ValidatorWorkload


@pytest.mark.parametrize(("workload", "scenario", "expected"), [
    (RecordsApiWorkload, "default", "rps"),
    (RecordsApiWorkload, "steady", "p95_ms"),
    (RecordsApiWorkload, "idle", "idle_cpu_percent"),
    (BurnWorkload, "default", "rps"),
    (ValidatorWorkload, "default", "block_lag_p95_ms"),
    (ValidatorWorkload, "idle", "idle_cpu_percent"),
])
def test_each_workload_declares_its_primary(workload: Any, scenario: str, expected: str) -> None:
    w = workload()
    _, resolved = scenarios.resolve(w, scenario)
    assert w.primary_metric_for(resolved) == expected


def test_arrival_rate_in_every_sub_scenario_means_latency() -> None:
    w = RecordsApiWorkload()
    both = {"scenarios": {"a": {"executor": "constant-arrival-rate"},
                          "b": {"executor": "ramping-arrival-rate"}}}
    mixed = {"scenarios": {"a": {"executor": "constant-arrival-rate"},
                           "b": {"executor": "constant-vus"}}}
    assert w.primary_metric_for(both) == "p95_ms"
    assert w.primary_metric_for(mixed) == "rps"


def test_benchfile_and_cli_take_primary_and_margin(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text("workload: burn\nprimary: p99_ms\nmargin: 2.5%\n")
    bench = load_benchfile(path)
    assert bench.primary == "p99_ms" and bench.margin_fraction == pytest.approx(0.025)
    assert load_benchfile(None).primary is None
    assert load_benchfile(None).margin_fraction == pytest.approx(0.05)
    assert load_benchfile(None, {"margin": "0.1"}).margin_fraction == pytest.approx(0.1)
    # an unknown --primary is refused at run start, against the workload's own metrics
    # (tests/test_bad_input.py: "unknown primary metric")
    with pytest.raises(ConfigError, match="margin"):
        load_benchfile(None, {"margin": "80%"})
    assert parse_margin("5 %") == pytest.approx(0.05)

    from isobench.cli import _run_overrides, build_parser

    args = build_parser().parse_args(["run", "--primary", "p95_ms", "--margin", "3%"])
    overrides = _run_overrides(args)
    assert overrides["primary"] == "p95_ms" and overrides["margin"] == "3%"


def _trial(runtime: str, rnd: int, rps: float, p95: float) -> TrialRecord:
    return TrialRecord(
        arm=runtime, trial=rnd, position=rnd, round=rnd, status="ok", started_at=0.0,
        ended_at=1.0,
        load={"metrics": {"http_reqs": {"count": rps, "rate": rps},
                          "http_req_duration": {"med": p95 / 2, "p(95)": p95, "p(99)": p95}}},
    )


def test_analyze_uses_the_primary_for_the_headline() -> None:
    trials = [_trial("native", i, 1000 + 10 * i, 10.0 + 0.01 * i) for i in range(5)]
    trials += [_trial("b", i, 1000 + 10 * i, 14.0 + 0.01 * i) for i in range(5)]
    by_rps = analyze(trials)
    by_p95 = analyze(trials, primary="p95_ms")
    assert by_rps["primary"] == "rps" and by_p95["primary"] == "p95_ms"
    assert by_rps["headline"] == ["b is within \u00b15 % of native on req/s (90 % CI "
                                  "[+0.0 %, +0.0 %])"]
    assert by_p95["headline"][0].startswith("b's p95 latency is ")
    assert [c["primary"] for c in by_p95["comparisons"]].count(True) == 1
    missing = analyze(trials, primary="block_lag_p95_ms")
    assert missing["primary"] == "rps"
    assert any("primary metric 'block_lag_p95_ms' is not in this run's data" in w
               for w in missing["warnings"])
