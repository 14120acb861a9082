"""Local micro benchmarks: run inside the runtime by the agent, parsed from their own output.

``sysbench-cpu`` (events/s), ``sysbench-memory`` (read and write MiB/s, 1 MiB blocks), ``fio``
(sequential 1 MiB and random 4 KiB reads and writes on the runtime's root filesystem and on a
dedicated volume) and ``xz``
(``xz -T1 -6`` of a fixed 8 MiB generated text file). The commands are fixed in
``agent_app/agent.py``; only the duration comes from the scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from isobench.workloads.base import LaunchSpec
from isobench.workloads.micro import parsers
from isobench.workloads.micro.common import AgentWorkload, figure


class SysbenchCpuWorkload(AgentWorkload):
    """``sysbench cpu --cpu-max-prime=20000 --threads=1 --time=N run``: events per second."""

    name = "sysbench-cpu"
    description = "sysbench cpu (primes up to 20000, 1 thread) inside the runtime: events/s"
    benches = ("sysbench-cpu",)
    metrics = (
        figure("sysbench_cpu_events", "events/s", "higher", "sysbench cpu events/s"),
        figure("sysbench_cpu_latency_ms", "ms", "lower", "sysbench cpu event latency (avg)"),
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options["parameters"] = {"cpu_max_prime": 20000, "threads": 1}

    def parse(self, bench: str, answer: Mapping[str, Any]) -> dict[str, float]:
        out = parsers.sysbench_cpu(str(answer.get("stdout", "")))
        return {"sysbench_cpu_events": out["events_per_s"],
                "sysbench_cpu_latency_ms": out["latency_avg_ms"]}


class SysbenchMemoryWorkload(AgentWorkload):
    """``sysbench memory`` read then write, 1 MiB blocks, sequential, 1 thread: MiB/s."""

    name = "sysbench-memory"
    description = "sysbench memory read and write (1 MiB blocks, 1 thread) inside the runtime"
    benches = ("sysbench-memory-read", "sysbench-memory-write")
    metrics = (
        figure("sysbench_mem_read_mib_s", "MiB/s", "higher", "sysbench memory read"),
        figure("sysbench_mem_write_mib_s", "MiB/s", "higher", "sysbench memory write"),
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options["parameters"] = {"block_size": "1M", "access_mode": "seq", "threads": 1}

    def parse(self, bench: str, answer: Mapping[str, Any]) -> dict[str, float]:
        out = parsers.sysbench_memory(str(answer.get("stdout", "")))
        oper = bench.rsplit("-", 1)[1]
        return {f"sysbench_mem_{oper}_mib_s": out["mib_per_s"]}


FIO_JOBS = {
    "fio-seqread": "seqread",
    "fio-seqwrite": "seqwrite",
    "fio-randread": "randread",
    "fio-randwrite": "randwrite",
    "fio-vol-seqread": "vol_seqread",
    "fio-vol-seqwrite": "vol_seqwrite",
    "fio-vol-randread": "vol_randread",
    "fio-vol-randwrite": "vol_randwrite",
}
"""Agent bench → the middle of its metric names (``fio_<job>_iops``...)."""

FIO_VOLUME = "/var/lib/isobench-vol"
"""Where the fio workload asks for its dedicated volume (``LaunchSpec.volumes``)."""
FIO_BUFFERS = ("default", "huge")
"""The values of the fio workload's option ``fio_buffer``."""


def free_huge_pages(meminfo: str = "/proc/meminfo") -> int:
    """``HugePages_Free`` of the kernel (0 when it has no such line or cannot be read)."""
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("HugePages_Free:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


class FioWorkload(AgentWorkload):
    """fio, psync, queue depth 1, in two places: the runtime's root filesystem (never a tmpfs)
    and a dedicated volume (``LaunchSpec.volumes``) at :data:`FIO_VOLUME`.

    Sequential 1 MiB reads and writes (MB/s), random 4 KiB reads and writes (IOPS, p99
    completion latency), each on a file of option ``fio_size_mb`` (default 256) MiB: the
    benches ``fio-seqread``... on the root filesystem (metrics ``fio_randread_iops``...,
    unchanged so older runs still compare) and ``fio-vol-seqread``... on the volume
    (``fio_vol_randread_iops``...). Direct I/O is used where the job's filesystem accepts
    O_DIRECT; what was used is recorded per job (``facts[job]["direct"]`` and the metric
    ``fio_<job>_direct``: 1 when the job ran direct), with the filesystem holding its file
    (``facts[job]["filesystem"]``, as the runtime shows it) beside the runtime's own account of
    the volume (the instance's ``facts["volumes"]``).

    Option ``fio_buffer`` says where fio's I/O buffer comes from. ``default``: fio's own
    (``--iomem=malloc``, 4 KiB pages wherever the kernel puts them); a 1 MiB job records how many
    physically contiguous pieces it got (``facts[job]["buffer_pieces"]``), because where the disk
    path costs something per piece (a virtual disk, as on this project's host) the sequential
    figures follow that layout, which changes from run to run (``benchmarks/fio_buffer.py``).
    ``huge``: one 2 MiB huge page (``--iomem=mmaphuge``), so every job's buffer is one piece and
    the sequential figures no longer draw a layout; fio needs a free huge page in the kernel it
    runs on: native and Docker share the host's (``sysctl vm.nr_hugepages=4``; :meth:`check`
    refuses the run when none is free). gVisor's sentry accepts the mapping and backs it with
    memory of its own (its fio figures go through its page cache either way); a VM's guest
    reserves no huge page, so its fio trials fail, saying so (checked under TCG).

    What each place is differs by runtime, and that is part of what is measured:

    - root filesystem: native writes to an overlay whose upper layer is in the state directory
      (``/run/isobench``: a tmpfs on many hosts, on disk on this one), Docker to overlay2 on
      the host's disk; gVisor's root is an overlay whose upper layer is in the sandbox's memory
      (runsc 20240729's default, ``/`` shows ``overlay``; 20221219 went through its gofer,
      ``9p`` with ``cache=fscache``): it accepts O_DIRECT but no direct I/O reaches a disk;
      the VM's root is an overlay whose upper layer is a tmpfs in guest memory.
    - volume: native bind-mounts a host directory on disk; Docker (runc) mounts a Docker volume
      (``/var/lib/docker/volumes``, the host's disk); gVisor mounts the same kind of volume, but
      every access goes through its gofer to the host's file, which gVisor opens without
      O_DIRECT (google/gvisor#3626): it accepts O_DIRECT (``direct`` is 1) yet its reads and
      writes go through the host's page cache, so its figures are not disk figures (seen here:
      sequential reads ~10x native's direct ones); the VM gets a real second virtio disk (a
      sparse raw ext4 image on the host, ``cache=none``), which under TCG is emulated like
      everything else in it.
    """

    name = "fio"
    description = ("fio sequential and 4k random read/write on the runtime's root filesystem "
                   "and on a dedicated volume")
    benches = tuple(FIO_JOBS)
    option_names = frozenset({"fio_size_mb", "fio_buffer"})
    count_options = frozenset({"fio_size_mb"})
    metrics = (
        figure("fio_randread_iops", "IOPS", "higher", "fio 4k random read IOPS"),
        figure("fio_randwrite_iops", "IOPS", "higher", "fio 4k random write IOPS"),
        figure("fio_seqread_mb_s", "MB/s", "higher", "fio sequential read"),
        figure("fio_seqwrite_mb_s", "MB/s", "higher", "fio sequential write"),
        figure("fio_randread_p99_ms", "ms", "lower", "fio 4k random read p99"),
        figure("fio_randwrite_p99_ms", "ms", "lower", "fio 4k random write p99"),
        figure("fio_vol_randread_iops", "IOPS", "higher", "fio 4k random read IOPS, volume"),
        figure("fio_vol_randwrite_iops", "IOPS", "higher", "fio 4k random write IOPS, volume"),
        figure("fio_vol_seqread_mb_s", "MB/s", "higher", "fio sequential read, volume"),
        figure("fio_vol_seqwrite_mb_s", "MB/s", "higher", "fio sequential write, volume"),
        figure("fio_vol_randread_p99_ms", "ms", "lower", "fio 4k random read p99, volume"),
        figure("fio_vol_randwrite_p99_ms", "ms", "lower", "fio 4k random write p99, volume"),
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options["parameters"] = {
            "file": "/var/tmp/isobench-micro/fio.data", "size_mb": self.fio_size_mb(),
            "volume_file": f"{FIO_VOLUME}/fio.data", "volume_mb": self.volume_mb(),
            "seq_bs": "1M", "rand_bs": "4k", "ioengine": "psync", "iodepth": 1,
            "direct": "when the filesystem accepts O_DIRECT (recorded per trial)",
            "buffer": ("one 2 MiB huge page (--iomem=mmaphuge)" if self.iomem() == "mmaphuge"
                       else "fio's default (--iomem=malloc; 1 MiB jobs record its layout)"),
        }

    def iomem(self) -> str:
        """fio's ``--iomem`` for option ``fio_buffer`` (anything else than the two values is
        refused by :meth:`check`)."""
        return "mmaphuge" if str(self.options.get("fio_buffer", "default")) == "huge" else "malloc"

    def check(self) -> str | None:
        buffer = str(self.options.get("fio_buffer", "default"))
        if buffer not in FIO_BUFFERS:
            return (f"fio_buffer must be one of {', '.join(FIO_BUFFERS)}, not {buffer!r} "
                    "(fix: fio_buffer: default or huge)")
        if buffer == "huge" and free_huge_pages() < 1:
            return ("fio_buffer huge needs a free huge page on this host, it has none "
                    "(fix: sysctl vm.nr_hugepages=4)")
        return None

    def volume_mb(self) -> int:
        """The volume's size: the fio file and 256 MiB for the filesystem's own blocks, at
        least 1 GiB (a VM's disk image is sparse: only what is written takes space)."""
        return max(1024, self.fio_size_mb() + 256)

    def launch_spec(self) -> LaunchSpec:
        base = super().launch_spec()
        return replace(base, argv=(*base.argv, "--volume-dir", FIO_VOLUME,
                                   "--fio-iomem", self.iomem()),
                       volumes=(FIO_VOLUME,), volume_mb=self.volume_mb())

    def parse(self, bench: str, answer: Mapping[str, Any]) -> dict[str, float]:
        out = parsers.fio_json(str(answer.get("stdout", "")))
        job = FIO_JOBS[bench]
        figures = {f"fio_{job}_mb_s": out["mb_per_s"], f"fio_{job}_iops": out["iops"],
                   f"fio_{job}_p99_ms": out["p99_ms"]}
        figures[f"fio_{job}_direct"] = out["direct"]
        return figures


class XzWorkload(AgentWorkload):
    """``xz -T1 -6`` of a fixed 8 MiB generated text file: seconds (lower is better).

    xz prints no timing of its own: the agent times the command (monotonic wall clock) and
    checks its exit status; the scenario's duration does not apply (one compression a trial).
    """

    name = "xz"
    description = "xz -T1 -6 compression of a fixed 8 MiB file inside the runtime (seconds)"
    benches = ("xz",)
    metrics = (
        figure("xz_seconds", "s", "lower", "xz -T1 compression time"),
        figure("xz_cpu_seconds", "s", "lower", "xz -T1 CPU time"),
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options["parameters"] = {"level": 6, "threads": 1, "input_mib": 8,
                                      "input": "seeded pseudo-random words"}

    def parse(self, bench: str, answer: Mapping[str, Any]) -> dict[str, float]:
        elapsed = answer.get("elapsed_s")
        if not isinstance(elapsed, int | float) or elapsed <= 0:
            raise parsers.ParseError("xz: the agent reported no elapsed time")
        cpu = (answer.get("facts") or {}).get("child_cpu_s")
        out = {"xz_seconds": float(elapsed)}
        if isinstance(cpu, int | float) and cpu > 0:
            out["xz_cpu_seconds"] = float(cpu)
        return out
