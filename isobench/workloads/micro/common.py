"""What every micro benchmark shares: the rootfs, the summary shape, host clients, probes.

A micro workload's ``drive()`` returns ``{"metrics": {name: {"type": "gauge", "values":
{"value": v}}}, "raw": {...}, "facts": {...}}``: k6's shape, so ``TrialRecord.metric(name,
"value")`` reads it; ``raw`` keeps the client's own output, ``facts`` its parameters and versions.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from isobench.analysis.stats import MetricSpec
from isobench.config.benchfile import parse_duration
from isobench.errors import ConfigError, IsobenchError, StartError
from isobench.images.spec import WORKLOAD_DIR, RootfsSpec
from isobench.util.clientnet import ClientPath, require_local
from isobench.workloads.base import LaunchSpec, Workload

AGENT_DIR = Path(__file__).parent / "agent_app"
DB_DIR = Path(__file__).parent / "db_app"
DB_SCRIPT = f"{WORKLOAD_DIR}/db.sh"
"""Initialises (at image build) and starts (in the runtime) PostgreSQL and MariaDB."""
PACKAGES = ("redis-server", "sysbench", "fio", "xz-utils", "iperf3", "sockperf", "postgresql",
            "mariadb-server")
"""Debian packages of the one micro rootfs (all benchmarks share it: one build, one cache key)."""

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
Probe = Callable[[str, int], bool]


def micro_rootfs_spec() -> RootfsSpec:
    """The shared rootfs: the benchmarks' Debian packages, the agent, and the two databases'
    data sets made once at build time (``db_app/db.sh``: a pgbench cluster, a sysbench OLTP
    schema), so every trial starts from the same bytes."""
    return RootfsSpec(
        name="micro",
        debian_packages=PACKAGES,
        files={f"{WORKLOAD_DIR}/agent.py": AGENT_DIR / "agent.py",
               DB_SCRIPT: DB_DIR / "db.sh"},
        build_commands=(("/bin/sh", DB_SCRIPT, "pg-init"), ("/bin/sh", DB_SCRIPT, "maria-init")),
    )


def gauge(value: float) -> dict[str, Any]:
    """One figure in k6's summary shape."""
    return {"type": "gauge", "values": {"value": float(value)}}


def summary(metrics: Mapping[str, Any], raw: Mapping[str, Any], facts: Mapping[str, Any],
            seconds: float) -> dict[str, Any]:
    """A drive's summary: the figures, the clients' raw output, their parameters and versions,
    and the few k6 fields the terminal summary reads (no checks; the wall time of the drive)."""
    return {"metrics": dict(metrics), "raw": dict(raw), "facts": dict(facts),
            "root_group": {"name": "", "checks": []},
            "state": {"testRunDurationMs": seconds * 1000.0}}


def figure(
    name: str, unit: str, better: Literal["higher", "lower"], label: str
) -> MetricSpec:
    """The MetricSpec of a gauge named ``name`` (analysed under the same name)."""

    def extract(trial: Any) -> float | None:
        value: float | None = trial.metric(name, "value")
        return value

    return MetricSpec(name, extract, unit, better, label)


def seconds_of(scenario: Mapping[str, Any], default: float = 10.0) -> int:
    """The scenario's duration in whole seconds (at least 1)."""
    value = scenario.get("duration")
    return max(1, round(parse_duration(value))) if value is not None else int(default)


def run_client(argv: Sequence[str], *, cpus: tuple[int, ...] | None, timeout: float,
               what: str) -> str:
    """Run a host-side client (pinned with taskset to ``cpus``); its stdout.

    Raises IsobenchError with a one-line reason when it cannot start, times out, or exits
    non-zero (its last stderr line is quoted).
    """
    full = list(argv)
    if cpus:
        full = ["taskset", "-c", ",".join(str(c) for c in cpus), *full]
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise IsobenchError(f"{what}: {argv[0]} not found on the host",
                            fix="scripts/setup-host.sh installs the micro suite's clients") from exc
    except subprocess.TimeoutExpired as exc:
        raise IsobenchError(f"{what}: {argv[0]} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise IsobenchError(f"{what}: {argv[0]} exited {proc.returncode}: {tail[0][:200]}")
    return proc.stdout


def client_version(argv: Sequence[str]) -> str:
    """First line of ``argv``'s version output, or ``"absent"`` when it is not installed."""
    if shutil.which(argv[0]) is None:
        return "absent"
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    return lines[0].strip() if lines else "unknown"


def wait_probe(
    host: str,
    port: int,
    probe: Probe,
    what: str,
    *,
    launched_at: float,
    deadline_s: float,
    exited: Callable[[], str | None],
    interval: float = 0.05,
) -> float:
    """Poll ``probe(host, port)`` until it is True; seconds since ``launched_at`` (monotonic).

    The same contract as ``isobench.util.netutil.wait_ready`` for a server that does not speak HTTP.
    """
    end = launched_at + deadline_s
    while True:
        ok = probe(host, port)
        now = time.monotonic()
        if ok:
            return now - launched_at
        reason = exited()
        if reason:
            raise StartError(f"instance exited before it was ready: {reason}")
        if now > end:
            raise StartError(f"{what} on {host}:{port} not ready within {deadline_s:.0f} s",
                             fix="see the instance log in the run directory")
        time.sleep(interval)


def answers(host: str, port: int, send: bytes, expect: Callable[[bytes], bool], size: int,
            timeout: float = 0.5) -> bool:
    """Readiness by the server's own protocol: send ``send`` to host:port and read up to
    ``size`` bytes within ``timeout``; True when ``expect(reply)``. Not a TCP connect: a
    forwarder may accept on the server's behalf (QEMU's user network accepted on the host
    before the guest had even booted, and held the connection while it retried the guest) but
    answer nothing, so this is False until the server itself replies."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(send)
            reply = b""
            while len(reply) < size:
                chunk = sock.recv(size - len(reply))
                if not chunk:
                    break
                reply += chunk
            return expect(reply)
    except OSError:
        return False


IPERF3_COOKIE = b"isobenchreadinessprobe" + b"0" * 14 + b"\0"
"""A 37-byte iperf3 test cookie (36 characters and a NUL, as iperf3's ``make_cookie``)."""
IPERF3_PARAM_EXCHANGE = 9


def iperf3_answers(host: str, port: int) -> bool:
    """iperf3 readiness: the server answers a test cookie with its PARAM_EXCHANGE state byte.
    The probe then hangs up; ``iperf3 -s`` logs the aborted test and serves the next one."""
    return answers(host, port, IPERF3_COOKIE, lambda r: r[:1] == bytes([IPERF3_PARAM_EXCHANGE]), 1)


SOCKPERF_PING = struct.pack("!QHI", 1, 3, 14)
"""A 14-byte sockperf message header (sequence 1, flags client|pong-request, length 14),
network order as sockperf's ``MsgHeader::hton``; the server echoes it as a pong."""


def sockperf_answers(host: str, port: int) -> bool:
    """sockperf readiness: the server answers one ping-pong message with a 14-byte pong."""
    return answers(host, port, SOCKPERF_PING,
                   lambda r: len(r) == 14 and struct.unpack("!QHI", r)[0] == 1, 14)


class MicroWorkload(Workload):
    """A micro benchmark: the shared rootfs, a duration-only scenario, its own metrics."""

    metrics: tuple[MetricSpec, ...] = ()
    option_names: ClassVar[frozenset[str] | None] = frozenset()
    count_options: ClassVar[frozenset[str]] = frozenset()
    """The options that are counts (clients, threads, MiB...): positive integers."""

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """The base's check, and every count option a positive integer (a one-line
        ConfigError before the workload is made, instead of a failure in the middle of a run)."""
        super().check_options(options)
        for key in sorted(cls.count_options & set(options)):
            value = options[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"workload {cls.name}: option {key} must be a positive "
                                  f"integer, not {value!r}", fix=f"e.g. {key}: 8")

    def rootfs_spec(self) -> RootfsSpec:
        return micro_rootfs_spec()

    def default_scenario(self) -> dict[str, Any]:
        return {"executor": "external", "duration": "10s"}

    def metric_specs(self) -> tuple[MetricSpec, ...]:
        return self.metrics

    def validate(self, summary: Mapping[str, Any], duration_s: float,
                 limits: Any = None) -> str | None:
        """A benchmark served its measurement when every metric it declares has a finite figure
        and its primary (first) one is above zero (``drive`` already fails a client that exited
        non-zero or printed no result; this catches a figure the parser could not find, or a
        benchmark that did no work). The HTTP rule of the base class does not apply: these
        clients do not speak HTTP."""
        from isobench.results import TrialRecord

        probe = TrialRecord("check", 0, 0, 0, "ok", 0.0, 0.0, load=dict(summary))
        missing = []
        for i, spec in enumerate(self.metrics):
            value = spec.extract(probe)
            if value is None or not math.isfinite(value) or (i == 0 and value <= 0):
                missing.append(spec.title)
        if missing:
            return f"{self.name}: no usable figure for {', '.join(missing)}"
        return None


class AgentWorkload(MicroWorkload):
    """A local benchmark: the agent runs the command inside the runtime, ``drive()`` parses.

    Subclasses name their agent benches in ``benches`` and turn one bench's agent answer into
    metrics in ``parse``.
    """

    benches: tuple[str, ...] = ()

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(
            argv=("/usr/bin/python3", f"{WORKLOAD_DIR}/agent.py", "--host", "{bind}",
                  "--port", "{port}", "--fio-size-mb", str(self.fio_size_mb())),
            env={"PYTHONUNBUFFERED": "1", "PATH": PATH},
            workdir=WORKLOAD_DIR,
            ready_path="/healthz",
        )

    def fio_size_mb(self) -> int:
        return int(self.options.get("fio_size_mb", 256))

    def parse(self, bench: str, answer: Mapping[str, Any]) -> dict[str, float]:
        raise NotImplementedError

    def drive(
        self,
        endpoint: str,
        scenario: Mapping[str, Any],
        *,
        cpus: tuple[int, ...] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        client: ClientPath | None = None,
    ) -> dict[str, Any]:
        require_local(client, self.name)
        seconds = seconds_of(scenario)
        metrics: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        facts: dict[str, Any] = {}
        t0 = time.monotonic()
        for bench in self.benches:
            answer = call_agent(endpoint, bench, seconds)
            raw[bench] = answer
            facts[bench] = {"argv": answer.get("argv"), **(answer.get("facts") or {})}
            for name, value in self.parse(bench, answer).items():
                metrics[name] = gauge(value)
        return summary(metrics, raw, facts, time.monotonic() - t0)


def call_agent(endpoint: str, bench: str, seconds: int) -> dict[str, Any]:
    """Ask the agent at ``endpoint`` to run ``bench``; its answer, checked for exit status 0."""
    url = f"{endpoint}/run?bench={bench}&seconds={seconds}"
    try:
        with urllib.request.urlopen(url, timeout=seconds * 6 + 600) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise IsobenchError(f"{bench}: the agent refused the request (HTTP {exc.code})") from exc
    except (OSError, ValueError) as exc:
        raise IsobenchError(f"{bench}: no answer from the agent ({exc})") from exc
    code = answer.get("exit_code")
    if code != 0:
        tail = (str(answer.get("stderr") or "").strip().splitlines() or ["no output"])[-1]
        raise IsobenchError(f"{bench} exited {code} inside the runtime: {tail[:200]}")
    return answer
