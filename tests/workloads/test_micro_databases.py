"""The database micro benchmarks: parsers on real captured outputs (pgbench 15.18 and sysbench
1.0.20 against the suite's own servers on this host), the protocol readiness probes against
fake servers, and drive() with a fake client."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from isobench import plugins
from isobench.errors import IsobenchError
from isobench.results import TrialRecord
from isobench.run.suite import MICRO_BENCHMARKS
from isobench.workloads.base import LaunchSpec
from isobench.workloads.micro import databases, parsers

DATA = Path(__file__).parent / "data"


def test_pgbench_summary_on_real_output() -> None:
    out = parsers.pgbench_summary((DATA / "postgres_pgbench.txt").read_text())
    assert out == {"tps": 1722.661207, "latency_avg_ms": 4.644, "transactions": 5171.0,
                   "failed": 0.0}


def test_pgbench_without_a_result_is_refused() -> None:
    with pytest.raises(IsobenchError, match="pgbench tps"):
        parsers.pgbench_summary("pgbench: error: connection to server failed\n")
    text = (DATA / "postgres_pgbench.txt").read_text()
    zero = text.replace("processed: 5171", "processed: 0")
    with pytest.raises(IsobenchError, match="no transaction"):
        parsers.pgbench_summary(zero)


def test_pgbench_log_latencies_and_nearest_rank() -> None:
    log = ("0 1 4000 0 1795940000 100\n"
           "1 1 failed 0 1795940000 200\n"  # a failed transaction has no latency
           "0 2 1000 0 1795940000 300 12\n"
           "garbage\n")
    assert parsers.pgbench_log_latencies_ms([log, "2 1 2500 0 1795940001 5\n"]) == [4.0, 1.0, 2.5]
    values = [float(v) for v in range(1, 101)]  # 1..100: the p-th percentile is p
    assert databases.nearest_rank(values, 50) == 50.0
    assert databases.nearest_rank(values, 99) == 99.0
    assert databases.nearest_rank([7.0], 99) == 7.0
    with pytest.raises(IsobenchError, match="no transactions"):
        databases.nearest_rank([], 99)


def test_sysbench_oltp_on_real_output() -> None:
    out = parsers.sysbench_oltp((DATA / "mariadb_oltp_read_write.txt").read_text())
    assert out == {"transactions": 2479.0, "tps": 823.35, "qps": 16466.93,
                   "latency_avg_ms": 9.70, "latency_p95_ms": 18.61, "ignored_errors": 0.0}
    with pytest.raises(IsobenchError, match="transactions"):
        parsers.sysbench_oltp("FATAL: unable to connect to MySQL server on host '127.0.0.1'\n")


def serve_once_each(handler: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on 127.0.0.1 running ``handler`` on each connection (one at a time)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    handler(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join()
    srv.close()


def pg_message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def fake_pg(state: dict[str, str]) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        head = conn.recv(8)
        length, version = struct.unpack("!ii", head)
        assert version == 196608
        conn.recv(length - 8)
        if state["mode"] == "starting":
            conn.sendall(pg_message(b"E", b"SFATAL\0C57P03\0Mthe database system is starting up"
                                          b"\0\0"))
            return
        conn.sendall(pg_message(b"R", struct.pack("!i", 0))
                     + pg_message(b"S", b"server_version\x0015.18\0")
                     + pg_message(b"Z", b"I"))
        conn.recv(5)  # Terminate

    return handle


def test_postgres_probe_speaks_the_protocol() -> None:
    state = {"mode": "starting"}
    for port in serve_once_each(fake_pg(state)):
        assert databases.pg_hello("127.0.0.1", port) is None  # starting up: not ready
        state["mode"] = "up"
        assert databases.pg_hello("127.0.0.1", port) == {"server_version": "15.18"}
        startup = databases.PostgresWorkload().ready(
            port, LaunchSpec(argv=("x",)), launched_at=time.monotonic(), deadline_s=5,
            exited=lambda: None)
        assert 0 <= startup < 5


def test_a_silent_listener_is_neither_database() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        assert databases.pg_hello("127.0.0.1", port, timeout=0.2) is None
        assert databases.mysql_handshake("127.0.0.1", port, timeout=0.2) is None


def test_mariadb_probe_needs_a_handshake() -> None:
    packets = {"mode": b"\xff\x10\x04Too many connections"}

    def handle(conn: socket.socket) -> None:
        payload = packets["mode"]
        conn.sendall(len(payload).to_bytes(3, "little") + b"\0" + payload)

    for port in serve_once_each(handle):
        assert databases.mysql_handshake("127.0.0.1", port) is None
        packets["mode"] = b"\x0a5.5.5-10.11.18-MariaDB\0" + b"\0" * 40
        assert databases.mysql_handshake("127.0.0.1", port) == "5.5.5-10.11.18-MariaDB"
        assert databases.mysql_ready("127.0.0.1", port)


def test_postgres_drive_reads_tps_and_percentiles(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_client(argv: list[str], **kw: object) -> str:
        calls.append(argv)
        prefix = next(a for a in argv if a.startswith("--log-prefix=")).split("=", 1)[1]
        # 200 transactions of 1..200 ms over two log files (pgbench writes one per thread)
        Path(f"{prefix}.123").write_text(
            "".join(f"0 {i} {i * 1000} 0 1795940000 0\n" for i in range(1, 101)))
        Path(f"{prefix}.123.1").write_text(
            "".join(f"1 {i} {i * 1000} 0 1795940000 0\n" for i in range(101, 201)))
        return (DATA / "postgres_pgbench.txt").read_text()

    monkeypatch.setattr(databases, "run_client", fake_client)
    monkeypatch.setattr(databases, "pg_hello",
                        lambda host, port, timeout=0.5: {"server_version": "15"})
    summary = databases.PostgresWorkload({"clients": 4}).drive(
        "http://127.0.0.1:5999", {"duration": "3s"}, cpus=(1,))
    t = TrialRecord("native", 0, 0, 0, "ok", 0.0, 1.0, load=summary)
    assert t.metric("pgbench_tps", "value") == 1722.661207
    assert t.metric("pgbench_latency_avg_ms", "value") == 4.644
    assert t.metric("pgbench_latency_p50_ms", "value") == 100.0
    assert t.metric("pgbench_latency_p99_ms", "value") == 198.0
    argv = calls[0]
    assert argv[argv.index("-c") + 1] == "4" and argv[argv.index("-T") + 1] == "3"
    assert argv[argv.index("-p") + 1] == "5999"
    assert summary["facts"]["transactions_logged"] == 200
    assert not Path(argv[-2].split("=", 1)[1]).parent.exists()  # the logs are removed


def test_mariadb_drive_reads_tps_qps_p95(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(databases, "run_client", lambda argv, **kw: (
        DATA / "mariadb_oltp_read_write.txt").read_text())
    monkeypatch.setattr(databases, "mysql_handshake", lambda host, port, timeout=0.5: "10.11")
    summary = databases.MariadbWorkload().drive("http://127.0.0.1:3307", {"duration": "3s"})
    t = TrialRecord("native", 0, 0, 0, "ok", 0.0, 1.0, load=summary)
    assert t.metric("oltp_tps", "value") == 823.35
    assert t.metric("oltp_qps", "value") == 16466.93
    assert t.metric("oltp_latency_p95_ms", "value") == 18.61
    assert databases.MariadbWorkload().validate(summary, 3.0) is None
    assert "--mysql-port=3307" in summary["facts"]["argv"]


def test_database_workloads_are_registered_in_the_suite() -> None:
    for name in ("postgres", "mariadb"):
        assert name in MICRO_BENCHMARKS
        workload = plugins.load("workload", name)()
        assert workload.rootfs_spec().build_commands  # data sets made at image build
        spec = workload.launch_spec().render("127.0.0.1", 5432)
        assert spec.argv[-2:] == ("127.0.0.1", "5432")
    assert plugins.load("workload", "postgres")().launch_spec().user == "postgres"
