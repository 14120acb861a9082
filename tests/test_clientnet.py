"""The remote client's namespace and veth (``isobench.util.clientnet``), driven by a fake runner:
which /30 is picked, which commands make and remove it, what is recorded and cleaned."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from isobench.runtimes.base import Resources
from isobench.runtimes.cleanup import owner_live
from isobench.util import clientnet
from isobench.util.clientnet import ClientNet, ClientNetError, pick_subnet
from isobench.util.locks import Owner, read_records, write_record
from isobench.util.proc import FakeRunner

ADDRS = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
         "4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n")
ROUTES = ("default via 192.0.2.1 dev eth0\n"
          "172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1\n"
          "local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1\n")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ISOBENCH_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def _runner(addrs: str = ADDRS, routes: str = ROUTES) -> FakeRunner:
    return FakeRunner({"ip -4 -o addr show": (0, addrs),
                       "ip -4 route show table all": (0, routes)})


def test_the_first_free_30_of_the_benchmarking_range_is_picked() -> None:
    assert pick_subnet([]) == ipaddress.IPv4Network("198.18.0.0/30")
    used = [ipaddress.IPv4Network("198.18.0.0/30"), ipaddress.IPv4Network("198.18.0.4/31")]
    assert pick_subnet(used) == ipaddress.IPv4Network("198.18.0.8/30")
    # a default route (0.0.0.0/0) overlaps everything but takes no address: ignored
    assert pick_subnet([ipaddress.IPv4Network("0.0.0.0/0")]).subnet_of(clientnet.SUPERNET)


def test_a_host_that_uses_the_whole_range_is_refused() -> None:
    with pytest.raises(ClientNetError, match="no free /30"):
        pick_subnet([ipaddress.IPv4Network("198.18.0.0/15")])


def test_host_networks_reads_addresses_and_routes_of_every_table() -> None:
    routes = ROUTES + "198.18.0.0/24 via 192.0.2.9 dev eth0 table 100\n"
    nets = clientnet.host_networks(_runner(routes=routes))
    assert ipaddress.IPv4Network("192.0.2.0/24") in nets
    assert ipaddress.IPv4Network("172.17.0.0/16") in nets
    assert ipaddress.IPv4Network("198.18.0.0/24") in nets  # a route in another table counts
    assert pick_subnet(nets) == ipaddress.IPv4Network("198.18.1.0/30")


def test_open_records_first_then_makes_both_ends_and_close_removes_them(state: Path) -> None:
    runner = _runner()
    net = ClientNet(runner, "run-1")
    path = net.open()
    assert path.remote and path.address == "198.18.0.1" and path.client_address == "198.18.0.2"
    assert path.prefix == ("ip", "netns", "exec", path.netns)
    assert path.netns and path.netns.startswith("isobench-")
    assert path.host_iface and len(path.host_iface) <= 15  # IFNAMSIZ - 1
    made = [" ".join(c) for c in runner.calls]
    assert f"ip netns add {path.netns}" in made
    assert any(c.startswith(f"ip link add {path.host_iface} type veth peer name ") for c in made)
    assert f"ip addr add 198.18.0.1/30 dev {path.host_iface}" in made
    assert any(c.endswith("addr add 198.18.0.2/30 dev " + path.host_iface.replace("ibh", "ibc"))
               for c in made)
    assert not any("route add" in c for c in made), "no route or forwarding is added"
    [(_, record)] = read_records(clientnet.RECORDS)
    assert record["subnet"] == "198.18.0.0/30" and record["owner"]["run_id"] == "run-1"
    assert path.facts()["client"] == "remote" and path.facts()["client_target"] == "198.18.0.1"

    accept = ["iptables", "-w", "-A", "FORWARD", "-i", path.host_iface, "-m", "comment",
              "--comment", path.netns, "-j", "ACCEPT"]
    assert tuple(accept) in runner.calls and path.forward_accept
    assert path.facts()["client_forward_accept"] is True

    runner.responses["ip netns list"] = (0, f"{path.netns} (id: 3)\nother\n")
    runner.responses["iptables -w -D"] = (1, "Bad rule (does a matching rule exist?)")
    runner.responses[f"iptables -w -D FORWARD -i {path.host_iface}"] = (0, "")
    runner.calls.clear()
    removed = net.close()
    assert removed == [f"FORWARD accept rules of {path.host_iface}", f"veth {path.host_iface}",
                       f"netns {path.netns}"]
    assert tuple(["iptables", "-w", "-D", *accept[3:]]) in runner.calls
    assert ("ip", "link", "del", "dev", path.host_iface) in runner.calls
    assert ("ip", "netns", "del", path.netns) in runner.calls
    assert read_records(clientnet.RECORDS) == []
    assert net.close() == []  # idempotent
    assert net.path == clientnet.LOCAL


def test_a_second_namespace_does_not_take_a_recorded_30(state: Path) -> None:
    first = ClientNet(_runner(), "a").open()
    second = ClientNet(_runner(), "b").open()
    assert first.subnet == "198.18.0.0/30" and second.subnet == "198.18.0.4/30"


def test_a_failed_step_removes_what_was_made_and_says_why(state: Path) -> None:
    runner = _runner()
    runner.responses["ip link add"] = (2, "RTNETLINK answers: Operation not permitted")
    with pytest.raises(ClientNetError, match="cannot make the remote client's namespace"):
        ClientNet(runner, "r").open()
    assert read_records(clientnet.RECORDS) == []


def test_clean_removes_a_dead_owners_namespace_and_keeps_a_live_one(state: Path) -> None:
    dead = Owner(pid=2**22 + 7, start=1, boot="old-boot", run_id="dead-run")
    write_record(clientnet.RECORDS, "isobench-dead0001",
                 {"netns": "isobench-dead0001", "host_iface": "ibhdead0001",
                  "subnet": "198.18.0.0/30", "run_id": "dead-run"}, dead)
    write_record(clientnet.RECORDS, "isobench-live0001",
                 {"netns": "isobench-live0001", "host_iface": "ibhlive0001",
                  "subnet": "198.18.0.4/30", "run_id": "live"}, Owner.current("live"))
    runner = FakeRunner({"ip netns list": (0, "isobench-dead0001\nisobench-live0001\n"),
                         "ip link show dev ibhdead0001": (0, ""), "iptables -w -D": (1, "")})
    done = clientnet.leftovers(owner_live(), runner)
    assert len(done.removed) == 1 and "isobench-dead0001" in done.removed[0]
    assert "veth ibhdead0001" in done.removed[0]
    assert done.kept and "isobench-live0001" in done.kept[0]
    assert ("ip", "netns", "del", "isobench-dead0001") in runner.calls
    assert not any("isobench-live0001" in " ".join(c) for c in runner.calls if "del" in c)
    assert [r["netns"] for _, r in read_records(clientnet.RECORDS)] == ["isobench-live0001"]


def test_resources_default_to_loopback() -> None:
    assert Resources().host_address == "127.0.0.1" and Resources().local
    assert not Resources(host_address="198.18.0.1").local


def test_a_workload_with_its_own_client_refuses_a_remote_one() -> None:
    from isobench.errors import ConfigError
    from isobench.workloads.burn import BurnWorkload

    assert BurnWorkload().drives_remote()
    remote = clientnet.ClientPath("remote", "198.18.0.1")
    clientnet.require_local(None, "x")
    clientnet.require_local(clientnet.LOCAL, "x")
    with pytest.raises(ConfigError, match="cannot run remote"):
        clientnet.require_local(remote, "redis")


def test_the_report_names_each_arms_path_as_the_trials_recorded_it() -> None:
    from isobench.report.rundata import network_paths_text
    from isobench.results import TrialRecord
    from isobench.run.orchestrator import RunOrchestrator

    manifest: dict[str, object] = {}
    local = TrialRecord(arm="native", trial=0, position=0, round=0, status="ok",
                        started_at=0.0, ended_at=1.0, facts={"network_path": "loopback",
                                                             "client": "local"})
    remote = TrialRecord(arm="docker-bridge-r", trial=0, position=1, round=0, status="ok",
                         started_at=0.0, ended_at=1.0,
                         facts={"network_path": "dnat", "client": "remote",
                                "client_target": "198.18.0.1"})
    assert RunOrchestrator._note_path(manifest, "native", local)
    assert RunOrchestrator._note_path(manifest, "docker-bridge-r", remote)
    assert not RunOrchestrator._note_path(manifest, "native", local)  # once per arm
    assert network_paths_text(manifest) == (
        "native: loopback (local client); "
        "docker-bridge-r: dnat (remote client \u2192 198.18.0.1)")
    assert network_paths_text({}) == ""


def test_arms_choose_their_client_and_own_client_workloads_are_refused(tmp_path: Path) -> None:
    from isobench import plugins
    from isobench.config.benchfile import Benchfile
    from isobench.errors import ConfigError
    from isobench.results import RunStore
    from isobench.run.orchestrator import RunOrchestrator

    bench = Benchfile(workload="burn", client="remote",
                      arms={"a": {"runtime": "native", "client": "local"},
                            "b": {"runtime": "native"}})
    clients = RunOrchestrator(bench, RunStore(tmp_path / "r1")).clients()
    assert clients == {"a": "local", "b": "remote"}
    redis = Benchfile(workload="redis", runtimes=["native"], client="remote")
    orchestrator = RunOrchestrator(redis, RunStore(tmp_path / "r2"))
    with pytest.raises(ConfigError, match="runs its own client"):
        orchestrator._check_clients([plugins.load("workload", "redis")({})], {})
    burn = [plugins.load("workload", "burn")({})]
    vm = RunOrchestrator(Benchfile(workload="burn", runtimes=["native", "vm"], client="remote"),
                         RunStore(tmp_path / "r3"))
    runtimes = {name: plugins.load("runtime", name)() for name in ("native", "vm")}
    with pytest.raises(ConfigError, match=r"'vm' .*cannot take a remote client") as refused:
        vm._check_clients(burn, runtimes)
    assert refused.value.fix == "use --client local, or leave vm out"
    arms = Benchfile(workload="burn", client="remote",
                     arms={"n": {"runtime": "native"}, "v": {"runtime": "vm", "client": "local"}})
    RunOrchestrator(arms, RunStore(tmp_path / "r4"))._check_clients(burn, runtimes)  # VM local
    with pytest.raises(ValueError):
        Benchfile(client="elsewhere")


def test_load_may_go_to_loopback_and_isobench_namespaces_only(state: Path) -> None:
    assert clientnet.own_address("127.0.0.1") and clientnet.own_address("localhost")
    assert not clientnet.own_address("198.18.0.2")  # in the range, but no namespace of ours
    assert not clientnet.own_address("10.0.0.5") and not clientnet.own_address("example.org")
    net = ClientNet(_runner(), "r")
    net.open()
    assert clientnet.own_address("198.18.0.2") and not clientnet.own_address("198.18.0.6")
    net.close()
    assert not clientnet.own_address("198.18.0.2")
