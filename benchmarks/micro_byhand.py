"""Check: the micro suite's native figures are the benchmarks' own, with nothing in between.

For every benchmark of the micro suite (or ``--only``), in ``--rounds`` rounds, back to back:

1. ``isobench suite micro --only B --runtimes native --quick --trials 1`` (one native trial);
2. the same client by hand, with the very argv of that round's trial (only the port and
   pgbench's log directory differ), against the same server command started by hand from the
   suite's rootfs: ``chroot`` into a private overlay of it (writes go to a scratch upper layer
   on the same disk as the native runtime's, as there), pinned with ``taskset`` to the
   workload CPU, in a memory cgroup made by hand with the suite's memory limit (the native
   runtime's, whose page cache it bounds), no isobench process in between; local benchmarks
   (sysbench, fio, xz) run by hand in such a chroot with the argv the suite's agent ran.
   Every benchmark gets the warm-up the suite gives it: one discarded pass of the same client
   or command before the measured one, for the suite's warm-up time (``--quick``: 1 s, where
   the measured pass is 3 s; :func:`warmup_argv`). A cold PostgreSQL, or a fio file laid out
   just before it is read, measured by hand against a warm one in the suite is not "the
   same"; nor is a disk read after 24 s of warm-up I/O instead of the suite's 8 s.

The two sides of one benchmark run back to back, and their order alternates from round to
round (suite first, then by hand first, ...), so the host's drift falls on both alike and a
steady drift cancels in the paired ratio: a suite figure and a by-hand figure taken minutes
apart on a busy 2-core host can differ by 30 % from noise alone. The by-hand side needs the
argv of a suite trial, so round 1 runs the suite first; later rounds reuse the newest trial's
argv (they are the same every trial, but for the port). The by-hand side parses the clients'
output with its own few lines (not isobench's parsers). It prints, per figure, both medians
and the ratio (target: within 5 %), and exits 1 when one is beyond.

fio's 1 MiB sequential figures depend on the physical layout of fio's buffer (how many
contiguous pieces the kernel gave it, which differs with what ran before fio on that CPU;
``benchmarks/fio_buffer.py`` measures by how much). So the script reads the layout of every
sequential run on both sides (the suite's agent records its own; the by-hand runs are read
with :class:`buffer_layout.PieceWatch`, root) and also compares those
figures at the same layout: a fit over both sides' runs of µs per request = a + b × pieces +
c × [suite run], whose ``c`` is what the suite adds (:func:`layout_matched`). With
``--fio-buffer huge`` both sides give fio the same layout instead (the fio workload's option
``fio_buffer: huge``: one huge page per buffer; the script reserves 4 huge pages for the run
and puts the host's setting back), so its figures compare as they are.

The suite runs no telemetry sampler by default (``isobench suite micro --telemetry`` adds
them). With ``--with-telemetry-too`` each round has a third side, the suite's trial with every
sampler (a benchfile of the same settings, as ``isobench run`` samples), the sides' order
rotating: what isobench's own sampling (on the load generator's CPU, beside the client) costs
each figure.

    flock /tmp/isobench-heavy.lock .venv/bin/python benchmarks/micro_byhand.py --rounds 3
    ... --only redis,postgres
    ... --only fio --fio-buffer huge
    ... --only redis,postgres,mariadb --with-telemetry-too
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from buffer_layout import PieceWatch, huge_pages
from scipy.stats import t as scipy_t

from isobench import plugins
from isobench.config.durations import parse_duration
from isobench.run.suite import MICRO_BENCHMARKS, QUICK
from isobench.util import paths
from isobench.workloads.micro.local import FIO_JOBS

WORKLOAD_CPU, LOADGEN_CPU = "0", "1"
SERVERS = {"redis", "postgres", "mariadb", "iperf3", "sockperf"}
OVERLAY = r"""set -e
if [ -n "$MEMCG" ]; then echo $$ > "$MEMCG/cgroup.procs"; fi
mount -t overlay isobench-byhand -o "lowerdir=$ROOTFS,upperdir=$SCRATCH/u,workdir=$SCRATCH/w" \
  "$SCRATCH/m"
mount -t proc proc "$SCRATCH/m/proc"
mount --bind /dev "$SCRATCH/m/dev"
mount -t tmpfs -o mode=1777 isobench-byhand "$SCRATCH/m/tmp"
mkdir -p "$SCRATCH/m/var/lib/isobench-vol"
mount --bind "$SCRATCH/vol" "$SCRATCH/m/var/lib/isobench-vol"
exec chroot $USERSPEC "$SCRATCH/m" "$@"
"""


class Chroot:
    """A private overlay of the suite's rootfs; commands run in it pinned to the workload CPU,
    in their own mount namespace (the mounts vanish with the process)."""

    def __init__(self, rootfs: Path, memory_mb: int | None = None) -> None:
        self.rootfs = rootfs
        base = paths.state_dir() / "byhand"
        base.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(dir=base))
        for d in ("u", "w", "m", "vol"):  # vol: the fio volume, a bind mount as native's
            (self.scratch / d).mkdir()
        self.memcg = make_memcg(self.scratch.name, memory_mb) if memory_mb else None

    def argv(self, argv: list[str], user: str | None = None) -> list[str]:
        return ["taskset", "-c", WORKLOAD_CPU, "unshare", "--mount", "--propagation", "private",
                "env", f"ROOTFS={self.rootfs}", f"SCRATCH={self.scratch}",
                f"MEMCG={self.memcg or ''}",
                f"USERSPEC={'--userspec=' + user if user else ''}", "sh", "-c", OVERLAY, "sh",
                *argv]

    def run(self, argv: list[str]) -> str:
        proc = subprocess.run(self.argv(argv), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"by hand: {' '.join(argv)} exited {proc.returncode}: "
                             f"{proc.stderr.strip()[-300:]}")
        return proc.stdout

    def remove(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.memcg is not None:
            for _ in range(50):  # the killed server leaves the group a moment later
                try:
                    self.memcg.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def make_memcg(name: str, memory_mb: int) -> Path:
    """A memory cgroup of its own with the suite's limit (no swap), made with mkdir and echo:
    cgroup v1's memory controller, or the unified hierarchy's ``memory.max``."""
    limit = str(memory_mb * 1024 * 1024)
    v1 = Path("/sys/fs/cgroup/memory")
    if (v1 / "memory.limit_in_bytes").exists():
        group = v1 / f"isobench-byhand-{name}"
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(limit)
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(limit)
        return group
    unified = Path("/sys/fs/cgroup")
    group = unified / f"isobench-byhand-{name}"
    group.mkdir()
    (group / "memory.max").write_text(limit)
    (group / "memory.swap.max").write_text("0")
    return group


MEASURED_S = int(parse_duration(QUICK["duration"]))
WARMUP_S = int(parse_duration(QUICK["warmup"]))


def warmup_argv(argv: list[str]) -> list[str]:
    """The argv the suite's warm-up runs: its duration flags (``--runtime=``, ``--time=``,
    ``-t``/``-T`` with a number) set to the warm-up time, a request count (``-n``) scaled by
    warm-up ÷ measured time, as the suite sizes it from the same probe rate."""
    out = list(argv)
    for i, arg in enumerate(out):
        for flag in ("--runtime=", "--time="):
            if arg.startswith(flag) and arg[len(flag):].isdigit():
                out[i] = f"{flag}{WARMUP_S}"
        if i + 1 < len(out) and out[i + 1].isdigit():
            if arg in ("-t", "-T"):
                out[i + 1] = str(WARMUP_S)
            elif arg == "-n":
                out[i + 1] = str(max(1, int(out[i + 1]) * WARMUP_S // MEASURED_S))
    return out


def warm_facts(value: Any) -> Any:
    """A trial's facts with every argv in them (``facts["argv"]``, or a dict of them) made the
    warm-up's (:func:`warmup_argv` on every list of strings; other values as they are)."""
    if isinstance(value, list) and all(isinstance(a, str) for a in value):
        return warmup_argv(value)
    if isinstance(value, dict):
        return {k: warm_facts(v) for k, v in value.items()}
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int, send: bytes, check: Callable[[bytes], bool]) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            if send:
                s.sendall(send)
            return check(s.recv(256))
    except OSError:
        return False


READY: dict[str, Callable[[int], bool]] = {
    "redis": lambda p: answers(p, b"PING\r\n", lambda d: d.startswith(b"+PONG")),
    "mariadb": lambda p: answers(p, b"", lambda d: len(d) > 4 and d[4] == 10),
    "postgres": lambda p: subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(p)],
                                         check=False).returncode == 0,
    "iperf3": lambda p: True,  # nothing to ask before a test: the TCP connect is the check
    "sockperf": lambda p: True,
}


def connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def uid_gid(rootfs: Path, user: str) -> str:
    """``uid:gid`` of ``user`` in the rootfs's /etc/passwd (chroot --userspec takes numbers)."""
    for line in (rootfs / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return f"{parts[2]}:{parts[3]}"
    raise SystemExit(f"no user {user} in {rootfs}/etc/passwd")


def client(argv: list[str]) -> str:
    proc = subprocess.run(["taskset", "-c", LOADGEN_CPU, *argv], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"by hand: {' '.join(argv)} exited {proc.returncode}: "
                         f"{proc.stderr.strip()[-300:]}")
    return proc.stdout


def re_float(pattern: str, text: str) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    if not match:
        raise SystemExit(f"by hand: no {pattern!r} in:\n{text[-500:]}")
    return float(match.group(1))


def with_port(argv: list[str], port: int) -> list[str]:
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "-p" and i + 1 < len(out):
            out[i + 1] = str(port)
        elif arg.startswith("--mysql-port="):
            out[i] = f"--mysql-port={port}"
    return out


def drive_server(bench: str, facts: dict[str, Any], port: int) -> dict[str, float]:
    """Run the trial's client argv(s) against 127.0.0.1:port; {suite metric: by-hand value}."""
    if bench == "redis":
        out: dict[str, float] = {}
        for key, suffix in (("P1", ""), ("P16", "_p16")):
            rows = {r[0]: r for r in csv.reader(io.StringIO(client(
                with_port(facts["argv"][key], port)))) if r}
            out[f"redis_get{suffix}_ops"] = float(rows["GET"][1])
            out[f"redis_set{suffix}_ops"] = float(rows["SET"][1])
        return out
    if bench == "postgres":
        with tempfile.TemporaryDirectory() as logs:
            argv = [f"--log-prefix={logs}/tx" if a.startswith("--log-prefix=") else a
                    for a in with_port(facts["argv"], port)]
            text = client(argv)
        return {"pgbench_tps": re_float(r"^tps = ([\d.]+) \(without", text)}
    if bench == "mariadb":
        text = client(with_port(facts["argv"], port))
        return {"oltp_tps": re_float(r"transactions:\s+\d+\s+\(([\d.]+) per sec", text)}
    if bench == "iperf3":
        out = {}
        for way, argv in facts["argv"].items():
            data = json.loads(client(with_port(argv, port)))
            out[f"iperf3_{way}_gbit_s"] = data["end"]["sum_received"]["bits_per_second"] / 1e9
        return out
    if bench == "sockperf":
        text = client(with_port(facts["argv"], port))
        return {"sockperf_p50_us": re_float(r"percentile 50\.000 =\s+([\d.]+)", text)}
    raise AssertionError(bench)


def by_hand_server(bench: str, rootfs: Path, facts: dict[str, Any],
                   memory_mb: int) -> dict[str, float]:
    port = free_port()
    spec = plugins.load("workload", bench)().launch_spec().render("127.0.0.1", port)
    box = Chroot(rootfs, memory_mb)
    env = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in spec.env.items())]
    server = subprocess.Popen(box.argv([*env, "/bin/sh", "-c", f'cd {spec.workdir} && exec "$@"',
                                        "sh", *spec.argv],
                                       uid_gid(rootfs, spec.user) if spec.user else None),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (connects(port) and READY[bench](port)):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"by hand: the {bench} server never became ready")
            time.sleep(0.1)
        if bench in ("iperf3", "sockperf"):
            time.sleep(0.3)
        drive_server(bench, warm_facts(facts), port)  # the warm-up pass, discarded
        return drive_server(bench, facts, port)
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        box.remove()


def warm_then_measured(box: Chroot, warmup: str, measured: str) -> str:
    """Run the shell command ``warmup`` (output discarded), then ``measured``, in ONE run of
    the box: one overlay mount for both, as the suite's instance keeps one mount from its
    warm-up to its measured pass (a box's mount ends with its run, and unmounting an overlay
    syncs its upper filesystem). The measured command's stdout."""
    marker = "@@isobench-byhand-measured@@"
    text = box.run(["/bin/sh", "-c", f"{{ {warmup} ; }} > /dev/null && echo {marker} && "
                                     f"{measured}"])
    return text.split(marker, 1)[1]


def by_hand_local(bench: str, rootfs: Path, facts: dict[str, Any],
                  memory_mb: int) -> dict[str, float]:
    box = Chroot(rootfs, memory_mb)
    try:
        if bench == "sysbench-cpu":
            argv = facts["sysbench-cpu"]["argv"]
            text = warm_then_measured(box, " ".join(warmup_argv(argv)), " ".join(argv))
            return {"sysbench_cpu_events": re_float(r"events per second:\s+([\d.]+)", text)}
        if bench == "sysbench-memory":
            opers = ("read", "write")
            argvs = [facts[f"sysbench-memory-{oper}"]["argv"] for oper in opers]
            text = warm_then_measured(box, " && ".join(" ".join(warmup_argv(a)) for a in argvs),
                                      " && echo === && ".join(" ".join(a) for a in argvs))
            return {f"sysbench_mem_{oper}_mib_s": re_float(r"\(([\d.]+) MiB/sec\)", part)
                    for oper, part in zip(opers, text.split("==="), strict=True)}
        if bench == "fio":
            argvs = [facts[bench]["argv"] for bench in FIO_JOBS]
            text = warm_then_measured(  # the warm-up pass lays the files out
                box, "mkdir -p /var/tmp/isobench-micro && "
                + " && ".join(" ".join(warmup_argv(a)) + " > /dev/null" for a in argvs),
                " && echo === && ".join(" ".join(a) for a in argvs))
            out = {}
            for job, part in zip(FIO_JOBS.values(), text.split("==="), strict=True):
                data = json.loads(part[part.index("{"):])["jobs"][0]
                side = data["read"] if "read" in job else data["write"]
                if "seq" in job:
                    out[f"fio_{job}_mb_s"] = side["bw_bytes"] / 1e6
                else:
                    out[f"fio_{job}_iops"] = side["iops"]
            return out
        if bench == "xz":
            argv = facts["xz"]["argv"]
            make = ("import sys; sys.path.insert(0, '/opt/isobench/workload'); import agent; "
                    "agent.xz_input()")
            timed = f"date +%s.%N && {' '.join(argv)} > /dev/null && date +%s.%N"
            text = warm_then_measured(
                box, f"mkdir -p /var/tmp/isobench-micro && /usr/bin/python3 -c \"{make}\" && "
                f"{' '.join(argv)} > /dev/null", timed)
            stamps = [float(x) for x in text.split()]
            return {"xz_seconds": stamps[1] - stamps[0]}
    finally:
        box.remove()
    raise AssertionError(bench)


def suite_trial(bench: str, out: Path, options: dict[str, Any] | None = None,
                samplers: Sequence[str] | None = (), runtime: str = "native",
                through_run: bool = False) -> dict[str, Any]:
    """One ``runtime`` trial of ``bench`` through isobench into ``out``; {"values", "facts",
    "rootfs", "memory_mb"} of its ok trial: by default ``isobench suite micro`` (no telemetry
    sampler, as the suite runs). With workload ``options`` or telemetry ``samplers`` (None:
    every sampler, as ``isobench run`` samples; some names: those), the same trial through
    ``isobench run`` and a benchfile of the suite's quick settings and those (``through_run``:
    always that way, e.g. to compare telemetry on and off through the same command)."""
    if through_run or options or samplers is None or samplers:
        out.mkdir(parents=True, exist_ok=True)
        benchfile = out / f"{bench}.yaml"
        data = {**QUICK, "trials": 1, "workload": bench, "runtimes": [runtime],
                "workload_options": options or {},
                "telemetry": {} if samplers is None else {"samplers": list(samplers)}}
        benchfile.write_text(json.dumps(data))
        argv = ["run", "-f", str(benchfile), "--no-report", "--out", str(out / bench)]
    else:
        argv = ["suite", "micro", "--only", bench, "--runtimes", runtime, "--quick",
                "--trials", "1", "--out", str(out)]
    subprocess.run([sys.executable, "-m", "isobench.cli", *argv], check=True,
                   stdout=subprocess.DEVNULL)
    manifest = json.loads((out / bench / "manifest.json").read_text())
    trials = [json.loads(line) for line in (out / bench / "trials.jsonl").open() if line.strip()]
    ok = [t for t in trials if t.get("status") == "ok" and t.get("load")]
    if not ok:
        raise SystemExit(f"suite: no ok {runtime} trial of {bench} in {out / bench}")
    metrics = ok[-1]["load"]["metrics"]
    return {"values": {k: v["values"]["value"] for k, v in metrics.items()},
            "facts": ok[-1]["load"]["facts"],
            "rootfs": paths.cache_dir() / "rootfs" / manifest["artifacts"]["key"],
            "memory_mb": int(manifest["resources"]["memory_mb"])}


def by_hand(bench: str, info: dict[str, Any]) -> dict[str, float]:
    fn = by_hand_server if bench in SERVERS else by_hand_local
    return fn(bench, info["rootfs"], info["facts"], info["memory_mb"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(MICRO_BENCHMARKS),
                        help="comma-separated benchmarks (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="suite/by-hand rounds")
    parser.add_argument("--pause", type=float, default=5.0,
                        help="idle seconds before each side (default 5): the first side's load "
                             "(a database's fsyncs, fio's writes) should not slow the second")
    parser.add_argument("--out", type=Path, default=Path("/tmp/isobench-byhand"),
                        help="where the suite's rounds go")
    parser.add_argument("--with-telemetry-too", action="store_true",
                        help="a third side each round: the suite's trial with every telemetry "
                             "sampler (what isobench's own sampling costs a figure)")
    parser.add_argument("--fio-buffer", choices=("default", "huge"), default="default",
                        help="the fio workload's option fio_buffer on both sides (huge: every "
                             "fio buffer one huge page, the script reserves them)")
    args = parser.parse_args()
    # a SIGTERM unwinds like Ctrl-C: each by-hand server and box is removed, huge pages put back
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    options = {"fio": {"fio_buffer": args.fio_buffer}} if args.fio_buffer != "default" else {}
    with huge_pages(4) if options else contextlib.nullcontext():
        return check(args, options)


def check(args: argparse.Namespace, options: dict[str, dict[str, Any]]) -> int:
    """The rounds of :func:`main`'s arguments, the table, and 1 when a figure differs."""
    benchmarks = [b for b in args.only.split(",") if b]
    suite: dict[str, list[float]] = {}
    hand: dict[str, list[float]] = {}
    last: dict[str, dict[str, Any]] = {}  # bench → its newest suite trial (for the argv)
    pieces: dict[str, dict[str, list[int | None]]] = {}  # fio figure → side → per round
    sampled: dict[str, list[float]] = {}  # the third side: the suite's trial with telemetry
    sides = ["suite", "by hand"] + (["suite, telemetry"] if args.with_telemetry_too else [])
    for r in range(args.rounds):
        for bench in benchmarks:
            out = args.out / f"round-{r + 1}" / bench
            # the sides' order rotates from round to round (suite first in round 1: the by-hand
            # side needs the argv of a suite trial, later rounds that of the previous round's)
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            first = order[0]
            hand_layout: dict[str, int | None] = {}
            sampled_values: dict[str, Any] = {}
            for side in order:
                time.sleep(args.pause)
                if side == "suite, telemetry":
                    sampled_values = suite_trial(bench, out / "telemetry", options.get(bench),
                                                 samplers=None)["values"]
                elif side == "suite":
                    last[bench] = suite_trial(bench, out, options.get(bench))
                elif bench == "fio":  # the suite's agent records its own runs' layout
                    with PieceWatch({int(LOADGEN_CPU)}) as watch:
                        figures = by_hand(bench, last[bench])
                    hand_layout = fio_layouts(lambda job: watch.pieces(job["argv"]),
                                              last[bench]["facts"])
                else:
                    figures = by_hand(bench, last[bench])
            info = last[bench]
            layouts = {} if bench != "fio" else {
                "suite": fio_layouts(lambda job: job.get("buffer_pieces"), info["facts"]),
                "by hand": hand_layout}
            for name, value in figures.items():
                suite.setdefault(name, []).append(float(info["values"][name]))
                hand.setdefault(name, []).append(float(value))
                if sampled_values:
                    sampled.setdefault(name, []).append(float(sampled_values[name]))
                for side, layout in layouts.items():
                    pieces.setdefault(name, {}).setdefault(side, []).append(layout.get(name))
            print(f"round {r + 1} {bench} ({first} first): " + ", ".join(
                f"{n} suite {info['values'][n]:,.4g}{piece_text(layouts, 'suite', n)} "
                + (f"with telemetry {sampled_values[n]:,.4g} " if sampled_values else "")
                + f"by hand {v:,.4g}{piece_text(layouts, 'by hand', n)}"
                for n, v in figures.items()), flush=True)
        if r >= 1:  # what is known so far, in case the run is cut short
            partial = {name: {**agreement(suite[name], hand[name]),
                              "with_telemetry": sampled.get(name, [])} for name in suite}
            (args.out / "byhand.json").write_text(json.dumps(partial, indent=1))
    print(f"\n{'figure':28} {'suite (median)':>14} {'by hand (median)':>16} "
          f"{'hand/suite [95 % CI]':>24}  verdict (margin ±5 %)")
    results = {name: agreement(suite[name], hand[name]) for name in suite}
    for name, res in results.items():
        lo, hi = res["ci95"]
        print(f"{name:28} {statistics.median(suite[name]):14,.4g} "
              f"{statistics.median(hand[name]):16,.4g} "
              f"{res['ratio']:9.3f} [{lo:.3f}, {hi:.3f}]  {res['verdict']}")
    fits = {name: layout_matched(suite[name], hand[name], by["suite"], by["by hand"])
            for name, by in pieces.items() if name.endswith("_mb_s")}
    matched = {name: res for name, res in fits.items() if res is not None}
    if matched:
        print("\nfio's sequential figures at the same buffer layout (each fio job's I/O buffer is "
              "1 to 256 physically contiguous pieces, see benchmarks/fio_buffer.py; fit over both "
              "sides: µs per request = a + b × pieces + c × [suite])")
        for name, res in matched.items():
            lo, hi = res["ci95"]
            print(f"{name:28} pieces suite {res['pieces_suite']} by hand {res['pieces_hand']}: "
                  f"b = {res['b_us_per_piece']:.2f} µs per piece, hand/suite at "
                  f"{res['at_pieces']:.0f} pieces {res['ratio']:.3f} [{lo:.3f}, {hi:.3f}]  "
                  f"{res['verdict']}")
            results[name]["same_layout"] = res
    if sampled:
        print("\nthe suite's trial with every telemetry sampler, paired in the same rounds:")
        print(f"{'figure':28} {'with telemetry ÷ suite [95 % CI]':>34} "
              f"{'by hand ÷ with telemetry [95 % CI]':>36}")
        for name in sampled:
            cost = agreement(suite[name], sampled[name])
            rest = agreement(sampled[name], hand[name])
            print(f"{name:28} {cost['ratio']:9.3f} [{cost['ci95'][0]:.3f}, {cost['ci95'][1]:.3f}] "
                  f"{cost['verdict']:>14} {rest['ratio']:9.3f} [{rest['ci95'][0]:.3f}, "
                  f"{rest['ci95'][1]:.3f}] {rest['verdict']}")
            results[name]["with_telemetry"] = {"vs_suite": cost, "by_hand_vs_it": rest}
    (args.out / "byhand.json").write_text(json.dumps(results, indent=1))
    kinds = [r["verdict"].split(" ")[0] for r in results.values()]
    print(f"{kinds.count('agrees')}/{len(results)} figures agree within ±5 % "
          f"(90 % CI inside), {kinds.count('differs')} differ, {kinds.count('inconclusive')} "
          f"inconclusive with {args.rounds} rounds; rounds in {args.out}")
    return 1 if "differs" in kinds else 0


def fio_layouts(of: Callable[[dict[str, Any]], int | None],
                facts: dict[str, Any]) -> dict[str, int | None]:
    """{fio sequential figure: ``of(its job's facts)``}, the pieces of the buffer of its measured
    run: the suite's as its agent recorded them (``buffer_pieces``), a by-hand run's as
    :meth:`PieceWatch.pieces` saw them for the same argv; None when not known."""
    return {f"fio_{job}_mb_s": of(facts[bench]) for bench, job in FIO_JOBS.items() if "seq" in job}


def piece_text(layouts: dict[str, dict[str, int | None]], side: str, name: str) -> str:
    found = layouts.get(side, {}).get(name)
    return f" ({found} pieces)" if found is not None else ""


def layout_matched(suite: list[float], hand: list[float], suite_pieces: list[int | None],
                   hand_pieces: list[int | None], margin: float = 0.05) -> dict[str, Any] | None:
    """By hand ÷ suite for a fio sequential figure (MB/s) at the same buffer layout.

    Least squares over every run of both sides: µs per 1 MiB request = a + b × pieces +
    c × [suite run]; ``c`` is what the suite adds once the layout is accounted for. The ratio
    is the by-hand throughput over the suite's at the median layout of the by-hand runs,
    (y + c) / y with y = a + b × that median, with its Student-t intervals from c's (n − 3
    degrees of freedom) and :func:`verdict`. None without the layout of every run or with
    fewer than 5 runs. The fit leans on its line where the two sides' layouts do not overlap;
    ``fio_buffer.py`` checks that line from 1 to 256 pieces."""
    on_suite = [float(p) for p in suite_pieces if p is not None]
    on_hand = [float(p) for p in hand_pieces if p is not None]
    if len(on_suite) < len(suite) or len(on_hand) < len(hand) or len(suite) + len(hand) < 5:
        return None
    us = [2**20 / v for v in suite + hand]  # MB/s = 1e6 B/s: µs per 1 MiB request
    x = np.array([[1.0, p, 1.0] for p in on_suite] + [[1.0, p, 0.0] for p in on_hand])
    y = np.array(us)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - 3
    resid = y - x @ coef
    cov = float(resid @ resid) / dof * np.linalg.pinv(x.T @ x)
    se = math.sqrt(max(float(cov[2, 2]), 0.0))
    at = statistics.median(on_hand)
    base = float(coef[0] + coef[1] * at)
    ci: dict[float, tuple[float, float]] = {}
    for level in (0.95, 0.90):
        t = float(scipy_t.ppf(1 - (1 - level) / 2, dof))
        ci[level] = ((base + coef[2] - t * se) / base, (base + coef[2] + t * se) / base)
    ratio = float((base + coef[2]) / base)
    return {"ratio": ratio, "ci95": ci[0.95], "ci90": ci[0.90],
            "verdict": verdict(ratio, ci[0.95], ci[0.90], margin),
            "a_us": float(coef[0]), "b_us_per_piece": float(coef[1]), "c_us": float(coef[2]),
            "at_pieces": at, "pieces_suite": suite_pieces, "pieces_hand": hand_pieces}


def verdict(ratio: float, ci95: tuple[float, float], ci90: tuple[float, float],
            margin: float) -> str:
    """``agrees`` (the 90 % CI inside ±margin, two one-sided tests), ``differs`` (the 95 % CI
    excludes 1 and the estimate is beyond the margin), else ``inconclusive (noise)``."""
    if 1 - margin <= ci90[0] and ci90[1] <= 1 + margin:
        return "agrees"
    if (ci95[0] > 1 or ci95[1] < 1) and abs(ratio - 1) > margin:
        return "differs"
    return "inconclusive (noise)"


def agreement(suite: list[float], hand: list[float], margin: float = 0.05) -> dict[str, Any]:
    """Paired within rounds: the geometric mean of by-hand ÷ suite, its 95 % and 90 % Student-t
    intervals on the log ratios, and the verdict the tool itself would give (:func:`verdict`;
    ``inconclusive``: the host's noise hides it)."""
    logs = [math.log(h / s) for s, h in zip(suite, hand, strict=True)]
    n = len(logs)
    mean = statistics.fmean(logs)
    se = statistics.stdev(logs) / math.sqrt(n) if n > 1 else math.inf
    ci = {}
    for level in (0.95, 0.90):
        t = scipy_t.ppf(1 - (1 - level) / 2, n - 1) if n > 1 else math.inf
        ci[level] = (math.exp(mean - t * se), math.exp(mean + t * se))
    ratio = math.exp(mean)
    return {"suite": suite, "by_hand": hand, "ratio": ratio, "ci95": ci[0.95],
            "ci90": ci[0.90], "verdict": verdict(ratio, ci[0.95], ci[0.90], margin),
            "per_round": [h / s for s, h in zip(suite, hand, strict=True)]}


if __name__ == "__main__":
    sys.exit(main())
