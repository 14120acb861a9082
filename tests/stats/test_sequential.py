"""--precision: the stopping rule judged at α/10 per look, and the orchestrator's use of it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from isobench.analysis.sequential import LOOK_ALPHA, half_width_pct, look, should_stop
from isobench.results import RunStore, TrialRecord


def _trials(rounds: int, ratio: float, noise: float, seed: int = 0) -> list[TrialRecord]:
    """Rounds of native + docker-host req/s with a shared per-round drift (10 %)."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(rounds):
        drift = math.exp(rng.normal(0, 0.10))
        for i, (rt, base) in enumerate((("native", 1000.0), ("docker-host", 1000.0 * ratio))):
            rps = base * drift * math.exp(rng.normal(0, noise))
            out.append(TrialRecord(rt, r, 2 * r + i, r, "ok", 0.0, 1.0, startup_s=0.3,
                                   load={"metrics": {"http_reqs": {"values": {"rate": rps}}}}))
    return out


def test_half_width_is_symmetric_on_the_log_scale() -> None:
    assert half_width_pct([0.9, 1.0 / 0.9]) == pytest.approx(math.log(1 / 0.9) * 100)
    assert half_width_pct(None) is None


def test_a_clear_effect_is_decided_and_stops() -> None:
    looks = look(_trials(4, 0.7, 0.01), baseline="native", primary="rps", margin=0.05,
                 precision=0.001)
    assert [x.kind for x in looks] == ["slower"] and should_stop(looks)


def test_a_noisy_small_difference_keeps_going() -> None:
    looks = look(_trials(3, 0.97, 0.08, seed=3), baseline="native", primary="rps",
                 margin=0.05, precision=0.01)
    assert looks and not should_stop(looks)
    assert looks[0].kind == "inconclusive" and looks[0].half_width_pct is not None


def test_equal_arms_become_equivalent_at_the_look_level() -> None:
    looks = look(_trials(10, 1.0, 0.005), baseline="native", primary="rps", margin=0.05,
                 precision=0.001)
    assert [x.kind for x in looks] == ["equivalent"] and should_stop(looks)
    assert "equivalent" in looks[0].text()


def test_runner_stops_after_a_complete_round(tmp_path: Path) -> None:
    from isobench.config.benchfile import load_benchfile
    from isobench.run.orchestrator import RunOrchestrator

    bench = load_benchfile(None, {"workload": "burn", "runtimes": ["native", "docker-host"],
                                  "precision": "3%", "trials": 3})
    assert bench.analysis_alpha == LOOK_ALPHA and bench.planned_rounds == 12
    assert bench.time_budget_s == 600
    store = RunStore(tmp_path / "run")
    for t in _trials(3, 0.7, 0.01):
        store.append_trial(t)
    orchestrator = RunOrchestrator(bench, store)
    orchestrator.primary = "rps"
    assert orchestrator._precise_after(2, set())  # after the minimum rounds, decided: stop
    assert not orchestrator._precise_after(1, set())  # never before the minimum rounds


def test_decided_and_emulated_arms_sit_out_later_rounds(tmp_path: Path) -> None:
    from isobench.config.benchfile import load_benchfile
    from isobench.run.orchestrator import RunOrchestrator

    bench = load_benchfile(None, {"workload": "burn", "precision": "1%", "trials": 3,
                                  "runtimes": ["native", "docker-host", "docker-bridge", "vm"]})
    store = RunStore(tmp_path / "run")
    for i in range(3):  # docker-host clearly slower; docker-bridge noisy around 1: still open
        for rt, rps in (("native", 1000.0), ("docker-host", 700.0 + i),
                        ("docker-bridge", (900.0, 1100.0, 1000.0)[i]), ("vm", 90.0)):
            load = {"metrics": {"http_reqs": {"values": {"rate": rps}}}}
            store.append_trial(TrialRecord(rt, i, 4 * i, i, "ok", 0.0, 1.0, startup_s=0.5,
                                           load=load))
    orchestrator = RunOrchestrator(bench, store)
    orchestrator.primary = "rps"
    assert not orchestrator._precise_after(2, {"vm"})
    assert orchestrator.settled == {"docker-host", "vm"}  # never the baseline, never an open arm


def test_the_budget_counts_only_the_arms_that_still_run() -> None:
    from isobench.run.orchestrator import RoundBudget
    from isobench.run.plan import PlannedTrial

    budget = RoundBudget(100.0, 4)
    for _ in range(4):
        budget.spent(20.0)  # one round of 4 arms: 80 s; a full round more would not fit
    first = PlannedTrial(position=4, round=1, arm="native", runtime="native", trial=1)
    assert budget.allows(first, running=1)  # 80 + 20 ≤ 100: a round of the baseline alone fits
    nxt = PlannedTrial(position=8, round=2, arm="native", runtime="native", trial=2)
    assert not budget.allows(nxt, running=4)


def test_precision_runs_report_at_the_look_level() -> None:
    from isobench.analysis.stats import analyze

    a = analyze(_trials(10, 1.0, 0.005), baseline="native", primary="rps", alpha=LOOK_ALPHA)
    c = next(c for c in a["comparisons"] if c["primary"])
    assert c["verdict_kind"] == "equivalent" and "99 % CI" in c["verdict"]
    assert "99.5 % CI" in a["method"]["verdicts"]
