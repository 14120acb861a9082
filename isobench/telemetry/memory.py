"""Memory an instance costs the host: RSS and PSS of its processes, its cgroup, QEMU's RSS.

* ``rss_bytes``: sum of RSS over the instance's processes (the cgroup's processes for a
  container; the whole tree otherwise). Shared pages count once per process.
* ``pss_bytes``: sum of PSS (/proc/PID/smaps_rollup): shared pages split between sharers, so the
  sum over a tree is what the tree really holds.
* ``mem_cgroup_bytes``: the cgroup's usage minus its inactive file cache — what ``docker stats``
  shows (v1: ``usage_in_bytes - total_inactive_file``; v2: ``memory.current - inactive_file``).
* ``qemu_rss_bytes``: the QEMU process's RSS — guest RAM the guest has touched plus QEMU itself.
* ``mem_overhead_rss_bytes``: RSS of the runtime's processes outside the cgroup (shim, proxy).
"""

from __future__ import annotations

from isobench.telemetry import cgroup, procfs
from isobench.telemetry.poller import PollingSampler, mean


class MemorySampler(PollingSampler):
    """RSS/PSS of the process trees, cgroup working set, QEMU RSS; peaks and means."""

    name = "memory"

    def check(self) -> str | None:
        if not self.instance.pids and self.instance.vmm_pid is None and not self.instance.cgroups:
            return "instance has no pids and no cgroup to measure"
        return None

    def open(self) -> None:
        self._first: dict[str, float] = {}
        self._peaks: dict[str, float] = {}
        self._limit: int | None = None

    def _record(self, metric: str, value: float, now: float) -> None:
        self.emit(metric, value, "bytes", now)
        self._first.setdefault(metric, value)
        self._peaks[metric] = max(self._peaks.get(metric, 0.0), value)

    def poll(self, now: float) -> None:
        snap = self.procs.snapshot(now)
        self._record("rss_bytes", sum(st.rss_bytes for st in snap.members.values()), now)
        pss = [procfs.pss_bytes(pid) for pid in snap.members]
        if any(p is not None for p in pss):
            self._record("pss_bytes", sum(p or 0 for p in pss), now)
        if snap.overhead:
            self._record(
                "mem_overhead_rss_bytes", sum(st.rss_bytes for st in snap.overhead.values()), now
            )
        if self.instance.cgroups:
            cg = cgroup.memory(self.instance.cgroups)
            if cg is not None:
                self._record("mem_cgroup_bytes", cg.working_set, now)
                self._limit = cg.limit
        qemu = self.instance.vmm_pid
        if qemu is not None:
            st = snap.members.get(qemu) or procfs.pid_stat(qemu)
            if st is not None:
                self._record("qemu_rss_bytes", st.rss_bytes, now)

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for metric, peak in self._peaks.items():
            out[f"{metric}_peak"] = peak
            out[f"{metric}_mean"] = mean(self.series(metric))
            out[f"{metric}_start"] = self._first[metric]
        if self._limit is not None:
            out["mem_cgroup_limit_bytes"] = float(self._limit)
        return out
