"""Where the host's CPU goes during a trial: the whole busy time of every CPU, split into parts.

Additive parts (their seconds add up to the host's busy time, by construction of ``rest``):

* ``workload``: the instance itself (its cgroup, or its process trees), as ``cpu_seconds``;
* ``helper:<role>``: each helper process of the runtime (processes of the trees of
  ``Instance.pids`` outside the cgroup: docker-proxy, containerd-shim, conmon...), named by the
  runtime's ``Instance.helper_roles`` (else by the process name);
* ``daemon:<name>``: the shared daemons (``Instance.daemon_pids`` and their descendants: dockerd,
  containerd), by process name;
* ``loadgen``: the load generator's process trees (:mod:`isobench.load.tracking`);
* ``tool``: isobench's own process (all its threads: orchestrator, samplers; not its children);
* ``rest``: the host's busy time minus all of the above (other processes, kernel threads,
  interrupts that no process was charged with).

The host's busy time is user+nice+system+irq+softirq of every CPU in /proc/stat (guest time is
inside user; idle, iowait and steal are not busy). Beside the additive parts, the kernel's
interrupt time from /proc/stat: ``softirq`` on the workload's CPUs (those the instance may run on,
``Cpus_allowed_list``), on the load generator's CPUs, on other CPUs, and ``irq`` on all. Where that
time sits depends on the kernel's accounting, recorded as ``host_cpu_split_irq_in_processes``:
with tick accounting (``CONFIG_IRQ_TIME_ACCOUNTING`` unset, 1) an interrupt is also charged to
the process it interrupted, so it is *within* the parts above; with IRQ time accounting (0) it is
charged to no process and is within ``rest``; -1 when the kernel config is not readable.

An optional split of the workload itself: by thread (``Instance.thread_roles``: QEMU's vCPU
threads vs its I/O and main threads; the matched threads' utime+stime) or by process
(``Instance.process_roles``: gVisor's sentry and gofer, matched on the process name or its
``argv[0]``); the ``"*"`` role gets the rest of the workload's seconds, so these roles add up to
``workload``.

The check: every part is measured independently of the host total, so ``rest`` must not be
negative beyond :func:`tolerance` (rounding to clock ticks, tick sampling of /proc/stat, steal time
that a process's runtime may include). A larger negative ``rest`` means something is counted twice
and is reported as such (``ok`` False), never hidden.

Summary keys (seconds over the telemetry window; % of one core = seconds / ``cpu_wall_seconds``
× 100): per instance (summed over replicas) ``cpu_split_workload_seconds``,
``cpu_split_helper__<role>_seconds``, ``cpu_split_within__<role>_seconds``; host-wide (averaged
over replicas) ``host_cpu_split_daemon__<name>_seconds``, ``host_cpu_split_loadgen_seconds``,
``host_cpu_split_tool_seconds``, ``host_cpu_split_busy_seconds``, ``host_cpu_split_steal_seconds``,
``host_cpu_split_softirq__{workload,loadgen,other}_cpus_seconds``, ``host_cpu_split_irq_seconds``,
``host_cpu_split_cpus``, ``host_cpu_split_processes``, ``host_cpu_split_irq_in_processes``.
"""

from __future__ import annotations

import fnmatch
import gzip
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from isobench.telemetry import procfs

WORKLOAD = "cpu_split_workload_seconds"
HELPER = "cpu_split_helper__"
WITHIN = "cpu_split_within__"
DAEMON = "host_cpu_split_daemon__"
LOADGEN = "host_cpu_split_loadgen_seconds"
TOOL = "host_cpu_split_tool_seconds"
BUSY = "host_cpu_split_busy_seconds"
STEAL = "host_cpu_split_steal_seconds"
SOFTIRQ = "host_cpu_split_softirq__"
IRQ = "host_cpu_split_irq_seconds"
NCPUS = "host_cpu_split_cpus"
NPROCS = "host_cpu_split_processes"
IRQ_MODE = "host_cpu_split_irq_in_processes"
WALL = "cpu_wall_seconds"
CPU_GROUPS = ("workload_cpus", "loadgen_cpus", "other_cpus")


def slug(name: str) -> str:
    """A role or process name as it appears in a key (letters, digits, ``.``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "unnamed"


def role_of(comm: str, roles: Mapping[str, str]) -> str | None:
    """The role whose ``fnmatch`` pattern matches ``comm`` first (``"*"`` excluded), or None."""
    for pattern, role in roles.items():
        if pattern != "*" and fnmatch.fnmatchcase(comm, pattern):
            return role
    return None


def irq_in_processes() -> int:
    """1: the kernel charges interrupt time to the interrupted process as well (tick
    accounting); 0: it does not (``CONFIG_IRQ_TIME_ACCOUNTING=y``); -1: unknown."""
    text = ""
    try:
        with gzip.open("/proc/config.gz", "rt") as fh:
            text = fh.read()
    except OSError:
        text = procfs.read_text(f"/boot/config-{os.uname().release}") or ""
    if "CONFIG_IRQ_TIME_ACCOUNTING=y" in text:
        return 0
    if "# CONFIG_IRQ_TIME_ACCOUNTING is not set" in text or (
        "CONFIG_TICK_CPU_ACCOUNTING=y" in text and "CONFIG_IRQ_TIME_ACCOUNTING" not in text
    ):
        return 1
    return -1


def busy(cpu: procfs.HostCpu) -> float:
    """Busy seconds of a /proc/stat reading (user+nice+system+irq+softirq)."""
    return cpu.user + cpu.nice + cpu.system + cpu.irq + cpu.softirq


def tolerance(wall: float, ncpus: int, processes: int, steal: float) -> float:
    """How far below zero ``rest`` may fall on a correct tool, in seconds.

    * /proc/stat's busy time is sampled at each timer tick: over ``wall`` seconds a CPU busy a
      fraction p of the time is off by about sqrt(wall·p(1−p)/HZ) s (one standard deviation);
      five of them at the worst case p = 0.5 and HZ = 100, per CPU, added linearly;
    * each process's times are whole clock ticks (1/``CLK_TCK``): two fields, two readings;
      so are /proc/stat's five busy fields per CPU;
    * stolen time may be inside a process's run time but is not busy time in /proc/stat.
    """
    sampling = ncpus * 5.0 * math.sqrt(max(wall, 0.0) * 0.25 / 100.0)
    rounding = (processes * 4.0 + ncpus * 10.0) / procfs.CLK_TCK
    return sampling + rounding + max(steal, 0.0)


@dataclass(frozen=True)
class Part:
    """One row of the split: ``key`` (the summary key), ``label``, seconds."""

    key: str
    label: str
    seconds: float


@dataclass(frozen=True)
class Split:
    """A trial's split, read back from its telemetry (see :func:`split`)."""

    wall: float
    busy: float
    parts: list[Part]
    """The additive parts, ``rest`` last: their seconds add up to ``busy``."""
    within: list[Part]
    """The workload's split by thread or process (adds up to the workload's part), or empty."""
    kernel: list[Part]
    """softirq per CPU group and irq: beside the parts, not one of them (``irq_in_processes``
    says where that time sits)."""
    irq_in_processes: int
    tolerance: float

    @property
    def rest(self) -> float:
        return self.parts[-1].seconds

    @property
    def ok(self) -> bool:
        """False when the measured parts exceed the host's busy time beyond the tolerance."""
        return self.rest >= -self.tolerance

    def percent(self, seconds: float) -> float:
        """Seconds as % of one core over the window."""
        return 100.0 * seconds / self.wall if self.wall > 0 else 0.0


def _named(telemetry: Mapping[str, float], prefix: str, label: str) -> list[Part]:
    return sorted(
        (Part(k, f"{label}{k[len(prefix):-len('_seconds')]}", float(v))
         for k, v in telemetry.items() if k.startswith(prefix) and k.endswith("_seconds")),
        key=lambda p: p.label,
    )


def split(telemetry: Mapping[str, float]) -> Split | None:
    """The split of one trial's telemetry summary, or None when it has none."""
    if BUSY not in telemetry or WORKLOAD not in telemetry:
        return None
    parts = [Part(WORKLOAD, "workload", float(telemetry[WORKLOAD]))]
    parts += _named(telemetry, HELPER, "helper: ")
    parts += _named(telemetry, DAEMON, "daemon: ")
    parts += [Part(LOADGEN, "load generator", float(telemetry.get(LOADGEN, 0.0))),
              Part(TOOL, "isobench itself", float(telemetry.get(TOOL, 0.0)))]
    total = float(telemetry[BUSY])
    parts.append(Part("rest", "rest of the host", total - sum(p.seconds for p in parts)))
    kernel = [Part(f"{SOFTIRQ}{g}_seconds", f"softirq, {g.replace('_', ' ')}",
                   float(telemetry[f"{SOFTIRQ}{g}_seconds"]))
              for g in CPU_GROUPS if f"{SOFTIRQ}{g}_seconds" in telemetry]
    if IRQ in telemetry:
        kernel.append(Part(IRQ, "irq, all CPUs", float(telemetry[IRQ])))
    wall = float(telemetry.get(WALL, 0.0))
    tol = tolerance(wall, int(telemetry.get(NCPUS, 1)), int(telemetry.get(NPROCS, 0)),
                    float(telemetry.get(STEAL, 0.0)))
    return Split(wall=wall, busy=total, parts=parts, within=_named(telemetry, WITHIN, ""),
                 kernel=kernel, irq_in_processes=int(telemetry.get(IRQ_MODE, -1)), tolerance=tol)


# -- the accumulation, driven by the CPU sampler ------------------------------------------------

Key = tuple[int, int]
"""(pid, starttime): a process identity that survives pid reuse."""


class RoleCounter:
    """Growth of CPU seconds per role across processes coming and going (as ``TreeCounter``).

    Each process's seconds include its reaped children (``cutime``), so the growth is: growth of
    processes seen twice, all of new processes, minus the last reading of processes that vanished
    while their parent is still in the set (their final seconds reappear in the parent's
    ``cutime``: taken off the *parent's* role, where they reappear).
    """

    def __init__(self) -> None:
        self._prev: dict[Key, tuple[int, str, float]] | None = None

    def update(self, cur: dict[Key, tuple[int, str, float]]) -> dict[str, float]:
        """Feed {key: (ppid, role, seconds)}; the growth per role since the previous reading
        (empty on the first)."""
        prev, self._prev = self._prev, cur
        if prev is None:
            return {}
        out: dict[str, float] = {role: 0.0 for _, role, _ in cur.values()}
        role_of_pid = {pid: role for (pid, _), (_, role, _) in cur.items()}
        for key, (_, role, value) in cur.items():
            before = prev.get(key)
            out[role] += value - (before[2] if before else 0.0)
        for key, (ppid, _, value) in prev.items():
            if key not in cur and ppid in role_of_pid:
                out[role_of_pid[ppid]] -= value
        return {role: max(0.0, v) for role, v in out.items()}


def roles_reading(stats: Mapping[int, procfs.PidStat], roles: Mapping[str, str]
                  ) -> dict[Key, tuple[int, str, float]]:
    """Processes named by role (``roles`` first, else the process name), own plus reaped
    children's CPU seconds."""
    return {(pid, st.starttime): (st.ppid, slug(role_of(st.comm, roles) or st.comm), st.cpu_total)
            for pid, st in stats.items()}


@dataclass
class Poll:
    """What one poll read, beside what the CPU sampler reads anyway.

    Attributes:
        workload: the instance's CPU seconds in this interval (cgroup or trees: the sampler's).
        members: the instance's processes (counted for the check's rounding allowance).
        helpers: processes of the trees outside the cgroup.
        daemons: the shared daemons' processes.
        threads: the instance's threads (read only when the runtime declares thread roles).
        names: ``argv[0]`` of the instance's processes (read only with process roles).
        loadgen: CPU seconds used so far by each load generator, by (pid, started_at); None
            when it is momentarily unreadable.
        tool: isobench's own utime+stime so far.
        cpus: /proc/stat per-CPU readings.
    """

    workload: float
    members: dict[int, procfs.PidStat] = field(default_factory=dict)
    helpers: dict[int, procfs.PidStat] = field(default_factory=dict)
    daemons: dict[int, procfs.PidStat] = field(default_factory=dict)
    threads: dict[int, procfs.PidStat] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    loadgen: dict[tuple[int, float], float | None] = field(default_factory=dict)
    tool: float = 0.0
    cpus: dict[int, procfs.HostCpu] = field(default_factory=dict)


class SplitTracker:
    """Accumulates :class:`Poll` readings into the split's seconds (per interval and in total).

    Args:
        helper_roles, thread_roles, process_roles: the instance's (see ``Instance``).
        workload_cpus, loadgen_cpus: the CPU groups of the softirq figures (attributes: the
            sampler may fill them in later; the groups are formed at ``summary()``).
        opened_at: ``time.monotonic()`` of the window's start: a load generator first seen
            later counts from zero if it started after it, else from its first reading.
    """

    def __init__(self, helper_roles: Mapping[str, str], thread_roles: Mapping[str, str],
                 workload_cpus: set[int], loadgen_cpus: set[int], opened_at: float,
                 process_roles: Mapping[str, str] | None = None) -> None:
        self.helper_roles = dict(helper_roles)
        self.thread_roles = dict(thread_roles)
        self.process_roles = dict(process_roles or {})
        self.workload_cpus = set(workload_cpus)
        self.loadgen_cpus = set(loadgen_cpus)
        self.opened_at = opened_at
        self.totals: dict[str, float] = {}
        self._helpers = RoleCounter()
        self._daemons = RoleCounter()
        self._within = RoleCounter()
        self._loadgen_prev: dict[tuple[int, float], float] = {}
        self._prev: Poll | None = None
        self._first_cpus: dict[int, procfs.HostCpu] = {}
        self._seen: set[tuple[str, Key]] = set()
        self._softirq: dict[int, float] = {}

    def _within_reading(self, poll: Poll) -> dict[Key, tuple[int, str, float]]:
        out: dict[Key, tuple[int, str, float]] = {}
        if self.thread_roles:
            for tid, st in poll.threads.items():
                role = role_of(st.comm, self.thread_roles)
                if role is not None:  # ppid -1: a thread's time never moves to another thread
                    out[(tid, st.starttime)] = (-1, slug(role), st.utime + st.stime)
        elif self.process_roles:
            for pid, st in poll.members.items():
                role = role_of(st.comm, self.process_roles) or role_of(
                    poll.names.get(pid, ""), self.process_roles)
                if role is not None:
                    out[(pid, st.starttime)] = (st.ppid, slug(role), st.cpu_total)
        return out

    def _loadgen(self, poll: Poll, first: bool) -> float:
        grown = 0.0
        for key, value in poll.loadgen.items():
            if value is None:  # between its exit and its reaping: keep the last value
                continue
            if key in self._loadgen_prev:
                base = self._loadgen_prev[key]
            else:
                base = value if first or key[1] < self.opened_at else 0.0
            grown += max(0.0, value - base)
            self._loadgen_prev[key] = value
        return grown

    def update(self, poll: Poll) -> dict[str, float]:
        """Feed one poll; the seconds of each key in the interval since the previous one (empty
        on the first poll, which is the baseline)."""
        prev, self._prev = self._prev, poll
        helpers = roles_reading(poll.helpers, self.helper_roles)
        daemons = roles_reading(poll.daemons, {})
        within = self._within_reading(poll)
        self._seen.update(("p", k) for k in helpers)
        self._seen.update(("p", k) for k in daemons)
        self._seen.update(("p", (pid, st.starttime)) for pid, st in poll.members.items())
        out: dict[str, float] = {}
        out.update({f"{HELPER}{r}_seconds": v for r, v in self._helpers.update(helpers).items()})
        out.update({f"{DAEMON}{r}_seconds": v for r, v in self._daemons.update(daemons).items()})
        out.update({f"{WITHIN}{r}_seconds": v for r, v in self._within.update(within).items()})
        loadgen = self._loadgen(poll, prev is None)
        if prev is None:
            self._first_cpus = dict(poll.cpus)
            return {}
        out[WORKLOAD] = poll.workload
        out[LOADGEN] = loadgen
        out[TOOL] = max(0.0, poll.tool - prev.tool)
        roles = self.thread_roles or self.process_roles
        if "*" in roles:
            matched = sum(v for k, v in out.items() if k.startswith(WITHIN))
            rest = f"{WITHIN}{slug(roles['*'])}_seconds"
            out[rest] = out.get(rest, 0.0) + max(0.0, poll.workload - matched)
        out.update(self._host(prev.cpus, poll.cpus))
        for key, value in out.items():
            self.totals[key] = self.totals.get(key, 0.0) + value
        return out

    def _host(self, a: Mapping[int, procfs.HostCpu], b: Mapping[int, procfs.HostCpu]
              ) -> dict[str, float]:
        out = {BUSY: 0.0, STEAL: 0.0, IRQ: 0.0}
        for cpu in set(a) & set(b):
            x, y = a[cpu], b[cpu]
            out[BUSY] += busy(y) - busy(x)
            out[STEAL] += y.steal - x.steal
            out[IRQ] += y.irq - x.irq
            self._softirq[cpu] = self._softirq.get(cpu, 0.0) + y.softirq - x.softirq
        return out

    def summary(self) -> dict[str, float]:
        """Total seconds per key over every interval, and the counts the check needs."""
        out = dict(self.totals)
        if not out:
            return {}
        groups = {f"{SOFTIRQ}{g}_seconds": 0.0 for g in CPU_GROUPS}
        for cpu, seconds in self._softirq.items():
            group = ("workload_cpus" if cpu in self.workload_cpus
                     else "loadgen_cpus" if cpu in self.loadgen_cpus else "other_cpus")
            groups[f"{SOFTIRQ}{group}_seconds"] += seconds
        out.update(groups)
        out[NCPUS] = float(len(self._first_cpus))
        out[NPROCS] = float(len(self._seen) + 1)  # + isobench itself
        return out
