"""cgroup v1 helpers: find the hierarchies, make a per-instance group, read a process's groups.

On this host kind (cgroup v1 hybrid) each controller has its own mount under /sys/fs/cgroup and
our own process may sit in a nested group (e.g. ``memory:/process_api/<id>``). An instance group
is created inside the group *we* are in for that controller (so whatever accounts for us also
accounts for the workload), falling back to the hierarchy root, and finally to "no group".
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpuacct", "cpuset", "blkio")


def v1_mounts(mounts: Path = Path("/proc/self/mounts")) -> dict[str, Path]:
    """Controller → mount point of every cgroup v1 hierarchy."""
    found: dict[str, Path] = {}
    for line in mounts.read_text().splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] != "cgroup":
            continue
        for opt in parts[3].split(","):
            if opt in {"cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "devices", "freezer"}:
                found.setdefault(opt, Path(parts[1]))
    return found


def proc_cgroups(pid: int | str = "self") -> dict[str, str]:
    """Controller → cgroup path (relative to its hierarchy) of a process; ``unified`` for v2."""
    groups: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            if not ctrls:
                groups["unified"] = path
            for ctrl in ctrls.split(","):
                if ctrl:
                    groups[ctrl] = path
    return groups


def cgroup_dirs(pid: int, controllers: tuple[str, ...] = CONTROLLERS) -> dict[str, Path]:
    """Absolute cgroup directories of a process, for the controllers mounted on this host."""
    mounts = v1_mounts()
    rel = proc_cgroups(pid)
    return {c: mounts[c] / rel[c].lstrip("/") for c in controllers if c in mounts and c in rel}


@dataclass
class InstanceCgroups:
    """The per-instance groups created (controller → dir) and the facts about limits applied."""

    dirs: dict[str, Path] = field(default_factory=dict)
    memory_limit: int | None = None
    problems: list[str] = field(default_factory=list)

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs.values()]


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _make_group(controller: str, name: str) -> Path | None:
    mount = v1_mounts().get(controller)
    if mount is None:
        return None
    own = proc_cgroups().get(controller, "/")
    for parent in (mount / own.lstrip("/"), mount):
        path = parent / name
        try:
            path.mkdir()
            return path
        except FileExistsError:
            return path
        except OSError:
            continue
    return None


CFS_PERIOD_US = 100_000


def create_instance_cgroups(
    name: str, cpus: str, memory_bytes: int, cpu_quota: float | None = None
) -> InstanceCgroups:
    """Create ``name`` under memory, cpuacct, cpuset and blkio, with the limit and the cpuset;
    also under cpu with a CFS quota of ``cpu_quota`` CPUs when one is given.

    Never raises for an unwritable hierarchy: what could not be done is listed in ``problems``
    and ``memory_limit`` stays None, so the caller records "no limit" as a fact.
    """
    result = InstanceCgroups()
    controllers = (*CONTROLLERS, "cpu") if cpu_quota is not None else CONTROLLERS
    for controller in controllers:
        path = _make_group(controller, name)
        if path is None:
            result.problems.append(f"{controller}: cannot create a cgroup")
            continue
        result.dirs[controller] = path
        try:
            if controller == "memory":
                _write(path / "memory.limit_in_bytes", str(memory_bytes))
                if (path / "memory.memsw.limit_in_bytes").exists():
                    _write(path / "memory.memsw.limit_in_bytes", str(memory_bytes))
                with contextlib.suppress(OSError):
                    _write(path / "memory.swappiness", "0")
                result.memory_limit = int((path / "memory.limit_in_bytes").read_text())
            elif controller == "cpuset":
                _write(path / "cpuset.cpus", cpus)
                _write(path / "cpuset.mems", (path.parent / "cpuset.mems").read_text().strip())
            elif controller == "cpu" and cpu_quota is not None:
                _write(path / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                _write(path / "cpu.cfs_quota_us", str(int(cpu_quota * CFS_PERIOD_US)))
        except OSError as exc:
            result.problems.append(f"{controller}: {exc}")
    return result


def pids_in(dirs: list[Path]) -> set[int]:
    """Every pid listed in the ``cgroup.procs`` of these groups."""
    pids: set[int] = set()
    for d in dirs:
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
    return pids


def kill_cgroup_procs(dirs: list[Path], timeout: float = 5.0) -> None:
    """SIGKILL every process in the groups until they are empty (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = pids_in(dirs)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def remove_cgroups(dirs: list[Path], timeout: float = 5.0) -> list[Path]:
    """rmdir the groups (retrying while the kernel reaps their last tasks); returns leftovers."""
    deadline = time.monotonic() + timeout
    left = [d for d in dirs if d.exists()]
    while left:
        still = []
        for d in left:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                still.append(d)
        left = still
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return left
