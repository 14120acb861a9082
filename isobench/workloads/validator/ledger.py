"""The driver's model of the chain: deterministic keys, signed blocks, expected state.

The block producer builds every block here. Because it knows which transactions it forged, it
also knows the exact state the node must reach, the snapshot root of every epoch and every
balance, so the driver can check the node's answers instead of trusting them.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey

from isobench.workloads.validator.node import protocol


def derive_key(seed: int, role: str, index: int) -> SigningKey:
    """The deterministic ed25519 key of ``role`` number ``index`` under ``seed``."""
    return SigningKey(hashlib.sha256(f"isobench-validator|{seed}|{role}|{index}".encode()).digest())


@dataclass
class BuiltBlock:
    """A block ready to send, and what the node must do with it."""

    height: int
    hash: str
    frame: bytes
    valid: int
    forged: int
    snapshot: tuple[int, str] | None = None
    """(epoch, expected root) when this block closes an epoch."""


@dataclass
class Ledger:
    """Accounts, the producer's key and the expected state.

    Args:
        seed: makes keys and the transaction stream reproducible.
        accounts: number of funded accounts that send and receive.
        forged_fraction: share of transactions carrying an invalid signature.
        epoch_blocks: blocks per snapshot epoch (the node announces its own value).
    """

    seed: int = 0
    accounts: int = 1000
    forged_fraction: float = 0.02
    epoch_blocks: int = 10
    keys: list[SigningKey] = field(init=False, repr=False)
    addrs: list[str] = field(init=False, repr=False)
    balances: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    nonces: dict[str, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.accounts < 2:
            raise ValueError("at least 2 accounts are needed")
        if not 0 <= self.forged_fraction <= 1:
            raise ValueError("forged_fraction must be within 0..1")
        self.keys = [derive_key(self.seed, "account", i) for i in range(self.accounts)]
        self.addrs = [k.verify_key.encode().hex() for k in self.keys]
        self.producer = derive_key(self.seed, "producer", 0)
        self.attacker = derive_key(self.seed, "attacker", 0)
        self.rng = random.Random(self.seed)
        self.height = 0
        self.head = protocol.GENESIS_PARENT
        self.touched: set[str] = set()
        self.forged_total = 0
        self.valid_total = 0
        self._forge_carry = 0.0

    def account(self, addr: str) -> tuple[int, int]:
        """Expected (balance, nonce) of an address."""
        return self.balances.get(addr, protocol.GENESIS_BALANCE), self.nonces.get(addr, 0)

    def _transfer(self, forge: bool) -> dict[str, Any]:
        src, dst = self.rng.sample(range(self.accounts), 2)
        sender, recipient = self.addrs[src], self.addrs[dst]
        amount = self.rng.randint(1, 1000)
        balance, nonce = self.account(sender)
        message = protocol.tx_bytes(sender, recipient, amount, nonce)
        if not forge:
            sig = self.keys[src].sign(message).signature.hex()
            self.balances[sender], self.nonces[sender] = balance - amount, nonce + 1
            self.balances[recipient] = self.account(recipient)[0] + amount
            self.touched.update((sender, recipient))
        elif self.rng.random() < 0.5:
            sig = self.attacker.sign(message).signature.hex()  # someone else's key
        else:
            sig = self.keys[src].sign(message).signature.hex()  # signed, then tampered with
            amount += 1
        return {"from": sender, "to": recipient, "amount": amount, "nonce": nonce, "sig": sig}

    def next_block(self, n_txs: int) -> BuiltBlock:
        """Build, sign and account for the next block of ``n_txs`` transactions."""
        self._forge_carry += n_txs * self.forged_fraction
        n_forged = min(int(self._forge_carry), n_txs)
        self._forge_carry -= n_forged
        forged_at = set(self.rng.sample(range(n_txs), n_forged))
        txs = [self._transfer(i in forged_at) for i in range(n_txs)]
        height = self.height + 1
        stamp = round(time.time(), 6)
        digest = protocol.block_hash(height, self.head, stamp, protocol.tx_root(txs))
        sig = self.producer.sign(bytes.fromhex(digest)).signature.hex()
        frame = protocol.encode_frame({
            "type": "block", "height": height, "parent": self.head, "time": stamp,
            "txs": txs, "hash": digest, "sig": sig,
        })
        self.height, self.head = height, digest
        self.forged_total += n_forged
        self.valid_total += n_txs - n_forged
        built = BuiltBlock(height, digest, frame, n_txs - n_forged, n_forged)
        if height % self.epoch_blocks == 0:
            rows = [(addr, *self.account(addr)) for addr in self.touched]
            built.snapshot = (height // self.epoch_blocks, protocol.snapshot_root(rows))
            self.touched = set()
        return built

    @property
    def producer_pub(self) -> str:
        return str(self.producer.verify_key.encode().hex())
