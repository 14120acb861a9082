"""``kill -9`` of isobench itself in the middle of a trial, for real: then ``isobench clean``
leaves nothing, and ``--resume`` keeps the earlier trial byte for byte.

``isobench run --workload burn --runtimes native,docker-bridge --trials 1`` (two trials, one per
runtime); once the first trial's record is on disk and the second trial's instance answers,
the test sends SIGKILL to the isobench process: no cleanup of its own can run. Then:

- ``isobench clean`` removes what the run left (its container or its native process, mount and
  state record, its nftables counters), because their owner is dead; nothing of the run is left;
- ``isobench run --resume`` runs only the missing trial: the first trial's line is unchanged,
  both trials are ok, and the samples of the killed trial are not counted.

Real Docker and the native runtime; run under the heavy lock. About 20 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isobench.util import paths
from tests.faults.test_kill_mid_trial import native_pids, run_containers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "isobench.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**os.environ, "COLUMNS": "250"})


def _left(run_id: str) -> list[str]:
    found = [f"container {c}" for c in run_containers(run_id, running=False)]
    found += [f"native {p}" for p in native_pids(run_id)]
    # records and instance directories, one level down (never into a live chroot's /proc)
    found += [f"state {p}" for p in paths.state_dir().glob(f"*/*{run_id}*")]
    found += [m for m in Path("/proc/mounts").read_text().splitlines() if run_id in m]
    return found


def test_kill_9_of_isobench_then_clean_then_resume(tmp_path: Path, need_docker: None) -> None:
    run_id = f"fault-kill9-{os.getpid()}"
    out = tmp_path / run_id
    proc = subprocess.Popen(
        [sys.executable, "-m", "isobench.cli", "run", "--workload", "burn", "--runtimes",
         "native,docker-bridge", "--trials", "1", "--duration", "4s", "--warmup", "0",
         "--no-report", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    trials = out / "trials.jsonl"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if trials.exists() and trials.read_bytes().count(b"\n") == 1 and _left(run_id):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the second trial started"
        time.sleep(1.5)  # the second trial is loading
        first = trials.read_bytes()
        assert first.count(b"\n") == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # the test went wrong before its kill: the run's own cleanup
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
    assert _left(run_id), "the killed run left nothing: the test did not hit a trial"
    nft_before = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                                timeout=30).stdout

    clean = _cli("clean")
    assert clean.returncode in (0, 1), clean.stdout + clean.stderr  # 1: something else unchecked
    assert _left(run_id) == [], clean.stdout
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                         timeout=30).stdout
    assert f"isobench_tm_{proc.pid}_" not in nft, (nft_before, nft)

    resumed = _cli("run", "--resume", str(out), "--no-report")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr
    data = trials.read_bytes()
    assert data.startswith(first)
    records = [json.loads(line) for line in data.splitlines()]
    assert sorted((r["arm"], r["status"]) for r in records) == [
        ("docker-bridge", "ok"), ("native", "ok")]
    spans = [r["samples_span"] for r in records]
    assert spans[0][1] == spans[1][0], spans  # the killed trial's samples were dropped
    assert (out / "samples.jsonl").stat().st_size == spans[1][1]
    assert _left(run_id) == []
