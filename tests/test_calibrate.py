"""Calibration maths, arm plumbing (per-arm workload options) and the calibrate report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from isobench import plugins
from isobench.cli import build_parser
from isobench.config.benchfile import load_benchfile
from isobench.errors import ConfigError
from isobench.images.spec import Artifacts, RootfsSpec
from isobench.results import RunStore
from isobench.run import calibrate
from isobench.run.calibrate import (
    ArmPlan,
    Costs,
    aa_equivalent,
    benchfile_data,
    costs_from_rates,
    expected_ratio,
    format_report,
    judge,
    plan_arms,
    truth_range,
)
from isobench.run.orchestrator import (
    RunOrchestrator,
    arm_options,
    check_same_rootfs,
    workload_options_for,
)
from isobench.workloads.burn import BurnWorkload

# ----------------------------------------------------------------------------- the maths


def test_expected_ratio_without_overhead_is_the_inverse_work_factor() -> None:
    assert expected_ratio(0.0, 35e-6, 76, 95) == pytest.approx(0.8)
    assert expected_ratio(0.0, 35e-6, 76, 80) == pytest.approx(0.95)
    assert expected_ratio(1e-4, 35e-6, 76, 76) == 1.0


def test_expected_ratio_with_overhead_is_closer_to_one() -> None:
    # c0 = 0.1 ms, u = 0.1 ms: (0.1 + 4·0.1) / (0.1 + 5·0.1) = 0.5 / 0.6
    assert expected_ratio(1e-4, 1e-4, 4, 5) == pytest.approx(5 / 6)
    assert expected_ratio(1e-4, 1e-4, 4, 5) > expected_ratio(0.0, 1e-4, 4, 5)


@pytest.mark.parametrize("args", [(-1e-6, 1e-5, 1, 2), (0.0, 0.0, 1, 2), (0.0, 1e-5, 1, 0)])
def test_expected_ratio_refuses_meaningless_costs(args: tuple[float, float, int, int]) -> None:
    with pytest.raises(ValueError):
        expected_ratio(*args)


def test_costs_from_rates() -> None:
    costs = costs_from_rates(rps_zero=20000.0, rps_units=1 / (50e-6 + 76 * 35e-6), units=76)
    assert costs.c0 == pytest.approx(50e-6)
    assert costs.unit == pytest.approx(35e-6)
    assert costs.overhead_share(76) == pytest.approx(50 / (50 + 76 * 35))


def test_costs_refuse_a_server_that_is_not_the_bottleneck() -> None:
    with pytest.raises(ValueError, match="not the bottleneck"):
        costs_from_rates(rps_zero=300.0, rps_units=310.0, units=76)
    with pytest.raises(ValueError):
        costs_from_rates(rps_zero=0.0, rps_units=310.0, units=76)


def test_truth_range_brackets_c0_between_zero_and_its_bound() -> None:
    costs = Costs(c0=50e-6, unit=35e-6, units=76, rps_zero=20000.0, rps_units=370.0)
    truth, low, high = truth_range(costs, 76, 95)
    assert low == pytest.approx(0.8) and high == truth
    assert truth == pytest.approx((50 + 76 * 35) / (50 + 95 * 35))
    assert truth_range(costs, 76, 76) == (1.0, 1.0, 1.0)


def test_plan_arms_makes_whole_unit_multiples() -> None:
    arms = plan_arms(76)
    assert [(a.name, a.units) for a in arms] == [("w76", 76), ("w76-b", 76), ("w95", 95),
                                                 ("w80", 80)]
    assert [a.label for a in arms[1:]] == ["A/A", "known 20 %", "known 5 %"]
    assert arms[3].factor == pytest.approx(20 / 19)
    with pytest.raises(ValueError, match="already an arm"):
        plan_arms(76, (1.25, 1.25))
    with pytest.raises(ValueError):
        plan_arms(0)


def test_benchfile_data_validates_and_differs_only_in_work_units() -> None:
    data = benchfile_data(plan_arms(76), runtime="native", trials=4, duration="2s",
                          warmup="0.5s", seed=3, resources={"cpus": [0]})
    bench = load_benchfile(None, data)
    assert bench.workload == "burn" and bench.trials == 4 and bench.seed == 3
    assert bench.runtimes == ["native"] and bench.baseline_runtime == "w76"
    assert arm_options(bench) == {"w76": {"work_units": 76}, "w76-b": {"work_units": 76},
                                  "w95": {"work_units": 95}, "w80": {"work_units": 80}}


def test_aa_passes_on_the_shared_equivalence_verdict() -> None:
    assert aa_equivalent({"verdict_kind": "equivalent"})
    for kind in ("inconclusive", "slower", "faster", "too_few", None):
        assert not aa_equivalent({"verdict_kind": kind})


# ----------------------------------------------------------------------------- the report


def _comparison(arm: str, ratio: float, ci: list[float], significant: bool) -> dict[str, Any]:
    """A comparison as the analysis writes it; the verdict kind follows the CI as the three-way
    rule would (equivalent: inside ±5 %, slower/faster: significant, else inconclusive)."""
    if significant:
        kind = "slower" if ratio < 1 else "faster"
    elif ci[0] >= 0.95 and ci[1] <= 1.05:
        kind = "equivalent"
    else:
        kind = "inconclusive"
    return {"runtime": arm, "metric": "rps", "ratio": ratio, "ci": ci,
            "significant": significant, "verdict_kind": kind}


COSTS = Costs(c0=46e-6, unit=35e-6, units=76, rps_zero=21882.0, rps_units=369.0)


def test_judge_applies_the_done_when_targets() -> None:
    arms = plan_arms(76)
    comps = [
        _comparison("w76-b", 1.004, [0.98, 1.03], False),
        _comparison("w95", 0.79, [0.77, 0.81], True),
        _comparison("w80", 0.96, [0.94, 0.98], True),
        {"runtime": "w95", "metric": "p50_ms", "ratio": 1.25, "ci": [1.2, 1.3]},
    ]
    aa, twenty, five = judge(arms, COSTS, comps)
    assert aa.ok and aa.truth == 1.0 and aa.truth_in_ci
    assert twenty.ok and twenty.truth_in_ci
    assert twenty.error_pp == pytest.approx((0.79 - twenty.truth) * 100)
    assert five.ok and five.error_pp is not None and abs(five.error_pp) < 2
    missed = judge(arms, COSTS, [
        _comparison("w76-b", 1.0, [0.93, 1.07], False),   # not shown equivalent
        _comparison("w95", 0.76, [0.72, 0.79], True),     # 4 pp off
        _comparison("w80", 0.955, [0.90, 1.01], False),   # right size, not significant
    ])
    assert [r.ok for r in missed] == [False, False, False]
    absent = judge(arms, COSTS, [])
    assert all(not r.ok and r.ratio is None and r.error_pp is None for r in absent)


def test_format_report_shows_truth_measurement_error_and_verdict() -> None:
    arms = plan_arms(76)
    rows = judge(arms, COSTS, [
        _comparison("w76-b", 1.004, [0.98, 1.03], False),
        _comparison("w95", 0.79, [0.77, 0.81], True),
        _comparison("w80", 0.90, [0.85, 0.93], True),
    ])
    lines = format_report(rows, COSTS, 76, {"w76": 0.021, "w95": None})
    assert "c0 ≤ 0.046 ms/request" in lines[0] and "u = 35.0 µs/unit" in lines[0]
    assert lines[1].split()[:3] == ["arm", "units", "truth"]
    aa, twenty, five = lines[2:5]
    assert aa.startswith("A/A") and "equivalent (CI inside ±5 %)" in aa and "yes" in aa
    assert twenty.startswith("known 20 %") and "0.7900 [0.770, 0.810]" in twenty
    assert f"{(0.79 - rows[1].truth) * 100:+.2f} pp" in twenty and "ok: significant" in twenty
    assert five.startswith("known 5 %") and "FAIL" in five and " no " in five
    assert lines[-2] == "host noise (CV of req/s over trials): w76 2.1 %, w95 —"
    assert lines[-1] == "calibration FAILED: 2/3 targets met"
    assert calibrate.rps_noise({"per_runtime": {"w76": {"metrics": {"rps": {"cv": 0.02}}}}}) == {
        "w76": 0.02
    }
    assert "—" not in "\n".join(lines[:-2])


def test_report_data_is_json_ready() -> None:
    import json

    arms = plan_arms(76)
    rows = judge(arms, COSTS, [_comparison("w95", 0.8, [0.78, 0.82], True)])
    data = json.loads(json.dumps(calibrate.report_data(rows, COSTS, arms)))
    assert data["passed"] is False and data["costs"]["units"] == 76
    assert data["rows"][1]["truth_in_ci"] is True and data["rows"][1]["arm"] == "w95"


def test_cli_calibrate_defaults() -> None:
    args = build_parser().parse_args(["calibrate"])
    assert args.runtime == "native" and args.trials == 12 and args.factors is None
    args = build_parser().parse_args(["calibrate", "--runtime", "docker-host",
                                      "--factors", "1,1.25"])
    assert args.runtime == "docker-host" and args.factors == [1.0, 1.25]


# ----------------------------------------------------------------------------- arms and options


def test_arm_options_merge_over_the_run_options() -> None:
    bench = load_benchfile(None, {
        "workload": "burn",
        "workload_options": {"payload_bytes": 100, "work_units": 10},
        "arms": {"a": {"runtime": "native"},
                 "b": {"runtime": "native", "workload_options": {"work_units": 12}}},
    })
    assert workload_options_for(bench, "a") == {"payload_bytes": 100, "work_units": 10}
    assert workload_options_for(bench, "b") == {"payload_bytes": 100, "work_units": 12}
    assert arm_options(bench) == {"b": {"payload_bytes": 100, "work_units": 12}}


class _ByOption(BurnWorkload):
    """A workload whose rootfs depends on an option (as a storage back end might)."""

    option_names = frozenset({"flavour", *(BurnWorkload.option_names or ())})

    def rootfs_spec(self) -> RootfsSpec:
        return RootfsSpec(name=f"burn-{self.options.get('flavour', 'plain')}")


def test_check_same_rootfs_refuses_other_bits_in_one_line() -> None:
    check_same_rootfs(BurnWorkload(), "b", BurnWorkload({"work_units": 3}))
    with pytest.raises(ConfigError) as err:
        check_same_rootfs(_ByOption(), "b", _ByOption({"flavour": "x"}))
    assert "arm 'b'" in str(err.value) and "rootfs" in str(err.value)
    assert "\n" not in str(err.value)


def _prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workload: type,
             arms: dict[str, Any]) -> Any:
    real = plugins.load

    def load(family: str, name: str) -> Any:
        return workload if family == "workload" else real(family, name)

    monkeypatch.setattr(plugins, "load", load)
    monkeypatch.setattr(RunOrchestrator, "load_runtimes", lambda self: {})
    monkeypatch.setattr(RunOrchestrator, "_check_cpus", staticmethod(lambda resources: None))
    monkeypatch.setattr("isobench.images.build.build_artifacts",
                        lambda spec, need, progress=None: Artifacts(key="k", rootfs=tmp_path))
    bench = load_benchfile(None, {"workload": "burn", "duration": "2s", "arms": arms})
    orchestrator = RunOrchestrator(bench, RunStore(tmp_path / "run"))
    return orchestrator, orchestrator.prepare()


def test_each_arm_gets_its_own_workload_and_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orchestrator, prep = _prepare(tmp_path, monkeypatch, BurnWorkload, {
        "a": {"runtime": "native", "workload_options": {"work_units": 76}},
        "b": {"runtime": "native", "workload_options": {"work_units": 95}},
        "c": {"runtime": "native"},
    })
    assert set(prep.per_arm) == {"a", "b"}
    workload_b, scenario_b = prep.per_arm["b"]
    assert workload_b.options == {"work_units": 95}
    assert scenario_b["requests"][0]["path"] == "/work?units=95"
    assert scenario_b["duration"] == "2s"
    assert "/payload" in prep.scenario["requests"][0]["path"]  # arm c: the run's own
    config = orchestrator.manifest(prep)["config"]
    assert config["arm_workload_options"] == {"a": {"work_units": 76}, "b": {"work_units": 95}}
    assert config["arm_scenarios"]["a"]["requests"][0]["path"] == "/work?units=76"


def test_arms_that_change_the_rootfs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="arm 'b'"):
        _prepare(tmp_path, monkeypatch, _ByOption, {
            "a": {"runtime": "native"},
            "b": {"runtime": "native", "workload_options": {"flavour": "x"}},
        })


def test_arm_workload_options_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="workload_options"):
        load_benchfile(None, {"arms": {"a": {"runtime": "native", "workload_options": 3}}})


def test_arm_plan_label_for_other_factors() -> None:
    assert ArmPlan("w152", 152, 2.0).label == "known 50 %"
