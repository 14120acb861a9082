"""Cheap readers of /proc for process trees and the host (no psutil in the polling path).

Accounting of dead processes: a process's ``utime+stime+cutime+cstime`` (and its ``/proc/PID/io``)
already include every child it reaped. So the sum of those fields over the *live* tree grows
monotonically even while short-lived children come and go, as long as their parents reap them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

CLK_TCK = float(os.sysconf("SC_CLK_TCK"))
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def read_text(path: str) -> str | None:
    """File content, or None when it vanished or cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return None


@dataclass(frozen=True)
class PidStat:
    """Fields of /proc/PID/stat, times in seconds (process-wide: all threads)."""

    pid: int
    comm: str
    ppid: int
    utime: float
    stime: float
    cutime: float
    cstime: float
    num_threads: int
    starttime: int
    rss_bytes: int
    guest_time: float

    @property
    def cpu_total(self) -> float:
        """Own plus reaped children's CPU seconds."""
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(pid: int, text: str) -> PidStat:
    """Parse a /proc/PID/stat line (the comm may contain spaces and parentheses)."""
    lpar, rpar = text.index("("), text.rindex(")")
    comm = text[lpar + 1 : rpar]
    f = text[rpar + 2 :].split()
    # f[0] is field 3 (state); field N is f[N - 3].
    guest = float(f[42 - 3]) / CLK_TCK if len(f) > 42 - 3 else 0.0
    return PidStat(
        pid=pid,
        comm=comm,
        ppid=int(f[4 - 3]),
        utime=int(f[14 - 3]) / CLK_TCK,
        stime=int(f[15 - 3]) / CLK_TCK,
        cutime=int(f[16 - 3]) / CLK_TCK,
        cstime=int(f[17 - 3]) / CLK_TCK,
        num_threads=int(f[20 - 3]),
        starttime=int(f[22 - 3]),
        rss_bytes=int(f[24 - 3]) * PAGE_SIZE,
        guest_time=guest,
    )


def pid_stat(pid: int) -> PidStat | None:
    text = read_text(f"/proc/{pid}/stat")
    if text is None:
        return None
    try:
        return parse_stat(pid, text)
    except (ValueError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """Direct children of every thread of ``pid`` (needs CONFIG_PROC_CHILDREN)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        text = read_text(f"/proc/{pid}/task/{tid}/children")
        if text:
            out.extend(int(x) for x in text.split())
    return out


def _children_supported() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


_HAS_CHILDREN = _children_supported()


def descendants(roots: Iterable[int], exclude: frozenset[int] = frozenset()) -> list[int]:
    """Roots and all their live descendants (each once), skipping subtrees rooted at ``exclude``."""
    if not _HAS_CHILDREN:  # pragma: no cover - every kernel isobench targets has it
        import psutil

        found: list[int] = []
        for root in roots:
            try:
                proc = psutil.Process(root)
                found.append(root)
                found.extend(c.pid for c in proc.children(recursive=True))
            except psutil.Error:
                continue
        return list(dict.fromkeys(p for p in found if p not in exclude))
    seen: dict[int, None] = {}
    stack = [r for r in roots if r not in exclude]
    while stack:
        pid = stack.pop()
        if pid in seen or not os.path.exists(f"/proc/{pid}"):
            continue
        seen[pid] = None
        stack.extend(c for c in children(pid) if c not in exclude)
    return list(seen)


def ctx_switches(pid: int) -> int:
    """Voluntary + involuntary context switches summed over the live threads of ``pid``."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        text = read_text(f"/proc/{pid}/task/{tid}/status")
        if not text:
            continue
        for line in text.splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


def pss_bytes(pid: int) -> int | None:
    """Proportional set size from /proc/PID/smaps_rollup."""
    text = read_text(f"/proc/{pid}/smaps_rollup")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return None


@dataclass(frozen=True)
class PidIo:
    """/proc/PID/io: storage bytes and read/write syscalls (incl. reaped children)."""

    read_bytes: int = 0
    write_bytes: int = 0
    syscr: int = 0
    syscw: int = 0
    rchar: int = 0
    wchar: int = 0


def parse_io(text: str) -> PidIo:
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            values[key.strip()] = int(value)
    return PidIo(
        read_bytes=values.get("read_bytes", 0),
        write_bytes=values.get("write_bytes", 0),
        syscr=values.get("syscr", 0),
        syscw=values.get("syscw", 0),
        rchar=values.get("rchar", 0),
        wchar=values.get("wchar", 0),
    )


def pid_io(pid: int) -> PidIo | None:
    text = read_text(f"/proc/{pid}/io")
    return None if text is None else parse_io(text)


@dataclass(frozen=True)
class HostCpu:
    """The aggregate ``cpu`` line of /proc/stat, in seconds."""

    user: float
    nice: float
    system: float
    idle: float
    iowait: float
    irq: float
    softirq: float
    steal: float

    @property
    def total(self) -> float:
        return (
            self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
        )


def parse_proc_stat_cpu(text: str) -> HostCpu:
    """The first ``cpu `` line of a /proc/stat text (host or guest)."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            v = [int(x) / CLK_TCK for x in line.split()[1:]]
            v += [0.0] * (8 - len(v))
            # guest and guest_nice are already included in user and nice.
            return HostCpu(*v[:8])
    raise ValueError("no aggregate cpu line in /proc/stat text")


def host_cpu() -> HostCpu:
    return parse_proc_stat_cpu(read_text("/proc/stat") or "")


def host_cpu_percent(a: HostCpu, b: HostCpu) -> dict[str, float]:
    """mpstat-style shares (% of all CPUs) between two readings."""
    total = b.total - a.total
    if total <= 0:
        return {}
    return {
        "user": 100.0 * ((b.user + b.nice) - (a.user + a.nice)) / total,
        "system": 100.0 * ((b.system + b.irq + b.softirq) - (a.system + a.irq + a.softirq)) / total,
        "iowait": 100.0 * (b.iowait - a.iowait) / total,
        "steal": 100.0 * (b.steal - a.steal) / total,
        "idle": 100.0 * (b.idle - a.idle) / total,
    }


def parse_proc_stat_cpus(text: str) -> dict[int, HostCpu]:
    """The per-CPU ``cpuN`` lines of a /proc/stat text, in seconds, by CPU number."""
    out: dict[int, HostCpu] = {}
    for line in text.splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *fields = line.split()
            v = [int(x) / CLK_TCK for x in fields]
            v += [0.0] * (8 - len(v))
            out[int(name[3:])] = HostCpu(*v[:8])
    return out


def thread_stats(pid: int) -> dict[int, PidStat]:
    """Every live thread of ``pid`` (/proc/PID/task/TID/stat: comm, utime and stime are the
    thread's own; the other fields are process-wide)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    out: dict[int, PidStat] = {}
    for tid in tids:
        text = read_text(f"/proc/{pid}/task/{tid}/stat")
        if text is None:
            continue
        try:
            out[int(tid)] = parse_stat(int(tid), text)
        except (ValueError, IndexError):
            continue
    return out


def parse_cpu_list(text: str) -> set[int]:
    """A kernel CPU list (``0-2,5``) as a set."""
    out: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def allowed_cpus(pid: int) -> set[int]:
    """The CPUs ``pid`` may run on (``Cpus_allowed_list``); empty when it is gone."""
    text = read_text(f"/proc/{pid}/status") or ""
    for line in text.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return parse_cpu_list(line.split(":", 1)[1])
    return set()


def argv0(pid: int) -> str:
    """The base name of ``argv[0]`` of ``pid`` ('' when gone or a kernel thread)."""
    text = read_text(f"/proc/{pid}/cmdline") or ""
    return os.path.basename(text.split("\0", 1)[0])
