"""Check: the micro suite's native figures are the benchmarks' own, with nothing in between.

For ``redis`` and ``sysbench-cpu`` this runs the same client by hand, with the suite's own
parameters (read from the run directory), and prints the suite's native median, the by-hand
median and their ratio (target: within 5 %):

* redis: ``redis-server`` of the suite's rootfs started by hand (chroot, pinned to the workload
  CPU), ``redis-benchmark`` on the load-generator CPU with the very argv of the suite's trials
  (only the port differs);
* sysbench-cpu: ``sysbench cpu`` of the suite's rootfs run by hand (chroot, pinned).

The by-hand side parses the clients' output with its own few lines (not isobench's parsers).

    flock /tmp/isobench-heavy.lock .venv/bin/python benchmarks/micro_byhand.py --suite DIR
    # without --suite it first runs `isobench suite micro --only redis,sysbench-cpu
    #   --runtimes native --quick --out /tmp/isobench-byhand-suite`
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from isobench.report.rundata import load_run
from isobench.util import paths

WORKLOAD_CPU, LOADGEN_CPU = "0", "1"


def chrooted(rootfs: Path, argv: list[str]) -> list[str]:
    """``argv`` run in ``rootfs`` with /dev and /proc, in a private mount namespace (the mounts
    vanish with the process), pinned to the workload CPU."""
    script = (f'mount --bind /dev "{rootfs}/dev" && mount -t proc proc "{rootfs}/proc" && '
              f'exec chroot "{rootfs}" "$@"')
    return ["taskset", "-c", WORKLOAD_CPU, "unshare", "--mount", "--propagation", "private",
            "sh", "-c", script, "sh", *argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def suite_native(run_dir: Path, metric: str) -> tuple[float, list[float], dict[str, Any]]:
    """(median, values, a native trial's load facts) of ``metric`` in a suite's run directory."""
    data = load_run(run_dir, with_samples=False)
    entry = data.analysis["per_runtime"]["native"]["metrics"][metric]
    native = [t for t in data.trials if t.runtime == "native" and t.status == "ok"]
    return float(entry["median"]), list(entry["values"]), {
        "facts": native[0].load.get("facts", {}), "manifest": data.manifest}


def rootfs_of(manifest: dict[str, Any]) -> Path:
    path = paths.cache_dir() / "rootfs" / manifest["artifacts"]["key"]
    if not path.is_dir():
        raise SystemExit(f"the suite's rootfs {path} is gone: run the suite again")
    return path


def redis_by_hand(run_dir: Path, repeat: int) -> tuple[float, float, list[float]]:
    suite_median, _, info = suite_native(run_dir, "redis_get_ops")
    rootfs = rootfs_of(info["manifest"])
    argv = list(info["facts"]["argv"]["P1"])
    port = free_port()
    argv[argv.index("-p") + 1] = str(port)
    server = subprocess.Popen(chrooted(rootfs, [
        "/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(port), "--protected-mode",
        "no", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise SystemExit("redis-server started by hand never answered PING")
        values = []
        for _ in range(repeat):
            out = subprocess.run(["taskset", "-c", LOADGEN_CPU, *argv], capture_output=True,
                                 text=True, check=True).stdout
            rows = {r[0]: r for r in csv.reader(io.StringIO(out)) if r}
            values.append(float(rows["GET"][1]))
        print(f"  redis-benchmark by hand: {' '.join(argv)}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return suite_median, statistics.median(values), values


def sysbench_by_hand(run_dir: Path, repeat: int) -> tuple[float, float, list[float]]:
    suite_median, _, info = suite_native(run_dir, "sysbench_cpu_events")
    rootfs = rootfs_of(info["manifest"])
    argv = list(info["facts"]["sysbench-cpu"]["argv"])
    values = []
    for _ in range(repeat):
        out = subprocess.run(chrooted(rootfs, argv), capture_output=True, text=True,
                             check=True).stdout
        match = re.search(r"events per second:\s+([\d.]+)", out)
        if not match:
            raise SystemExit(f"sysbench printed no events/s:\n{out}")
        values.append(float(match.group(1)))
    print(f"  sysbench by hand: {' '.join(argv)} (chroot, taskset -c {WORKLOAD_CPU})")
    return suite_median, statistics.median(values), values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, help="a suite directory with redis/, sysbench-cpu/")
    parser.add_argument("--repeat", type=int, default=5, help="by-hand runs per benchmark")
    args = parser.parse_args()
    suite = args.suite
    if suite is None:
        suite = Path("/tmp/isobench-byhand-suite")
        subprocess.run([sys.executable, "-m", "isobench.cli", "suite", "micro", "--only",
                        "redis,sysbench-cpu", "--runtimes", "native", "--quick", "--out",
                        str(suite)], check=True, env={**os.environ})
    results = {}
    for name, fn, unit in (("redis GET ops/s", redis_by_hand, "ops/s"),
                           ("sysbench cpu events/s", sysbench_by_hand, "events/s")):
        run_dir = suite / ("redis" if name.startswith("redis") else "sysbench-cpu")
        if not run_dir.is_dir():
            print(f"{name}: {run_dir} missing, skipped")
            continue
        suite_median, hand_median, values = fn(run_dir, args.repeat)
        ratio = hand_median / suite_median
        verdict = "agree" if abs(ratio - 1) <= 0.05 else "DISAGREE (beyond 5 %)"
        print(f"{name}: suite native median {suite_median:,.1f} {unit}, by hand median "
              f"{hand_median:,.1f} {unit} ({', '.join(f'{v:,.1f}' for v in values)}): "
              f"by hand / suite = {ratio:.3f} → {verdict}")
        results[name] = {"suite": suite_median, "by_hand": hand_median, "ratio": ratio,
                         "by_hand_values": values}
    print(json.dumps(results, indent=1))
    return 0 if all(abs(r["ratio"] - 1) <= 0.05 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
