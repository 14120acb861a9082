"""Benchmark: a k6 script translated by isobench against the same load written natively.

nginx (Debian nginx-light, private config, 127.0.0.1:<free port>, one worker) serves a tiny
static file pinned to CPU 0; the engine runs pinned to CPU 1. Each round runs, in alternating
order, (a) the k6 script below translated by :mod:`isobench.load.k6script` and (b) the
equivalent native isobench scenario, both saturating (32 VUs, no sleep, one status check).
Prints each run's req/s and the engine's CPU time per request, the medians and the ratio
translated/native (target >= 0.95: the translation must run at the engine's full speed), and
whether the two compile to the same bytes and checks (then any difference is the host's noise).

Run from the repo root:  ``.venv/bin/python benchmarks/k6script.py [--rounds 3] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isobench.load.api import run_load
from isobench.load.k6script import Overrides, translate
from tests.load.servers import nginx

SCRIPT = """
import http from 'k6/http';
import { check } from 'k6';

export const options = { vus: 32, duration: '5s' };

export default function () {
  const res = http.get('http://<your_ip>:8008/index.html');
  check(res, { 'status is 200': (r) => r.status === 200 });
}
"""


def native(vus: int, seconds: int) -> dict[str, Any]:
    return {"executor": "constant-vus", "vus": vus, "duration": f"{seconds}s",
            "requests": [{"path": "/index.html", "checks": {"status": 200}}]}


def _plan(scenario: dict[str, Any]) -> list[tuple[bytes, list[tuple[str, Any]]]]:
    """What the VUs execute: the request bytes and the (kind, argument) of each check."""
    from isobench.load.engine import Plan
    from isobench.load.scenario import ScenarioSet

    plan = Plan(ScenarioSet.parse(scenario), "http://127.0.0.1:8080")
    store = plan.new_store(0.0)
    return [(r.data, [(k, a) for _s, k, a in r.checks]) for r in plan.requests_for(0, store)]


def rps(url: str, scenario: dict[str, Any], cpu: int) -> tuple[float, float]:
    """(req/s, engine CPU µs per request): the second is far less sensitive to other load on
    the host than the first (it counts the engine process's own user+system time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = run_load(url, scenario, cpus=(cpu,))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    checks = r.summary["root_group"]["checks"]
    assert all(c["fails"] == 0 for c in checks), checks
    n = r.metric("http_reqs", "count")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return n / (r.summary["state"]["testRunDurationMs"] / 1000.0), cpu_s / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--vus", type=int, default=32)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    a = ap.parse_args()
    translated = translate(SCRIPT, overrides=Overrides(vus=a.vus, duration=f"{a.seconds}s"))
    print(f"translated: {translated}")
    print(f"same compiled requests and checks as the native scenario: "
          f"{_plan(translated) == _plan(native(a.vus, a.seconds))}")
    results: dict[str, list[float]] = {"k6 script": [], "native": []}
    cpu_us: dict[str, list[float]] = {"k6 script": [], "native": []}
    with nginx(cpu=a.server_cpu) as url:
        rps(url, native(a.vus, 3), a.load_cpu)  # warm nginx, the page cache and the CPUs
        for rnd in range(a.rounds):
            order = ["k6 script", "native"] if rnd % 2 == 0 else ["native", "k6 script"]
            for which in order:
                sc = translated if which == "k6 script" else native(a.vus, a.seconds)
                v, us = rps(url, sc, a.load_cpu)
                results[which].append(v)
                cpu_us[which].append(us)
                print(f"round {rnd + 1}  {which:<10} {v:>10,.0f} req/s  {us:6.2f} CPU µs/req",
                      flush=True)
    k6_med = statistics.median(results["k6 script"])
    nat_med = statistics.median(results["native"])
    paired = [k / n for k, n in zip(results["k6 script"], results["native"], strict=True)]
    ratio = statistics.median(paired)
    print(f"median      k6 script {k6_med:>10,.0f} req/s   native {nat_med:>10,.0f} req/s")
    print(f"ratio k6 script/native per round: {', '.join(f'{r:.3f}' for r in paired)}; "
          f"median {ratio:.3f} (target >= 0.95)")
    k6_us, nat_us = statistics.median(cpu_us["k6 script"]), statistics.median(cpu_us["native"])
    print(f"engine CPU per request (median): k6 script {k6_us:.2f} µs, native {nat_us:.2f} µs; "
          f"throughput ratio at equal CPU {nat_us / k6_us:.3f}")
    return 0 if ratio >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
