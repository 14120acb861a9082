"""Ctrl-C and SIGTERM in the middle of a trial: everything the run started is removed, the
results so far are kept, and the run can be resumed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _containers(run_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=isobench.run={run_id}"],
        capture_output=True, text=True, timeout=30,
    )
    return out.stdout.split()


def _native_mounts(run_id: str) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if run_id in line]


@pytest.mark.parametrize(
    ("sig", "times"), [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGINT, 3)]
)
def test_signal_mid_trial_cleans_up(
    sig: signal.Signals, times: int, tmp_path: Path, need_docker: None
) -> None:
    """Also Ctrl-C pressed three times: the later ones must not cut the cleanup short."""
    out = tmp_path / f"run-{sig.name.lower()}-{times}"
    run_id = out.name
    proc = subprocess.Popen(
        [sys.executable, "-m", "isobench.cli", "run", "--workload", "burn", "--runtimes",
         "docker-bridge,native", "--trials", "3", "--duration", "20s", "--warmup", "0",
         "--no-report", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 180
        # wait until a trial is in flight: a container of this run, or a native overlay mount
        while not (_containers(run_id) or _native_mounts(run_id)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no trial started"
            time.sleep(0.2)
        time.sleep(3)  # well inside the 20 s load
        for _ in range(times):
            proc.send_signal(sig)
            time.sleep(0.05)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err
    assert _containers(run_id) == []
    assert _native_mounts(run_id) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=30)
    assert f"isobench_tm_{proc.pid}_" not in nft.stdout
