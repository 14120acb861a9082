"""Benchmark: the load engine's memory over a long run stays flat (HDR histograms, no per-request
lists). Drives nginx (CPU 0) from the engine (CPU 1) at a fixed arrival rate for --minutes and
prints the engine process's RSS every --every seconds, then the growth from minute 1 to the end.

    .venv/bin/python benchmarks/load_memory.py --minutes 10 --rate 5000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.load.servers import nginx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--every", type=float, default=30.0)
    args = parser.parse_args()
    seconds = int(args.minutes * 60)
    scenario = {
        "executor": "constant-arrival-rate", "rate": args.rate, "timeUnit": "1s",
        "duration": f"{seconds}s", "preAllocatedVUs": 32, "maxVUs": 256,
        "requests": [{"method": "GET", "path": "/index.html", "checks": {"status": 200}}],
    }
    work = Path(tempfile.mkdtemp(prefix="isobench-loadmem-"))
    (work / "scenario.json").write_text(json.dumps(scenario))
    with nginx(cpu=0) as url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "isobench.load", "--url", url, "--cpus", "1",
             "--scenario", str(work / "scenario.json"), "--json", str(work / "result.json")],
            stdout=subprocess.DEVNULL,
        )
        engine = psutil.Process(proc.pid)
        start = time.monotonic()
        rss: list[tuple[float, int]] = []
        while proc.poll() is None:
            try:
                rss.append((time.monotonic() - start, engine.memory_info().rss))
            except psutil.Error:
                break
            print(f"t={rss[-1][0]:6.0f} s  engine RSS {rss[-1][1] / 2**20:7.1f} MiB", flush=True)
            time.sleep(args.every)
    after_1min = [r for t, r in rss if t >= 60] or [r for _, r in rss]
    first, last, peak = after_1min[0], after_1min[-1], max(after_1min)
    print(f"\n{args.minutes:g} min at {args.rate}/s: RSS at 1 min {first / 2**20:.1f} MiB, "
          f"end {last / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB, "
          f"growth end/1min = {last / first:.3f}")
    try:
        summary = json.loads((work / "result.json").read_text())
        reqs = summary["summary"]["metrics"]["http_reqs"]["values"]["count"]
        print(f"requests: {reqs:,.0f}")
    except (OSError, ValueError, KeyError) as exc:
        print(f"(no request count: {exc})")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
