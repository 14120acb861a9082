"""Server micro benchmarks: the server inside the runtime, its real client on the host.

The client runs on the load-generator CPUs (``taskset -c``) against the instance's address and
port (``127.0.0.1:<host_port>``, or the VM's own address), through the runtime's normal network
path (host network, Docker's bridge and proxy, gVisor's sentry on the host network, the VM's
tap). ``redis`` (redis-benchmark GET/SET, without and with 16-deep
pipelining), ``iperf3`` (TCP throughput both ways) and ``sockperf`` (TCP ping-pong latency).
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from isobench.errors import IsobenchError
from isobench.util.clientnet import ClientPath, own_endpoint, require_local
from isobench.workloads.base import LaunchSpec
from isobench.workloads.micro import parsers
from isobench.workloads.micro.common import (
    PATH,
    MicroWorkload,
    Probe,
    client_version,
    figure,
    gauge,
    iperf3_answers,
    run_client,
    seconds_of,
    sockperf_answers,
    summary,
    wait_probe,
)

Measured = tuple[dict[str, Any], dict[str, str], dict[str, Any]]
"""What a server benchmark's client run gives: its metrics, the clients' raw output, facts."""


class ServerWorkload(MicroWorkload):
    """A server benchmark: the server inside the runtime, its real client on the host.

    ``ready`` waits until ``probe(host, port)`` (true once the server answers; ``probe_what``
    names it in a timeout) and ``drive`` runs ``measure`` (the client against the endpoint's
    host and port, on the load-generator CPUs), recording its wall time in the summary.
    ``drive`` refuses a remote client: the clients here run on the host only (``require_local``;
    the orchestrator refuses it before any trial, ``drives_remote``), and any target but
    127.0.0.1 or an address of isobench's own namespaces (``own_endpoint``).
    """

    probe: Probe
    """Each benchmark's own: an answer in the server's protocol (a TCP connect alone can be
    accepted by a forwarder before the server runs, as QEMU's user network did)."""
    probe_what: str

    def ready(self, port: int, spec: LaunchSpec, *, launched_at: float, deadline_s: float,
              exited: Callable[[], str | None], host: str = "127.0.0.1") -> float:
        return wait_probe(host, port, self.probe, self.probe_what, launched_at=launched_at,
                          deadline_s=deadline_s, exited=exited)

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
        (host, port), seconds = own_endpoint(endpoint, self.name), seconds_of(scenario)
        t0 = time.monotonic()
        metrics, raw, facts = self.measure(host, port, seconds, cpus)
        return summary(metrics, raw, facts, time.monotonic() - t0)

    def measure(self, host: str, port: int, seconds: int,
                cpus: tuple[int, ...] | None) -> Measured:
        """Run the client against the server on ``host:port`` for about ``seconds``."""
        raise NotImplementedError


# --- redis ----------------------------------------------------------------------------------------


def redis_command(host: str, port: int, command: bytes, timeout: float = 0.5) -> bytes:
    """Send one inline command to host:port and return the first reply bytes (b"" if none)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(command + b"\r\n")
            data = b""
            while b"\r\n" not in data or (data.startswith(b"$") and data.count(b"\r\n") < 2):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data
    except OSError:
        return b""


def redis_pong(host: str, port: int) -> bool:
    """Redis readiness: ``PING`` answered ``+PONG`` (not merely an accepted connection)."""
    return redis_command(host, port, b"PING").startswith(b"+PONG")


def redis_version(host: str, port: int) -> str:
    reply = redis_command(host, port, b"INFO server", timeout=2.0).decode(errors="replace")
    for line in reply.splitlines():
        if line.startswith("redis_version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


REDIS_TESTS = (("get", ""), ("set", ""), ("get", "_p16"), ("set", "_p16"))


def _redis_metrics() -> tuple[Any, ...]:
    specs = []
    for test, suffix in REDIS_TESTS:
        pipe = " (pipelined 16)" if suffix else ""
        specs.append(figure(f"redis_{test}{suffix}_ops", "ops/s", "higher",
                            f"redis {test.upper()}{pipe} ops/s"))
    for test, suffix in REDIS_TESTS:
        pipe = " -P16" if suffix else ""
        for q in ("p50", "p99"):
            specs.append(figure(f"redis_{test}{suffix}_{q}_ms", "ms", "lower",
                                f"redis {test.upper()}{pipe} {q}"))
    return tuple(specs)


class RedisWorkload(ServerWorkload):
    """``redis-server`` inside (no persistence), ``redis-benchmark`` on the host.

    Two client runs a trial: ``-t set,get`` without and with ``-P 16``; each test sends
    ``requests_per_s × duration`` requests (default 50000/s; redis-benchmark counts requests,
    not seconds), ``pipelined_factor`` (default 10) times as many when pipelined, from
    ``clients`` connections (default 50). A runtime too slow to serve that many in about the
    duration (an emulated VM) gets fewer: a short probe run (``probe_requests``, GET, same
    clients and pipeline) measures its rate first, and a test then sends ``rate × duration``
    requests (never fewer than 1000). Both counts are recorded. Protected mode is off only
    because the server binds where the runtime says (127.0.0.1 on the host network, the
    runtime's own network otherwise).
    """

    name = "redis"
    description = "redis-server inside the runtime, redis-benchmark GET/SET on the host"
    metrics = _redis_metrics()
    option_names = frozenset({"clients", "requests_per_s", "pipelined_factor", "probe_requests"})
    count_options = option_names
    probe = staticmethod(redis_pong)
    probe_what = "redis PING"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options.setdefault("clients", 50)
        self.options.setdefault("requests_per_s", 50000)
        self.options.setdefault("pipelined_factor", 10)
        self.options.setdefault("probe_requests", 5000)
        self.options["parameters"] = {"tests": "set,get", "pipeline": [1, 16], "data_size": 3,
                                      "server": "redis-server --save '' --appendonly no"}

    def check(self) -> str | None:
        version = client_version(["redis-benchmark", "--version"])
        if version == "absent":
            return "redis-benchmark is not installed on the host (fix: scripts/setup-host.sh)"
        self.options["client_version"] = version
        return None

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(
            argv=("/usr/bin/redis-server", "--bind", "{bind}", "--port", "{port}",
                  "--protected-mode", "no", "--save", "", "--appendonly", "no",
                  "--daemonize", "no", "--dir", "/tmp"),
            env={"PATH": PATH},
            workdir="/tmp",
        )

    def measure(self, host: str, port: int, seconds: int,
                cpus: tuple[int, ...] | None) -> Measured:
        n = max(1000, int(self.options["requests_per_s"]) * seconds)
        metrics: dict[str, Any] = {}
        raw: dict[str, str] = {}
        argvs: dict[str, list[str]] = {}
        requests = {1: n, 16: n * int(self.options["pipelined_factor"])}
        probes: dict[int, float] = {}
        for pipeline, suffix in ((1, ""), (16, "_p16")):
            base = ["redis-benchmark", "-h", host, "-p", str(port), "-c",
                    str(self.options["clients"]), "-P", str(pipeline), "--csv"]
            probe_n = int(self.options["probe_requests"]) * (1 if pipeline == 1 else 10)
            if probe_n < requests[pipeline]:
                probe = run_client([*base, "-t", "get", "-n", str(probe_n)], cpus=cpus,
                                   timeout=120,
                                   what=f"redis-benchmark -P {pipeline} probe")
                rate = parsers.redis_benchmark_csv(probe).get("GET", {}).get("rps", 0.0)
                probes[pipeline] = rate
                requests[pipeline] = max(1000, min(requests[pipeline], int(rate * seconds)))
            argv = ["redis-benchmark", "-h", host, "-p", str(port), "-t", "set,get",
                    "-n", str(requests[pipeline]), "-c", str(self.options["clients"]),
                    "-P", str(pipeline), "--csv"]
            out = run_client(argv, cpus=cpus, timeout=600, what=f"redis-benchmark -P {pipeline}")
            raw[f"P{pipeline}"] = out
            argvs[f"P{pipeline}"] = argv
            tests = parsers.redis_benchmark_csv(out)
            for test in ("GET", "SET"):
                if test not in tests:
                    raise parsers.ParseError(f"redis-benchmark -P {pipeline}: no {test} result")
                row, key = tests[test], f"redis_{test.lower()}{suffix}"
                metrics[f"{key}_ops"] = gauge(row["rps"])
                for q in ("p50", "p99"):
                    if f"{q}_ms" in row:
                        metrics[f"{key}_{q}_ms"] = gauge(row[f"{q}_ms"])
        facts = {"argv": argvs, "requests": requests, "probe_rps": probes,
                 "server_version": redis_version(host, port),
                 "client_version": client_version(["redis-benchmark", "--version"])}
        return metrics, raw, facts


# --- iperf3 ---------------------------------------------------------------------------------------


class Iperf3Workload(ServerWorkload):
    """``iperf3 -s`` inside, ``iperf3 -c HOST -J`` on the host, both directions.

    ``iperf3_to_runtime_gbit_s``: the host sends, the runtime receives; ``..._from_runtime``:
    ``-R``, the runtime sends. One TCP stream, the scenario's duration each way. Readiness is
    the server's answer to a test cookie (a TCP connect alone can be accepted by a forwarder
    before the server runs).

    Under gVisor with the host network the server's read of the client's parameters on the
    control connection sometimes comes back empty where Linux would block ("unable to receive
    parameters from client"), and the server exits: that test fails ("control socket has closed
    unexpectedly", "Connection reset by peer") and the next finds no server ("Connection
    refused"). Debian bookworm's runsc (20221219, ptrace) failed every trial that way here;
    bookworm-backports' (20240729), which the setup installs, 5 of 8 on systrap (3 of 3 on
    ptrace). A reset before any data moved is tried again (:func:`iperf3_test`), but a server
    that has exited does not come back: each such trial is recorded as failed with the client's
    message once the retries run out.
    """

    name = "iperf3"
    description = "iperf3 server inside the runtime, iperf3 client on the host (TCP, both ways)"
    metrics = (
        figure("iperf3_to_runtime_gbit_s", "Gbit/s", "higher", "iperf3 host→runtime"),
        figure("iperf3_from_runtime_gbit_s", "Gbit/s", "higher", "iperf3 runtime→host"),
        figure("iperf3_to_runtime_retransmits", "", "lower", "iperf3 host→runtime retransmits"),
        figure("iperf3_from_runtime_retransmits", "", "lower",
               "iperf3 runtime→host retransmits"),
    )
    probe = staticmethod(iperf3_answers)
    probe_what = "iperf3 cookie answer"

    def check(self) -> str | None:
        version = client_version(["iperf3", "--version"])
        if version == "absent":
            return "iperf3 is not installed on the host (fix: scripts/setup-host.sh)"
        self.options["client_version"] = version
        return None

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(argv=("/usr/bin/iperf3", "-s", "-B", "{bind}", "-p", "{port}"),
                          env={"PATH": PATH}, workdir="/tmp")

    def measure(self, host: str, port: int, seconds: int,
                cpus: tuple[int, ...] | None) -> Measured:
        metrics: dict[str, Any] = {}
        raw: dict[str, str] = {}
        argvs: dict[str, list[str]] = {}
        retried: dict[str, dict[str, int]] = {}
        for flags, way in (([], "to_runtime"), (["-R"], "from_runtime")):
            argv = ["iperf3", "-c", host, "-p", str(port), "-t", str(seconds), "-J",
                    *flags]
            argvs[way] = argv
            out, fig, retried[way] = iperf3_test(argv, cpus, seconds, way)
            raw[way] = out
            metrics[f"iperf3_{way}_gbit_s"] = gauge(fig["gbit_per_s"])
            metrics[f"iperf3_{way}_retransmits"] = gauge(fig["retransmits"])
        facts = {"argv": argvs, "client_version": client_version(["iperf3", "--version"]),
                 "retried_before_data": retried}
        return metrics, raw, facts


IPERF3_RELISTEN_S = 15.0
"""How long a run that failed before any data moved is tried again (see :func:`iperf3_test`)."""

IPERF3_BETWEEN_TESTS = ("Connection refused", "Connection reset by peer",
                        "the server is busy running a test")
"""The errors of a client that came while ``iperf3 -s`` was still ending the last test."""


def iperf3_test(argv: list[str], cpus: tuple[int, ...] | None, seconds: int,
                way: str) -> tuple[str, dict[str, float], dict[str, int]]:
    """One iperf3 client run: its output, its figures, and {error: how often} of the runs tried
    first.

    ``iperf3 -s`` serves one test at a time and takes the next only once it has ended the last
    one (a readiness probe's, the warm-up's, the other direction's). A client that comes in
    between is refused (no listener yet) or has its control connection reset (the server,
    still busy, turns it away with the client's cookie unread), and under TCG that gap is
    seconds long. Such a run (:data:`IPERF3_BETWEEN_TESTS`) that moved no data (no interval and
    no byte in its JSON: :func:`parsers.iperf3_moved_nothing`) is tried again, every 0.2 s for
    up to :data:`IPERF3_RELISTEN_S`: nothing of it was measured, so nothing is discarded. A run
    that failed after data moved, any other error, or these past the limit fail the trial.
    """
    retried: Counter[str] = Counter()
    deadline = time.monotonic() + IPERF3_RELISTEN_S
    while True:
        try:
            out = run_client(argv, cpus=cpus, timeout=seconds * 4 + 120, what=f"iperf3 {way}")
        except IsobenchError as exc:  # a client that exits non-zero on a refused connect
            if "Connection refused" not in str(exc) or time.monotonic() > deadline:
                raise
            reason = str(exc)
        else:
            try:
                return out, parsers.iperf3_json(out), dict(retried)
            except parsers.ParseError as exc:
                if (not any(e in str(exc) for e in IPERF3_BETWEEN_TESTS)
                        or not parsers.iperf3_moved_nothing(out)
                        or time.monotonic() > deadline):
                    raise
                reason = str(exc)
        retried[reason] += 1
        time.sleep(0.2)


# --- sockperf -------------------------------------------------------------------------------------


class SockperfWorkload(ServerWorkload):
    """``sockperf server --tcp`` inside, ``sockperf ping-pong --tcp`` on the host.

    Figures are sockperf's own: one-way latency (half the round trip) in µs, p50 and p99.
    Readiness is the server's pong to one ping message (a TCP connect alone can be accepted by
    a forwarder before the server runs).

    Under gVisor with the host network (runsc ``--network=host``; Debian's 20221219 and
    20240729 alike) the server cannot run: sockperf passes ``MSG_NOSIGNAL`` to every
    ``recvfrom()`` (hard-coded in its ``msg_recvfrom``), and gVisor's host-network socket
    accepts only ``MSG_DONTWAIT``, ``MSG_PEEK`` and ``MSG_TRUNC`` there, so the first receive
    fails with EINVAL and the server exits ("recvfrom() Failed receiving ... errno=22"). Its
    trials are recorded as failed with that message; no sockperf option avoids the flag. Linux
    ignores it on receive; both upstreams have an open fix (google/gvisor#12645 accepts the flag,
    Mellanox/sockperf#247 drops it).
    """

    name = "sockperf"
    description = "sockperf TCP ping-pong latency, server inside the runtime, client on the host"
    metrics = (
        figure("sockperf_p50_us", "µs", "lower", "sockperf TCP latency p50"),
        figure("sockperf_p99_us", "µs", "lower", "sockperf TCP latency p99"),
        figure("sockperf_avg_us", "µs", "lower", "sockperf TCP latency avg"),
    )
    probe = staticmethod(sockperf_answers)
    probe_what = "sockperf ping answer"

    def check(self) -> str | None:
        if client_version(["sockperf", "--version"]) == "absent":
            return "sockperf is not installed on the host (fix: scripts/setup-host.sh)"
        return None

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(argv=("/usr/bin/sockperf", "server", "--tcp", "-i", "{bind}",
                                "-p", "{port}"), env={"PATH": PATH}, workdir="/tmp")

    def measure(self, host: str, port: int, seconds: int,
                cpus: tuple[int, ...] | None) -> Measured:
        argv = ["sockperf", "ping-pong", "--tcp", "-i", host, "-p", str(port),
                "-t", str(seconds)]
        out = run_client(argv, cpus=cpus, timeout=seconds * 4 + 120, what="sockperf ping-pong")
        fig = parsers.sockperf_pingpong(out)
        metrics = {f"sockperf_{k}": gauge(fig[k]) for k in ("p50_us", "p99_us", "avg_us")}
        facts = {"argv": argv, "latency": "one-way (half round trip), sockperf's own",
                 "client_version": client_version(["sockperf", "--version"])}
        return metrics, {"ping-pong": out}, facts
