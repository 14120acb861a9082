"""isobench's micro-benchmark agent: runs one whitelisted benchmark command inside the runtime.

Stdlib only (any Python 3 in the rootfs). Endpoints:

* ``GET /healthz`` → ``{"ok": true}``;
* ``GET /run?bench=NAME[&seconds=S]`` → runs the fixed command of ``NAME`` (see ``BENCHES``) and
  answers ``{"bench", "argv", "exit_code", "stdout", "stderr", "elapsed_s", "facts"}``.

Nothing in the request becomes part of a command but the bench name (looked up in a fixed table)
and ``seconds`` (an integer from 1 to 600); an unknown name is answered 404 and runs nothing.
One benchmark runs at a time. The fio and xz files live under ``--workdir`` (on the runtime's
root filesystem, not on a tmpfs), are created on first use and kept for the instance's life;
the ``fio-vol-*`` jobs put theirs under ``--volume-dir`` (a dedicated volume the runtime
mounted there). Each fio job decides direct I/O and records the filesystem for its own directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MAX_SECONDS = 600
SYSBENCH_MEMORY_BLOCK = "1M"
SYSBENCH_MEMORY_TOTAL = "1000T"  # never the limit: --time ends the test
FIO_SEQ_BS = "1M"
FIO_RAND_BS = "4k"
XZ_INPUT_MB = 8

LOCK = threading.Lock()
CONFIG: dict[str, object] = {"workdir": "/var/tmp/isobench-micro", "fio_size_mb": 256,
                             "volume_dir": ""}


def sysbench_cpu(seconds: int) -> list[str]:
    return ["sysbench", "cpu", "--cpu-max-prime=20000", "--threads=1", f"--time={seconds}", "run"]


def sysbench_memory(oper: str) -> Callable[[int], list[str]]:
    def argv(seconds: int) -> list[str]:
        return ["sysbench", "memory", f"--memory-block-size={SYSBENCH_MEMORY_BLOCK}",
                f"--memory-total-size={SYSBENCH_MEMORY_TOTAL}", f"--memory-oper={oper}",
                "--memory-access-mode=seq", "--threads=1", f"--time={seconds}", "run"]

    return argv


def direct_io_works(directory: str) -> bool:
    """Whether files in ``directory`` can be opened with O_DIRECT (overlay/tmpfs may refuse)."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    path = os.path.join(directory, ".direct-probe")
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | flag, 0o600)
    except OSError:
        return False
    os.close(fd)
    os.unlink(path)
    return True


def filesystem_of(directory: str) -> str:
    """``<fstype> <source> on <mount point>`` of the mount holding ``directory`` (from
    /proc/mounts), so a report can tell disk from memory-backed storage."""
    best = ("", "unknown", "unknown")
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = parts[1]
                inside = directory == point or directory.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best[0]):
                    best = (point, parts[2], parts[0])
    except OSError:
        pass
    return f"{best[1]} {best[2]} on {best[0] or '?'}"


def fio_dir(name: str) -> str:
    """The directory a fio bench writes its file in: the volume for ``fio-vol-*``, else the
    work directory on the root filesystem. OSError when the volume is not configured."""
    if name.startswith("fio-vol-"):
        volume = str(CONFIG["volume_dir"])
        if not volume or not os.path.isdir(volume):
            raise OSError(f"no volume directory for {name} (--volume-dir {volume or 'unset'})")
        return volume
    return str(CONFIG["workdir"])


def fio(rw: str, bs: str, place: str = "root") -> Callable[[int], list[str]]:
    name = {"read": "seqread", "write": "seqwrite"}.get(rw, rw)
    bench = f"fio-vol-{name}" if place == "volume" else f"fio-{name}"

    def argv(seconds: int) -> list[str]:
        workdir = fio_dir(bench)
        direct = 1 if direct_io_works(workdir) else 0
        return ["fio", f"--name={rw}", f"--filename={workdir}/fio.data",
                f"--size={CONFIG['fio_size_mb']}M", f"--rw={rw}", f"--bs={bs}",
                f"--direct={direct}", "--ioengine=psync", "--iodepth=1", "--numjobs=1",
                f"--runtime={seconds}", "--time_based=1", "--ramp_time=0",
                "--randrepeat=1", "--end_fsync=0", "--output-format=json"]

    return argv


def xz_input() -> str:
    """A fixed 8 MiB file: seeded pseudo-random words (compressible like text), made once."""
    path = os.path.join(str(CONFIG["workdir"]), "xz.input")
    if os.path.exists(path) and os.path.getsize(path) == XZ_INPUT_MB * 2**20:
        return path
    rng = random.Random(20261129)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(4096)]
    size = XZ_INPUT_MB * 2**20
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rng.choice(words) for _ in range(12)) + "\n").encode()
    with open(path + ".tmp", "wb") as fh:
        fh.write(out[:size])
    os.replace(path + ".tmp", path)
    return path


def xz(seconds: int) -> list[str]:
    return ["xz", "-T1", "-6", "--keep", "--stdout", xz_input()]


BENCHES: dict[str, Callable[[int], list[str]]] = {
    "sysbench-cpu": sysbench_cpu,
    "sysbench-memory-read": sysbench_memory("read"),
    "sysbench-memory-write": sysbench_memory("write"),
    "fio-seqread": fio("read", FIO_SEQ_BS),
    "fio-seqwrite": fio("write", FIO_SEQ_BS),
    "fio-randread": fio("randread", FIO_RAND_BS),
    "fio-randwrite": fio("randwrite", FIO_RAND_BS),
    "fio-vol-seqread": fio("read", FIO_SEQ_BS, "volume"),
    "fio-vol-seqwrite": fio("write", FIO_SEQ_BS, "volume"),
    "fio-vol-randread": fio("randread", FIO_RAND_BS, "volume"),
    "fio-vol-randwrite": fio("randwrite", FIO_RAND_BS, "volume"),
    "xz": xz,
}

DISCARD_STDOUT = {"xz"}  # the compressed stream is not a result


def run_bench(name: str, seconds: int) -> dict[str, object]:
    """Run the whitelisted command of ``name``; the caller has checked the name."""
    os.makedirs(str(CONFIG["workdir"]), exist_ok=True)
    with LOCK:
        facts: dict[str, object] = {}
        try:
            argv = BENCHES[name](seconds)
        except OSError as exc:  # e.g. a fio-vol-* job without its volume
            return {"bench": name, "argv": [name], "exit_code": 127, "stdout": "",
                    "stderr": str(exc), "elapsed_s": 0.0, "facts": facts}
        if name.startswith("fio-"):
            facts["direct"] = "--direct=1" in argv
            facts["workdir"] = where = fio_dir(name)
            facts["filesystem"] = filesystem_of(where)
        t0 = time.monotonic()
        ru0 = os.times()
        try:
            proc = subprocess.run(
                argv,
                stdout=subprocess.DEVNULL if name in DISCARD_STDOUT else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=max(seconds, 1) * 4 + 300,
                check=False,
            )
            code, out, err = proc.returncode, proc.stdout or b"", proc.stderr
        except (OSError, subprocess.TimeoutExpired) as exc:
            code, out, err = 127, b"", str(exc).encode()
        elapsed = time.monotonic() - t0
        ru1 = os.times()
        facts["child_cpu_s"] = (ru1.children_user - ru0.children_user) + (
            ru1.children_system - ru0.children_system
        )
    return {
        "bench": name,
        "argv": argv,
        "exit_code": code,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace")[-4000:],
        "elapsed_s": elapsed,
        "facts": facts,
    }


def parse_request(path: str) -> tuple[str, int]:
    """(bench, seconds) from ``/run?bench=NAME&seconds=S``; ValueError names what is wrong."""
    q = {k: v[-1] for k, v in parse_qs(urlparse(path).query).items()}
    name = q.get("bench", "")
    if name not in BENCHES:
        raise ValueError(f"unknown bench {name!r}; known: {', '.join(sorted(BENCHES))}")
    raw = q.get("seconds", "10")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SECONDS:
        raise ValueError(f"seconds must be an integer from 1 to {MAX_SECONDS}, not {raw!r}")
    return name, int(raw)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "isobench-micro-agent/1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _json(self, data: dict[str, object], status: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        route = urlparse(self.path).path
        if route == "/healthz":
            self._json({"ok": True})
        elif route == "/run":
            try:
                name, seconds = parse_request(self.path)
            except ValueError as exc:
                self._json({"error": str(exc)}, 404)
                return
            self._json(run_bench(name, seconds))
        else:
            self._json({"error": "not found"}, 404)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--workdir", default=CONFIG["workdir"])
    ap.add_argument("--fio-size-mb", type=int, default=CONFIG["fio_size_mb"])
    ap.add_argument("--volume-dir", default="")
    args = ap.parse_args()
    CONFIG["workdir"] = args.workdir
    CONFIG["fio_size_mb"] = args.fio_size_mb
    CONFIG["volume_dir"] = args.volume_dir
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
