"""`isobench run` end to end through the CLI, for real: every runtime, run directory, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _isobench(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isobench.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_quick_run_all_four_runtimes(tmp_path: Path, need_docker: None, need_qemu: None) -> None:
    out = tmp_path / "run"
    proc = _isobench(
        "run", "--quick", "--trials", "2", "--runtimes", "native,docker-bridge,docker-host,vm",
        "--out", str(out),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 8
    assert {t["arm"] for t in trials} == {"native", "docker-bridge", "docker-host", "vm"}
    assert all(t["status"] == "ok" for t in trials), [t["error"] for t in trials]
    for t in trials:
        assert t["startup_s"] > 0
        rate = t["load"]["metrics"]["http_reqs"]["values"]["rate"]
        assert rate > 0.5, (t["arm"], rate)
        assert t["load"]["metrics"]["http_req_failed"]["values"]["rate"] == 0
        assert t["telemetry"]["cpu_seconds"] > 0
    vm = [t for t in trials if t["arm"] == "vm"]
    assert all(t["facts"]["emulated"] == (t["facts"]["accel"] == "tcg") for t in vm)
    # interleaved: each round holds every runtime once
    rounds = {t["round"] for t in trials}
    for r in rounds:
        assert len({t["arm"] for t in trials if t["round"] == r}) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["pinning"] == {"workload": [0], "load_generator": [1], "isobench": [1]}
    sizes = manifest["artifacts"]["sizes"]
    assert sizes["rootfs"] > 50e6 and sizes["docker_image"] > 50e6 and sizes["vm_disk"] > 50e6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline"] == "native"
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "trials.csv").exists()
    # the terminal output: the verdict sentences first, then the comparison table (k6's own
    # summaries only with --verbose), the VM marked emulated
    assert "verdict on req/s" in proc.stdout
    assert "isobench — records-api vs native" in proc.stdout
    assert proc.stdout.index("verdict on req/s") < proc.stdout.index("isobench — records-api")
    assert "http_req_duration" not in proc.stdout
    assert (out / "analysis.json").exists() and (out / "comparison.md").exists()
    if any(t["facts"]["emulated"] for t in vm):
        assert "emulated" in proc.stdout
    # samples: a time series per trial from telemetry and load
    metrics = {json.loads(line)["metric"] for line in (out / "samples.jsonl").open()}
    assert "startup_s" in metrics and any(m.startswith("load_") for m in metrics)


def test_unknown_runtime_is_one_line_with_the_fix(tmp_path: Path) -> None:
    proc = _isobench("run", "--runtimes", "native,dockr", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unknown runtime 'dockr'" in lines[0] and "docker-bridge" in lines[0]


def test_bad_benchfile_is_one_line(tmp_path: Path) -> None:
    bench = tmp_path / "b.yaml"
    bench.write_text("runtimes: [native\n")
    proc = _isobench("run", "-f", str(bench), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "not valid YAML" in proc.stderr
