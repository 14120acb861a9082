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
mounted there). Each fio job decides direct I/O and records the filesystem for its own directory;
a 1 MiB job also records how many physically contiguous pieces its buffer got
(``buffer_pieces``, where the runtime lets the agent read page frame numbers): a sequential
figure depends on it where the disk path has a cost per piece (``benchmarks/fio_buffer.py``).
With ``--fio-iomem mmaphuge`` every fio job's buffer is one huge page instead (fio's
``--iomem=mmaphuge``: one piece by construction, so no layout is read); fio then needs a free
huge page in the kernel it runs on; where there is none it fails, and the agent adds a line
saying so to its stderr (fio itself reports only the failed I/O).
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
FIO_IOMEM = ("malloc", "mmaphuge")  # fio's default buffer, or one huge page
CONFIG: dict[str, object] = {"workdir": "/var/tmp/isobench-micro", "fio_size_mb": 256,
                             "volume_dir": "", "fio_iomem": "malloc"}


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
                "--randrepeat=1", "--end_fsync=0", "--output-format=json",
                *([f"--iomem={CONFIG['fio_iomem']}"] if CONFIG["fio_iomem"] != "malloc" else [])]

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
LAYOUT_AFTER_S = 0.5  # a fio job has faulted its buffer in by then
PAGE = 4096
PFN_MASK = (1 << 55) - 1
BUFFER_MIN, BUFFER_MAX = 1 << 20, (1 << 20) + (64 << 10)  # a 1 MiB job's buffer mapping


def frame_pieces(frames: list[int]) -> int:
    """Physically contiguous runs in page frame numbers listed in virtual address order."""
    if not frames:
        return 0
    return 1 + sum(1 for i in range(1, len(frames)) if frames[i] != frames[i - 1] + 1)


def buffer_pieces(pid: int) -> int | None:
    """Physically contiguous pieces of the I/O buffer of fio job process ``pid``: of its writable
    private anonymous mappings of 1 MiB to 1 MiB + 64 KiB (fio's ``bs × iodepth`` buffer plus
    alignment), the one with the most pages present (at least 200), from ``/proc/PID/pagemap``.
    None where that cannot be read: page frame numbers need CAP_SYS_ADMIN (a container's root
    reads zeros), gVisor has no pagemap. A 1 MiB ``O_DIRECT`` request goes to the disk as one
    scatter-gather entry per piece (1 to 256), which a virtual disk can pay for per piece."""
    best: tuple[int, int] | None = None  # (present pages, pieces)
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
            for line in maps:
                parts = line.split()
                start, end = (int(x, 16) for x in parts[0].split("-"))
                if len(parts) != 5 or not parts[1].startswith("rw") or not (
                        BUFFER_MIN <= end - start <= BUFFER_MAX):
                    continue
                pagemap.seek(start // PAGE * 8)
                data = pagemap.read((end - start) // PAGE * 8)
                entries = (int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8))
                frames = [e & PFN_MASK for e in entries if e >> 63]
                if frames and any(frames) and (best is None or len(frames) > best[0]):
                    best = (len(frames), frame_pieces(frames))
    except (OSError, ValueError):
        return None
    return best[1] if best and best[0] >= 200 else None


def job_pieces(pid: int) -> int | None:
    """:func:`buffer_pieces` of the job process fio ``pid`` forked (its first child that has
    such a buffer), or None."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(x) for x in fh.read().split()]
    except (OSError, ValueError):
        return None
    for child in children:
        found = buffer_pieces(child)
        if found is not None:
            return found
    return None


def run_command(argv: list[str], discard_stdout: bool, timeout: float,
                layout_within: float | None) -> tuple[int, bytes, bytes, int | None]:
    """(exit code, stdout, stderr, pieces of a fio job's buffer or None). With
    ``layout_within`` (seconds), the buffer is read :data:`LAYOUT_AFTER_S` into the run, and
    again every quarter second up to that time while fio has not started its job yet (an
    emulated VM starts it late). A command that cannot start or outlives ``timeout`` is exit
    code 127 with the reason as stderr (it is killed)."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL if discard_stdout
                                else subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        return 127, b"", str(exc).encode(), None
    pieces = None
    if layout_within is not None:
        until = time.monotonic() + max(layout_within, LAYOUT_AFTER_S)
        wait = LAYOUT_AFTER_S
        while pieces is None and time.monotonic() < until:
            try:
                proc.wait(timeout=wait)  # fio prints nothing before it ends
                break
            except subprocess.TimeoutExpired:
                pieces = job_pieces(proc.pid)
            wait = 0.25
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()  # then wait, not read: a process it left behind may hold the pipes open
        proc.wait()
        return 127, b"", str(exc).encode(), pieces
    return proc.returncode, out or b"", err or b"", pieces


def huge_page_hint(argv: list[str], meminfo: str = "/proc/meminfo") -> str:
    """For a failed fio run with a huge-page buffer (``--iomem=mmaphuge``) on a kernel that has
    no huge page reserved: a line saying so (fio itself reports only the failed I/O, e.g.
    "Bad address"), else ""."""
    if "--iomem=mmaphuge" not in argv:
        return ""
    try:
        with open(meminfo) as fh:
            total = next((int(line.split()[1]) for line in fh
                          if line.startswith("HugePages_Total:")), 0)
    except (OSError, ValueError, IndexError):
        total = 0
    if total:
        return ""
    return ("fio_buffer huge: the kernel fio ran on has no huge page reserved "
            "(vm.nr_hugepages is 0 there)")


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
        code, out, err, pieces = run_command(
            argv, name in DISCARD_STDOUT, max(seconds, 1) * 4 + 300,
            seconds / 2 if name.startswith("fio-") and f"--bs={FIO_SEQ_BS}" in argv
            and not any(a.startswith("--iomem=") for a in argv) else None)
        elapsed = time.monotonic() - t0
        hint = huge_page_hint(argv) if code != 0 else ""
        if hint:  # the last line of stderr is what a failed trial says
            err = err.rstrip(b"\n") + b"\n" + hint.encode()
        if pieces is not None:
            facts["buffer_pieces"] = pieces
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
    ap.add_argument("--fio-iomem", choices=FIO_IOMEM, default=CONFIG["fio_iomem"])
    args = ap.parse_args()
    CONFIG["workdir"] = args.workdir
    CONFIG["fio_size_mb"] = args.fio_size_mb
    CONFIG["volume_dir"] = args.volume_dir
    CONFIG["fio_iomem"] = args.fio_iomem
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
