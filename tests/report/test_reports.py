"""Terminal table, CSV/JSON export and before/after comparison on a fixture run directory."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from isobench.report.compare import compare_runs, print_run_comparison
from isobench.report.export import write_csv, write_json
from isobench.report.rundata import RunDirError, image_size, load_run
from isobench.report.terminal import print_comparison
from tests.fixtures.make_run import make_run


def render(run_dir: Path) -> str:
    buf = io.StringIO()
    data = load_run(run_dir)
    print_comparison(Console(file=buf, width=160, color_system=None), data.analysis,
                     data.manifest)
    return buf.getvalue()


def test_terminal_table_names_runtimes_verdicts_and_method(run_dir: Path) -> None:
    out = render(run_dir)
    assert "vm (emulated)" in out
    assert "vm: emulated \u2014 no verdict" in out
    # the headline: one sentence per runtime, at the top
    assert out.index("docker-bridge serves ") < out.index("isobench \u2014 records-api")
    assert "docker-bridge serves 6\u201311 % fewer requests per second than native" in out
    assert "docker-host is within \u00b15 % of native on req/s" in out
    assert "req/s \u22128.7 % [\u221211.3 %, \u22126.0 %]" in out  # the real interval
    assert "host noise" in out
    # the secondary family: 2 comparable runtimes (vm is emulated) x every metric but the primary
    n_metrics = len(load_run(run_dir, with_samples=False).analysis.metrics)
    assert n_metrics == 9
    assert f"Holm\u2013Bonferroni over the {2 * (n_metrics - 1)} secondary comparisons" in out
    assert "258.9 MiB" in out  # docker image size from the manifest


def test_image_size_per_runtime(run_dir: Path) -> None:
    manifest = load_run(run_dir, with_samples=False).manifest
    assert image_size(manifest, "native") == 268_000_000
    assert image_size(manifest, "vm") == 536_870_912 + 41_200_000
    manifest = {"artifacts": {"sizes": {"docker_image": 5}},
                "runtimes": {"gvisor": {"artifact": "docker_image"}}}
    assert image_size(manifest, "gvisor") == 5
    assert image_size({"artifacts": {"sizes": {"docker_image": 5}}}, "gvisor") is None


def test_csv_exports_read_by_pandas(run_dir: Path) -> None:
    trials_csv, comps_csv = write_csv(run_dir)
    trials = pd.read_csv(trials_csv)
    assert len(trials) == 4 * 5 + 4 * 3
    assert {"runtime", "rps", "p95_ms", "telemetry.cpu_seconds"} <= set(trials.columns)
    native = trials[(trials.runtime == "native") & (trials.scenario == "default")]
    assert native.rps.median() == pytest.approx(
        load_run(run_dir).analysis.per_runtime["native"]["metrics"]["rps"]["median"])
    comps = pd.read_csv(comps_csv)
    row = comps[(comps.arm == "docker-bridge") & (comps.metric == "rps")].iloc[0]
    assert row.ci_low < row.ratio < row.ci_high < 1
    assert bool(row.significant) and row.direction == "worse"
    assert set(comps[comps.arm == "vm"].verdict) == {"vm: emulated \u2014 no verdict"}
    assert comps.metric.str.startswith("idle.").any()
    doc = json.loads(write_json(run_dir).read_text())
    assert doc["analysis"]["baseline"] == "native"


def test_compare_detects_slowdown_and_not_identity(tmp_path: Path, run_dir: Path) -> None:
    slower = make_run(tmp_path / "slower", seed=1, slowdown=0.9)
    result = compare_runs(run_dir, slower)
    assert result["runtimes"] == ["native", "docker-bridge", "docker-host", "vm"]
    for rt in ("native", "docker-bridge", "docker-host"):
        rps = next(c for c in result["comparisons"] if c["runtime"] == rt and c["metric"] == "rps")
        assert rps["significant"] and rps["direction"] == "worse"
        assert rps["ci"][0] <= 0.9 * 1.03 and rps["ci"][1] >= 0.9 * 0.97
    same = compare_runs(run_dir, make_run(tmp_path / "again", seed=2))
    rps_same = [c for c in same["comparisons"] if c["metric"] == "rps"]
    assert not any(c["significant"] for c in rps_same)
    buf = io.StringIO()
    print_run_comparison(Console(file=buf, width=160, color_system=None), result)
    assert "vm (emulated)" in buf.getvalue() and "significant" in buf.getvalue()


def test_compare_gates_on_the_primary_metric(tmp_path: Path, run_dir: Path) -> None:
    """``compare A B --fail-if "*:primary<-5%"`` (the README's example) judges each runtime's
    primary metric; before ``primary`` was in the result it failed every gate ("no comparison
    of None"). The fixture's runs are fixed by their seeds (B is 20 % slower), so the outcome
    is exactly known."""
    from isobench.analysis.gates import evaluate, parse_gate
    from isobench.results_model import Analysis

    result = compare_runs(run_dir, make_run(tmp_path / "slower", seed=1, slowdown=0.8))
    assert result["primary"] == "rps"
    gated = evaluate([parse_gate("*:primary<-5%")], Analysis.from_json({**result, "emulated": []}))
    assert {(g.runtime, g.metric, g.status) for g in gated} == {
        ("native", "rps", "failed"), ("docker-bridge", "rps", "failed"),
        ("docker-host", "rps", "failed"), ("vm", "rps", "skipped")}


def test_not_a_run_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a run directory"):
        load_run(tmp_path)


def test_html_shows_the_articles_claims_for_a_preset_run(tmp_path: Path) -> None:
    import json

    from isobench.report.html import write_html
    from tests.fixtures.make_run import make_run

    root = make_run(tmp_path / "run")
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.setdefault("config", {})["preset"] = "seed-003"
    manifest_path.write_text(json.dumps(manifest))
    page = write_html(root).read_text()
    assert "The article&#x27;s claims (seed-003" in page
    assert "5.1 req/s" in page and "4.97 req/s" in page  # the article's own figures
    assert "not comparable, no verdict on this claim" in page  # the fixture's vm is emulated


def test_guest_view_beside_host_view_for_vms() -> None:
    from isobench.report.plots import guest_vs_host
    from isobench.results import Sample

    samples = []
    for t in range(5):
        meta = {"runtime": "vm", "trial": 0}
        samples += [
            Sample("cpu_percent", 40.0, "%", 100.0 + t, {**meta, "source": "host"}),
            Sample("rss_bytes", 4e8, "bytes", 100.0 + t, {**meta, "source": "host"}),
            Sample("guest_cpu_user_percent", 5.0, "%", 100.2 + t, {**meta, "source": "guest"}),
            Sample("guest_cpu_system_percent", 1.0, "%", 100.2 + t, {**meta, "source": "guest"}),
            Sample("guest_mem_used_bytes", 2e8, "bytes", 100.2 + t, {**meta, "source": "guest"}),
            Sample("cpu_percent", 30.0, "%", 100.0 + t,
                   {"runtime": "native", "trial": 0, "source": "host"}),
        ]
    plots = guest_vs_host(samples)
    assert [name for name, _ in plots] == ["vm-CPU", "vm-memory"]  # native has no guest view
    assert all(svg.lstrip().startswith("<svg") for _, svg in plots)


def test_compare_warns_about_setup_differences() -> None:
    from isobench.report.compare import setup_differences

    a = {"config": {"workload": "records-api", "scenario": {"duration": "5s"}},
         "host": {"kernel": "6.1"}, "artifacts": {"key": "k1"}}
    b = {"config": {"workload": "records-api", "scenario": {"duration": "20s"}},
         "host": {"kernel": "6.1"}, "artifacts": {"key": "k2"}}
    warnings = setup_differences(a, b)
    assert any("scenario" in w for w in warnings) and any("image" in w for w in warnings)
    assert not any("workload:" in w or "kernel" in w for w in warnings)
    assert setup_differences(a, a) == []
