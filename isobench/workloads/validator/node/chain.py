"""The node's chain state: block verification and application on an SQLite store.

Every method runs on one dedicated thread (the node's DB executor), which owns the connection.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from . import protocol

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (addr TEXT PRIMARY KEY, balance INTEGER NOT NULL,
                                     nonce INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash TEXT NOT NULL,
    parent TEXT NOT NULL, time REAL NOT NULL, txs INTEGER NOT NULL, applied INTEGER NOT NULL,
    rejected INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (epoch INTEGER PRIMARY KEY, first INTEGER NOT NULL,
    last INTEGER NOT NULL, root TEXT NOT NULL, accounts INTEGER NOT NULL, sig TEXT NOT NULL);
"""


@dataclass
class BlockResult:
    """Outcome of one block: applied or refused, per-transaction rejection reasons."""

    height: int
    hash: str
    ok: bool
    error: str | None = None
    applied: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    snapshot: dict[str, Any] | None = None


def verify_sig(key_hex: str, message: bytes, sig_hex: str) -> bool:
    try:
        VerifyKey(bytes.fromhex(key_hex)).verify(message, bytes.fromhex(sig_hex))
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


class Chain:
    """State store and the rules a block must pass.

    Args:
        path: SQLite file (created fresh: any old state there is removed).
        node_key: the node's signing key (signs snapshots).
        epoch_blocks: blocks per snapshot epoch.
    """

    def __init__(self, path: Path, node_key: SigningKey, epoch_blocks: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.node_key = node_key
        self.epoch_blocks = epoch_blocks
        self.height = 0
        self.head = protocol.GENESIS_PARENT
        self.touched: set[str] = set()
        self.txs_applied = 0
        self.txs_rejected: dict[str, int] = {}

    def close(self) -> None:
        self.db.close()

    def _account(self, addr: str) -> tuple[int, int]:
        row = self.db.execute("SELECT balance, nonce FROM accounts WHERE addr = ?", (addr,))
        found = row.fetchone()
        return (int(found[0]), int(found[1])) if found else (protocol.GENESIS_BALANCE, 0)

    def _check_tx(self, tx: Any) -> tuple[str, str, int, int, str] | str:
        """The transfer's fields when it is well-formed and signed, else a rejection reason."""
        try:
            sender, recipient = str(tx["from"]), str(tx["to"])
            amount, nonce, sig = int(tx["amount"]), int(tx["nonce"]), str(tx["sig"])
        except (KeyError, TypeError, ValueError):
            return "malformed"
        if amount <= 0 or nonce < 0 or len(sender) != 64 or len(recipient) != 64:
            return "malformed"
        if not verify_sig(sender, protocol.tx_bytes(sender, recipient, amount, nonce), sig):
            return "bad_sig"
        return sender, recipient, amount, nonce, sig

    def apply_block(self, block: dict[str, Any], producer_key: str | None) -> BlockResult:
        """Verify and apply one block (all its valid transactions in one SQLite transaction).

        A block is refused whole when its height, parent, tx root or producer signature is
        wrong; otherwise each transaction is applied or rejected (``bad_sig``, ``bad_nonce``,
        ``insufficient``, ``malformed``) on its own.
        """
        try:
            height, parent = int(block["height"]), str(block["parent"])
            time, txs = float(block["time"]), list(block["txs"])
            claimed, sig = str(block["hash"]), str(block["sig"])
        except (KeyError, TypeError, ValueError):
            return BlockResult(-1, "", False, "malformed block")
        if height != self.height + 1 or parent != self.head:
            return BlockResult(height, claimed, False, f"not the next block (head {self.height})")
        checked = [self._check_tx(tx) for tx in txs]
        try:
            root = protocol.tx_root(txs)
        except (KeyError, TypeError, ValueError):
            return BlockResult(height, claimed, False, "malformed transactions")
        digest = protocol.block_hash(height, parent, time, root)
        if digest != claimed:
            return BlockResult(height, claimed, False, "hash does not match header")
        if producer_key is None or not verify_sig(producer_key, bytes.fromhex(digest), sig):
            return BlockResult(height, claimed, False, "bad producer signature")
        result = BlockResult(height, digest, True)
        cache: dict[str, tuple[int, int]] = {}
        changed: set[str] = set()

        def account(addr: str) -> tuple[int, int]:
            if addr not in cache:
                cache[addr] = self._account(addr)
            return cache[addr]

        for item in checked:
            if isinstance(item, str):
                result.rejected[item] = result.rejected.get(item, 0) + 1
                continue
            sender, recipient, amount, nonce, _ = item
            balance, expected = account(sender)
            reason = ""
            if nonce != expected:
                reason = "bad_nonce"
            elif amount > balance:
                reason = "insufficient"
            if reason:
                result.rejected[reason] = result.rejected.get(reason, 0) + 1
                continue
            cache[sender] = (balance - amount, expected + 1)
            to_balance, to_nonce = account(recipient)
            cache[recipient] = (to_balance + amount, to_nonce)
            changed.update((sender, recipient))
            result.applied += 1
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO accounts (addr, balance, nonce) VALUES (?, ?, ?) ON CONFLICT(addr)"
                " DO UPDATE SET balance = excluded.balance, nonce = excluded.nonce",
                [(addr, *cache[addr]) for addr in sorted(changed)],
            )
            self.db.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (height, digest, parent, time, len(txs), result.applied,
                 sum(result.rejected.values())),
            )
        self.height, self.head = height, digest
        self.touched.update(changed)
        self.txs_applied += result.applied
        for reason, count in result.rejected.items():
            self.txs_rejected[reason] = self.txs_rejected.get(reason, 0) + count
        if height % self.epoch_blocks == 0:
            result.snapshot = self._snapshot(height)
        return result

    def _snapshot(self, height: int) -> dict[str, Any]:
        epoch = height // self.epoch_blocks
        rows = [(addr, *self._account(addr)) for addr in sorted(self.touched)]
        root = protocol.snapshot_root(rows)
        sig = self.node_key.sign(protocol.snapshot_bytes(epoch, root)).signature.hex()
        first = height - self.epoch_blocks + 1
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?, ?)",
                (epoch, first, height, root, len(rows), sig),
            )
        self.touched.clear()
        node = self.node_key.verify_key.encode().hex()
        return {"type": "snapshot", "epoch": epoch, "first": first, "last": height,
                "root": root, "accounts": len(rows), "node": node, "sig": sig}

    # --- reads (RPC) ---------------------------------------------------------------------

    def get_balance(self, addr: str) -> dict[str, Any]:
        balance, nonce = self._account(addr)
        return {"account": addr, "balance": balance, "nonce": nonce, "height": self.height}

    def get_block(self, height: int | None) -> dict[str, Any] | None:
        target = self.height if height is None else height
        row = self.db.execute("SELECT * FROM blocks WHERE height = ?", (target,)).fetchone()
        if row is None:
            return None
        keys = ("height", "hash", "parent", "time", "txs", "applied", "rejected")
        return dict(zip(keys, row, strict=True))

    def get_snapshot(self, epoch: int | None) -> dict[str, Any] | None:
        if epoch is None:
            row = self.db.execute("SELECT * FROM snapshots ORDER BY epoch DESC LIMIT 1")
        else:
            row = self.db.execute("SELECT * FROM snapshots WHERE epoch = ?", (epoch,))
        found = row.fetchone()
        if found is None:
            return None
        keys = ("epoch", "first", "last", "root", "accounts", "sig")
        return dict(zip(keys, found, strict=True))
