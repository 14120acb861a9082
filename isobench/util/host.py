"""What this host is and can do: manifest facts, and the checks behind ``isobench doctor``."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobench import __version__, plugins
from isobench.runtimes.base import HostCheck, Runtime, RuntimeContext


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cmd(argv: list[str], timeout: float = 10.0) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_sha() -> str | None:
    """The tool's own git commit, when run from a checkout."""
    here = Path(__file__).resolve().parent.parent
    return _cmd(["git", "-C", str(here), "rev-parse", "HEAD"])


def busy_processes(limit: int = 5, min_percent: float = 5.0) -> list[dict[str, Any]]:
    """Other processes busy now (sampled over 0.5 s): the report says how noisy the host was."""
    import psutil

    procs = list(psutil.process_iter(["pid", "name"]))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    time.sleep(0.5)
    busy = []
    me = os.getpid()
    for proc in procs:
        try:
            pct = proc.cpu_percent(None)
        except psutil.Error:
            continue
        if pct >= min_percent and proc.pid != me:
            busy.append({"pid": proc.pid, "name": proc.info["name"], "cpu_percent": pct})
    return sorted(busy, key=lambda p: -p["cpu_percent"])[:limit]


def cgroup_version() -> str:
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return "v2"
    if Path("/sys/fs/cgroup/unified").exists():
        return "v1 (hybrid)"
    return "v1"


def host_facts() -> dict[str, Any]:
    """Facts recorded in every run's manifest."""
    import psutil

    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    cpu_model = None
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "isobench_version": __version__,
        "git_sha": git_sha(),
        "hostname": platform.node(),
        "kernel": platform.release(),
        "os": _read("/etc/debian_version"),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "loadavg": list(os.getloadavg()),
        "cpu_governor": governor or "not visible",
        "cgroup": cgroup_version(),
        "kvm_device": Path("/dev/kvm").exists(),
        "busy_processes": busy_processes(),
        "sched_autogroup": autogroup_enabled(),
        "time": time.time(),
    }


Check = HostCheck
"""One line of ``doctor`` (the runtimes' own checks have the same shape)."""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    runtimes: dict[str, str | None] = field(default_factory=dict)

    def runnable(self, names: list[str]) -> list[str]:
        """Names among ``names`` that cannot run here."""
        return [n for n in names if self.runtimes.get(n) is not None]


def autogroup_enabled() -> bool | None:
    """``kernel.sched_autogroup_enabled`` (None where the kernel has no autogroups). When on,
    ``nice`` acts only within a session: a niced job in another terminal still gets a whole
    session's CPU share beside the measured workload."""
    value = _read("/proc/sys/kernel/sched_autogroup_enabled")
    return None if value is None else value.strip() == "1"


def _autogroup_check() -> Check:
    on = autogroup_enabled()
    if not on:
        return Check("scheduler", True, "no autogroups: nice works across sessions")
    return Check("scheduler", True, "autogroups on: a niced job in another session competes with "
                 "the workload as if not niced (to quiet the host while measuring: sysctl "
                 "kernel.sched_autogroup_enabled=0)")


def _resources_checks() -> list[Check]:
    import psutil

    cpus = os.cpu_count() or 1
    mem = psutil.virtual_memory()
    disk = shutil.disk_usage(Path.home())
    return [
        Check(
            "cpus",
            cpus >= 2,
            f"{cpus} (workload pinned to CPU 0, load generator to the rest)",
            None if cpus >= 2 else "with 1 CPU the load generator shares the workload's core",
        ),
        Check(
            "memory",
            mem.total >= 2 << 30,
            f"{mem.total / 2**30:.1f} GiB total, {mem.available / 2**30:.1f} GiB available",
        ),
        Check(
            "free disk",
            disk.free >= 5 << 30,
            f"{disk.free / 2**30:.1f} GiB free in {Path.home()}",
            None if disk.free >= 5 << 30 else "free at least 5 GiB (rootfs, images, VM disks)",
        ),
        Check(
            "root",
            os.geteuid() == 0,
            "running as root" if os.geteuid() == 0 else "not root",
            None if os.geteuid() == 0 else "run as root (chroot, cgroups, mounts)",
        ),
        Check(
            "debootstrap",
            shutil.which("debootstrap") is not None,
            "builds the one rootfs",
            None if shutil.which("debootstrap") else "apt-get install debootstrap",
        ),
        _autogroup_check(),
    ]


def doctor(runtime_names: list[str], probe_kvm: bool = True) -> DoctorReport:
    """Check the host and every named runtime."""
    report = DoctorReport()
    seen: set[str] = set()
    ctx = RuntimeContext()
    for name in runtime_names:
        try:
            cls = plugins.load("runtime", name)
            for check in cls.host_checks(probe_kvm):  # facilities first, each shown once
                if check.name not in seen:
                    seen.add(check.name)
                    report.checks.append(check)
            runtime: Runtime = cls(ctx)
            report.runtimes[name] = runtime.check()
        except Exception as exc:  # a broken plug-in must not break doctor
            report.runtimes[name] = f"cannot load: {exc}"
    report.checks.extend(_resources_checks())
    return report
