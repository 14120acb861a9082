"""All samplers of one trial, driven by ONE polling thread: what the trial (run/trial.py) uses.

Usage::

    session = TelemetrySession(instance, interval=1.0, labels={"runtime": "vm", "trial": 0})
    session.skipped            # {"guest": "instance has no in-guest agent ..."}
    session.start()
    ... load ...
    samples = session.stop()   # list[Sample], time series with metadata labels + source
    totals = session.summary() # dict[str, float], the keys below

Summary keys (every key starts with its sampler's domain, so merged keys never collide):

cpu (instance = the cgroup when it has one, else the process trees of ``instance.pids``):
    ``cpu_seconds``, ``cpu_user_seconds``, ``cpu_system_seconds``: CPU time of the instance.
    ``cpu_percent_mean`` (% of one core over the window), ``cpu_percent_peak`` (highest interval).
    ``cpu_wall_seconds``: the window. ``cpu_source_cgroup``: 1 when read from the cgroup.
    ``cpu_overhead_seconds``, ``cpu_overhead_percent_mean``: runtime processes outside the cgroup
    (containerd-shim, docker-proxy). ``cpu_daemon_seconds``: dockerd and children (shared by all
    containers; docker instances only). ``cpu_guest_seconds``: QEMU guest_time (KVM only, 0 under
    TCG). ``cpu_ctx_switches``, ``cpu_threads_max``.
    ``host_cpu_{user,system,iowait,steal,idle}_percent_mean``: whole host, % of all CPUs;
    ``host_cpu_steal_percent_peak``.
    ``cpu_split_*``, ``host_cpu_split_*``: where the host's CPU went (workload, helpers by role,
    daemons, load generator, isobench, kernel interrupt time), see
    :mod:`isobench.telemetry.cpusplit`.
memory:
    ``rss_bytes_{peak,mean,start}``, ``pss_bytes_{peak,mean,start}``: instance processes.
    ``mem_cgroup_bytes_{peak,mean,start}``: cgroup usage minus inactive file (``docker stats``);
    ``mem_cgroup_limit_bytes``. ``qemu_rss_bytes_{peak,mean,start}``: what the VM costs the host.
    ``mem_overhead_rss_bytes_{peak,mean,start}``: shim/proxy RSS.
network (instance's point of view: rx = into the instance):
    ``net_rx_bytes``, ``net_tx_bytes``, ``net_rx_packets``, ``net_tx_packets``,
    ``net_rx_rate_peak``, ``net_tx_rate_peak`` (B/s); ``net_source_iface`` (0: nftables counters
    on the published 127.0.0.1 port, the same for every runtime; 1: veth/tap statistics, only
    when the counters cannot run); ``net_iface_*`` the veth/tap statistics beside the counters.
disk:
    ``disk_read_bytes``, ``disk_write_bytes``, ``disk_read_ops``, ``disk_write_ops``,
    ``disk_ops_source`` (1: cgroup block requests, 0: /proc/PID/io syscalls).
guest (VMs with an agent; source="guest"):
    ``guest_cpu_{user,system,iowait,steal,idle}_percent_mean`` (% of the guest's CPUs),
    ``guest_cpu_busy_seconds``, ``guest_mem_used_bytes_{peak,mean}``, ``guest_mem_total_bytes``,
    ``guest_tasks_{max,mean}``, ``guest_net_rx_bytes``, ``guest_net_tx_bytes``,
    ``guest_poll_failures``.
session:
    ``telemetry_polls``, ``telemetry_poll_seconds_mean`` (cost of one poll of all samplers).

Time-series metrics (Sample.metric): ``cpu_percent``, ``cpu_user_percent``,
``cpu_system_percent``, ``cpu_overhead_percent``, ``cpu_daemon_percent``, ``cpu_guest_percent``,
``ctx_switches_rate``, ``threads``, ``host_cpu_*_percent``, ``cpu_split_*_percent`` and
``host_cpu_split_*_percent`` (% of one core per part, each interval), ``rss_bytes``, ``pss_bytes``,
``mem_cgroup_bytes``, ``qemu_rss_bytes``, ``mem_overhead_rss_bytes``, ``net_rx_rate``,
``net_tx_rate`` (B/s), ``net_*_packets_rate``, ``net_port_*``, ``disk_{read,write}_rate``,
``disk_{read,write}_ops_rate``, ``guest_cpu_*_percent``, ``guest_mem_used_bytes``,
``guest_tasks``, ``guest_load1``, ``guest_net_{rx,tx}_rate``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from isobench import plugins
from isobench.results import Sample
from isobench.runtimes.base import Instance
from isobench.telemetry.base import Sampler
from isobench.telemetry.poller import PollingSampler, ProcessSet

DEFAULT_SAMPLERS = ("cpu", "memory", "network", "disk", "guest")


class TelemetrySession:
    """Creates every applicable sampler for an instance and polls them all from one thread.

    Args:
        instance: the running instance.
        interval: seconds between polls.
        labels: put into every Sample's metadata (``runtime``, ``trial``...).
        samplers: sampler names (registry ``isobench.plugins.SAMPLERS``); None for all.
    """

    def __init__(
        self,
        instance: Instance,
        interval: float = 1.0,
        labels: Mapping[str, Any] | None = None,
        samplers: Iterable[str] | None = None,
    ) -> None:
        self.instance = instance
        self.interval = interval
        self.labels = dict(labels or {})
        self.samplers: list[Sampler] = []
        self.skipped: dict[str, str] = {}
        shared = ProcessSet(instance)
        for name in samplers if samplers is not None else plugins.names("sampler"):
            cls = plugins.load("sampler", name)
            sampler: Sampler = cls(instance, interval=interval, labels=self.labels)
            reason = sampler.check()
            if reason is not None:
                self.skipped[name] = reason
                continue
            if isinstance(sampler, PollingSampler):
                sampler.procs = shared
            self.samplers.append(sampler)
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._poll_seconds: list[float] = []
        self._samples: list[Sample] = []
        self._started: list[Sampler] = []

    @property
    def polling(self) -> list[PollingSampler]:
        return [s for s in self.samplers if isinstance(s, PollingSampler)]

    def start(self) -> None:
        """First reading of every sampler, then one background thread polls them all."""
        for sampler in list(self.samplers):
            try:
                if isinstance(sampler, PollingSampler):
                    sampler.begin()
                else:
                    sampler.start()  # a third-party sampler with its own thread
            except Exception as exc:
                self.skipped[sampler.name] = f"failed to start: {exc}"
                self.samplers.remove(sampler)
                if isinstance(sampler, PollingSampler):
                    sampler.close()
                continue
            except BaseException:
                self.stop()
                raise
            self._started.append(sampler)
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()

    def _poll_all(self) -> None:
        t0 = time.perf_counter()
        now = time.time()
        for sampler in self._started:
            if isinstance(sampler, PollingSampler):
                sampler.safe_poll(now)
        self._poll_seconds.append(time.perf_counter() - t0)

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        while not self._stop_event.wait(max(0.0, next_at - time.monotonic())):
            self._poll_all()
            next_at += self.interval
            if next_at < time.monotonic():
                next_at = time.monotonic() + self.interval

    def stop(self) -> list[Sample]:
        """Join the thread, take the final readings, release everything (always safe to call)."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        samples: list[Sample] = []
        for sampler in self._started:
            samples.extend(sampler.end() if isinstance(sampler, PollingSampler) else sampler.stop())
        self._started = []
        self._samples = samples if samples else self._samples
        return list(self._samples)

    def summary(self) -> dict[str, float]:
        """Merged summaries of all samplers (call after ``stop``)."""
        out: dict[str, float] = {}
        for sampler in self.samplers:
            if isinstance(sampler, PollingSampler) and not sampler.began:
                continue
            out.update(sampler.summary())
        if self._poll_seconds:
            out["telemetry_polls"] = float(len(self._poll_seconds))
            out["telemetry_poll_seconds_mean"] = sum(self._poll_seconds) / len(self._poll_seconds)
        return out

    @property
    def errors(self) -> dict[str, list[str]]:
        """Poll errors per sampler (empty lists omitted), for the trial's facts."""
        return {s.name: s.errors for s in self.polling if s.errors}

    def __enter__(self) -> TelemetrySession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
