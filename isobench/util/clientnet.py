"""The client's network path: ``local`` (127.0.0.1) or ``remote`` (a namespace of isobench's own).

A real client reaches a server from another machine, through a NIC: Docker's bridge then serves
it with its PREROUTING DNAT rules, not with the ``docker-proxy`` relay that answers 127.0.0.1.
``--client remote`` gives the load generator that path on one host::

    host: ibh<id>  198.18.a.b+1/30  ◄── veth ──►  ibc<id>  198.18.a.b+2/30 : netns isobench-<id>
          (the workload is reached here)                     (the load engine runs here)

* The /30 comes from 198.18.0.0/15, the range RFC 2544 reserves for benchmarking; a /30 that
  overlaps any address or route on the host (every routing table), or a live run's, is skipped.
* Every runtime publishes or listens on the host end's address only (``Resources.host_address``):
  Docker ``-p ADDR:P:C``, native and host-network servers bind it. The VM takes no remote client:
  it is reached on a veth of its own, made by :func:`make_namespace` too (role ``vm``,
  :mod:`isobench.runtimes.qemu.tapnet`), whose records, cleaning and /30s these share.
  No route or forwarding is added: the namespace knows only its /30, and the host answers on it.
  ``route_localnet`` is not needed: it lets the kernel route 127.0.0.0/8, which only the
  loopback path with Docker's userland proxy disabled does (moby/moby#12165); the veth's address
  is an ordinary local address, which Docker's ``PREROUTING -m addrtype --dst-type LOCAL -j
  DOCKER`` rule DNATs to the container.
* The host's ``FORWARD`` policy is DROP wherever Docker runs, and netavark 1.4 (Debian 12) accepts
  no new forwarded connection to a published port: Podman's DNAT would send the packets into
  that DROP. So isobench appends ``FORWARD -i/-o <host end> -j ACCEPT`` (commented with the
  namespace's name), after every rule of Docker's and netavark's, so it only decides packets
  nothing else did; Docker's own accept rules still see theirs first. A real remote client of a
  Podman bridge on such a host needs the same rule; the trial facts say it was added.
* IPv6 is disabled on both ends, so nothing but the load crosses the veth (no link-local
  addresses, no neighbour discovery): its counters are the load's traffic.
* A state record (``state_dir()/netns/<name>.json``, with its ``Owner``) is written before the
  namespace and the veth exist; :func:`teardown` removes both (deleting the host end deletes the
  pair) and then the record, and :func:`leftovers` does it for owners that died (``isobench
  clean``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from isobench.errors import ConfigError, IsobenchError
from isobench.runtimes.cleanup import Cleaned, Live
from isobench.util import paths
from isobench.util.locks import (
    Owner,
    file_lock,
    read_records,
    remove_record,
    write_record,
)
from isobench.util.proc import CommandFailed, CommandRunner

LOCAL_ADDRESS = "127.0.0.1"
SUPERNET = ipaddress.IPv4Network("198.18.0.0/15")
"""RFC 2544's benchmarking range: not routed on the Internet, rarely used on a host."""
RECORDS = "netns"
"""State-record kind: ``state_dir()/netns/<netns name>.json`` per client namespace."""
NETNS_PREFIX = f"{paths.LABEL}-"
HOST_IFACE_PREFIX = "ibh"
PEER_IFACE_PREFIX = "ibc"
CLIENTS = ("local", "remote")
ROLES = {"client": "remote client's", "vm": "VM's"}
"""What each role of namespace is called in messages."""


class ClientNetError(IsobenchError):
    """The remote client's namespace or veth could not be made."""


@dataclass(frozen=True)
class ClientPath:
    """Where the load generator runs and where it reaches the workload.

    Attributes:
        kind: ``local`` (on the host, to 127.0.0.1) or ``remote`` (in a namespace, over a veth).
        address: the host address the workload is published or listens on.
        prefix: the command prefix that runs a client on this path (``ip netns exec NS``);
            empty for ``local``. Whatever spawns a client (the load engine) puts it first.
        netns: the namespace's name (remote only).
        host_iface: the host end of the veth (remote only): every packet of the load crosses
            it, so the network counters count there.
        client_address: the namespace end's address (remote only).
        subnet: the /30 (remote only).
    """

    kind: str = "local"
    address: str = LOCAL_ADDRESS
    prefix: tuple[str, ...] = ()
    netns: str | None = None
    host_iface: str | None = None
    client_address: str | None = None
    subnet: str | None = None
    forward_accept: bool = False
    """True when isobench appended ``FORWARD`` accept rules for the veth (see above)."""

    @property
    def remote(self) -> bool:
        return self.kind == "remote"

    def facts(self) -> dict[str, Any]:
        """What a trial and the manifest record about the client's path."""
        out: dict[str, Any] = {"client": self.kind, "client_target": self.address}
        if self.remote:
            out.update(client_netns=self.netns, client_veth=self.host_iface,
                       client_address=self.client_address, client_subnet=self.subnet,
                       client_forward_accept=self.forward_accept)
        return out


LOCAL = ClientPath()


# --- choosing a /30 -------------------------------------------------------------------------


def host_networks(runner: CommandRunner) -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host has an address in or a route to (all routing tables)."""
    found: list[ipaddress.IPv4Network] = []
    addrs = runner.run(["ip", "-4", "-o", "addr", "show"], check=False, timeout=30)
    routes = runner.run(["ip", "-4", "route", "show", "table", "all"], check=False, timeout=30)
    if not addrs.ok or not routes.ok:
        raise ClientNetError("cannot read the host's addresses and routes (`ip -4 addr`)",
                             fix="install iproute2 (apt-get install iproute2)")
    for line in addrs.stdout.splitlines():
        words = line.split()
        if "inet" in words:
            with contextlib.suppress(ValueError, IndexError):
                found.append(ipaddress.IPv4Interface(words[words.index("inet") + 1]).network)
    for line in routes.stdout.splitlines():
        words = line.split()
        if words and words[0] in ("local", "broadcast", "unicast", "blackhole", "unreachable",
                                  "prohibit", "throw", "multicast", "anycast", "nat"):
            words = words[1:]
        if not words or words[0] == "default":
            continue
        with contextlib.suppress(ValueError):
            found.append(ipaddress.IPv4Network(words[0], strict=False))
    return found


def pick_subnet(used: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /30 of :data:`SUPERNET` that overlaps none of ``used``."""
    taken = [n for n in used if n.overlaps(SUPERNET) and n.prefixlen > 0]
    for subnet in SUPERNET.subnets(new_prefix=30):
        if not any(subnet.overlaps(n) for n in taken):
            return subnet
    raise ClientNetError(f"no free /30 left in {SUPERNET} on this host",
                         fix="isobench clean (removes namespaces of dead runs)")


def recorded_subnets() -> list[ipaddress.IPv4Network]:
    """The /30s recorded by isobench's client namespaces (live or not yet cleaned)."""
    out: list[ipaddress.IPv4Network] = []
    for _, data in read_records(RECORDS):
        with contextlib.suppress(KeyError, ValueError, TypeError):
            out.append(ipaddress.IPv4Network(data["subnet"]))
    return out


def own_address(host: str) -> bool:
    """True when ``host`` is 127.0.0.1 or an address inside a /30 of one of isobench's own
    namespaces (a remote client's veth, a VM's): the only places load may go."""
    if host in (LOCAL_ADDRESS, "localhost"):
        return True
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return address in SUPERNET and any(address in net for net in recorded_subnets())


def own_endpoint(endpoint: str, what: str) -> tuple[str, int]:
    """(host, port) of ``http://HOST:PORT`` when HOST is :func:`own_address` (``localhost`` is
    given as 127.0.0.1); a one-line ConfigError naming ``what`` for any other endpoint."""
    parts = urlsplit(endpoint)
    if parts.hostname is None or parts.port is None or not own_address(parts.hostname):
        raise ConfigError(f"{what}: {endpoint!r} is neither 127.0.0.1 nor an address of "
                          "isobench's own namespaces",
                          fix="isobench drives workloads through 127.0.0.1 or its own veths only")
    host = LOCAL_ADDRESS if parts.hostname == "localhost" else parts.hostname
    return host, parts.port


# --- making and removing --------------------------------------------------------------------


def veth_commands(netns: str, host_iface: str, peer_iface: str,
                  subnet: ipaddress.IPv4Network) -> list[list[str]]:
    """The veth into ``netns`` (made already) with the /30's first address on its host end, up,
    IPv6 off there; the namespace end is left down, for the caller to configure."""
    return [
        ["ip", "link", "add", host_iface, "type", "veth", "peer", "name", peer_iface,
         "netns", netns],
        ["sysctl", "-qw", f"net.ipv6.conf.{host_iface}.disable_ipv6=1"],
        ["ip", "addr", "add", f"{next(subnet.hosts())}/{subnet.prefixlen}", "dev", host_iface],
        ["ip", "link", "set", host_iface, "up"],
    ]


def create_commands(netns: str, host_iface: str, peer_iface: str,
                    subnet: ipaddress.IPv4Network) -> list[list[str]]:
    """The ``ip`` commands that make the namespace and the veth, in order."""
    peer_ip = list(subnet.hosts())[1]
    return [
        ["ip", "netns", "add", netns],
        *veth_commands(netns, host_iface, peer_iface, subnet),
        ["ip", "netns", "exec", netns, "sysctl", "-qw",
         f"net.ipv6.conf.{peer_iface}.disable_ipv6=1"],
        ["ip", "-n", netns, "addr", "add", f"{peer_ip}/{subnet.prefixlen}", "dev", peer_iface],
        ["ip", "-n", netns, "link", "set", "lo", "up"],
        ["ip", "-n", netns, "link", "set", peer_iface, "up"],
    ]


def forward_rules(netns: str, host_iface: str) -> list[list[str]]:
    """The ``FORWARD`` accept rules for the veth (without the ``-A``/``-D`` verb)."""
    comment = ["-m", "comment", "--comment", netns]
    return [["FORWARD", "-i", host_iface, *comment, "-j", "ACCEPT"],
            ["FORWARD", "-o", host_iface, *comment, "-j", "ACCEPT"]]


def add_forward_rules(netns: str, host_iface: str, runner: CommandRunner) -> bool:
    """Append the accept rules when ``iptables`` is there; whether they were added."""
    try:
        for rule in forward_rules(netns, host_iface):
            runner.run(["iptables", "-w", "-A", *rule], timeout=30)
    except FileNotFoundError:  # no iptables: no firewall of its to open
        return False
    return True


def remove_forward_rules(netns: str, host_iface: str, runner: CommandRunner) -> int:
    """Delete the accept rules (each at most 3 times over); how many deletions succeeded."""
    removed = 0
    for rule in forward_rules(netns, host_iface):
        for _ in range(3):
            try:
                result = runner.run(["iptables", "-w", "-D", *rule], check=False, timeout=30)
            except FileNotFoundError:
                return removed
            if not result.ok:
                break
            removed += 1
    return removed


def teardown(record: dict[str, Any], runner: CommandRunner) -> list[str]:
    """Remove a client namespace and its veth (each only if it is there), then the record.

    Returns what was removed, one word each (``veth ibh…``, ``netns isobench-…``).
    """
    done: list[str] = []
    iface = record.get("host_iface")
    netns = record.get("netns")
    if iface and netns and record.get("forward_rules") and remove_forward_rules(
            netns, iface, runner):
        done.append(f"FORWARD accept rules of {iface}")
    if iface and runner.run(["ip", "link", "show", "dev", iface], check=False, timeout=30).ok:
        runner.run(["ip", "link", "del", "dev", iface], check=False, timeout=30)
        done.append(f"veth {iface}")
    if netns:
        listed = runner.run(["ip", "netns", "list"], check=False, timeout=30)
        if any(line.split()[:1] == [netns] for line in listed.stdout.splitlines()):
            runner.run(["ip", "netns", "del", netns], check=False, timeout=30)
            done.append(f"netns {netns}")
    if netns:
        remove_record(RECORDS, netns)
    return done


Commands = Callable[[str, str, str, ipaddress.IPv4Network], list[list[str]]]
"""(netns, host_iface, peer_iface, subnet) → the commands that make a namespace and its veth."""


def make_namespace(runner: CommandRunner, run_id: str, role: str, commands: Commands, *,
                   host_prefix: str = HOST_IFACE_PREFIX, peer_prefix: str = PEER_IFACE_PREFIX,
                   ) -> dict[str, Any]:
    """A namespace of isobench's own joined to the host by a veth on a free /30; its record.

    Under the namespace lock a fresh name (``isobench-<8 hex>``) and the first /30 of
    :data:`SUPERNET` used by no host address or route and no other record are chosen, and the
    record (``netns``, ``host_iface``, ``peer_iface``, ``subnet``, ``run_id``, ``role``: who
    made it, e.g. ``client`` or ``vm``) is written with its owner before anything exists; then
    ``commands(netns, host_iface, peer_iface, subnet)`` run in order. However they end short
    (a failed command, Ctrl-C), what was made and the record are removed before this returns.

    Raises:
        ClientNetError: a command failed (what was made and the record are removed first).
    """
    token = secrets.token_hex(4)
    netns = f"{NETNS_PREFIX}{token}"
    host_iface, peer_iface = f"{host_prefix}{token}", f"{peer_prefix}{token}"
    with file_lock(paths.state_dir() / "locks" / "netns.lock"):  # no two runs pick one /30
        subnet = pick_subnet([*host_networks(runner), *recorded_subnets()])
        record = {"netns": netns, "host_iface": host_iface, "peer_iface": peer_iface,
                  "subnet": str(subnet), "run_id": run_id, "role": role,
                  "forward_rules": role == "client"}
        write_record(RECORDS, netns, record, Owner.current(run_id))
    try:
        for argv in commands(netns, host_iface, peer_iface, subnet):
            runner.run(argv, timeout=30)
    except (CommandFailed, OSError) as exc:
        teardown(record, runner)
        raise ClientNetError(f"cannot make the {ROLES.get(role, role)} namespace {netns}: {exc}",
                             fix="run as root with iproute2 installed; `isobench doctor`"
                             ) from exc
    except BaseException:
        teardown(record, runner)
        raise
    return record


@dataclass
class ClientNet:
    """A remote client's namespace and veth for the lifetime of a run; ``close()`` removes them.

    Use as a context manager, or ``open()`` then ``close()`` (idempotent, never raises for
    "already gone").
    """

    runner: CommandRunner
    run_id: str = ""
    path: ClientPath = field(default=LOCAL, init=False)
    forward_accept: bool = field(default=False, init=False)
    _record: dict[str, Any] | None = field(default=None, init=False)

    def open(self) -> ClientPath:
        """Make the namespace and the veth; the path the load generator takes through them.

        Raises:
            ClientNetError: a command failed (what was made is removed first).
        """
        record = make_namespace(self.runner, self.run_id, "client", create_commands)
        self._record = record
        try:
            self.forward_accept = add_forward_rules(record["netns"], record["host_iface"],
                                                    self.runner)
        except (CommandFailed, OSError) as exc:
            self.close()
            raise ClientNetError(f"cannot make the remote client's namespace: {exc}",
                                 fix="run as root with iproute2 installed; `isobench doctor`"
                                 ) from exc
        except BaseException:
            self.close()
            raise
        subnet = ipaddress.IPv4Network(record["subnet"])
        host_ip, peer_ip = list(subnet.hosts())[:2]
        self.path = ClientPath(kind="remote", address=str(host_ip),
                               prefix=("ip", "netns", "exec", record["netns"]),
                               netns=record["netns"], host_iface=record["host_iface"],
                               client_address=str(peer_ip), subnet=str(subnet),
                               forward_accept=self.forward_accept)
        return self.path

    def close(self) -> list[str]:
        """Remove the namespace and the veth; what was removed."""
        record, self._record = self._record, None
        self.path = LOCAL
        return teardown(record, self.runner) if record else []

    def __enter__(self) -> ClientPath:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def leftovers(live: Live, runner: CommandRunner) -> Cleaned:
    """Remove client namespaces and veths whose owner died (``isobench clean``)."""
    done = Cleaned()
    for path, data in read_records(RECORDS):
        netns = data.get("netns") or path.stem
        what = f"{data.get('role') or 'client'} netns {netns}"
        if done.keeps(what, Owner.from_json(data.get("owner")), live):
            continue
        removed = teardown({**data, "netns": netns}, runner)
        remove_record(RECORDS, path.stem)
        done.removed.append(f"{what} of run {data.get('run_id') or '?'}: "
                            + (", ".join(removed) or "record only"))
    return done


def check_clients(clients: Sequence[str]) -> None:
    """Raise a one-line error for a client kind that is neither ``local`` nor ``remote``."""
    for kind in clients:
        if kind not in CLIENTS:
            raise IsobenchError(f"unknown client {kind!r}", fix="use --client local or remote")


def require_local(client: ClientPath | None, what: str) -> None:
    """Raise a one-line ConfigError when ``what`` (a workload running its own client) is asked
    to use a remote client it cannot start in the namespace yet (the orchestrator refuses it first;
    this keeps a direct caller from measuring the local path under a remote label)."""
    if client is not None and client.remote:
        raise ConfigError(f"{what} runs its own client, which cannot run remote yet",
                          fix="use --client local")
