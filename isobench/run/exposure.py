"""What a ready instance listens on, read from ``/proc``: who answers its port, and who else can.

Two checks, both run once per instance right after readiness (``check_instances``), both generic
(no runtime is named: they look at the instance's processes, ``Instance.pids`` and their
descendants, and at its cgroups):

1. **The answering process is ours.** Every TCP socket listening on the instance's
   ``127.0.0.1:<host_port>`` in isobench's own network namespace (bound to 127.0.0.1, 0.0.0.0,
   ``::`` or ``::ffff:127.0.0.1``) must belong to the instance: a process of its tree or of its
   cgroups (a native app, docker-proxy, a sandbox). A socket of any other process
   there (a second app on the same fixed port with ``SO_REUSEPORT``, a process that took the port
   meanwhile) means some connections reach someone else: the trial is refused, never measured.
   No listener at all is fine: the port is then reached through a DNAT rule of the instance.
   An instance without ``pids`` (a runtime that reports none) cannot be checked and is not.
2. **Nothing is reachable beyond loopback.** A listening TCP socket, or a bound, unconnected UDP
   socket on a port outside the ephemeral range, of the instance's processes that lives in
   isobench's network namespace (the host's, where isobench runs there) and is bound to a
   wildcard (0.0.0.0, ``::``) or a non-loopback address can be reached from other machines: the
   trial is refused with the fix, unless the run allows it (``--allow-exposed``), which records
   it in the trial's facts instead. Sockets in a namespace of the instance's own (a container's,
   a VM's guest) are reached only through the 127.0.0.1 mapping or isobench's own veth and are
   fine. Addresses isobench assigned itself (the host end of a veth it made for a remote client)
   are allowed: ``Limits.allowed_addresses`` and an instance's ``facts[ALLOWED_FACT]`` (a list
   of addresses) add to the allowed set. UDP has no "listen": a client's socket is bound to
   ``0.0.0.0:<ephemeral>`` by its first ``sendto`` (a resolver's query does this), so only UDP
   ports a program chose itself (below or above ``ip_local_port_range``: 53, 8125, 443...)
   count as servers.

Parsing (``parse_proc_net``) and judging (``exposed``, ``foreign``) are pure; the ``/proc``
readers around them tolerate processes vanishing while they look.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isobench.errors import StartError
from isobench.runtimes.base import Instance
from isobench.telemetry.procfs import descendants

ALLOWED_FACT = "isobench_addresses"
"""``Instance.facts`` key: addresses isobench itself assigned on the host for this instance
(e.g. a veth end for a remote client); listening on them is not an exposure."""

PROC = Path("/proc")
TCP_LISTEN = 0x0A
UDP_UNCONNECTED = 0x07
PROTOCOLS = ("tcp", "tcp6", "udp", "udp6")


@dataclass(frozen=True)
class Entry:
    """One line of ``/proc/<pid>/net/{tcp,tcp6,udp,udp6}``."""

    proto: str
    address: str
    port: int
    remote_port: int
    state: int
    inode: int

    @property
    def listening(self) -> bool:
        """A TCP listener, or a bound UDP socket with no peer (it takes datagrams from anyone)."""
        if self.proto.startswith("tcp"):
            return self.state == TCP_LISTEN
        return self.state == UDP_UNCONNECTED and self.remote_port == 0 and self.port != 0

    @property
    def where(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else \
            f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Listener:
    """A listening socket and the process holding it (pid 0 and ``?`` when none was found)."""

    entry: Entry
    pid: int
    name: str

    def describe(self) -> str:
        who = f"pid {self.pid} {self.name}" if self.pid else "a process isobench cannot see"
        return f"{self.entry.where} ({self.entry.proto.rstrip('6')}, {who})"


# --- parsing (pure) -------------------------------------------------------------------------------


def _address(hexaddr: str) -> str:
    """``0100007F`` → ``127.0.0.1``; IPv6 as four little-endian 32-bit words → text."""
    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def parse_proc_net(text: str, proto: str) -> list[Entry]:
    """The sockets of one ``/proc/net/<proto>`` table (malformed lines are skipped)."""
    out: list[Entry] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            local, _, lport = fields[1].partition(":")
            _, _, rport = fields[2].partition(":")
            out.append(Entry(proto, _address(local), int(lport, 16), int(rport, 16),
                             int(fields[3], 16), int(fields[9])))
        except ValueError:
            continue
    return out


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ``::1`` and IPv4-mapped loopback."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _normal(address: str) -> str:
    """One spelling per address (``::ffff:10.0.0.1`` is ``10.0.0.1``)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped if mapped is not None else ip)


DEFAULT_EPHEMERAL = (32768, 60999)


def exposed(entries: Iterable[Entry], inodes: Iterable[int], allowed: Iterable[str] = (),
            ephemeral: tuple[int, int] = DEFAULT_EPHEMERAL) -> list[Entry]:
    """The listening sockets among ``inodes`` bound beyond loopback and not to an allowed
    address (a wildcard is never allowed: it covers every interface). UDP sockets on a port in
    the ``ephemeral`` range (inclusive) are clients' (bound by ``sendto``), not servers."""
    mine = set(inodes)
    ok = {_normal(a) for a in allowed}
    low, high = ephemeral
    return [e for e in entries
            if e.inode in mine and e.listening and not is_loopback(e.address)
            and not (e.proto.startswith("udp") and low <= e.port <= high)
            and not (_normal(e.address) in ok and not ipaddress.ip_address(e.address)
                     .is_unspecified)]


def ephemeral_range() -> tuple[int, int]:
    """This network namespace's ``ip_local_port_range`` (the kernel's default if unreadable)."""
    try:
        low, high = (PROC / "sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL


def reaches_loopback_port(entry: Entry, port: int) -> bool:
    """True when a connection to ``127.0.0.1:port`` can land on this TCP listener."""
    if not entry.proto.startswith("tcp") or not entry.listening or entry.port != port:
        return False
    ip = ipaddress.ip_address(entry.address)
    return bool(ip.is_unspecified or _normal(entry.address) == "127.0.0.1")


def foreign(entries: Iterable[Entry], port: int, ours: Iterable[int]) -> list[Entry]:
    """Listeners a connection to ``127.0.0.1:port`` may reach whose inode is not in ``ours``."""
    mine = set(ours)
    return [e for e in entries if reaches_loopback_port(e, port) and e.inode not in mine]


# --- /proc readers --------------------------------------------------------------------------------


def net_ns(pid: int | str) -> str | None:
    """``net:[4026531992]`` of a process (``self`` for isobench), None when gone."""
    try:
        return os.readlink(PROC / str(pid) / "ns" / "net")
    except OSError:
        return None


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets a process holds open."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.scandir(PROC / str(pid) / "fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    found.add(int(target[8:-1]))
    return found


def table(pid: int | str = "self") -> list[Entry]:
    """Every socket of the network namespace ``pid`` is in."""
    out: list[Entry] = []
    for proto in PROTOCOLS:
        with contextlib.suppress(OSError):
            out.extend(parse_proc_net((PROC / str(pid) / "net" / proto).read_text(), proto))
    return out


def _name(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return "?"


def _cgroup_paths(pid: int) -> set[str]:
    try:
        lines = (PROC / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return set()
    return {line.split(":", 2)[2] for line in lines if line.count(":") >= 2} - {"/", ""}


def in_cgroups(pid: int, cgroups: Mapping[str, Path]) -> bool:
    """True when the process is in one of the instance's cgroup directories (or below)."""
    dirs = [str(d).rstrip("/") for d in cgroups.values()]
    for path in _cgroup_paths(pid):
        parts = path.strip("/").split("/")
        prefixes = {"/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if any(d.endswith(q) for q in prefixes for d in dirs):
            return True
    return False


def owners(inodes: Iterable[int]) -> dict[int, int]:
    """Socket inode → a pid holding it, for the inodes found (a scan of every process)."""
    wanted = set(inodes)
    found: dict[int, int] = {}
    if not wanted:
        return found
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        for inode in socket_inodes(int(entry.name)) & wanted:
            found.setdefault(inode, int(entry.name))
        if len(found) == len(wanted):
            break
    return found


# --- the checks -----------------------------------------------------------------------------------


def instance_listeners(instance: Instance, allowed: Iterable[str] = ()) -> tuple[
        list[Listener], list[Listener]]:
    """(listeners on the instance's port that are not the instance's, the instance's sockets
    reachable beyond loopback), both in isobench's own network namespace."""
    own_ns = net_ns("self")
    tree = descendants(instance.pids)
    inode_pid: dict[int, int] = {}
    for pid in tree:
        if net_ns(pid) == own_ns:
            for inode in socket_inodes(pid):
                inode_pid.setdefault(inode, pid)
    entries = table("self")
    allow = [*allowed, *(instance.facts.get(ALLOWED_FACT) or ())]
    out = [Listener(e, inode_pid[e.inode], _name(inode_pid[e.inode]))
           for e in exposed(entries, inode_pid, allow, ephemeral_range())]
    if not instance.pids:  # nothing to tell ours from theirs
        return [], out
    others = foreign(entries, instance.host_port, inode_pid)
    held = owners(e.inode for e in others)
    clash = []
    for e in others:
        pid = held.get(e.inode, 0)
        if pid and in_cgroups(pid, instance.cgroups):  # a sandbox outside the tree, say
            continue
        clash.append(Listener(e, pid, _name(pid) if pid else "?"))
    return clash, out


def exposure_line(listeners: Sequence[Listener]) -> str:
    """``the workload listens on 0.0.0.0:18081 (tcp, pid 7 python3), reachable from other
    machines``."""
    where = ", ".join(x.describe() for x in listeners)
    return f"the workload listens on {where}, reachable from other machines"


def check_instances(instances: Sequence[Instance], *, allow_exposed: bool = False,
                    allowed: Iterable[str] = ()) -> dict[str, Any]:
    """Both checks for every instance of a trial, right after readiness.

    Returns:
        Facts to record with the trial: ``{"exposed": [...]}`` when something listens beyond
        loopback and ``allow_exposed`` is on; ``{}`` otherwise.

    Raises:
        StartError: a process outside the instance listens on its port (the answer may not be
            the instance's), or the instance is reachable beyond loopback and ``allow_exposed``
            is off. One line with the fix.
    """
    allowed = tuple(allowed)
    seen: list[str] = []
    for i, inst in enumerate(instances):
        clash, out = instance_listeners(inst, allowed)
        prefix = f"replica {i}: " if len(instances) > 1 else ""
        if clash:
            who = ", ".join(x.describe() for x in clash)
            raise StartError(
                f"{prefix}127.0.0.1:{inst.host_port} is also served by {who}, outside the "
                "instance: some answers would not be the workload's",
                fix="stop that process (it shares the port, e.g. with SO_REUSEPORT), or give "
                    "the workload another port",
            )
        if out and not allow_exposed:
            raise StartError(f"{prefix}{exposure_line(out)}",
                             fix="make it bind 127.0.0.1 (an image: --env VAR={bind}) or pass "
                                 "--allow-exposed")
        seen.extend(f"{prefix}{x.describe()}" for x in out)
    return {"exposed": seen} if seen else {}
