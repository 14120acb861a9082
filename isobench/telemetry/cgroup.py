"""Readers of an instance's cgroup (v1 controllers or the v2 unified hierarchy).

``Instance.cgroups`` maps a controller (``cpuacct``, ``memory``, ``blkio``, or ``unified`` for v2)
to an absolute cgroup directory. Every reader returns None when the files are not there, so a
sampler falls back to the process trees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from isobench.telemetry.procfs import read_text


def _dir(cgroups: Mapping[str, Path], controller: str) -> tuple[Path | None, bool]:
    """The directory for a v1 controller, else the v2 one; (dir, is_v2)."""
    if controller in cgroups:
        return Path(cgroups[controller]), False
    if "unified" in cgroups:
        return Path(cgroups["unified"]), True
    return None, False


def _kv(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass(frozen=True)
class CgroupCpu:
    """CPU seconds consumed by the cgroup (every process that ever ran in it)."""

    user: float
    system: float
    total: float


def cpu(cgroups: Mapping[str, Path]) -> CgroupCpu | None:
    path, v2 = _dir(cgroups, "cpuacct")
    if path is None:
        return None
    if v2:
        stat = _kv(read_text(str(path / "cpu.stat")))
        if "usage_usec" not in stat:
            return None
        return CgroupCpu(
            stat.get("user_usec", 0) / 1e6,
            stat.get("system_usec", 0) / 1e6,
            stat["usage_usec"] / 1e6,
        )
    usage = read_text(str(path / "cpuacct.usage"))
    if usage is None:
        return None
    user = read_text(str(path / "cpuacct.usage_user"))
    system = read_text(str(path / "cpuacct.usage_sys"))
    return CgroupCpu(int(user or 0) / 1e9, int(system or 0) / 1e9, int(usage) / 1e9)


def procs(cgroups: Mapping[str, Path]) -> frozenset[int] | None:
    """Pids in the cgroup (first controller found), or None without a cgroup."""
    for controller in ("cpuacct", "memory", "blkio", "unified"):
        if controller in cgroups:
            text = read_text(str(Path(cgroups[controller]) / "cgroup.procs"))
            if text is not None:
                return frozenset(int(x) for x in text.split())
    return None


@dataclass(frozen=True)
class CgroupMemory:
    """Memory as ``docker stats`` shows it: usage minus inactive file cache."""

    usage: int
    working_set: int
    limit: int | None


def memory(cgroups: Mapping[str, Path]) -> CgroupMemory | None:
    path, v2 = _dir(cgroups, "memory")
    if path is None:
        return None
    usage_file, limit_file, inactive_key = (
        ("memory.current", "memory.max", "inactive_file")
        if v2
        else ("memory.usage_in_bytes", "memory.limit_in_bytes", "total_inactive_file")
    )
    usage_text = read_text(str(path / usage_file))
    if usage_text is None:
        return None
    usage = int(usage_text)
    stat = _kv(read_text(str(path / "memory.stat")))
    inactive = stat.get(inactive_key, 0)
    limit_text = (read_text(str(path / limit_file)) or "").strip()
    limit = int(limit_text) if limit_text.isdigit() and int(limit_text) < 1 << 60 else None
    return CgroupMemory(usage=usage, working_set=max(0, usage - inactive), limit=limit)


@dataclass(frozen=True)
class CgroupIo:
    """Block I/O of the cgroup: bytes and operations."""

    read_bytes: int
    write_bytes: int
    read_ops: int
    write_ops: int


def _blkio_total(text: str | None) -> tuple[int, int]:
    read = write = 0
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            if parts[1] == "Read":
                read += int(parts[2])
            elif parts[1] == "Write":
                write += int(parts[2])
    return read, write


def io(cgroups: Mapping[str, Path]) -> CgroupIo | None:
    path, v2 = _dir(cgroups, "blkio")
    if path is None:
        return None
    if v2:
        text = read_text(str(path / "io.stat"))
        if text is None:
            return None
        totals = {"rbytes": 0, "wbytes": 0, "rios": 0, "wios": 0}
        for line in text.splitlines():
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                if key in totals and value.isdigit():
                    totals[key] += int(value)
        return CgroupIo(totals["rbytes"], totals["wbytes"], totals["rios"], totals["wios"])
    nbytes = read_text(str(path / "blkio.throttle.io_service_bytes_recursive"))
    if nbytes is None:
        nbytes = read_text(str(path / "blkio.throttle.io_service_bytes"))
    if nbytes is None:
        return None
    ops = read_text(str(path / "blkio.throttle.io_serviced_recursive"))
    if ops is None:
        ops = read_text(str(path / "blkio.throttle.io_serviced"))
    rb, wb = _blkio_total(nbytes)
    ro, wo = _blkio_total(ops)
    return CgroupIo(rb, wb, ro, wo)
