"""Benchmark: how much fio's 1 MiB direct-I/O figures depend on the physical layout of fio's buffer.

A 1 MiB ``O_DIRECT`` request reaches the disk as one scatter-gather entry per physically
contiguous piece of the buffer: 1 piece when the buffer is one huge page, up to 256 when its
4 KiB pages are scattered. Where each piece costs the disk path something (a virtual disk whose
host handles every piece on its own), the figure of ``fio --rw=read --bs=1M --direct=1`` depends
on where the kernel happened to put fio's buffer, which neither fio nor isobench chooses.

This script measures that on the host, with nothing of isobench in between: in a private overlay
of the suite's rootfs (``micro_byhand.Chroot``: chroot, pinned to the workload CPU, the suite's
memory limit) it runs the micro suite's own fio sequential jobs, alternating fio's default buffer
(``--iomem=malloc``: 4 KiB pages wherever the kernel puts them) with a huge-page buffer
(``--iomem=shmhuge``: one physically contiguous piece; the script reserves the huge pages it needs
and puts the host's setting back). For every run it reads the buffer's layout from
``/proc/PID/pagemap`` (root) and prints:

- per job, the medians and the ratio huge page ÷ default with its 95 % CI (paired by round);
- the fit *µs per request = a + b × pieces* over every run of the job, with R²: ``b`` is what
  one more piece costs, ``a`` what a request costs when its buffer is one piece.

    flock /tmp/isobench-heavy.lock .venv/bin/python benchmarks/fio_buffer.py --rounds 8

Needs a native-capable host (root, overlayfs) and the suite's rootfs (``isobench suite micro
--only fio --runtimes native`` builds it).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from buffer_layout import PieceWatch, huge_pages
from micro_byhand import Chroot, agreement

from isobench.util import paths
from isobench.workloads.micro.local import FIO_JOBS

SEQ_JOBS = {bench: job for bench, job in FIO_JOBS.items() if "seq" in job}


def suite_jobs(seconds: int) -> dict[str, list[str]]:
    """The micro suite's fio sequential jobs on the root filesystem, as its agent builds them
    (``agent.BENCHES``), for ``seconds`` seconds, with direct I/O (as the suite's run has it on
    an overlay of a disk filesystem; the host side cannot probe the box's directory)."""
    import agent  # on the path through buffer_layout

    agent.direct_io_works = lambda directory: True
    return {job: agent.BENCHES[bench](seconds) for bench, job in SEQ_JOBS.items()
            if not bench.startswith("fio-vol-")}  # the volume is a directory of the same disk


def rootfs_of_suite() -> Path:
    runs = sorted(paths.cache_dir().glob("rootfs/*/usr/bin/fio"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit("no rootfs with fio (fix: isobench suite micro --only fio "
                         "--runtimes native --quick)")
    return runs[-1].parents[2]


def one_run(box: Chroot, argv: list[str], iomem: str, watch: PieceWatch) -> dict[str, Any]:
    argv = [*argv, f"--iomem={iomem}"]
    text = box.run(["/bin/sh", "-c", "mkdir -p /var/tmp/isobench-micro && " + " ".join(argv)])
    data = json.loads(text[text.index("{"):])["jobs"][0]
    side = data["read"] if data["read"]["io_bytes"] else data["write"]
    return {"mb_s": side["bw_bytes"] / 1e6, "us_per_request": 1e6 / side["iops"],
            "pieces": watch.pieces(argv)}


def fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares y = a + b·x: (a, b, R²)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else math.nan
    a = my - b * mx
    ss = sum((y - my) ** 2 for y in ys)
    r2 = 1 - sum((y - a - b * x) ** 2 for x, y in points) / ss if ss else math.nan
    return a, b, r2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3, help="each fio run (default 3)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/isobench-fio-buffer.json"))
    args = parser.parse_args()
    rootfs = rootfs_of_suite()
    jobs = suite_jobs(args.seconds)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        job: {"malloc": [], "shmhuge": []} for job in jobs}
    with huge_pages(8), PieceWatch() as watch:
        box = Chroot(rootfs, 1024)
        try:
            box.run(["/bin/sh", "-c", "mkdir -p /var/tmp/isobench-micro && " + " ".join(
                a.replace(f"--runtime={args.seconds}", "--runtime=1")
                for a in jobs["seqread"]) + " > /dev/null"])  # lay the file out once
            for r in range(args.rounds):
                order = ("malloc", "shmhuge") if r % 2 == 0 else ("shmhuge", "malloc")
                for job, argv in jobs.items():
                    for iomem in order:
                        runs[job][iomem].append(one_run(box, argv, iomem, watch))
                print(f"round {r + 1}: " + "; ".join(
                    f"{job} " + ", ".join(
                        f"{iomem} {runs[job][iomem][-1]['mb_s']:,.0f} MB/s "
                        f"({runs[job][iomem][-1]['pieces']} pieces)" for iomem in order)
                    for job in jobs), flush=True)
        finally:
            box.remove()
    print(f"\n{'job':6} {'default MB/s':>12} {'huge page MB/s':>15} {'huge/default [95 % CI]':>24}"
          f"   fit: µs per 1 MiB request = a + b × pieces")
    summary = {}
    for job, by in runs.items():
        res = agreement([x["mb_s"] for x in by["malloc"]], [x["mb_s"] for x in by["shmhuge"]])
        points = [(float(x["pieces"]), x["us_per_request"]) for x in by["malloc"] + by["shmhuge"]
                  if x["pieces"] is not None]
        a, b, r2 = fit(points) if len(points) > 2 else (math.nan, math.nan, math.nan)
        lo, hi = res["ci95"]
        print(f"{job:6} {statistics.median(res['suite']):12,.0f} "
              f"{statistics.median(res['by_hand']):15,.0f} {res['ratio']:10.2f} "
              f"[{lo:.2f}, {hi:.2f}]   a = {a:.0f} µs, b = {b:.2f} µs per piece, R² = {r2:.2f}, "
              f"pieces (default buffer) {sorted(x['pieces'] for x in by['malloc'] if x['pieces'])}")
        summary[job] = {"runs": by, "huge_over_default": res["ratio"], "ci95": res["ci95"],
                        "fit": {"a_us": a, "b_us_per_piece": b, "r2": r2}}
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
