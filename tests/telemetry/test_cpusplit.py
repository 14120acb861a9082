"""The CPU split from synthetic /proc readings: every figure is exactly known, parts add up."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from isobench.load import api, tracking
from isobench.telemetry import cpusplit, procfs
from isobench.telemetry.cpu import CpuSampler
from isobench.telemetry.cpusplit import Poll, SplitTracker

TCK = procfs.CLK_TCK


def stat(pid: int, comm: str, ppid: int, utime: float, stime: float = 0.0, cutime: float = 0.0,
         start: int = 1) -> procfs.PidStat:
    """A /proc/PID/stat line (times in seconds), parsed as the sampler parses it."""
    f = ["S", ppid, 0, 0, 0, 0, 0, 0, 0, 0, 0, round(utime * TCK), round(stime * TCK),
         round(cutime * TCK), 0, 20, 0, 1, 0, start, 0, 100]
    f += [0] * (44 - 3 - len(f))
    return procfs.parse_stat(pid, f"{pid} ({comm}) " + " ".join(str(x) for x in f))


def proc_stat(*cpus: tuple[float, float, float, float]) -> dict[int, procfs.HostCpu]:
    """/proc/stat text with per-CPU (user, system, softirq, idle) in seconds, parsed."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    for i, (user, system, softirq, idle) in enumerate(cpus):
        lines.append(f"cpu{i} {round(user * TCK)} 0 {round(system * TCK)} {round(idle * TCK)} "
                     f"0 0 {round(softirq * TCK)} 0 0 0")
    return procfs.parse_proc_stat_cpus("\n".join(lines) + "\nintr 0\n")


ROLES = {"docker-proxy": "docker-proxy", "containerd-shim*": "containerd-shim"}


def tracker() -> SplitTracker:
    return SplitTracker(ROLES, {}, {0}, {1}, opened_at=100.0)


def two_polls(extra_workload: float = 0.0) -> dict[str, float]:
    """Poll 0 (baseline) and poll 1, one second apart; the summary as the sampler writes it."""
    t = tracker()
    t.update(Poll(
        workload=0.0, members={10: stat(10, "python3", 9, 5.0)},
        helpers={9: stat(9, "containerd-shim", 1, 1.0), 11: stat(11, "docker-proxy", 2, 2.0)},
        daemons={2: stat(2, "dockerd", 1, 7.0), 3: stat(3, "containerd", 2, 3.0)},
        loadgen={(50, 101.0): 0.0}, tool=4.0,
        cpus=proc_stat((10.0, 5.0, 1.0, 50.0), (20.0, 8.0, 2.0, 40.0))))
    out = t.update(Poll(
        workload=1.2 + extra_workload, members={10: stat(10, "python3", 9, 6.2)},
        helpers={9: stat(9, "containerd-shim", 1, 1.05), 11: stat(11, "docker-proxy", 2, 2.3)},
        daemons={2: stat(2, "dockerd", 1, 7.02), 3: stat(3, "containerd", 2, 3.0)},
        loadgen={(50, 101.0): 0.4}, tool=4.1,
        # cpu0: +1.0 user +0.5 system +0.1 softirq; cpu1: +0.8 user +0.2 system +0.05 softirq
        cpus=proc_stat((11.0, 5.5, 1.1, 50.4), (20.8, 8.2, 2.05, 40.0))))
    assert out[cpusplit.WORKLOAD] == pytest.approx(1.2 + extra_workload)
    summary = t.summary()
    summary[cpusplit.WALL] = 1.0
    summary[cpusplit.IRQ_MODE] = 1.0
    return summary


def test_parts_add_up_to_the_host_busy_time_and_each_is_exact() -> None:
    s = cpusplit.split(two_polls())
    assert s is not None
    got = {p.label: p.seconds for p in s.parts}
    assert got == pytest.approx({
        "workload": 1.2, "helper: containerd-shim": 0.05, "helper: docker-proxy": 0.3,
        "daemon: containerd": 0.0, "daemon: dockerd": 0.02, "load generator": 0.4,
        "isobench itself": 0.1, "rest of the host": 2.65 - 2.07})
    assert s.busy == pytest.approx(2.65)
    assert math.fsum(p.seconds for p in s.parts) == pytest.approx(s.busy, abs=1e-9)
    assert s.ok
    assert {p.label: p.seconds for p in s.kernel} == pytest.approx(
        {"softirq, workload cpus": 0.1, "softirq, loadgen cpus": 0.05,
         "softirq, other cpus": 0.0, "irq, all CPUs": 0.0})
    assert s.percent(0.3) == pytest.approx(30.0)  # "docker-proxy used 30 % of a core"


def test_parts_exceeding_the_host_total_fail_the_check() -> None:
    s = cpusplit.split(two_polls(extra_workload=5.0))  # 5 s more than two CPUs ran in 1 s
    assert s is not None
    assert s.rest == pytest.approx(0.58 - 5.0)
    assert -s.rest > s.tolerance
    assert not s.ok
    assert math.fsum(p.seconds for p in s.parts) == pytest.approx(s.busy, abs=1e-9)


def test_tolerance_is_what_the_docstring_says() -> None:
    # 2 CPUs × 5 × sqrt(10 s × 0.25 / 100) + (10 processes × 4 + 2 CPUs × 10) ticks + steal
    assert cpusplit.tolerance(10.0, 2, 10, 0.1) == pytest.approx(
        2 * 5 * math.sqrt(0.025) + 60 / TCK + 0.1)


def test_a_child_reaped_by_a_helper_of_another_role_counts_once() -> None:
    counter = cpusplit.RoleCounter()
    counter.update({(9, 1): (1, "shim", 1.0), (12, 5): (9, "runc", 0.5)})
    # runc ran 0.2 s more, exited, and the shim reaped it: its 0.7 s move into the shim's cutime
    grown = counter.update({(9, 1): (1, "shim", 1.0 + 0.7)})
    # runc's 0.5 s already counted is not counted again; its last 0.2 s lands on the shim
    assert grown == pytest.approx({"shim": 0.2})


def test_helpers_fall_back_to_their_process_name() -> None:
    reading = cpusplit.roles_reading({7: stat(7, "runsc-gofer", 1, 1.0)}, ROLES)
    assert [role for _, role, _ in reading.values()] == ["runsc-gofer"]
    assert cpusplit.slug("CPU 0/TCG") == "CPU-0-TCG"


def test_qemu_threads_split_the_workload_and_add_up_to_it() -> None:
    roles = {"CPU */KVM": "vcpu", "CPU */TCG": "vcpu", "*": "io-main"}
    t = SplitTracker({}, roles, {0}, {1}, opened_at=0.0)
    cpus0, cpus1 = proc_stat((0.0, 0.0, 0.0, 0.0)), proc_stat((2.0, 0.0, 0.0, 0.0))
    threads0 = {20: stat(20, "qemu-system-x86", 1, 1.0), 21: stat(21, "CPU 0/TCG", 1, 3.0),
                22: stat(22, "IO mon_iothread", 1, 0.5)}
    threads1 = {20: stat(20, "qemu-system-x86", 1, 1.3), 21: stat(21, "CPU 0/TCG", 1, 4.5),
                22: stat(22, "IO mon_iothread", 1, 0.6),
                23: stat(23, "worker", 1, 0.05)}  # a worker thread appeared
    t.update(Poll(workload=0.0, threads=threads0, cpus=cpus0))
    out = t.update(Poll(workload=2.0, threads=threads1, cpus=cpus1))
    assert out["cpu_split_within__vcpu_seconds"] == pytest.approx(1.5)
    assert out["cpu_split_within__io-main_seconds"] == pytest.approx(0.5)
    s = cpusplit.split({**t.summary(), cpusplit.WORKLOAD: 2.0, cpusplit.WALL: 1.0})
    assert s is not None
    assert math.fsum(p.seconds for p in s.within) == pytest.approx(2.0)


def test_gvisor_processes_split_the_workload_by_argv0() -> None:
    roles = {"runsc-sandbox": "sentry", "runsc-gofer": "gofer", "*": "stubs-and-other"}
    t = SplitTracker({}, {}, {0}, {1}, opened_at=0.0, process_roles=roles)
    names = {30: "runsc-sandbox", 31: "runsc-gofer", 32: ""}
    cpus0, cpus1 = proc_stat((0.0, 0.0, 0.0, 0.0)), proc_stat((3.0, 0.0, 0.0, 0.0))
    m0 = {30: stat(30, "exe", 1, 2.0), 31: stat(31, "exe", 1, 1.0), 32: stat(32, "exe", 30, 4.0)}
    m1 = {30: stat(30, "exe", 1, 2.8), 31: stat(31, "exe", 1, 1.1), 32: stat(32, "exe", 30, 5.5)}
    t.update(Poll(workload=0.0, members=m0, names=names, cpus=cpus0))
    out = t.update(Poll(workload=2.4, members=m1, names=names, cpus=cpus1))
    assert out["cpu_split_within__sentry_seconds"] == pytest.approx(0.8)
    assert out["cpu_split_within__gofer_seconds"] == pytest.approx(0.1)
    assert out["cpu_split_within__stubs-and-other_seconds"] == pytest.approx(1.5)


def test_load_generator_counts_its_whole_life_in_the_window_and_its_final_total() -> None:
    t = SplitTracker({}, {}, {0}, {1}, opened_at=100.0)
    cpus = proc_stat((0.0, 0.0, 0.0, 1.0))
    before = (40, 90.0)  # started before the window: only its growth counts
    t.update(Poll(workload=0.0, loadgen={before: 5.0}, cpus=cpus))
    t.update(Poll(workload=0.0, loadgen={before: 5.5, (50, 101.0): 0.2}, cpus=cpus))
    t.update(Poll(workload=0.0, loadgen={before: 5.5, (50, 101.0): None}, cpus=cpus))  # exiting
    t.update(Poll(workload=0.0, loadgen={before: 5.5, (50, 101.0): 0.7}, cpus=cpus))  # wait4
    assert t.summary()[cpusplit.LOADGEN] == pytest.approx(0.5 + 0.7)


def test_per_cpu_lines_and_cpu_lists() -> None:
    cpus = procfs.parse_proc_stat_cpus(
        "cpu  3 0 0 0\ncpu0 100 0 50 10 0 0 7 1 0 0\ncpu1 200 0 0 0\nintr 5\n")
    assert sorted(cpus) == [0, 1]
    assert cpus[0].softirq == pytest.approx(7 / TCK)
    assert cpus[1].user == pytest.approx(200 / TCK)
    assert procfs.parse_cpu_list("0-2,5\n") == {0, 1, 2, 5}
    assert cpusplit.irq_in_processes() in (-1, 0, 1)


def test_the_engine_is_reaped_with_its_exact_cpu_seconds() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.process_time()\n"
         "while time.process_time() - t < 0.3: pass"], text=True)
    tracking.started(proc.pid, (1,))
    since = time.monotonic()
    assert api._reap(proc) == 0
    gens = [g for g in tracking.generators(since) if g.pid == proc.pid]
    assert len(gens) == 1 and gens[0].cpus == (1,)
    used = tracking.cpu_seconds(gens[0])
    assert used is not None and used >= 0.3


def test_sampler_on_real_processes_adds_up(burn_app) -> None:  # type: ignore[no-untyped-def]
    """A real process tree and a registered busy 'load generator': parts add up and the
    load generator's and the workload's CPU land in their parts (far above zero)."""
    from tests.telemetry.conftest import get

    sampler = CpuSampler(burn_app, interval=0.25)
    sampler.start()
    gen = subprocess.Popen([sys.executable, "-c", "import time\nt=time.process_time()\n"
                            "while time.process_time() - t < 0.5: pass"])
    tracking.started(gen.pid, ())
    # ~0.7 s of the app's CPU (a unit is ~35 µs here): far above the clock-tick granularity of
    # /proc/<pid>/stat (10 ms), which made 200 units (~7 ms) read as 0 s now and then
    get(burn_app.host_port, "/work?units=20000")
    api._reap(gen)  # type: ignore[arg-type]
    time.sleep(0.3)
    sampler.stop()
    s = cpusplit.split(sampler.summary())
    assert s is not None
    parts = {p.label: p.seconds for p in s.parts}
    assert parts["load generator"] >= 0.5 - 0.02
    assert parts["workload"] >= 0.05  # ~0.7 s here; a host 10x faster still gives 0.07 s
    assert math.fsum(p.seconds for p in s.parts) == pytest.approx(s.busy, abs=1e-6)
    assert s.ok, (s.rest, s.tolerance)
