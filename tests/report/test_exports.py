"""Exports: analysis.json with its versions, a Markdown table for pull requests, --export-* paths,
and the latency chart drawn from the engine's real summary shape."""

from __future__ import annotations

import json
from pathlib import Path

from isobench.report.export import export_to, markdown
from isobench.report.plots import latency_curves
from isobench.report.rundata import load_run


def test_export_to_paths(run_dir: Path, tmp_path: Path) -> None:
    out = export_to(run_dir, json_path=tmp_path / "a.json", csv_path=tmp_path / "c.csv",
                    markdown_path=tmp_path / "m.md")
    assert [p.name for p in out] == ["a.json", "m.md", "c.csv"]
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["export_version"] == 1 and doc["version"] >= 1
    assert doc["run"]["config"]["workload"] and doc["analysis"]["comparisons"]
    for c in doc["analysis"]["comparisons"]:
        assert {"ci", "verdict", "runtime", "metric"} <= set(c)
    assert (tmp_path / "c.csv").read_text().startswith("arm,baseline,metric")


def test_markdown_table(run_dir: Path) -> None:
    text = markdown(load_run(run_dir, with_samples=False))
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| runtime |"))
    assert lines[header + 1].startswith("|---|")
    rows = [line for line in lines[header + 2:] if line.startswith("| ")][:4]
    assert rows[0].startswith("| native |") and "baseline" in rows[0]
    assert any(r.startswith("| vm (emulated) |") for r in rows)
    assert "emulated" in text and "<details>" in text
    # every row has the same number of cells as the header
    assert all(r.count(" | ") == lines[header].count(" | ") for r in rows)


def test_latency_chart_from_engine_shape(run_dir: Path) -> None:
    data = load_run(run_dir, with_samples=False)
    assert "values" in data.trials[0].load["metrics"]["http_req_duration"]
    svg = latency_curves(data.trials, data.analysis)
    assert svg is not None and svg.startswith("<svg") and "p99.9" in svg


def test_report_gates_exit_codes(run_dir: Path, tmp_path: Path) -> None:
    from isobench import exitcodes
    from isobench.cli import main

    # the fixture's docker-bridge serves ~8 % fewer req/s than native (1,650 vs 1,800, CV ~1 %)
    md = tmp_path / "pr.md"
    assert main(["report", str(run_dir), "--no-print", "--fail-if", "docker-host:rps<-5%",
                 "--export-markdown", str(md)]) == exitcodes.OK
    assert md.read_text().startswith("### isobench")
    assert main(["report", str(run_dir), "--no-print",
                 "--fail-if", "docker-bridge:rps<-5%"]) == exitcodes.GATE_FAILED
    gates_json = json.loads((run_dir / "gates.json").read_text())
    assert gates_json["gates"][0]["status"] == "failed"
    assert main(["report", str(run_dir), "--no-print", "--fail-if", "bridge rps"]) == \
        exitcodes.USAGE


def test_compare_gate(run_dir: Path, tmp_path: Path) -> None:
    from isobench import exitcodes
    from isobench.cli import main
    from tests.fixtures.make_run import make_run

    slower = make_run(tmp_path / "slower", slowdown=0.85)
    out = tmp_path / "cmp.json"
    code = main(["compare", str(run_dir), str(slower), "--json", str(out),
                 "--fail-if", "native:rps<-5%"])
    assert code == exitcodes.GATE_FAILED
    assert json.loads(out.read_text())["comparisons"]
    assert main(["compare", str(run_dir), str(slower), "--fail-if", "native:rps<-50%"]) == \
        exitcodes.OK


def test_merged_latency_counts_every_request(run_dir: Path) -> None:
    from isobench.report.plots import merged_latency

    data = load_run(run_dir, with_samples=False)
    merged = merged_latency(data.trials)
    native = [t for t in data.trials
              if t.arm == "native" and t.status == "ok" and "histograms" in t.load]
    assert native
    assert merged["native"].count == sum(
        t.load["histograms"]["http_req_duration"]["count"] for t in native)
    # the fixture's native p50 is ~5.2 ms
    assert 4.5 < merged["native"].percentile(50) < 6.0


def test_failed_trials_samples_are_not_drawn() -> None:
    from isobench.report.rundata import usable_samples
    from isobench.results import Sample, TrialRecord

    trials = [TrialRecord("a", 0, 0, 0, "ok", 0, 1), TrialRecord("a", 1, 1, 1, "failed", 1, 2)]
    samples = [Sample("cpu", 1.0, "%", 0, {"runtime": "a", "trial": 0}),
               Sample("cpu", 99.0, "%", 0, {"runtime": "a", "trial": 1}),
               Sample("host", 5.0, "%", 0, {})]
    assert [s.value for s in usable_samples(samples, trials)] == [1.0, 5.0]
