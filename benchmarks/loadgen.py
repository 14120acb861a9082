"""Benchmark: isobench's load engine against wrk and Locust on the same nginx, one core each.

nginx (Debian nginx-light, private config, 127.0.0.1:<free port>, worker_processes 1) serves a
tiny static file pinned to CPU 0; each load generator is pinned to CPU 1 and they run one after
another, for several rounds:

1. saturation, 32 connections/users: isobench constant-vus (full k6 timings recorded),
   ``wrk -t1 -c32``, Locust FastHttpUser headless (32 users, no wait) -> req/s and the ratios
   isobench/wrk and isobench/locust;
2. a fixed moderate rate: isobench constant-arrival-rate at ``--rate`` req/s against
   ``wrk -t1 -c2 --latency`` (and isobench constant-vus 2, the same closed model as wrk) ->
   p50/p99 each reports.

Run from the repo root:  ``.venv/bin/python benchmarks/loadgen.py [--rounds 3] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isobench.load.api import run_load
from tests.load.servers import nginx

LOCUSTFILE = """
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def page(self):
        self.client.get("/index.html")
"""


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[m.group(2)]


def wrk(url: str, conns: int, seconds: int, cpu: int) -> dict[str, float]:
    out = subprocess.run(["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{conns}", f"-d{seconds}s",
                          "--latency", url + "/index.html"],
                         capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": p50, "p99": p99}


def locust(url: str, users: int, seconds: int, cpu: int, workdir: Path) -> float:
    exe = shutil.which("locust", path=str(Path(sys.executable).parent)) or "locust"
    lf = workdir / "locustfile.py"
    lf.write_text(LOCUSTFILE)
    prefix = workdir / "loc"
    subprocess.run(["taskset", "-c", str(cpu), exe, "-f", str(lf), "--headless", "-u", str(users),
                    "-r", str(users), "-t", f"{seconds}s", "--host", url, "--csv", str(prefix),
                    "--only-summary", "--loglevel", "ERROR"],
                   capture_output=True, text=True, timeout=seconds + 60, check=False)
    with open(f"{prefix}_stats.csv") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return float(row["Requests/s"])
    raise RuntimeError("locust wrote no aggregated stats")


def isobench_closed(url: str, vus: int, seconds: int, cpu: int) -> dict[str, float]:
    r = run_load(url, {"executor": "constant-vus", "vus": vus, "duration": f"{seconds}s",
                       "requests": [{"path": "/index.html", "checks": {"status": 200}}]},
                 cpus=(cpu,))
    return {"rps": r.metric("http_reqs", "rate"), "p50": r.metric("http_req_duration", "med"),
            "p99": r.metric("http_req_duration", "p(99)")}


def isobench_open(url: str, rate: int, seconds: int, cpu: int) -> dict[str, float]:
    r = run_load(url, {"executor": "constant-arrival-rate", "rate": rate,
                       "duration": f"{seconds}s", "preAllocatedVUs": 20, "maxVUs": 200,
                       "requests": [{"path": "/index.html"}]}, cpus=(cpu,))
    return {"rps": r.metric("http_reqs", "rate"), "p50": r.metric("http_req_duration", "med"),
            "p99": r.metric("http_req_duration", "p(99)")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--skip-locust", action="store_true")
    a = ap.parse_args()
    s, cpu = a.seconds, a.load_cpu
    sat: dict[str, list[float]] = {"isobench": [], "wrk": [], "locust": []}
    mod: dict[str, list[dict[str, float]]] = {"isobench-open": [], "isobench-c2": [], "wrk-c2": []}
    with nginx(cpu=a.server_cpu) as url, tempfile.TemporaryDirectory() as tmp:
        print(f"nginx {url} on CPU {a.server_cpu}; load generators on CPU {cpu}; "
              f"{a.rounds} rounds x {s}s; host load {os.getloadavg()[0]:.2f}")
        for i in range(a.rounds):
            sat["isobench"].append(isobench_closed(url, 32, s, cpu)["rps"])
            sat["wrk"].append(wrk(url, 32, s, cpu)["rps"])
            if not a.skip_locust:
                sat["locust"].append(locust(url, 32, s, cpu, Path(tmp)))
            mod["isobench-open"].append(isobench_open(url, a.rate, s, cpu))
            mod["isobench-c2"].append(isobench_closed(url, 2, s, cpu))
            mod["wrk-c2"].append(wrk(url, 2, s, cpu))
            print(f"round {i + 1}: " + "  ".join(f"{k}={v[-1]:,.0f} req/s"
                                                  for k, v in sat.items() if v))
        print("\nsaturation, 32 connections (median req/s):")
        med = {k: statistics.median(v) for k, v in sat.items() if v}
        for k, v in med.items():
            print(f"  {k:<9} {v:>10,.0f}")
        print(f"  isobench/wrk    = {med['isobench'] / med['wrk']:.2f}  (target >= 0.60)")
        if "locust" in med:
            print(f"  isobench/locust = {med['isobench'] / med['locust']:.2f}  (target >= 3)")
        print(f"\nlatency (median over rounds, ms): isobench open model at {a.rate} req/s, "
              "closed model with 2 connections")
        for k, runs in mod.items():
            p50 = statistics.median(r["p50"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            rps = statistics.median(r["rps"] for r in runs)
            print(f"  {k:<14} p50={p50:7.3f}  p99={p99:7.3f}  ({rps:,.0f} req/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
