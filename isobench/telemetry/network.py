"""Network bytes and packets at each runtime's boundary, from the instance's point of view.

* ``instance.net_iface`` set (a container's veth, a VM's own veth): that interface's statistics
  (/sys/class/net/IFACE/statistics, or /proc/PID/net/dev of the instance's processes when the
  interface lives in another network namespace). The host side's rx is what the instance sent,
  so instance rx = iface tx and instance tx = iface rx.
* Every runtime: exact nftables counters on ``instance.host_port`` on 127.0.0.1, or where a
  remote client's veth (``instance.client_iface``) or the instance's own veth (a VM, reached
  on its address: ``instance.net_iface``) carries the load (see
  :mod:`isobench.telemetry.nftcount`). This is the primary figure (``net_*``) wherever it can
  be had, because it is the same boundary, counted the same way (IP level), for every runtime;
  the interface counts of a veth (link level, a few bytes more per packet) are reported beside
  it as ``net_iface_*``.

Why counters and not per-socket ``ss -ti`` figures: a socket's ``bytes_received``/``bytes_acked``
vanish when it closes, so every connection that opens and closes between two polls is lost
(``benchmarks/telemetry.py`` measures it); a counter sees every packet. Both count headers
(IP level for nftables, link level for interfaces), so small requests show their real overhead.
Both count what was sent, as nethogs and ``ip -s link`` do: a segment TCP retransmits crosses the
boundary again and is counted again. That is not rare on loopback: segments reordered between
the two CPUs' backlogs trigger spurious fast retransmits (on the 2-core host, 6 of 20 rounds of
a 5 MB response resent 1-40 segments, up to +27 %), so a byte figure above the payload is not a
counting error (the tests bound it by the kernel's ``RetransSegs``, ``tests/fixtures/retrans.py``).
"""

from __future__ import annotations

from pathlib import Path

from isobench.telemetry import nftcount, procfs
from isobench.telemetry.poller import PollingSampler, rate

Counts = tuple[int, int, int, int]
"""(rx_bytes, rx_packets, tx_bytes, tx_packets) from the instance's point of view."""


def parse_net_dev(text: str) -> dict[str, Counts]:
    """/proc/net/dev → {iface: (rx_bytes, rx_packets, tx_bytes, tx_packets)} (iface's own view)."""
    out: dict[str, Counts] = {}
    for line in text.splitlines():
        if ":" not in line or "|" in line:
            continue
        name, _, rest = line.partition(":")
        f = rest.split()
        if len(f) >= 10:
            out[name.strip()] = (int(f[0]), int(f[1]), int(f[8]), int(f[9]))
    return out


class IfaceReader:
    """Statistics of one host-side interface, flipped to the instance's point of view."""

    def __init__(self, iface: str, pids: list[int]) -> None:
        self.iface = iface
        self.pids = pids
        self._sys = Path("/sys/class/net") / iface / "statistics"

    def available(self) -> bool:
        return self.read() is not None

    def read(self) -> Counts | None:
        if self._sys.is_dir():
            vals = []
            for name in ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets"):
                text = procfs.read_text(str(self._sys / name))
                if text is None:
                    break
                vals.append(int(text))
            else:
                rxb, rxp, txb, txp = vals
                return (txb, txp, rxb, rxp)
        for pid in self.pids:
            found = parse_net_dev(procfs.read_text(f"/proc/{pid}/net/dev") or "").get(self.iface)
            if found is not None:
                rxb, rxp, txb, txp = found
                return (txb, txp, rxb, rxp)
        return None


class NetworkSampler(PollingSampler):
    """Bytes/packets in and out of the instance over time (rates) and in total."""

    name = "network"

    def _pids(self) -> list[int]:
        qemu = [self.instance.vmm_pid] if self.instance.vmm_pid is not None else []
        return [*qemu, *self.instance.pids]

    def check(self) -> str | None:
        if (
            self.instance.net_iface
            and IfaceReader(self.instance.net_iface, self._pids()).available()
        ):
            return None
        reason = nftcount.unavailable_reason()
        if reason is not None:
            return f"no interface for the instance and {reason}"
        return None

    def iface_counted(self) -> str | None:
        """Where the port's packets are counted: the remote client's veth, else the instance's
        own interface when the host reaches the instance on its address (not on loopback),
        else None (loopback)."""
        if self.instance.client_iface:
            return self.instance.client_iface
        if self.instance.host_address != "127.0.0.1" and self.instance.net_iface:
            return self.instance.net_iface
        return None

    def open(self) -> None:
        self._iface: IfaceReader | None = None
        if self.instance.net_iface:
            reader = IfaceReader(self.instance.net_iface, self._pids())
            if reader.available():
                self._iface = reader
        self._port: nftcount.PortCounter | None = None
        if nftcount.unavailable_reason() is None:
            iface = self.iface_counted()
            counter = nftcount.PortCounter(
                self.instance.host_port, iface=iface,
                server_side=iface is not None and iface != self.instance.client_iface)
            try:
                counter.open()
                self._port = counter
            except nftcount.NftError as exc:
                self.errors.append(str(exc))
        self._first: dict[str, Counts] = {}
        self._last: dict[str, Counts] = {}
        self._t_prev: float | None = None

    def close(self) -> None:
        if self._port is not None:
            self._port.close()

    def _readings(self) -> dict[str, Counts]:
        out: dict[str, Counts] = {}
        if self._iface is not None:
            counts = self._iface.read()
            if counts is not None:
                out["iface"] = counts
        if self._port is not None:
            c = self._port.read()
            out["port"] = (c.rx_bytes, c.rx_packets, c.tx_bytes, c.tx_packets)
        return out

    @property
    def primary(self) -> str:
        """``port`` (the same counting for every runtime) when the counter runs, else ``iface``."""
        return "port" if self._port is not None else "iface"

    def _prefix(self, key: str) -> str:
        return "net" if key == self.primary else f"net_{key}"

    def poll(self, now: float) -> None:
        cur = self._readings()
        prev = self._last
        for key, counts in cur.items():
            self._first.setdefault(key, counts)
        self._last = {**prev, **cur}
        if self._t_prev is None:
            self._t_prev = now
            return
        dt = now - self._t_prev
        self._t_prev = now
        for key, counts in cur.items():
            before = prev.get(key, counts)
            prefix = self._prefix(key)
            names = ("rx_rate", "rx_packets_rate", "tx_rate", "tx_packets_rate")
            units = ("B/s", "1/s", "B/s", "1/s")
            for name, unit, b, c in zip(names, units, before, counts, strict=True):
                self.emit(f"{prefix}_{name}", rate(b, c, dt), unit, now)

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, last in self._last.items():
            first = self._first[key]
            prefix = self._prefix(key)
            names = ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets")
            for name, a, b in zip(names, first, last, strict=True):
                out[f"{prefix}_{name}"] = float(max(0, b - a))
        if out:
            out["net_source_iface"] = 1.0 if self.primary == "iface" else 0.0
            peak_rx = max(self.series("net_rx_rate"), default=0.0)
            peak_tx = max(self.series("net_tx_rate"), default=0.0)
            out["net_rx_rate_peak"], out["net_tx_rate_peak"] = peak_rx, peak_tx
        return out
