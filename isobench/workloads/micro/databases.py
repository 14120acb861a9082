"""Database micro benchmarks: the server inside the runtime, its classic client on the host.

* ``postgres``: PostgreSQL (Debian's, from the shared micro rootfs) serving a cluster made at
  image build time (``pgbench -i -s 10``); ``pgbench`` (TPC-B-like, its built-in script) from
  the host's load-generator CPU: tps, average and p50/p99 latency (p50/p99 from pgbench's own
  per-transaction log, ``-l``).
* ``mariadb``: MariaDB serving a ``sysbench oltp_read_write`` schema made at image build time
  (4 tables × 10,000 rows); ``sysbench oltp_read_write`` from the host: transactions/s,
  queries/s and sysbench's p95 latency.

Both data sets are made once by ``db_app/db.sh`` when the image is built (the parameters here
must match that script's), so every trial of every runtime starts from the same bytes; each
instance's writes go to its own copy-on-write root and vanish with it. Readiness speaks each
server's protocol (a PostgreSQL startup packet answered "authentication ok", a MariaDB
handshake), never just an accepted TCP connection: a forwarder accepts those on the server's
behalf.

What the storage under the data is differs by runtime (as for ``fio``): native and Docker write
to an overlay on the host's disk; gVisor's root overlay and the VM's keep writes in memory, so
their commits never wait for a disk (``fsync`` is a no-op there). The figures are recorded with
the filesystem the runtime gave; they are not a disk comparison.
"""

from __future__ import annotations

import math
import socket
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isobench.workloads.base import LaunchSpec
from isobench.workloads.micro import parsers
from isobench.workloads.micro.common import (
    DB_SCRIPT,
    PATH,
    client_version,
    figure,
    gauge,
    run_client,
)
from isobench.workloads.micro.servers import Measured, ServerWorkload

PG_SCALE = 10
"""pgbench's scaling factor of the cluster made at build time (db.sh PG_SCALE)."""
SB_TABLES, SB_TABLE_SIZE = 4, 10000
"""The sysbench OLTP schema made at build time (db.sh SB_TABLES, SB_TABLE_SIZE)."""
SB_USER = "sbtest"
"""The benchmark-only MariaDB account made at build time (password = name; no data of worth)."""


# --- PostgreSQL -----------------------------------------------------------------------------------


def pg_hello(host: str, port: int, timeout: float = 0.5) -> dict[str, str] | None:
    """A PostgreSQL startup as user ``postgres``: the server's parameters once it answered
    "authentication ok" (trust) and "ready for query"; None when it refused (starting up, shut
    down), closed, or is not PostgreSQL. Ends the session politely (Terminate)."""
    body = b"user\0postgres\0database\0postgres\0\0"
    packet = struct.pack("!ii", len(body) + 8, 196608) + body
    params: dict[str, str] = {}
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(packet)
            buf = b""
            authenticated = False
            while True:
                while len(buf) < 5:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return None
                    buf += chunk
                kind, length = buf[:1], struct.unpack("!i", buf[1:5])[0]
                if length < 4 or length > 1 << 20:
                    return None
                while len(buf) < 1 + length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return None
                    buf += chunk
                payload, buf = buf[5:1 + length], buf[1 + length:]
                if kind == b"R":
                    if struct.unpack("!i", payload[:4])[0] != 0:
                        return None  # asks for a password: not the trust cluster we made
                    authenticated = True
                elif kind == b"S":
                    name, _, rest = payload.partition(b"\0")
                    params[name.decode(errors="replace")] = rest.rstrip(b"\0").decode(
                        errors="replace")
                elif kind == b"Z":
                    sock.sendall(b"X" + struct.pack("!i", 4))
                    return params if authenticated else None
                elif kind == b"E":
                    return None
    except (OSError, struct.error):
        return None


def pg_ready(host: str, port: int) -> bool:
    return pg_hello(host, port) is not None


class PostgresWorkload(ServerWorkload):
    """PostgreSQL inside (user ``postgres``), ``pgbench`` TPC-B-like on the host.

    Options: ``clients`` (default 8 connections, ``-c``; one pgbench thread, ``-j 1``, on the
    load-generator CPU). The scale (10: 1,000,000 accounts) is fixed by the image. Server
    settings: Debian's defaults (``fsync`` and ``synchronous_commit`` on, 128 MB shared
    buffers) plus ``dynamic_shared_memory_type=mmap`` (no /dev/shm is assumed in any runtime).
    """

    name = "postgres"
    description = "PostgreSQL inside the runtime, pgbench TPC-B-like (scale 10) on the host"
    metrics = (
        figure("pgbench_tps", "tx/s", "higher", "pgbench TPC-B tps"),
        figure("pgbench_latency_avg_ms", "ms", "lower", "pgbench latency avg"),
        figure("pgbench_latency_p50_ms", "ms", "lower", "pgbench latency p50"),
        figure("pgbench_latency_p99_ms", "ms", "lower", "pgbench latency p99"),
    )
    option_names = count_options = frozenset({"clients"})
    probe = staticmethod(pg_ready)
    probe_what = "PostgreSQL startup"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options.setdefault("clients", 8)
        self.options["parameters"] = {
            "script": "tpcb-like (built-in)", "scale": PG_SCALE,
            "clients": int(self.options["clients"]), "threads": 1, "protocol": "simple",
            "server": "Debian defaults + dynamic_shared_memory_type=mmap, max_connections=100",
            "data": "made at image build (pgbench -i -s 10); vacuum before each run (pgbench's "
                    "default)",
        }

    def check(self) -> str | None:
        version = client_version(["pgbench", "--version"])
        if version == "absent":
            return "pgbench is not installed on the host (fix: scripts/setup-host.sh)"
        self.options["client_version"] = version
        return None

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(argv=("/bin/sh", DB_SCRIPT, "pg-serve", "{bind}", "{port}"),
                          env={"PATH": PATH}, workdir="/tmp", user="postgres")

    def measure(self, host: str, port: int, seconds: int,
                cpus: tuple[int, ...] | None) -> Measured:
        with tempfile.TemporaryDirectory(prefix="isobench-pgbench-") as logs:
            argv = ["pgbench", "-h", host, "-p", str(port), "-U", "postgres",
                    "-c", str(self.options["clients"]), "-j", "1", "-T", str(seconds),
                    "-l", f"--log-prefix={logs}/tx", "postgres"]
            out = run_client(argv, cpus=cpus, timeout=seconds * 6 + 300, what="pgbench")
            latencies = parsers.pgbench_log_latencies_ms(
                path.read_text() for path in sorted(Path(logs).glob("tx.*")))
        fig = parsers.pgbench_summary(out)
        metrics = {
            "pgbench_tps": gauge(fig["tps"]),
            "pgbench_latency_avg_ms": gauge(fig["latency_avg_ms"]),
            "pgbench_latency_p50_ms": gauge(nearest_rank(latencies, 50)),
            "pgbench_latency_p99_ms": gauge(nearest_rank(latencies, 99)),
        }
        server = pg_hello(host, port, timeout=2.0) or {}
        facts = {"argv": argv, "transactions_logged": len(latencies),
                 "failed_transactions": fig.get("failed", 0.0),
                 "server_version": server.get("server_version", "unknown"),
                 "client_version": client_version(["pgbench", "--version"]),
                 "percentiles": "nearest rank over pgbench's per-transaction log (-l)"}
        return metrics, {"pgbench": out}, facts


def nearest_rank(values: list[float], q: float) -> float:
    """The ``q``-th percentile by the nearest-rank rule (an observed value; sorted copy)."""
    if not values:
        raise parsers.ParseError("no transactions in pgbench's log")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# --- MariaDB --------------------------------------------------------------------------------------


def mysql_handshake(host: str, port: int, timeout: float = 0.5) -> str | None:
    """The server version of a MySQL/MariaDB initial handshake (protocol 10) on host:port,
    or None (no handshake, an error packet such as "too many connections", not MySQL)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            buf = b""
            while len(buf) < 4:
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                buf += chunk
            length = int.from_bytes(buf[:3], "little")
            while len(buf) < 4 + min(length, 64):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                buf += chunk
            payload = buf[4:4 + length]
            if not payload or payload[0] != 10:
                return None
            return payload[1:].split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return None


def mysql_ready(host: str, port: int) -> bool:
    return mysql_handshake(host, port) is not None


class MariadbWorkload(ServerWorkload):
    """MariaDB inside (``mariadbd`` as root, dropping to ``mysql``), ``sysbench
    oltp_read_write`` on the host over TCP (sysbench's mysql driver).

    Options: ``threads`` (default 8). The schema (4 tables × 10,000 rows) is fixed by the image.
    Server settings: ``--no-defaults`` plus a 256 MB InnoDB buffer pool, 200 connections,
    ``skip-name-resolve`` and InnoDB's own I/O threads instead of native AIO (gVisor has no
    io_uring; the same setting everywhere); otherwise MariaDB's compiled-in defaults (durable
    commits).
    """

    name = "mariadb"
    description = "MariaDB inside the runtime, sysbench oltp_read_write on the host"
    metrics = (
        figure("oltp_tps", "tx/s", "higher", "sysbench OLTP read/write tps"),
        figure("oltp_qps", "q/s", "higher", "sysbench OLTP read/write qps"),
        figure("oltp_latency_p95_ms", "ms", "lower", "sysbench OLTP latency p95"),
        figure("oltp_latency_avg_ms", "ms", "lower", "sysbench OLTP latency avg"),
    )
    option_names = count_options = frozenset({"threads"})
    probe = staticmethod(mysql_ready)
    probe_what = "MariaDB handshake"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options.setdefault("threads", 8)
        self.options["parameters"] = {
            "test": "oltp_read_write", "tables": SB_TABLES, "table_size": SB_TABLE_SIZE,
            "threads": int(self.options["threads"]), "percentile": 95,
            "server": "mariadbd --no-defaults --innodb-buffer-pool-size=256M "
                      "--innodb-use-native-aio=0 --max-connections=200 --skip-name-resolve",
            "data": "made at image build (sysbench oltp_read_write prepare)",
        }

    def check(self) -> str | None:
        version = client_version(["sysbench", "--version"])
        if version == "absent":
            return "sysbench is not installed on the host (fix: scripts/setup-host.sh)"
        self.options["client_version"] = version
        return None

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(argv=("/bin/sh", DB_SCRIPT, "maria-serve", "{bind}", "{port}"),
                          env={"PATH": PATH}, workdir="/tmp")

    def measure(self, host: str, port: int, seconds: int,
                cpus: tuple[int, ...] | None) -> Measured:
        argv = ["sysbench", "oltp_read_write", "--db-driver=mysql", f"--mysql-host={host}",
                f"--mysql-port={port}", f"--mysql-user={SB_USER}",
                f"--mysql-password={SB_USER}", f"--mysql-db={SB_USER}",
                f"--tables={SB_TABLES}", f"--table-size={SB_TABLE_SIZE}",
                f"--threads={self.options['threads']}", f"--time={seconds}",
                "--percentile=95", "run"]
        out = run_client(argv, cpus=cpus, timeout=seconds * 6 + 300,
                         what="sysbench oltp_read_write")
        fig = parsers.sysbench_oltp(out)
        metrics = {"oltp_tps": gauge(fig["tps"]), "oltp_qps": gauge(fig["qps"]),
                   "oltp_latency_p95_ms": gauge(fig["latency_p95_ms"]),
                   "oltp_latency_avg_ms": gauge(fig["latency_avg_ms"])}
        facts = {"argv": argv, "ignored_errors": fig["ignored_errors"],
                 "server_version": mysql_handshake(host, port, timeout=2.0) or "unknown",
                 "client_version": client_version(["sysbench", "--version"])}
        return metrics, {"oltp_read_write": out}, facts
