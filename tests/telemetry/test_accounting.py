"""Tree accounting and cgroup readers, on synthetic readings and on a real cgroup."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isobench.runtimes.base import Instance
from isobench.telemetry import cgroup
from isobench.telemetry.cpu import CpuSampler
from isobench.telemetry.memory import MemorySampler
from isobench.telemetry.poller import TreeCounter


def test_tree_counter_child_reaped_by_parent_counts_once() -> None:
    t = TreeCounter(1)
    t.update({(1, 0): (0, (1.0,)), (2, 5): (1, (0.5,))})
    # child 2 ran to 0.8 s and was reaped: its 0.8 s moved into the parent's cutime
    d = t.update({(1, 0): (0, (1.0 + 0.8 + 0.1,))})
    assert abs(d[0] - (0.3 + 0.1)) < 1e-9  # the child's last 0.3 s + the parent's own 0.1 s


def test_tree_counter_new_process_counts_whole_life_and_pid_reuse() -> None:
    t = TreeCounter(1)
    t.update({(1, 0): (0, (1.0,))})
    assert t.update({(1, 0): (0, (1.0,)), (7, 9): (1, (0.25,))}) == [0.25]
    # pid 7 exited (0.25 s, reaped into the parent's cutime) and was reused by a new process
    d = t.update({(1, 0): (0, (1.25,)), (7, 11): (1, (0.1,))})
    assert abs(d[0] - 0.1) < 1e-9


def test_cgroup_v2_files(tmp_path: Path) -> None:
    (tmp_path / "cpu.stat").write_text(
        "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n"
    )
    (tmp_path / "memory.current").write_text("104857600\n")
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.stat").write_text("anon 1\ninactive_file 4857600\n")
    (tmp_path / "io.stat").write_text(
        "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0\n8:16 rbytes=1 wbytes=2 rios=3 wios=4\n"
    )
    (tmp_path / "cgroup.procs").write_text("12\n13\n")
    groups = {"unified": tmp_path}
    c = cgroup.cpu(groups)
    assert c is not None and (c.user, c.system, c.total) == (2.0, 1.0, 3.0)
    m = cgroup.memory(groups)
    assert m is not None and m.working_set == 100_000_000 and m.limit is None
    assert cgroup.io(groups) == cgroup.CgroupIo(101, 202, 4, 6)
    assert cgroup.procs(groups) == frozenset({12, 13})


@pytest.mark.integration  # makes a cgroup of its own: root
def test_real_v1_cgroup_is_preferred(need_root: None) -> None:
    """A process in a cgroup of its own: CPU from cpuacct, memory from memory.usage."""
    name = f"isobench-telemetry-test-{os.getpid()}"
    dirs = {c: Path(f"/sys/fs/cgroup/{c}/{name}") for c in ("cpuacct", "memory")}
    if not all(d.parent.is_dir() for d in dirs.values()):
        import pytest

        pytest.skip("no cgroup v1 cpuacct/memory hierarchy")
    for d in dirs.values():
        d.mkdir()
    # the child allocates only once it is in the cgroup: cgroup v1 does not move the charge of
    # pages touched before (memory.move_charge_at_immigrate is off)
    # the child says when its 1 s of CPU is spent, so a busy host only makes the test slower,
    # never wrong (a fixed sleep would stop the samplers before the work is done)
    code = (
        "import sys, time\nsys.stdin.readline()\nb = bytearray(b'1') * (64 << 20)\n"
        "while time.process_time() < 1.0: pass\nprint('done', flush=True)\ntime.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        for d in dirs.values():
            (d / "cgroup.procs").write_text(str(proc.pid))
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        inst = Instance(
            runtime="native", host_port=1, launched_at=0.0, pids=[proc.pid], cgroups=dirs
        )
        cpu, mem = CpuSampler(inst, interval=0.3), MemorySampler(inst, interval=0.3)
        cpu.start()
        mem.start()
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "done"
        time.sleep(0.7)  # at least two more polls after the work
        cpu.stop()
        mem.stop()
        s = cpu.summary()
        assert s["cpu_source_cgroup"] == 1.0
        assert 0.3 <= s["cpu_seconds"] <= 1.3, s
        m = mem.summary()
        assert m["mem_cgroup_bytes_peak"] >= 64 << 20
        assert m["rss_bytes_peak"] >= 64 << 20
    finally:
        proc.kill()
        proc.wait()
        for d in dirs.values():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
