"""Where the CPU goes, for real: burn over native and docker-bridge (one quick trial each)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from isobench.telemetry import cpusplit

pytestmark = pytest.mark.integration


def test_docker_bridge_helpers_and_the_load_generator_appear_and_parts_add_up(
        tmp_path: Path, need_docker: None) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "isobench.cli", "run", "--workload", "burn", "--quick",
         "--trials", "1", "--runtimes", "native,docker-bridge", "--out", str(out), "--no-report"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert {t["arm"] for t in trials} == {"native", "docker-bridge"}
    for t in trials:
        assert t["status"] == "ok", t["error"]
        s = cpusplit.split(t["telemetry"])
        assert s is not None
        parts = {p.label: p.seconds for p in s.parts}
        # every request crosses the load generator and the workload: both far above zero
        assert parts["load generator"] > 0.05 and parts["workload"] > 0.05, parts
        assert math.fsum(parts.values()) == pytest.approx(s.busy, abs=1e-6)
        assert s.ok, (t["arm"], s.rest, s.tolerance)
        if t["arm"] == "docker-bridge":
            # docker-proxy relays every byte; containerd-shim lives through the trial
            assert parts["helper: docker-proxy"] > 0.0, parts
            assert "helper: containerd-shim" in parts, parts
            assert "daemon: dockerd" in parts, parts
        else:
            assert not [k for k in parts if k.startswith("helper: ")], parts
