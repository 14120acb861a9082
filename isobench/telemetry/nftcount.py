"""Exact byte/packet counters for one TCP port on loopback, with an nftables table of our own.

Each counter set is a table ``inet isobench_tm_<pid>_<n>`` holding two named counters. On loopback
every packet passes ``output`` then ``input``; each direction is counted once, where the client
sees it, so a port that NAT hands on to a container (Podman/netavark DNAT) counts the same packets:
what clients sent (``tcp dport PORT``, the instance's rx) on ``output`` before NAT rewrites it,
and what the instance answered (``saddr`` loopback, ``tcp sport PORT``, its tx) on ``input`` after
NAT restored the reply's loopback source. Counters count whole IP packets (headers
included), as interface statistics do. Reading uses libnftables through ctypes (no fork per
poll); the ``nft`` command is the fallback. ``close()`` deletes the table; ``leftovers()`` removes
tables whose owner (recorded in ``state_dir()/nft``) died before it could (``isobench clean``).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from isobench.util.locks import (
    Owner,
    boot_id,
    read_records,
    remove_record,
    start_ticks,
    write_record,
)

if TYPE_CHECKING:
    from isobench.runtimes.cleanup import Cleaned, Live

TABLE_PREFIX = "isobench_tm_"
RECORDS = "nft"
"""State-record kind: ``state_dir()/nft/<table>.json`` per counter table, naming its owner."""
_NFT_CTX_OUTPUT_JSON = 1 << 4
_seq = itertools.count()


class NftError(Exception):
    """An nftables command failed."""


class _Nft:
    """libnftables if it loads, else the ``nft`` command."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lib: Any = None
        self._ctx: Any = None
        try:
            lib = ctypes.CDLL("libnftables.so.1")
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            ctx = lib.nft_ctx_new(0)
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            lib.nft_ctx_output_set_flags(ctx, _NFT_CTX_OUTPUT_JSON)
            self._lib, self._ctx = lib, ctx
        except (OSError, AttributeError):
            self._lib = None

    @property
    def available(self) -> bool:
        return self._lib is not None or shutil.which("nft") is not None

    def run(self, cmd: str) -> str:
        """Run one nft command; JSON output for list commands."""
        with self._lock:
            if self._lib is not None:
                rc = self._lib.nft_run_cmd_from_buffer(self._ctx, cmd.encode())
                out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
                err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
                if rc != 0:
                    raise NftError(f"nft {cmd!r}: {err.strip()}")
                return out
        proc = subprocess.run(
            ["nft", "-j", *cmd.split()], capture_output=True, text=True, timeout=10, check=False
        )
        if proc.returncode != 0:
            raise NftError(f"nft {cmd!r}: {proc.stderr.strip()}")
        return proc.stdout


_nft: _Nft | None = None


def nft() -> _Nft:
    global _nft
    if _nft is None:
        _nft = _Nft()
    return _nft


def unavailable_reason() -> str | None:
    """None when port counters can be created here, else why not."""
    if os.geteuid() != 0:
        return "port byte counters need root (nftables)"
    if not nft().available:
        return "nftables not available (install nftables / libnftables1)"
    return None


@dataclass(frozen=True)
class PortCounts:
    """Packets and bytes (IP level) to and from the port since the counters were created."""

    rx_bytes: int = 0
    rx_packets: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0


class PortCounter:
    """Counters on 127.0.0.1/::1 traffic of one TCP port; always ``close()`` it.

    With ``iface`` (the host end of a remote client's veth, which carries only the load) the
    packets are counted where they cross it instead: arriving (``prerouting``, before DNAT, so
    ``dport`` is still the published port) and leaving (``postrouting``, after NAT restored the
    reply's source port), each packet once, headers included, as on loopback. With
    ``server_side`` the instance, not the client, is behind ``iface`` (a VM's own veth, reached
    from the host): the load leaves through it (``postrouting``, ``dport``) and the replies
    arrive on it (``prerouting``, ``sport``).
    """

    def __init__(self, port: int, iface: str | None = None, *, server_side: bool = False) -> None:
        self.port = int(port)
        self.iface = iface
        self.server_side = server_side
        self.table = f"{TABLE_PREFIX}{os.getpid()}_{next(_seq)}"
        self._open = False

    def _veth_script(self) -> str:
        p, i = self.port, self.iface
        rx, tx = f'dport {p} counter name "rx"', f'sport {p} counter name "tx"'
        # the client's veth sees the load arrive and the replies leave; the instance's own veth
        # sees the load leave and the replies arrive
        arriving, leaving = (tx, rx) if self.server_side else (rx, tx)
        return (
            f"add table inet {self.table}\n"
            f"add counter inet {self.table} rx\n"
            f"add counter inet {self.table} tx\n"
            f"add chain inet {self.table} i {{ type filter hook prerouting priority -300 ; }}\n"
            f'add rule inet {self.table} i iifname "{i}" tcp {arriving}\n'
            f"add chain inet {self.table} o {{ type filter hook postrouting priority 300 ; }}\n"
            f'add rule inet {self.table} o oifname "{i}" tcp {leaving}\n'
        )

    def open(self) -> None:
        p = self.port
        script = self._veth_script() if self.iface else (
            f"add table inet {self.table}\n"
            f"add counter inet {self.table} rx\n"
            f"add counter inet {self.table} tx\n"
            f"add chain inet {self.table} o {{ type filter hook output priority -300 ; }}\n"
            f'add rule inet {self.table} o oif "lo" tcp dport {p} counter name "rx"\n'
            f"add chain inet {self.table} c {{ type filter hook input priority 300 ; }}\n"
            f'add rule inet {self.table} c ip saddr 127.0.0.1 tcp sport {p} counter name "tx"\n'
            f'add rule inet {self.table} c ip6 saddr ::1 tcp sport {p} counter name "tx"\n'
        )
        self._open = True  # a half-created table is removed by close() too
        with contextlib.suppress(OSError):  # recorded before it exists: `clean` sees its owner
            write_record(RECORDS, self.table, {"port": p}, Owner.current())
        try:
            nft().run(script)
        except NftError:
            self.close()
            raise

    def read(self) -> PortCounts:
        data = json.loads(nft().run(f"list counters table inet {self.table}") or "{}")
        values: dict[str, tuple[int, int]] = {}
        for item in data.get("nftables", []):
            counter = item.get("counter")
            if counter:
                values[counter["name"]] = (int(counter["bytes"]), int(counter["packets"]))
        rx, tx = values.get("rx", (0, 0)), values.get("tx", (0, 0))
        return PortCounts(rx[0], rx[1], tx[0], tx[1])

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        with contextlib.suppress(NftError):
            nft().run(f"delete table inet {self.table}")
        with contextlib.suppress(OSError):
            remove_record(RECORDS, self.table)

    def __enter__(self) -> PortCounter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def list_tables() -> list[str]:
    """Names of isobench counter tables present on the host."""
    data = json.loads(nft().run("list tables") or "{}")
    return [
        t["table"]["name"]
        for t in data.get("nftables", [])
        if "table" in t and t["table"]["name"].startswith(TABLE_PREFIX)
    ]


def cleanup_leftovers(all_owners: bool = False) -> list[str]:
    """Delete counter tables whose owner is dead (or all, with ``all_owners``); their names."""
    from isobench.runtimes.cleanup import owner_live

    return [line.split()[-1] for line in leftovers(owner_live(all_owners)).removed]


def leftovers(live: Live) -> Cleaned:
    """``isobench clean``'s hook: delete counter tables whose owner died.

    The owner comes from the table's state record; a table without one (from an older isobench)
    goes when the pid in its name no longer runs.
    """
    from isobench.runtimes.cleanup import Cleaned

    done = Cleaned()
    recorded = read_records(RECORDS)
    if os.geteuid() != 0 or not nft().available:
        if recorded:  # tables need root and nftables: without, none can be made here
            done.unchecked.append(f"nftables: {unavailable_reason() or 'not available'} — "
                                  "counter tables not checked")
        return done
    try:
        tables = list_tables()
    except (NftError, OSError, ValueError) as exc:
        done.unchecked.append(f"nftables: cannot list tables ({exc}) — counter tables not checked")
        return done
    records = {path.stem: Owner.from_json(data.get("owner")) for path, data in recorded}
    for name in tables:
        owner = records.get(name)
        if owner is None:  # no record: the pid in its name (dead when gone)
            pid = name[len(TABLE_PREFIX):].split("_")[0]
            ticks = start_ticks(int(pid)) if pid.isdigit() else None
            owner = Owner(int(pid), ticks, boot_id()) if ticks is not None else Owner(0, 0, "")
        what = f"nftables counter table {name}"
        if done.keeps(what, owner, live):
            continue
        try:
            nft().run(f"delete table inet {name}")
            done.removed.append(what)
        except NftError as exc:
            done.unchecked.append(f"{what}: delete failed ({exc})")
            continue
        with contextlib.suppress(OSError):
            remove_record(RECORDS, name)
    for name in set(records) - set(tables):
        with contextlib.suppress(OSError):
            remove_record(RECORDS, name)
    return done
