"""The VM's network: a tap in a namespace of isobench's own, bridged to the host by a veth.

A VM is reached the way a bridged VM on a real host is (virtio-net on a tap, a Linux bridge,
the host's kernel on the other side), not through QEMU's user network (libslirp), which relays
every connection through QEMU's main loop and accepts with a listen backlog of 1: 50
redis-benchmark connections opened at once were reset there, and its throughput is slirp's::

    host: ibv<id> 198.18.a.b+1/30 ◄── veth ──► ivm<id> ─┐ br0 (netns isobench-<id>)
                                                tap0 ───┘
          guest eth0 198.18.a.b+2/30 (virtio-net on tap0)

* The /30 and the namespace come from :func:`isobench.util.clientnet.make_namespace` (RFC 2544's
  benchmarking range, a /30 no host address, route or other record uses; a state record with
  the owner before anything exists; ``isobench clean`` removes a dead owner's namespace).
* QEMU runs inside the namespace (``ip netns exec``: the tap must exist where QEMU opens it);
  the bridge joins the tap and the veth's namespace end, so the host and the guest share one
  /30 on one link: no route, no forwarding, no NAT. The guest has no default route: it reaches
  its /30 only, and nothing on it is reachable from anywhere but the host.
* IPv6 is off in the namespace and on the host end: nothing but the VM's traffic crosses the
  veth (no link-local addresses, no neighbour discovery), so its counters are the VM's.
* The guest's MAC is fixed per namespace (``52:54:00`` and three bytes of the id), so replicas
  never share one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from isobench.util.clientnet import make_namespace, teardown, veth_commands
from isobench.util.proc import CommandRunner

HOST_PREFIX = "ibv"
PEER_PREFIX = "ivm"
BRIDGE = "br0"
TAP = "tap0"


@dataclass(frozen=True)
class VmNet:
    """One VM's namespace, veth, bridge and tap.

    Attributes:
        netns: the namespace QEMU runs in.
        host_iface: the host end of the veth: every packet to and from the VM crosses it.
        host_address: the host end's address (the guest's gateway, which it does not use).
        guest_address: the guest's address: where clients reach the workload and the agent.
        prefixlen: the /30's prefix length.
        mac: the guest NIC's MAC address.
        record: the namespace's state record (for :meth:`close`).
    """

    netns: str
    host_iface: str
    host_address: str
    guest_address: str
    prefixlen: int
    mac: str
    record: dict[str, Any]

    @property
    def prefix(self) -> tuple[str, ...]:
        """The command prefix that runs QEMU inside the namespace."""
        return ("ip", "netns", "exec", self.netns)

    def netdev(self) -> str:
        """QEMU's ``-netdev`` value: the namespace's tap, no helper scripts."""
        return f"tap,id=n0,ifname={TAP},script=no,downscript=no"

    def facts(self) -> dict[str, Any]:
        return {"vm_netns": self.netns, "vm_veth": self.host_iface,
                "vm_address": self.guest_address, "vm_subnet": self.record.get("subnet")}

    def close(self, runner: CommandRunner) -> list[str]:
        """Remove the namespace (bridge, tap, veth with it) and its record; what was removed."""
        return teardown(self.record, runner)


def vm_commands(netns: str, host_iface: str, peer_iface: str,
                subnet: ipaddress.IPv4Network) -> list[list[str]]:
    """The commands that make the namespace, the veth, the bridge and the tap, in order."""
    inside = ["ip", "netns", "exec", netns]
    return [
        ["ip", "netns", "add", netns],
        [*inside, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
         "net.ipv6.conf.default.disable_ipv6=1"],
        *veth_commands(netns, host_iface, peer_iface, subnet),
        ["ip", "-n", netns, "link", "set", "lo", "up"],
        ["ip", "-n", netns, "link", "add", BRIDGE, "type", "bridge"],
        [*inside, "ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
        ["ip", "-n", netns, "link", "set", peer_iface, "master", BRIDGE],
        ["ip", "-n", netns, "link", "set", TAP, "master", BRIDGE],
        ["ip", "-n", netns, "link", "set", peer_iface, "up"],
        ["ip", "-n", netns, "link", "set", TAP, "up"],
        ["ip", "-n", netns, "link", "set", BRIDGE, "up"],
    ]


def guest_mac(netns: str) -> str:
    """``52:54:00:xx:yy:zz`` from the namespace's id (QEMU's locally administered prefix)."""
    token = netns.rsplit("-", 1)[-1][-6:].rjust(6, "0")
    return "52:54:00:" + ":".join(token[i:i + 2] for i in range(0, 6, 2))


def open_vm_net(runner: CommandRunner, run_id: str) -> VmNet:
    """Make one VM's namespace, veth, bridge and tap.

    Raises:
        ClientNetError: a command failed (what was made is removed first).
    """
    record = make_namespace(runner, run_id, "vm", vm_commands,
                            host_prefix=HOST_PREFIX, peer_prefix=PEER_PREFIX)
    subnet = ipaddress.IPv4Network(record["subnet"])
    host_ip, guest_ip = list(subnet.hosts())[:2]
    return VmNet(netns=record["netns"], host_iface=record["host_iface"],
                 host_address=str(host_ip), guest_address=str(guest_ip),
                 prefixlen=subnet.prefixlen, mac=guest_mac(record["netns"]), record=record)
