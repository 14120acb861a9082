"""A full disk under ``--out``, for real: a tmpfs of a few MiB mounted by the test.

``isobench run --workload burn --runtimes native --trials 2`` writes into the tmpfs; as soon as
trial 1's record is on disk the test fills the tmpfs to the last byte, so trial 2's samples and
record cannot be written. Then:

- the run stops with one line naming the fix (exit 2), no traceback;
- every complete record is kept: trial 1's line and its samples, byte for byte;
- after the tmpfs is remounted bigger (and the filler removed), ``--resume`` drops what trial 2
  left half-written and runs it again: two trials, their sample spans tiling samples.jsonl, every
  line JSON, trial 2's samples present once.

Root (mount) and the native runtime; run under the heavy lock. About 15 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_tmpfs(tmp_path: Path, need_root: None) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "isobench-enospc", str(mnt)],
                   check=True, timeout=30)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, timeout=30)


def _fill(mnt: Path) -> None:
    """Write a filler file until the tmpfs is full (ENOSPC)."""
    with (mnt / "filler").open("wb", buffering=0) as fh:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                fh.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0")


def _fill_after_first_trial(out: Path, mnt: Path, proc: subprocess.Popen[str],
                            done: dict[str, Any]) -> None:
    trials = out / "trials.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if trials.exists() and trials.read_bytes().endswith(b"\n"):
            done["trial1"] = trials.read_bytes()
            done["samples1"] = (out / "samples.jsonl").read_bytes()
            _fill(mnt)
            done["full"] = os.statvfs(mnt).f_bavail
            return
        time.sleep(0.05)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "isobench.cli", *args]


def test_full_disk_stops_cleanly_and_resume_drops_the_partial_trial(tiny_tmpfs: Path) -> None:
    out = tiny_tmpfs / "run"
    proc = subprocess.Popen(
        _cli("run", "--workload", "burn", "--runtimes", "native", "--trials", "2",
             "--duration", "2s", "--warmup", "0", "--no-report", "--out", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "COLUMNS": "250"})
    done: dict[str, Any] = {}
    filler = threading.Thread(target=_fill_after_first_trial,
                              args=(out, tiny_tmpfs, proc, done), daemon=True)
    filler.start()
    stdout, stderr = proc.communicate(timeout=300)
    filler.join(timeout=30)
    assert "trial1" in done, stdout[-3000:] + stderr
    assert done["full"] == 0
    assert proc.returncode == 2, stdout[-3000:] + stderr
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert "No space left on device" in lines[0] and "--resume" in lines[0], lines
    assert "Traceback" not in stdout + stderr
    # every complete record kept: trial 1's line and samples, byte for byte
    assert (out / "trials.jsonl").read_bytes() == done["trial1"]
    assert (out / "samples.jsonl").read_bytes().startswith(done["samples1"])
    first = json.loads(done["trial1"])
    assert first["samples_span"] == [0, len(done["samples1"])]

    # more room, then --resume
    (tiny_tmpfs / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_tmpfs)], check=True, timeout=30)
    resumed = subprocess.run(_cli("run", "--resume", str(out), "--no-report"),
                             capture_output=True, text=True, cwd=ROOT, timeout=300,
                             env={**os.environ, "COLUMNS": "250"})
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr
    data = (out / "trials.jsonl").read_bytes()
    assert data.startswith(done["trial1"])
    trials = [json.loads(line) for line in data.splitlines()]
    assert [(t["trial"], t["status"]) for t in trials] == [(0, "ok"), (1, "ok")]
    samples = (out / "samples.jsonl").read_bytes()
    assert samples.startswith(done["samples1"])
    assert trials[1]["samples_span"] == [len(done["samples1"]), len(samples)]
    rows = [json.loads(line) for line in samples.splitlines()]  # no torn line left
    per_trial = {t: sum(1 for r in rows if (r.get("metadata") or {}).get("trial") == t)
                 for t in (0, 1)}
    startups = [r for r in rows if r.get("metric") == "startup_s"]
    assert [(r.get("metadata") or {}).get("trial") for r in startups] == [0, 1], startups
    assert per_trial[1] > 0
