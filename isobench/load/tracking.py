"""Which processes are load generators: registered by whoever starts one, read by the CPU sampler.

The load engine runs in a subprocess (:func:`isobench.load.api.run_load`); the CPU sampler, which
was started before it, must count that process tree as "load generator" and nothing else. The
starter calls :func:`started` right after ``Popen`` and :func:`finished` with the ``wait4``
resource usage when it reaps the process, so the sampler gets the exact total of a generator that
ended between two polls (its last interval would otherwise be lost: nothing in /proc is left).

A generator's CPU seconds (:func:`cpu_seconds`): while it runs, utime+stime+cutime+cstime summed
over its live process tree (reaped workers are in their parent's cutime); once reaped, the
``ru_utime + ru_stime`` of ``wait4``, which includes every descendant it reaped.

Thread-safe; a process-wide registry (one isobench process runs one trial at a time). Finished
entries are kept for a while (the last ``KEEP_FINISHED``) so a sampler polling after the
generator ended still sees it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from isobench.telemetry import procfs

KEEP_FINISHED = 32


@dataclass(frozen=True)
class Generator:
    """One load-generator process tree.

    Attributes:
        pid: the root process.
        started_at: ``time.monotonic()`` when it was registered (just after it was started).
        cpus: the CPUs it was pinned to (empty: not pinned).
        ended_at: ``time.monotonic()`` when it was reaped, or None while it runs.
        final_cpu_seconds: user+system seconds of the whole tree from ``wait4``, once reaped.
    """

    pid: int
    started_at: float
    cpus: tuple[int, ...] = ()
    ended_at: float | None = None
    final_cpu_seconds: float | None = None


_lock = threading.Lock()
_live: dict[int, Generator] = {}
_finished: list[Generator] = []


def started(pid: int, cpus: tuple[int, ...] | None = None) -> None:
    """Register a load generator just started (call right after ``Popen``)."""
    with _lock:
        _live[pid] = Generator(pid, time.monotonic(), tuple(cpus or ()))


def finished(pid: int, cpu_seconds: float | None) -> None:
    """It was reaped; ``cpu_seconds`` from ``wait4`` (None when unknown: killed, not waited)."""
    with _lock:
        gen = _live.pop(pid, None)
        if gen is None:
            return
        _finished.append(Generator(gen.pid, gen.started_at, gen.cpus, time.monotonic(),
                                   cpu_seconds))
        del _finished[:-KEEP_FINISHED]


def generators(since: float) -> list[Generator]:
    """Every generator running now or reaped at or after ``since`` (``time.monotonic()``)."""
    with _lock:
        done = [g for g in _finished if g.ended_at is not None and g.ended_at >= since]
        return [*_live.values(), *done]


def cpu_seconds(gen: Generator) -> float | None:
    """CPU seconds the generator's tree has used so far (see the module docstring); None when
    it is neither readable in /proc nor reaped with a known total."""
    if gen.ended_at is not None:
        return gen.final_cpu_seconds
    root = procfs.pid_stat(gen.pid)
    if root is None:
        return None
    total = 0.0
    for pid in procfs.descendants([gen.pid]):
        st = root if pid == gen.pid else procfs.pid_stat(pid)
        if st is not None:
            total += st.cpu_total
    return total
