"""The VM's namespace, veth, bridge and tap (``isobench.runtimes.qemu.tapnet``), driven by a fake
runner: which commands make it, what is recorded, how it is removed (the VM tests boot it)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from isobench.runtimes.cleanup import owner_live
from isobench.runtimes.qemu import runtime as qemu
from isobench.runtimes.qemu.tapnet import guest_mac, open_vm_net, vm_commands
from isobench.util import clientnet
from isobench.util.clientnet import ClientNetError
from isobench.util.locks import read_records
from isobench.util.proc import FakeRunner

ADDRS = "1: lo    inet 127.0.0.1/8 scope host lo\n"
ROUTES = "default via 192.0.2.1 dev eth0\n"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ISOBENCH_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def _runner() -> FakeRunner:
    return FakeRunner({"ip -4 -o addr show": (0, ADDRS), "ip -4 route show table all": (0, ROUTES)})


def test_the_host_end_gets_the_first_address_and_the_guest_sits_behind_a_bridge() -> None:
    made = [" ".join(c) for c in vm_commands("isobench-0a1b2c3d", "ibv0a1b2c3d", "ivm0a1b2c3d",
                                             ipaddress.IPv4Network("198.18.0.4/30"))]
    assert made[0] == "ip netns add isobench-0a1b2c3d"
    assert "ip addr add 198.18.0.5/30 dev ibv0a1b2c3d" in made
    assert "ip netns exec isobench-0a1b2c3d ip tuntap add dev tap0 mode tap" in made
    assert "ip -n isobench-0a1b2c3d link set ivm0a1b2c3d master br0" in made
    assert "ip -n isobench-0a1b2c3d link set tap0 master br0" in made
    assert not any("route" in c or "forward" in c or "nft" in c for c in made)
    assert made.index("ip netns exec isobench-0a1b2c3d sysctl -qw "
                      "net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1") < \
        made.index("ip -n isobench-0a1b2c3d link add br0 type bridge")  # no IPv6 on anything
    assert guest_mac("isobench-0a1b2c3d") == "52:54:00:1b:2c:3d"


def test_open_records_the_vm_namespace_and_close_removes_it(state: Path) -> None:
    runner = _runner()
    net = open_vm_net(runner, "run-1")
    assert (net.host_address, net.guest_address, net.prefixlen) == ("198.18.0.1", "198.18.0.2", 30)
    assert net.host_iface.startswith("ibv") and len(net.host_iface) <= 15
    assert net.prefix == ("ip", "netns", "exec", net.netns)
    assert net.netdev() == "tap,id=n0,ifname=tap0,script=no,downscript=no"
    [(_, record)] = read_records(clientnet.RECORDS)
    assert record["role"] == "vm" and not record["forward_rules"]
    assert record["owner"]["run_id"] == "run-1"
    runner.responses["ip netns list"] = (0, f"{net.netns} (id: 4)\n")
    assert net.close(runner) == [f"veth {net.host_iface}", f"netns {net.netns}"]
    assert read_records(clientnet.RECORDS) == []


def test_a_failed_step_removes_the_namespace_and_says_so(state: Path) -> None:
    runner = _runner()
    runner.responses["ip netns exec"] = (1, "open: No such file or directory (/dev/net/tun)")
    with pytest.raises(ClientNetError, match="cannot make the VM's namespace"):
        open_vm_net(runner, "r")
    assert read_records(clientnet.RECORDS) == []
    assert any(c[:3] == ("ip", "netns", "list") for c in runner.calls)  # looked to remove it


def test_a_dead_runs_vm_namespace_is_cleaned_with_its_vm(state: Path) -> None:
    runner = _runner()
    net = open_vm_net(runner, "run-1")
    record = qemu.vm_dir() / "abc.json"
    record.write_text("{}")
    runner.responses["ip netns list"] = (0, f"{net.netns}\n")
    runner.calls.clear()
    qemu._remove_vm(record, {"pid": None, "name": "n", "net": net.record}, runner)
    assert ("ip", "netns", "del", net.netns) in runner.calls and not record.exists()
    assert read_records(clientnet.RECORDS) == []
    assert clientnet.leftovers(owner_live(True), runner).removed == []  # nothing left over
