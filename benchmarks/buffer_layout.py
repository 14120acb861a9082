"""What the physical layout of a running fio job's I/O buffer is: the number of physically
contiguous pieces it is made of, read from ``/proc/PID/pagemap`` (page frame numbers need root).

A 1 MiB ``O_DIRECT`` request goes to the disk as one scatter-gather entry per piece, so where a
piece has a cost of its own (a virtual disk whose host handles each piece separately) a sequential
fio figure depends on this layout (``benchmarks/fio_buffer.py`` measures by how much). The
suite's agent records it for its own 1 MiB jobs (``facts.buffer_pieces``); this module watches
any fio from the host, for the by-hand runs of ``fio_buffer.py`` and ``micro_byhand.py``
(both run as root).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "isobench" / "workloads" / "micro"
                       / "agent_app"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent import buffer_pieces  # the micro agent's own count, as the suite's trials record it

from tests.fixtures.hugepages import reserved_huge_pages


def huge_page_pieces(pid: int) -> int | None:
    """1 when process ``pid`` maps a SysV shared memory segment of huge pages (fio's
    ``--iomem=shmhuge``) or anonymous huge pages (``--iomem=mmaphuge``): its 1 MiB buffer is
    then one physically contiguous piece; else None."""
    try:
        smaps = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return None
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps):
        head = block.splitlines()[0]
        huge = re.search(r"KernelPageSize:\s+2048 kB", block)
        if huge and ("SYSV" in head or "anon_hugepage" in head):
            return 1
    return None


class PieceWatch:
    """Watches the host's processes for fio jobs with ``--bs=1M``; for each, about half a second
    after it starts, the pieces of its buffer (:func:`buffer_pieces`). ``seen`` maps
    ``(--name, --filename, --runtime)`` of every job process to its pieces (the newest when a
    job runs twice). fio forks one process per job; the parent holds no buffer and is skipped.
    ``cpus``: the CPUs the watching thread runs on (None: any)."""

    def __init__(self, cpus: set[int] | None = None) -> None:
        self.cpus = cpus
        self.seen: dict[tuple[str, str, str], int] = {}
        self._done: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="piece-watch", daemon=True)

    def __enter__(self) -> PieceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def pieces(self, argv: list[str]) -> int | None:
        """The pieces of the job run with ``argv`` (as the suite's facts hold it), or None."""
        return self.seen.get(job_key([a.encode() for a in argv]))

    def _loop(self) -> None:
        if self.cpus:  # this thread only (Linux affinity is per thread): off the workload's CPU
            os.sched_setaffinity(0, self.cpus)
        while not self._stop.wait(0.1):
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or int(entry.name) in self._done:
                    continue
                pid = int(entry.name)
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if not argv[0].endswith(b"fio") or b"--bs=1M" not in argv:
                    self._done.add(pid)
                    continue
                if self._stop.wait(0.5):  # the job has faulted its buffer in by then
                    return
                self._done.add(pid)
                found = buffer_pieces(pid) or huge_page_pieces(pid)
                if found is not None:
                    self.seen[job_key(argv)] = found
                else:  # never an earlier run's layout for this one
                    self.seen.pop(job_key(argv), None)


def job_key(argv: list[bytes]) -> tuple[str, str, str]:
    def value(flag: bytes) -> str:
        return next((a[len(flag):].decode() for a in argv if a.startswith(flag)), "")

    return value(b"--name="), value(b"--filename="), value(b"--runtime=")


@contextmanager
def huge_pages(count: int) -> Iterator[None]:
    """``count`` huge pages reserved for the block; the host's setting put back."""
    with reserved_huge_pages(count) as reached:
        if not reached:
            raise SystemExit(f"could not reserve {count} huge pages (fix: free some memory)")
        yield
