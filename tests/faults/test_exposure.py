"""``run.exposure``: who answers an instance's port, and whether it listens beyond loopback.

Real sockets of real processes (small Python listeners started by the test), read back from
``/proc`` exactly as a trial does; no runtime, no Docker. The network-namespace case needs root
(``unshare -n``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from isobench.errors import StartError
from isobench.run import exposure
from isobench.run.exposure import Entry, check_instances, exposed, parse_proc_net
from isobench.runtimes.base import Instance
from isobench.util.netutil import free_port

LISTENER = r"""
import socket, sys, time
host, port, reuse, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if reuse:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind((host, port))
if kind == "tcp":
    s.listen()
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def spawn() -> Iterator:
    procs: list[subprocess.Popen[str]] = []

    def start(host: str, port: int, *, reuse: bool = False, kind: str = "tcp",
              prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
        proc = subprocess.Popen([*prefix, sys.executable, "-c", LISTENER, host, str(port),
                                 "1" if reuse else "0", kind],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", \
            proc.stderr.read() if proc.stderr else ""
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def instance(port: int, *pids: int) -> Instance:
    return Instance(runtime="test", host_port=port, launched_at=time.monotonic(), pids=list(pids))


# -- parsing -------------------------------------------------------------------------------------
TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A4AB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4872216
   1: 00000000:46A1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1510
   2: 0100007F:A4AB 0100007F:D2C4 01 00000000:00000000 00:00000000 00000000     0        0 0
"""  # noqa: E501
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:46A1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 78
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 79
"""  # noqa: E501


def test_parse_proc_net_reads_addresses_ports_states_and_inodes() -> None:
    v4 = parse_proc_net(TCP, "tcp")
    assert [(e.address, e.port, e.listening, e.inode) for e in v4] == [
        ("127.0.0.1", 42155, True, 4872216), ("0.0.0.0", 18081, True, 1510),
        ("127.0.0.1", 42155, False, 0)]
    v6 = parse_proc_net(TCP6, "tcp6")
    assert [(e.address, e.port) for e in v6] == [("::", 18081), ("::1", 8080),
                                                 ("::ffff:127.0.0.1", 8081)]
    assert v6[0].where == "[::]:18081"


def test_loopback_is_fine_wildcards_and_other_addresses_are_exposed() -> None:
    entries = [*parse_proc_net(TCP, "tcp"), *parse_proc_net(TCP6, "tcp6")]
    found = exposed(entries, {4872216, 1510, 77, 78, 79})
    assert [e.where for e in found] == ["0.0.0.0:18081", "[::]:18081"]
    assert exposed(entries, {4872216, 78, 79}) == []  # 127.0.0.1, ::1, ::ffff:127.0.0.1


def test_allowed_addresses_are_not_an_exposure_but_a_wildcard_always_is() -> None:
    veth = Entry("tcp", "10.201.0.1", 8000, 0, 0x0A, 5)
    wild = Entry("tcp", "0.0.0.0", 8000, 0, 0x0A, 6)
    mapped = Entry("tcp6", "::ffff:10.201.0.1", 8001, 0, 0x0A, 7)
    assert exposed([veth, wild, mapped], {5, 6, 7}, allowed={"10.201.0.1"}) == [wild]
    assert exposed([veth], {5}, allowed={"10.201.0.2"}) == [veth]
    assert exposed([wild], {6}, allowed={"0.0.0.0"}) == [wild]


# -- real processes ------------------------------------------------------------------------------
def test_a_listener_on_all_addresses_refuses_the_trial_with_the_fix(spawn) -> None:
    port = free_port()
    app = spawn("0.0.0.0", port)
    with pytest.raises(StartError) as err:
        check_instances([instance(port, app.pid)])
    line = str(err.value)
    assert f"the workload listens on 0.0.0.0:{port} (tcp, pid {app.pid} python" in line
    assert "reachable from other machines" in line
    assert "make it bind 127.0.0.1" in line and "--allow-exposed" in line
    assert "\n" not in line
    facts = check_instances([instance(port, app.pid)], allow_exposed=True)
    assert len(facts["exposed"]) == 1
    assert facts["exposed"][0].startswith(f"0.0.0.0:{port} (tcp, pid {app.pid} python")


def test_a_udp_client_socket_is_not_a_server() -> None:
    """Bound by its first sendto to 0.0.0.0:<ephemeral> (QEMU user-net's DNS relay does this)."""
    client = Entry("udp", "0.0.0.0", 55772, 0, 0x07, 9)
    server = Entry("udp", "0.0.0.0", 8125, 0, 0x07, 10)
    assert exposed([client, server], {9, 10}, ephemeral=(32768, 60999)) == [server]


def _free_udp_port_below_the_ephemeral_range() -> int:
    low, _ = exposure.ephemeral_range()
    for port in range(max(1024, low - 3000), low):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("::", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free UDP port below the ephemeral range")


def test_a_child_process_and_udp_count_too(spawn) -> None:
    port = _free_udp_port_below_the_ephemeral_range()
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
         "p.wait()", sys.executable, "-c", LISTENER, "::", str(port), "0", "udp"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        with pytest.raises(StartError, match=rf"listens on \[::\]:{port} \(udp, pid \d+ "):
            check_instances([instance(port, parent.pid)])
    finally:
        for child in exposure.descendants([parent.pid])[1:]:
            os.kill(child, 9)
        parent.wait(timeout=10)


def test_loopback_only_is_fine(spawn) -> None:
    port = free_port()
    app = spawn("127.0.0.1", port)
    assert check_instances([instance(port, app.pid)]) == {}


def test_a_listener_in_its_own_network_namespace_is_fine(spawn) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (a network namespace of its own)")
    port = free_port()
    app = spawn("0.0.0.0", port, prefix=("unshare", "-n"))
    assert exposure.net_ns(app.pid) != exposure.net_ns("self")
    assert check_instances([instance(port, app.pid)]) == {}


def test_a_second_app_sharing_the_port_with_so_reuseport_is_caught(spawn) -> None:
    port = free_port()
    ours = spawn("127.0.0.1", port, reuse=True)
    assert check_instances([instance(port, ours.pid)]) == {}
    theirs = spawn("127.0.0.1", port, reuse=True)
    with pytest.raises(StartError) as err:
        check_instances([instance(port, ours.pid)])
    line = str(err.value)
    assert f"127.0.0.1:{port} is also served by 127.0.0.1:{port} (tcp, pid {theirs.pid} " in line
    assert "outside the instance" in line and "\n" not in line


def test_a_process_holding_the_port_on_all_addresses_is_caught(spawn) -> None:
    """The instance answers through a mapping (no listener of its own on the host port)."""
    port = free_port()
    ours = spawn("127.0.0.1", free_port())  # e.g. a proxy on another port
    theirs = spawn("0.0.0.0", port)
    with pytest.raises(StartError, match=rf"also served by 0\.0\.0\.0:{port} \(tcp, pid "
                                         rf"{theirs.pid} "):
        check_instances([instance(port, ours.pid)], allow_exposed=True)


def test_no_listener_at_all_is_a_dnat_path_and_fine(spawn) -> None:
    ours = spawn("127.0.0.1", free_port())
    assert check_instances([instance(free_port(), ours.pid)]) == {}
