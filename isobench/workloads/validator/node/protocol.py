"""Wire forms shared by the node and the host-side driver (standard library only).

Gossip framing: after ``GET /gossip`` with ``Connection: Upgrade`` and ``Upgrade: UPGRADE_TOKEN``
and the node's ``101 Switching Protocols``, both sides exchange frames on the raw TCP stream. A
frame is a 4-byte big-endian unsigned length ``N`` (``1 <= N <= MAX_FRAME``) followed by ``N``
bytes of UTF-8 JSON holding one object with a ``"type"`` key.

Canonical bytes (what is signed and hashed) are defined here once so both ends agree:

* transaction: ``b"tx|" + from + b"|" + to + b"|" + amount + b"|" + nonce`` (hex keys, decimal
  integers); its id is ``sha256(canonical + sig)``.
* block header: ``b"block|" + height + b"|" + parent + b"|" + time + b"|" + tx_root``; the block
  hash is ``sha256`` of it, the producer signs the hash.
* attestation: ``b"attest|" + height + b"|" + block_hash``, signed by a peer.
* snapshot: root is ``sha256`` over the accounts touched in the epoch, sorted, one
  ``addr:balance:nonce\\n`` line each; the node signs ``b"snapshot|" + epoch + b"|" + root``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from collections.abc import Iterable, Iterator
from typing import Any

UPGRADE_TOKEN = "isobench-gossip/1"
"""Value of the ``Upgrade`` header that switches a connection to gossip framing."""

GOSSIP_PATH = "/gossip"
ROLES = ("producer", "peer", "collector")
"""Who connects in: the block producer (gets acks), a peer (gets re-gossip, sends attestations
and pings), the snapshot collector (gets snapshots)."""

MAX_FRAME = 4 * 1024 * 1024
_HEADER = struct.Struct(">I")


class FrameError(ValueError):
    """A frame that breaks the framing rules (bad length, not a JSON object)."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """One frame (length prefix + compact JSON) for ``message``."""
    body = json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
    if not body or len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes is outside 1..{MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """The message held by a frame's body."""
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"frame body is not JSON: {exc}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError("frame body is not a JSON object with a string 'type'")
    return message


class FrameDecoder:
    """Incremental decoder: feed it bytes in any chunking, get whole messages out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        """Messages completed by ``data`` (a generator: consume it)."""
        self._buf += data
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if size < 1 or size > MAX_FRAME:
                raise FrameError(f"frame length {size} is outside 1..{MAX_FRAME}")
            if len(self._buf) < _HEADER.size + size:
                return
            body = bytes(self._buf[_HEADER.size : _HEADER.size + size])
            del self._buf[: _HEADER.size + size]
            yield decode_body(body)

    @property
    def pending(self) -> int:
        """Bytes buffered towards an incomplete frame."""
        return len(self._buf)


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    """The next message and its raw frame bytes (for forwarding unchanged).

    Raises:
        asyncio.IncompleteReadError: the stream ended (cleanly between frames when ``partial``
            is empty).
        FrameError: the frame breaks the framing rules.
    """
    header = await reader.readexactly(_HEADER.size)
    (size,) = _HEADER.unpack(header)
    if size < 1 or size > MAX_FRAME:
        raise FrameError(f"frame length {size} is outside 1..{MAX_FRAME}")
    body = await reader.readexactly(size)
    return decode_body(body), header + body


def tx_bytes(sender: str, recipient: str, amount: int, nonce: int) -> bytes:
    """Canonical bytes of a transfer (what the sender signs)."""
    return f"tx|{sender}|{recipient}|{amount}|{nonce}".encode()


def tx_id(tx: dict[str, Any]) -> bytes:
    """The id of a wire transaction (hash of its canonical bytes and signature)."""
    canonical = tx_bytes(tx["from"], tx["to"], int(tx["amount"]), int(tx["nonce"]))
    return hashlib.sha256(canonical + bytes.fromhex(tx["sig"])).digest()


def tx_root(txs: Iterable[dict[str, Any]]) -> str:
    """Hash over the ids of a block's transactions, in order."""
    digest = hashlib.sha256()
    for tx in txs:
        digest.update(tx_id(tx))
    return digest.hexdigest()


def header_bytes(height: int, parent: str, time: float, root: str) -> bytes:
    """Canonical bytes of a block header."""
    return f"block|{height}|{parent}|{time:.6f}|{root}".encode()


def block_hash(height: int, parent: str, time: float, root: str) -> str:
    """Hash of a block header (hex); the producer signs its bytes."""
    return hashlib.sha256(header_bytes(height, parent, time, root)).hexdigest()


def attest_bytes(height: int, block: str) -> bytes:
    """Canonical bytes a peer signs to attest it saw block ``block`` at ``height``."""
    return f"attest|{height}|{block}".encode()


def snapshot_root(accounts: Iterable[tuple[str, int, int]]) -> str:
    """State snapshot root over (address, balance, nonce) of the accounts touched in an epoch."""
    digest = hashlib.sha256()
    for addr, balance, nonce in sorted(accounts):
        digest.update(f"{addr}:{balance}:{nonce}\n".encode())
    return digest.hexdigest()


def snapshot_bytes(epoch: int, root: str) -> bytes:
    """Canonical bytes the node signs when it submits a snapshot."""
    return f"snapshot|{epoch}|{root}".encode()


GENESIS_PARENT = "0" * 64
"""Parent hash of block 1."""

GENESIS_BALANCE = 10**12
"""Balance of an account the state store has never seen (every address is pre-funded)."""


def upgrade_request(role: str, ident: str, key: str, host: str = "validator") -> bytes:
    """The HTTP/1.1 request that opens a gossip stream as ``role``."""
    return (
        f"GET {GOSSIP_PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n"
        f"Upgrade: {UPGRADE_TOKEN}\r\nX-Gossip-Role: {role}\r\nX-Gossip-Id: {ident}\r\n"
        f"X-Gossip-Key: {key}\r\n\r\n"
    ).encode()
