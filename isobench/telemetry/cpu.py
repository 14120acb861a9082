"""CPU cost of an instance, measured from the host, the same way for every runtime.

Sources, best first:

* the instance's cgroup (``cpuacct.usage_user/_sys`` on v1, ``cpu.stat`` on v2) when it has one:
  it counts short-lived children that no poll ever saw;
* otherwise the process trees of ``instance.pids`` (utime+stime+cutime+cstime of the live tree,
  see :class:`~isobench.telemetry.poller.TreeCounter`). For a VM that is the QEMU process with all
  its threads; ``guest_time`` (field 43 of /proc/PID/stat) says how much of it ran guest code
  (KVM only; TCG reports 0 there — its guest code is ordinary user time).

Tree processes outside the cgroup (containerd-shim, docker-proxy) are reported as ``overhead``;
the runtime's shared daemons (``Instance.daemon_pids``: dockerd, whose children serve every
container) as ``daemon``.
Host-wide mpstat-style shares (user, system, iowait, steal, idle) are sampled beside, and the
split of the host's whole busy time into workload, helpers by role, daemons, load generator,
isobench itself and the rest (:mod:`isobench.telemetry.cpusplit`).
"""

from __future__ import annotations

import os
import time

from isobench.load import tracking
from isobench.telemetry import cgroup, cpusplit, procfs
from isobench.telemetry.poller import Key, PollingSampler, Snapshot, TreeCounter, mean, rate


def _tree_reading(stats: dict[int, procfs.PidStat]) -> dict[Key, tuple[int, tuple[float, ...]]]:
    return {
        (pid, st.starttime): (st.ppid, (st.utime + st.cutime, st.stime + st.cstime, st.guest_time))
        for pid, st in stats.items()
    }


class CpuSampler(PollingSampler):
    """CPU seconds and % of one core of the instance, its runtime overhead, and the host."""

    name = "cpu"

    def check(self) -> str | None:
        if not self.instance.pids and self.instance.vmm_pid is None and not self.instance.cgroups:
            return "instance has no pids and no cgroup to measure"
        return None

    def open(self) -> None:
        self._use_cgroup = self.procs.has_cgroup and cgroup.cpu(self.instance.cgroups) is not None
        self._members = TreeCounter(3)
        self._overhead = TreeCounter(3)
        self._daemon = TreeCounter(3)
        self._cg_first: cgroup.CgroupCpu | None = None
        self._cg_prev: cgroup.CgroupCpu | None = None
        self._host_first = self._host_prev = procfs.host_cpu()
        self._ctx_prev: dict[Key, int] = {}
        self._ctx_total = 0
        self._threads_max = 0
        self._t_first: float | None = None
        self._t_prev = 0.0
        # shared daemons the runtime relies on (dockerd): reported apart, never as the instance's
        self._daemon_pids = list(self.instance.daemon_pids)
        self._split = cpusplit.SplitTracker(
            self.instance.helper_roles, self.instance.thread_roles, set(), set(),
            opened_at=time.monotonic(), process_roles=self.instance.process_roles)
        self._irq_mode = cpusplit.irq_in_processes()

    def poll(self, now: float) -> None:
        snap = self.procs.snapshot(now)
        d_members = self._members.update(_tree_reading(snap.members))
        d_overhead = self._overhead.update(_tree_reading(snap.overhead))
        d_daemon = [0.0, 0.0, 0.0]
        stats: dict[int, procfs.PidStat] = {}
        if self._daemon_pids:
            skip = frozenset(snap.members) | frozenset(snap.overhead)
            pids = procfs.descendants(self._daemon_pids, exclude=skip)
            stats = {p: s for p in pids if (s := procfs.pid_stat(p)) is not None}
            d_daemon = self._daemon.update(_tree_reading(stats))
        user, system = d_members[0], d_members[1]
        if self._use_cgroup:
            cg = cgroup.cpu(self.instance.cgroups)
            if cg is not None:
                if self._cg_first is None:
                    self._cg_first = cg
                prev = self._cg_prev or cg
                user, system = max(0.0, cg.user - prev.user), max(0.0, cg.system - prev.system)
                self._cg_prev = cg
        ctx = 0
        cur_ctx: dict[Key, int] = {}
        for pid, st in snap.members.items():
            key = (pid, st.starttime)
            cur_ctx[key] = procfs.ctx_switches(pid)
            ctx += max(0, cur_ctx[key] - self._ctx_prev.get(key, cur_ctx[key]))
        self._ctx_prev = cur_ctx
        threads = sum(st.num_threads for st in snap.members.values())
        self._threads_max = max(self._threads_max, threads)
        stat_text = procfs.read_text("/proc/stat") or ""
        host = procfs.parse_proc_stat_cpu(stat_text)
        split = self._split_poll(snap, stats, user + system, stat_text)
        if self._t_first is None:
            self._t_first, self._t_prev = now, now
            self._host_first = self._host_prev = host
            return
        dt = now - self._t_prev
        self._t_prev = now
        if dt <= 0:
            return
        self._ctx_total += ctx
        self.emit("cpu_percent", 100.0 * (user + system) / dt, "%", now)
        self.emit("cpu_user_percent", 100.0 * user / dt, "%", now)
        self.emit("cpu_system_percent", 100.0 * system / dt, "%", now)
        if snap.overhead or self._overhead.total[0] + self._overhead.total[1] > 0:
            self.emit(
                "cpu_overhead_percent", 100.0 * (d_overhead[0] + d_overhead[1]) / dt, "%", now
            )
        if self._daemon_pids:
            self.emit("cpu_daemon_percent", 100.0 * (d_daemon[0] + d_daemon[1]) / dt, "%", now)
        if self.instance.vmm_pid is not None:
            self.emit("cpu_guest_percent", 100.0 * d_members[2] / dt, "%", now)
        for part, seconds in split.items():
            self.emit(part.removesuffix("_seconds") + "_percent", 100.0 * seconds / dt, "%", now)
        self.emit("ctx_switches_rate", rate(0, ctx, dt), "1/s", now)
        self.emit("threads", threads, "threads", now)
        for share, value in procfs.host_cpu_percent(self._host_prev, host).items():
            self.emit(f"host_cpu_{share}_percent", value, "%", now)
        self._host_prev = host

    def _split_poll(self, snap: Snapshot, daemons: dict[int, procfs.PidStat], workload: float,
                    stat_text: str) -> dict[str, float]:
        """One reading for the CPU split; the seconds of each part in the interval."""
        tracker = self._split
        if not tracker.workload_cpus:
            for pid in snap.members:
                tracker.workload_cpus |= procfs.allowed_cpus(pid)
        gens = tracking.generators(tracker.opened_at)
        for gen in gens:
            tracker.loadgen_cpus.update(gen.cpus)
        threads: dict[int, procfs.PidStat] = {}
        if self.instance.thread_roles:
            for pid in snap.members:
                threads.update(procfs.thread_stats(pid))
        names = ({pid: procfs.argv0(pid) for pid in snap.members}
                 if self.instance.process_roles else {})
        times = os.times()
        return tracker.update(cpusplit.Poll(
            workload=workload, members=snap.members, helpers=snap.overhead, daemons=daemons,
            threads=threads, names=names,
            loadgen={(g.pid, g.started_at): tracking.cpu_seconds(g) for g in gens},
            tool=times.user + times.system, cpus=procfs.parse_proc_stat_cpus(stat_text)))

    def summary(self) -> dict[str, float]:
        if self._t_first is None:
            return {}
        wall = self._t_prev - self._t_first
        if self._use_cgroup and self._cg_first is not None and self._cg_prev is not None:
            user = self._cg_prev.user - self._cg_first.user
            system = self._cg_prev.system - self._cg_first.system
        else:
            user, system = self._members.total[0], self._members.total[1]
        out = {
            "cpu_seconds": user + system,
            "cpu_user_seconds": user,
            "cpu_system_seconds": system,
            "cpu_wall_seconds": wall,
            "cpu_percent_mean": 100.0 * (user + system) / wall if wall > 0 else 0.0,
            "cpu_percent_peak": max(self.series("cpu_percent"), default=0.0),
            "cpu_overhead_seconds": self._overhead.total[0] + self._overhead.total[1],
            "cpu_ctx_switches": float(self._ctx_total),
            "cpu_threads_max": float(self._threads_max),
            "cpu_source_cgroup": 1.0 if self._use_cgroup else 0.0,
        }
        out["cpu_overhead_percent_mean"] = (
            100.0 * out["cpu_overhead_seconds"] / wall if wall > 0 else 0.0
        )
        if self._daemon_pids:
            out["cpu_daemon_seconds"] = self._daemon.total[0] + self._daemon.total[1]
        if self.instance.vmm_pid is not None:
            out["cpu_guest_seconds"] = self._members.total[2]
        for key, value in procfs.host_cpu_percent(self._host_first, self._host_prev).items():
            out[f"host_cpu_{key}_percent_mean"] = value
        for key in ("host_cpu_steal_percent",):
            out[f"{key}_peak"] = max(self.series(key), default=0.0)
        out["cpu_percent_series_mean"] = mean(self.series("cpu_percent"))
        split = self._split.summary()
        if split:
            # the window's total, as cpu_seconds (the cgroup's first-to-last reading)
            split[cpusplit.WORKLOAD] = out["cpu_seconds"]
            split[cpusplit.IRQ_MODE] = float(self._irq_mode)
        out.update(split)
        return out
