"""A Sampler that polls: the base of every isobench sampler, drivable alone or by a session.

Subclasses implement ``open()`` (baseline), ``poll(now)`` (one reading; emits Samples),
``close()`` (release what ``open`` created; always called) and ``summary()``. Used alone, a
sampler runs its own thread; a :class:`~isobench.telemetry.session.TelemetrySession` instead
drives all its samplers from ONE thread, so sampling costs one wake-up per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from isobench.results import Sample
from isobench.runtimes.base import Instance
from isobench.telemetry import cgroup, procfs
from isobench.telemetry.base import Sampler

log = logging.getLogger(__name__)


class PollingSampler(Sampler):
    """Sampler with a poll loop; one reading at start, every ``interval`` s, one at stop."""

    source = "host"

    def __init__(
        self, instance: Instance, interval: float = 1.0, labels: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(instance, interval, labels)
        self.samples: list[Sample] = []
        self._meta = {**self.labels, "source": self.source}
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._opened = False
        self.began = False
        self.errors: list[str] = []
        self.procs = ProcessSet(instance)
        """Shared between the samplers of a session (one /proc walk per poll)."""

    # -- subclass API ---------------------------------------------------------------------------
    def open(self) -> None:
        """Take the baseline reading (and create what polling needs)."""

    def poll(self, now: float) -> None:
        """Take one reading and emit its Samples (timestamp ``now``, unix time)."""

    def close(self) -> None:
        """Release whatever ``open`` created. Always called, never raises."""

    def emit(self, metric: str, value: float, unit: str, now: float) -> None:
        self.samples.append(Sample(metric, float(value), unit, now, self._meta))

    # -- driving --------------------------------------------------------------------------------
    def begin(self) -> None:
        """open() + the first poll; used by start() and by a session."""
        self._opened = True
        self.began = True
        self.open()
        self.safe_poll(time.time())

    def safe_poll(self, now: float) -> None:
        """poll(), logging instead of raising: a vanished process must not end the trial."""
        try:
            self.poll(now)
        except Exception as exc:
            if len(self.errors) < 10:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            log.debug("%s sampler poll failed", self.name, exc_info=True)

    def end(self) -> list[Sample]:
        """The final poll + close(); used by stop() and by a session."""
        if not self._opened:
            return list(self.samples)
        try:
            self.safe_poll(time.time())
        finally:
            self._opened = False
            self.close()
        return list(self.samples)

    def start(self) -> None:
        self.begin()
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        while not self._stop_event.wait(max(0.0, next_at - time.monotonic())):
            self.safe_poll(time.time())
            next_at += self.interval
            if next_at < time.monotonic():  # fell behind: skip, don't burst
                next_at = time.monotonic() + self.interval

    def stop(self) -> list[Sample]:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self.end()

    def series(self, metric: str) -> list[float]:
        return [s.value for s in self.samples if s.metric == metric]


def rate(prev: float, cur: float, dt: float) -> float:
    """Per-second rate of a counter; 0 for a non-positive interval or a counter reset."""
    return max(0.0, cur - prev) / dt if dt > 0 else 0.0


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class Snapshot:
    """One reading of the instance's processes (shared by the samplers of one poll)."""

    members: dict[int, procfs.PidStat]
    overhead: dict[int, procfs.PidStat]


class ProcessSet:
    """The instance's processes, split into the instance proper and the runtime's overhead.

    With a cgroup, the processes in it are the instance; the rest of the trees of
    ``instance.pids`` (containerd-shim, docker-proxy) are overhead. Without one, every process of
    the trees is the instance and there is no overhead. ``snapshot(now)`` is cached per ``now``,
    so samplers driven by one session read each /proc/PID/stat once per poll.
    """

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self._cache: tuple[float, Snapshot] | None = None
        self._lock = threading.Lock()

    @property
    def has_cgroup(self) -> bool:
        return bool(self.instance.cgroups) and cgroup.procs(self.instance.cgroups) is not None

    def resolve(self) -> tuple[list[int], list[int]]:
        """(instance pids, overhead pids), both with all live descendants."""
        roots = list(dict.fromkeys(self.instance.pids))
        if self.instance.vmm_pid is not None and self.instance.vmm_pid not in roots:
            roots.append(self.instance.vmm_pid)
        inside = cgroup.procs(self.instance.cgroups) if self.instance.cgroups else None
        if inside is None:
            return procfs.descendants(roots), []
        overhead = procfs.descendants(roots, exclude=inside)
        members = procfs.descendants(sorted(inside))
        return members, overhead

    def snapshot(self, now: float) -> Snapshot:
        with self._lock:
            if self._cache is not None and self._cache[0] == now:
                return self._cache[1]
            members, overhead = self.resolve()
            snap = Snapshot(_stats(members), _stats(overhead))
            self._cache = (now, snap)
            return snap


def _stats(pids: list[int]) -> dict[int, procfs.PidStat]:
    out: dict[int, procfs.PidStat] = {}
    for pid in pids:
        st = procfs.pid_stat(pid)
        if st is not None:
            out[pid] = st
    return out


Key = tuple[int, int]
"""(pid, starttime): a process identity that survives pid reuse."""


class TreeCounter:
    """Sums counters that a process tree accumulates, across processes coming and going.

    Each process's counters include its reaped children (``cutime``, /proc/PID/io), so the window's
    growth is: growth of processes seen twice, plus everything of new processes, minus the last
    reading of processes that vanished while their parent is still in the tree (their final
    value reappears in the parent's counters, which would otherwise count it twice).
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.total = [0.0] * width
        self._prev: dict[Key, tuple[int, tuple[float, ...]]] | None = None

    def update(self, cur: dict[Key, tuple[int, tuple[float, ...]]]) -> list[float]:
        """Feed one reading {key: (ppid, values)}; returns the growth since the last one."""
        delta = [0.0] * self.width
        prev = self._prev
        self._prev = cur
        if prev is None:
            return delta
        live = {pid for pid, _ in cur}
        for key, (_, values) in cur.items():
            before = prev.get(key)
            for i, v in enumerate(values):
                delta[i] += v - (before[1][i] if before else 0.0)
        for key, (ppid, values) in prev.items():
            if key not in cur and ppid in live:
                for i, v in enumerate(values):
                    delta[i] -= v
        delta = [max(0.0, d) for d in delta]
        self.total = [t + d for t, d in zip(self.total, delta, strict=True)]
        return delta
