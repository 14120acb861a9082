"""The guest's own view of a VM, from the in-guest agent at {host_address}:{agent_port}.

The agent answers ``GET /cgi-bin/stats`` with sections headed ``==> NAME <==`` (``/proc/stat``,
``/proc/meminfo``, ``/proc/loadavg``, ``/proc/net/dev``, ``tasks``). Samples carry
``source="guest"``. Asking costs the guest a little CPU (one CGI process per poll); a poll that
times out is skipped and counted in ``guest_poll_failures``. Fetches run in a worker thread of
the sampler (one in flight at a time), so a slow guest (TCG) never delays the host samplers that
share the session's polling thread; each guest Sample is stamped when its answer arrived.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from dataclasses import dataclass

from isobench.telemetry.network import parse_net_dev
from isobench.telemetry.poller import PollingSampler, mean, rate
from isobench.telemetry.procfs import HostCpu, host_cpu_percent, parse_proc_stat_cpu

STATS_PATH = "/cgi-bin/stats"


def split_sections(text: str) -> dict[str, str]:
    """``==> NAME <==`` sections → {NAME: body}."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("==> ") and stripped.endswith(" <=="):
            current = sections.setdefault(stripped[4:-4].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}


@dataclass(frozen=True)
class GuestStats:
    """One reading of the agent."""

    cpu: HostCpu | None
    mem_total: int | None
    mem_used: int | None
    load1: float | None
    tasks: int | None
    net_rx_bytes: int
    net_tx_bytes: int


def parse_stats(text: str) -> GuestStats:
    """Parse the agent's answer; missing or garbled sections become None."""
    s = split_sections(text)
    cpu: HostCpu | None
    try:
        cpu = parse_proc_stat_cpu(s.get("/proc/stat", ""))
    except ValueError:
        cpu = None
    meminfo: dict[str, int] = {}
    for line in s.get("/proc/meminfo", "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            meminfo[key.strip()] = int(parts[0]) * 1024
    total = meminfo.get("MemTotal")
    avail = meminfo.get("MemAvailable", meminfo.get("MemFree"))
    used = total - avail if total is not None and avail is not None else None
    load = s.get("/proc/loadavg", "").split()
    tasks_text = s.get("tasks", "").strip()
    net = parse_net_dev(s.get("/proc/net/dev", ""))
    rx = sum(c[0] for name, c in net.items() if name != "lo")
    tx = sum(c[2] for name, c in net.items() if name != "lo")
    return GuestStats(
        cpu=cpu,
        mem_total=total,
        mem_used=used,
        load1=float(load[0]) if load else None,
        tasks=int(tasks_text.split()[0]) if tasks_text[:1].isdigit() else None,
        net_rx_bytes=rx,
        net_tx_bytes=tx,
    )


class GuestSampler(PollingSampler):
    """Guest CPU shares, memory used, tasks, load and network bytes, as the guest sees them."""

    name = "guest"
    source = "guest"

    def check(self) -> str | None:
        if self.instance.agent_port is None:
            return "instance has no in-guest agent (agent_port is None)"
        return None

    def fetch(self) -> str:
        url = f"http://{self.instance.host_address}:{self.instance.agent_port}{STATS_PATH}"
        timeout = max(2.0, 2 * self.interval)
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body: bytes = resp.read()
        return body.decode(errors="replace")

    def open(self) -> None:
        self._failures = 0
        self._first: GuestStats | None = None
        self._prev: GuestStats | None = None
        self._t_prev = 0.0
        self._mem_total: int | None = None
        self._pending: list[tuple[float, str | None]] = []
        self._lock = threading.Lock()
        self._want = threading.Event()
        self._quit = threading.Event()
        self._worker = threading.Thread(target=self._fetch_loop, name="guest-agent", daemon=True)
        self._worker.start()

    def _fetch_loop(self) -> None:
        while True:
            self._want.wait()
            self._want.clear()
            if self._quit.is_set():
                return
            try:
                item: tuple[float, str | None] = (time.time(), self.fetch())
            except (OSError, ValueError):
                item = (time.time(), None)
            with self._lock:
                self._pending.append(item)

    def _drain(self) -> None:
        with self._lock:
            items, self._pending = self._pending, []
        for stamp, text in items:
            self._consume(stamp, text)

    def poll(self, now: float) -> None:
        """Ask for a new reading (non-blocking) and take in the answers that arrived."""
        self._want.set()
        self._drain()

    def close(self) -> None:
        self._quit.set()
        self._want.set()
        self._worker.join(timeout=max(2.0, 2 * self.interval) + 1.0)
        self._drain()

    def _consume(self, now: float, text: str | None) -> None:
        if text is None:
            self._failures += 1
            return
        stats = parse_stats(text)
        if stats.mem_used is not None:
            self.emit("guest_mem_used_bytes", stats.mem_used, "bytes", now)
            self._mem_total = stats.mem_total
        if stats.tasks is not None:
            self.emit("guest_tasks", stats.tasks, "tasks", now)
        if stats.load1 is not None:
            self.emit("guest_load1", stats.load1, "", now)
        prev, self._prev = self._prev, stats
        if self._first is None:
            self._first = stats
        if prev is None:
            self._t_prev = now
            return
        dt, self._t_prev = now - self._t_prev, now
        if prev.cpu is not None and stats.cpu is not None:
            for key, value in host_cpu_percent(prev.cpu, stats.cpu).items():
                self.emit(f"guest_cpu_{key}_percent", value, "%", now)
        self.emit("guest_net_rx_rate", rate(prev.net_rx_bytes, stats.net_rx_bytes, dt), "B/s", now)
        self.emit("guest_net_tx_rate", rate(prev.net_tx_bytes, stats.net_tx_bytes, dt), "B/s", now)

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"guest_poll_failures": float(self._failures)}
        first, last = self._first, self._prev
        if first is None or last is None:
            return out
        if first.cpu is not None and last.cpu is not None:
            for key, value in host_cpu_percent(first.cpu, last.cpu).items():
                out[f"guest_cpu_{key}_percent_mean"] = value
            busy = (last.cpu.total - last.cpu.idle - last.cpu.iowait) - (
                first.cpu.total - first.cpu.idle - first.cpu.iowait
            )
            out["guest_cpu_busy_seconds"] = busy
        used = self.series("guest_mem_used_bytes")
        if used:
            out["guest_mem_used_bytes_peak"] = max(used)
            out["guest_mem_used_bytes_mean"] = mean(used)
            out["guest_mem_used_bytes_start"] = used[0]
        if self._mem_total is not None:
            out["guest_mem_total_bytes"] = float(self._mem_total)
        tasks = self.series("guest_tasks")
        if tasks:
            out["guest_tasks_max"] = max(tasks)
            out["guest_tasks_mean"] = mean(tasks)
        out["guest_net_rx_bytes"] = float(max(0, last.net_rx_bytes - first.net_rx_bytes))
        out["guest_net_tx_bytes"] = float(max(0, last.net_tx_bytes - first.net_tx_bytes))
        return out
