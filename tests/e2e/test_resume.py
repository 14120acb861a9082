"""A run that was cut short continues with --resume and loses nothing already measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isobench.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_resume_runs_only_the_missing_trials(tmp_path: Path, need_root: None) -> None:
    out = tmp_path / "run"
    proc = _cli("run", "--workload", "burn", "--runtimes", "native", "--aa", "--trials", "2",
                "--duration", "1s", "--warmup", "0", "--no-report", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 4
    kept = lines[:2]
    # as a crash mid-run leaves it: two trials on disk, a torn third line, status running
    (out / "trials.jsonl").write_text("\n".join(kept) + '\n{"runtime": "nat')
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(manifest))

    proc = _cli("run", "--resume", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()
              if line.startswith("{") and line.endswith("}")]
    assert [t["position"] for t in trials] == [0, 1, 2, 3]
    assert trials[:2] == [json.loads(line) for line in kept]  # untouched
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
