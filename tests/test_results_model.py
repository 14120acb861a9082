"""The typed Manifest and Analysis: old manifests read with the old defaults, the documents
round-trip unchanged, and a command analyses a run once for every writer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from isobench.report import rundata
from isobench.report.outputs import OutputRequest, write_outputs
from isobench.report.run_terminal import print_run
from isobench.results import RunStore
from isobench.results_model import Analysis, Manifest, ManifestError, as_manifest
from tests.fixtures.make_run import make_run


def test_manifest_without_newer_keys_reads_with_the_old_defaults() -> None:
    m = Manifest.from_json({"run_id": "r1", "config": {"workload": "burn"}})
    assert m.version == 1 and m.run_id == "r1" and m.seed == 0
    c = m.config
    assert (c.workload, c.baseline, c.min_effect, c.alpha, c.margin, c.primary, c.preset) == (
        "burn", "native", 0.05, 0.05, 0.05, None, None)
    assert m.emulated == [] and m.image_size("native") is None
    assert m["config"] == {"workload": "burn"} and m.get("host") is None  # still a Mapping


def test_manifest_typed_fields() -> None:
    doc = {
        "version": 1, "run_id": "r2", "plan": {"seed": 7},
        "config": {"baseline": "docker-host", "margin": 0.03, "primary": "p95", "preset": "x"},
        "runtimes": {"vm": {"emulated": "true", "artifact": "vm_disk", "kind": "vm"},
                     "docker-host": {"emulated": False, "artifact": "docker_image"}},
        "artifacts": {"key": "k", "sizes": {"vm_disk": 10, "docker_image": 5}},
    }
    m = Manifest.from_json(doc)
    assert m.seed == 7 and m.config.baseline == "docker-host" and m.config.margin == 0.03
    assert m.emulated == ["vm"] and m.runtimes["vm"].kind == "vm"
    assert (m.image_size("vm"), m.image_size("docker-host"), m.image_size("gone")) == (10, 5, None)
    assert m.to_json() == doc and as_manifest(m) is m and as_manifest(doc) == m


def test_manifest_of_a_newer_version_is_refused_in_one_line() -> None:
    with pytest.raises(ManifestError) as err:
        Manifest.from_json({"version": 99})
    assert "99" in err.value.message


def test_analysis_round_trips_the_document(tmp_path: Path) -> None:
    data = rundata.load_run(make_run(tmp_path / "run"), with_samples=False)
    doc = data.analysis.to_json()
    assert json.loads(json.dumps(doc)) == doc  # still plain JSON: analysis.json is unchanged
    again = Analysis.from_json(doc)
    assert again == data.analysis and again.runtimes == tuple(doc["runtimes"])
    rt = next(r for r in again.runtimes if r != again.baseline)
    comp = again.comparison(rt, str(again.primary))
    assert comp is not None and comp["runtime"] == rt


def test_one_analysis_per_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`isobench run`/`report` print the run and write every file from one analysis."""
    run_dir = make_run(tmp_path / "run")
    calls = []
    real = rundata.analyze

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rundata, "analyze", counting)
    data = rundata.load_run(run_dir)
    console = Console(file=io.StringIO(), width=120)
    print_run(console, run_dir, data=data)
    request = OutputRequest(export_json=tmp_path / "a.json", export_csv=tmp_path / "c.csv",
                            export_markdown=tmp_path / "m.md", fail_if=("*:primary<-90%",))
    write_outputs(console, run_dir, request, data=data)
    assert len(calls) == 1
    for name in ("report.html", "analysis.json", "comparison.md", "trials.csv", "gates.json"):
        assert (run_dir / name).exists(), name
    written = json.loads((run_dir / "analysis.json").read_text())
    assert written["analysis"] == data.analysis.to_json()
    assert written["run"]["run_id"] == RunStore(run_dir).read_manifest()["run_id"]
