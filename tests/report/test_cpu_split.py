"""The "where the CPU goes" table from synthetic trial telemetry (exact medians)."""

from __future__ import annotations

import io

from rich.console import Console

from isobench.report.cpu_split import build, html_cpu_split, print_cpu_split, sentences
from isobench.results import TrialRecord


def trial(runtime: str, i: int, proxy: float | None, busy: float = 1.5,
          status: str = "ok") -> TrialRecord:
    tel = {"cpu_wall_seconds": 10.0, "cpu_split_workload_seconds": 6.0,
           "host_cpu_split_loadgen_seconds": 4.0, "host_cpu_split_tool_seconds": 0.5,
           "host_cpu_split_busy_seconds": busy * 10.0, "host_cpu_split_cpus": 2.0,
           "host_cpu_split_processes": 5.0, "host_cpu_split_irq_in_processes": 1.0,
           "host_cpu_split_softirq__workload_cpus_seconds": 0.3,
           "host_cpu_split_softirq__loadgen_cpus_seconds": 0.2}
    if proxy is not None:
        tel["cpu_split_helper__docker-proxy_seconds"] = proxy
        tel["host_cpu_split_daemon__dockerd_seconds"] = 0.1
    return TrialRecord(runtime, i, i, i, status, 0.0, 1.0, telemetry=tel)


def test_medians_per_part_and_the_helper_sentence() -> None:
    trials = [trial("native", 0, None), trial("native", 1, None),
              trial("docker-bridge", 0, 3.6), trial("docker-bridge", 1, 4.0),
              trial("docker-bridge", 2, 3.8), trial("docker-bridge", 3, 99.0, status="failed")]
    table = build(trials, ["native", "docker-bridge"])
    assert table is not None
    assert table.runtimes == ["native", "docker-bridge"]
    assert table.trials == {"native": 2, "docker-bridge": 3}
    rows = {r.label: r.cells for r in table.rows}
    assert rows["helper: docker-proxy"] == {"native": None, "docker-bridge": 38.0}
    assert rows["workload"] == {"native": 60.0, "docker-bridge": 60.0}
    assert rows["rest of the host"]["native"] == 150.0 - 60.0 - 40.0 - 5.0
    assert [r.label for r in table.rows][:2] == ["host total (busy)", "workload"]
    assert [r.label for r in table.rows if r.kind == "part"][-1] == "rest of the host"
    assert sentences(table) == ["docker-bridge: docker-proxy used 38.0 % of a core "
                                "(median of 3 trials)"]
    assert table.failed_check == {"native": 0, "docker-bridge": 0}
    out = io.StringIO()
    print_cpu_split(Console(file=out, width=160), trials, ["native", "docker-bridge"])
    assert "docker-proxy used 38.0 % of a core" in out.getvalue()
    assert "38.0 %" in html_cpu_split(trials)


def test_a_trial_whose_parts_exceed_the_host_total_is_reported() -> None:
    table = build([trial("native", 0, None, busy=0.5)])  # 5 s busy, 10.5 s measured
    assert table is not None and table.failed_check == {"native": 1}


def test_old_runs_without_a_split_show_nothing() -> None:
    old = TrialRecord("native", 0, 0, 0, "ok", 0.0, 1.0, telemetry={"cpu_seconds": 1.0})
    assert build([old]) is None
    assert html_cpu_split([old]) == ""
