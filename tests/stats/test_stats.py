"""Statistics: A/A false-positive rate, a known injected slowdown, Holm, emulated runtimes.

The probabilistic checks are seeded: the same data every run, so they cannot flake."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from isobench.analysis.stats import DEFAULT_METRICS, EMULATED_VERDICT, analyze, holm, ratio_ci
from isobench.results import RunStore, TrialRecord
from tests.fixtures.make_run import make_run

RPS = [m for m in DEFAULT_METRICS if m.name == "rps"]


def trial(runtime: str, i: int, rps: float, p50: float = 5.0, emulated: bool = False,
          **extra: float) -> TrialRecord:
    return TrialRecord(
        arm=runtime, trial=i, position=i, round=i, status="ok", started_at=0.0, ended_at=1.0,
        startup_s=extra.get("startup_s"),
        load={"metrics": {"http_reqs": {"count": rps * 20, "rate": rps},
                          "http_req_duration": {"med": p50, "p(95)": p50 * 2, "p(99)": p50 * 3}}},
        telemetry={k: v for k, v in extra.items() if k != "startup_s"},
        facts={"emulated": emulated},
    )


def arms(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("native", "native-b")):
    return [trial(names[0], i, float(v)) for i, v in enumerate(a)] + [
        trial(names[1], i, float(v)) for i, v in enumerate(b)
    ]


def test_aa_false_positive_rate_is_at_most_about_five_percent() -> None:
    hits = 0
    runs = 300
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        a, b = rng.normal(1800, 40, 5), rng.normal(1800, 40, 5)
        result = analyze(arms(a, b), metrics=RPS, seed=seed)
        (comp,) = result["comparisons"]
        assert comp["runtime"] == "native-b"
        hits += bool(comp["significant"])
    assert hits / runs <= 0.07, f"A/A false-positive rate {hits / runs:.3f}"


def test_aa_with_all_metrics_reports_no_difference() -> None:
    rng = np.random.default_rng(42)
    trials = []
    for name in ("native", "native-b"):
        for i in range(5):
            trials.append(trial(name, i, rng.normal(1800, 30), p50=rng.normal(5, 0.1),
                                startup_s=rng.normal(0.2, 0.01), cpu_seconds=rng.normal(18, 0.3),
                                rss_bytes_peak=rng.normal(60e6, 1e6)))
    result = analyze(trials)
    assert result["comparisons"]
    for comp in result["comparisons"]:
        assert comp["significant"] is False, comp["verdict"]
        assert comp["verdict_kind"] in ("equivalent", "inconclusive"), comp["verdict"]
    rps = next(c for c in result["comparisons"] if c["metric"] == "rps")
    assert rps["primary"] and rps["estimator"] == "paired"


def test_injected_slowdown_detected_with_right_size() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(1800, 30, 5)
    b = a * 0.8 + rng.normal(0, 15, 5)
    result = analyze(arms(a, b, ("native", "slow")), metrics=RPS)
    (comp,) = result["comparisons"]
    assert comp["significant"] is True
    assert comp["direction"] == "worse" and comp["verdict_kind"] == "slower"
    lo, hi = comp["ci"]
    assert lo <= 0.8 <= hi
    assert hi < 0.85
    assert comp["verdict"].startswith("slow serves ")
    assert comp["verdict"].endswith("% fewer requests per second than native")


def test_latency_increase_is_worse_and_lower_latency_better() -> None:
    trials = [trial("native", i, 1800 + i, p50=5 + 0.01 * i) for i in range(5)]
    trials += [trial("fast", i, 1800 + i, p50=4 + 0.01 * i) for i in range(5)]
    result = analyze(trials)
    p50 = next(c for c in result["comparisons"] if c["metric"] == "p50_ms")
    assert p50["significant"] and p50["direction"] == "better"
    assert not p50["primary"] and p50["verdict_kind"] == "faster"
    assert p50["verdict"].startswith("fast's median latency is ")
    assert "% lower than native's" in p50["verdict"]


def test_emulated_runtime_is_analysed_but_makes_no_claim() -> None:
    trials = [trial("native", i, 1800 + i) for i in range(5)]
    trials += [trial("vm", i, 170 + i, emulated=True) for i in range(5)]
    result = analyze(trials)
    assert result["emulated"] == ["vm"]
    assert result["per_runtime"]["vm"]["metrics"]["rps"]["median"] == pytest.approx(172)
    for comp in result["comparisons"]:
        assert comp["verdict"] == f"vm: {EMULATED_VERDICT}" == "vm: emulated \u2014 no verdict"
        assert comp["significant"] is None and comp["verdict_kind"] == "emulated"
    assert result["headline"] == ["vm: emulated \u2014 no verdict"]
    assert result["family_size"] == 0


def test_absent_metrics_are_skipped_and_failed_trials_not_counted() -> None:
    trials = [trial("native", i, 1800 + i) for i in range(5)]
    broken = trial("native", 9, 1.0)
    broken.status = "failed"
    trials.append(broken)
    result = analyze(trials)
    names = [m["name"] for m in result["metrics"]]
    assert names == ["rps", "p50_ms", "p95_ms", "p99_ms"]
    assert result["per_runtime"]["native"]["n_trials"] == 5
    assert result["per_runtime"]["native"]["n_failed"] == 1
    assert result["per_runtime"]["native"]["metrics"]["rps"]["median"] == 1802


def test_noise_warning_when_host_cannot_resolve_min_effect() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(1800, 200, 5), rng.normal(1800, 200, 5)
    result = analyze(arms(a, b), metrics=RPS, min_effect=0.05)
    (warning,) = [w for w in result["warnings"] if "too noisy to resolve a 5 % effect" in w]
    assert "more rounds (" in warning and "in all) would resolve it" in warning
    quiet = analyze(arms(rng.normal(1800, 5, 5), rng.normal(1800, 5, 5)), metrics=RPS)
    assert quiet["warnings"] == []


def test_holm_matches_hand_computation() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])


def test_ratio_ci_is_seeded_and_brackets_ratio() -> None:
    a, b = [100, 102, 98, 101, 99], [110, 111, 108, 112, 109]
    one, two = ratio_ci(a, b, seed=5), ratio_ci(a, b, seed=5)
    assert one == two and one is not None
    assert one.ratio == pytest.approx(110 / 100)
    assert one.low <= one.ratio <= one.high


def test_fixture_run_analysis_is_json_and_names_method(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", idle=True)
    result = analyze(RunStore(run).trials())
    text = json.dumps(result)
    assert "Holm" in result["method"]["multiple_comparisons"]
    assert "tested alone" in result["method"]["multiple_comparisons"]
    assert "percentile bootstrap" in result["method"]["ci"]
    bridge = next(c for c in result["comparisons"]
                  if c["runtime"] == "docker-bridge" and c["metric"] == "rps")
    assert bridge["significant"] and bridge["direction"] == "worse"
    assert "idle" in result and result["idle"]["comparisons"]
    assert json.loads(text)["baseline"] == "native"
