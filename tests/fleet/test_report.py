"""The fleet report: the interaction arithmetic with exactly known inputs, and a fleet directory
of two fixture hosts plus a failed one."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from scipy import stats as sps

from isobench.fleet import html, layout, report
from isobench.fleet.layout import HostStatus
from tests.fixtures.make_run import make_run


def _comp(ratio: float, lo: float, hi: float, n_pairs: int = 5, emulated: bool = False) -> dict:
    return {"ratio": ratio, "ci": [lo, hi], "estimator": "paired", "n_pairs": n_pairs,
            "n": [n_pairs, n_pairs], "alpha": 0.05, "emulated": emulated}


def test_interaction_is_the_ratio_of_ratios_with_the_combined_log_se() -> None:
    q = float(sps.t.ppf(0.975, 4))
    se_a, se_b = 0.02, 0.03
    a = _comp(0.5, 0.5 * math.exp(-q * se_a), 0.5 * math.exp(q * se_a))
    b = _comp(0.8, 0.8 * math.exp(-q * se_b), 0.8 * math.exp(q * se_b))
    row = report.interaction(a, b, margin=0.05)
    assert row["ratio"] == pytest.approx(0.625)
    se = math.hypot(se_a, se_b)
    assert row["se"] == pytest.approx(se)
    df = se**4 / (se_a**4 / 4 + se_b**4 / 4)
    assert row["df"] == pytest.approx(df)
    q_df = float(sps.t.ppf(0.975, df))
    assert row["ci"][0] == pytest.approx(0.625 * math.exp(-q_df * se))
    assert row["ci"][1] == pytest.approx(0.625 * math.exp(q_df * se))
    assert row["p"] == pytest.approx(2 * float(sps.t.sf(abs(math.log(0.625)) / se, df)))


def test_equal_gaps_are_equivalent_and_emulated_gets_no_verdict() -> None:
    a = _comp(0.9, 0.89, 0.91, n_pairs=10)
    rows = [report.interaction(a, a, margin=0.05),
            report.interaction(a, _comp(0.9, 0.5, 1.6), margin=0.05),
            report.interaction(a, _comp(0.9, 0.89, 0.91, emulated=True), margin=0.05),
            report.interaction(a, {"ratio": None, "ci": None}, margin=0.05)]
    report.decide_interactions(rows, alpha=0.05, margin=0.05)
    assert rows[0]["ratio"] == pytest.approx(1.0)
    assert [r["verdict"] for r in rows] == ["same within \u00b15 %", "inconclusive",
                                            "emulated \u2014 not comparable", "too few data"]


def _fleet(tmp: Path) -> Path:
    fleet = tmp / "fleet-1"
    layout.claim(fleet, benchfile_sha256="0" * 64, run_args=["--quick"], inventory="inv")
    for host, seed in (("alpha", 0), ("beta", 1)):
        make_run(fleet / host, seed=seed)
        layout.write_status(fleet, HostStatus(host, "ok", rc=0,
                                              versions={"docker": "Docker version 20.10.24"}))
    layout.write_status(fleet, HostStatus("gamma", "unreachable",
                                          "unreachable: Connection refused"))
    return fleet


def test_fleet_report_table_facts_and_failed_host(tmp_path: Path) -> None:
    fleet = report.load_fleet(_fleet(tmp_path))
    assert [h.name for h in fleet.hosts] == ["alpha", "beta", "gamma"]
    assert fleet.hosts[2].run is None and fleet.hosts[2].status.state == "unreachable"
    assert fleet.hosts[0].facts["cpu"] == "Intel Xeon (Cascadelake)"
    assert fleet.hosts[0].facts["docker"] == "Docker version 20.10.24"
    assert fleet.baseline == "native"
    rts = {r["runtime"] for r in fleet.interactions}
    assert rts == {"docker-bridge", "docker-host", "vm"}
    vm = next(r for r in fleet.interactions if r["runtime"] == "vm")
    assert vm["verdict"] == "emulated \u2014 not comparable"
    console = Console(record=True, width=200)
    report.print_fleet(console, fleet)
    text = console.export_text()
    assert "gamma: unreachable \u2014 unreachable: Connection refused" in text
    assert "ratio of ratios" in text and "alpha / beta" in text
    page = html.render(fleet)
    assert "Connection refused" in page and "<script" not in page


def test_report_cli_exit_code_says_a_host_failed(tmp_path: Path) -> None:
    from isobench.cli import main

    fleet = _fleet(tmp_path)
    assert main(["fleet", "report", str(fleet)]) == 1
    assert (fleet / "report.html").is_file()
    shutil.rmtree(fleet / "fleet" / "status")
    (fleet / "fleet" / "status").mkdir()
    for host in ("alpha", "beta"):
        layout.write_status(fleet, HostStatus(host, "ok", rc=0))
    assert main(["fleet", "report", str(fleet), "--no-html"]) == 0


def test_not_a_fleet_directory_is_bad_input(tmp_path: Path) -> None:
    from isobench.cli import main

    assert main(["fleet", "report", str(tmp_path)]) == 2
