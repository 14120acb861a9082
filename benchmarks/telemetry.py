"""What telemetry costs, and which loopback byte counter is exact.

1. CPU cost of a TelemetrySession (all samplers, one thread) polling a running burn app at 1 Hz
   and 10 Hz: this process's CPU time over a window, minus the same window without a session.
   Target: < 1 % of one core at 1 Hz.
2. Exactness of loopback byte counting for a known payload served over many short connections:
   nftables counters (what NetworkSampler uses) vs. per-socket ``ss -tinH`` figures
   (bytes_acked/bytes_received of the port's sockets, polled).

Run as root: ``.venv/bin/python benchmarks/telemetry.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isobench.runtimes.base import Instance
from isobench.telemetry import nftcount
from isobench.telemetry.session import TelemetrySession
from isobench.workloads.burn import APP_DIR


def start_app() -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, str(APP_DIR / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("burn app did not start")


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system


def session_cost(inst: Instance, interval: float, seconds: float) -> tuple[float, float, int]:
    """(% of one core used by the session, mean seconds per poll, polls)."""
    c0, t0 = cpu_now(), time.monotonic()
    time.sleep(seconds)
    idle = (cpu_now() - c0) / (time.monotonic() - t0)
    session = TelemetrySession(inst, interval=interval, labels={"runtime": "bench"})
    c0, t0 = cpu_now(), time.monotonic()
    session.start()
    time.sleep(seconds)
    session.stop()
    used = (cpu_now() - c0) / (time.monotonic() - t0)
    s = session.summary()
    return 100 * (used - idle), s["telemetry_poll_seconds_mean"], int(s["telemetry_polls"])


SS_RE = re.compile(r"bytes_(acked|received):(\d+)")


def ss_poll(port: int, seen: dict[tuple[str, str], tuple[int, int]]) -> None:
    """Record the latest bytes_acked/bytes_received of every socket on the port."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "all", f"( sport = :{port} )"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    for head, info in zip(lines[::2], lines[1::2], strict=False):
        fields = head.split()
        key = (fields[-2], fields[-1]) if len(fields) >= 2 else ("", "")
        vals = dict(SS_RE.findall(info))
        seen[key] = (int(vals.get("acked", 0)), int(vals.get("received", 0)))


def counting(port: int, total: int, connections: int) -> tuple[int, int]:
    """(nftables tx bytes, ss-observed tx bytes) for ``total`` bytes over N connections."""
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    stop = threading.Event()

    def poller() -> None:
        while not stop.wait(1.0):
            ss_poll(port, seen)

    with nftcount.PortCounter(port) as counter:
        thread = threading.Thread(target=poller, daemon=True)
        thread.start()
        each = total // connections
        for _ in range(connections):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", f"/payload?bytes={each}")
            conn.getresponse().read()
            conn.close()
            time.sleep(0.02)
        ss_poll(port, seen)
        stop.set()
        thread.join()
        return counter.read().tx_bytes, sum(v[0] for v in seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    proc, port = start_app()
    try:
        inst = Instance(runtime="native", host_port=port, launched_at=0.0, pids=[proc.pid])
        print("telemetry session cost (all host samplers, 1 thread) on a host process:")
        for hz in (1, 10):
            pct, per_poll, polls = session_cost(inst, 1 / hz, args.seconds)
            cost = f"{pct:5.2f} % of one core  ({per_poll * 1e3:.2f} ms/poll, {polls} polls)"
            print(f"  {hz:>2} Hz: {cost}")
        if nftcount.unavailable_reason() is None:
            total = 5_000_000
            print(f"loopback byte counting, {total} payload bytes served:")
            for conns in (1, 50):
                nft_tx, ss_tx = counting(port, total, conns)
                nft_err, ss_err = 100 * nft_tx / total - 100, 100 * ss_tx / total - 100
                print(
                    f"  {conns:>2} connection(s): nftables {nft_tx} ({nft_err:+.1f} %)"
                    f" | ss polled 1 Hz {ss_tx} ({ss_err:+.1f} %)"
                )
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
