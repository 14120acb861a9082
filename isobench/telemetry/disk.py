"""Disk I/O of an instance: the cgroup's block I/O when it has one, else /proc/PID/io of its trees.

``disk_read_bytes``/``disk_write_bytes`` are bytes that reached the block layer (page-cache hits
are free); ``disk_read_ops``/``disk_write_ops`` are block requests (cgroup) or read/write syscalls
(/proc/PID/io ``syscr``/``syscw``) — ``disk_ops_source`` tells which (1 = block requests).
"""

from __future__ import annotations

from isobench.telemetry import cgroup, procfs
from isobench.telemetry.poller import Key, PollingSampler, TreeCounter, rate


class DiskSampler(PollingSampler):
    """Read/write bytes and operations over time."""

    name = "disk"

    def check(self) -> str | None:
        if not self.instance.pids and self.instance.vmm_pid is None and not self.instance.cgroups:
            return "instance has no pids and no cgroup to measure"
        return None

    def open(self) -> None:
        self._use_cgroup = (
            bool(self.instance.cgroups) and cgroup.io(self.instance.cgroups) is not None
        )
        self._tree = TreeCounter(4)
        self._cg_first: cgroup.CgroupIo | None = None
        self._cg_prev: cgroup.CgroupIo | None = None
        self._t_prev: float | None = None

    def poll(self, now: float) -> None:
        snap = self.procs.snapshot(now)
        reading: dict[Key, tuple[int, tuple[float, ...]]] = {}
        for pid, st in snap.members.items():
            io = procfs.pid_io(pid)
            if io is not None:
                values = (io.read_bytes, io.write_bytes, io.syscr, io.syscw)
                reading[(pid, st.starttime)] = (st.ppid, tuple(float(v) for v in values))
        delta = self._tree.update(reading)
        if self._use_cgroup:
            cg = cgroup.io(self.instance.cgroups)
            if cg is not None:
                prev = self._cg_prev or cg
                self._cg_first = self._cg_first or cg
                delta = [
                    float(max(0, cg.read_bytes - prev.read_bytes)),
                    float(max(0, cg.write_bytes - prev.write_bytes)),
                    float(max(0, cg.read_ops - prev.read_ops)),
                    float(max(0, cg.write_ops - prev.write_ops)),
                ]
                self._cg_prev = cg
        if self._t_prev is None:
            self._t_prev = now
            self._t_first = now
            return
        dt = now - self._t_prev
        self._t_prev = now
        self.emit("disk_read_rate", rate(0, delta[0], dt), "B/s", now)
        self.emit("disk_write_rate", rate(0, delta[1], dt), "B/s", now)
        self.emit("disk_read_ops_rate", rate(0, delta[2], dt), "1/s", now)
        self.emit("disk_write_ops_rate", rate(0, delta[3], dt), "1/s", now)

    def summary(self) -> dict[str, float]:
        if self._use_cgroup and self._cg_first is not None and self._cg_prev is not None:
            a, b = self._cg_first, self._cg_prev
            totals = [
                b.read_bytes - a.read_bytes,
                b.write_bytes - a.write_bytes,
                b.read_ops - a.read_ops,
                b.write_ops - a.write_ops,
            ]
        else:
            totals = [int(t) for t in self._tree.total]
        return {
            "disk_read_bytes": float(totals[0]),
            "disk_write_bytes": float(totals[1]),
            "disk_read_ops": float(totals[2]),
            "disk_write_ops": float(totals[3]),
            "disk_ops_source": 1.0 if self._use_cgroup else 0.0,
        }
