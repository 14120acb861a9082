"""The node's chain rules against the driver's model (no network: Chain and Ledger directly)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from isobench.workloads.validator.ledger import Ledger, derive_key
from isobench.workloads.validator.node import protocol
from isobench.workloads.validator.node.chain import Chain


def block_of(frame: bytes) -> dict:
    return json.loads(frame[4:])


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Chain, Ledger]]:
    ledger = Ledger(seed=3, accounts=50, forged_fraction=0.1, epoch_blocks=5)
    chain = Chain(tmp_path / "state.db", derive_key(3, "node", 0), epoch_blocks=5)
    yield chain, ledger
    chain.close()


def test_blocks_apply_and_forged_txs_are_rejected_exactly(pair: tuple[Chain, Ledger]) -> None:
    chain, ledger = pair
    forged = 0
    for _ in range(12):
        built = ledger.next_block(40)
        result = chain.apply_block(block_of(built.frame), ledger.producer_pub)
        assert result.ok, result.error
        assert result.applied == built.valid
        assert result.rejected == ({"bad_sig": built.forged} if built.forged else {})
        forged += built.forged
        if built.snapshot is not None:
            assert result.snapshot is not None
            assert (result.snapshot["epoch"], result.snapshot["root"]) == built.snapshot
        else:
            assert result.snapshot is None
    assert forged == ledger.forged_total == 48  # 12 blocks x 40 txs x 0.1, exactly
    assert chain.txs_rejected == {"bad_sig": 48}
    for addr in ledger.addrs:
        got = chain.get_balance(addr)
        assert (got["balance"], got["nonce"]) == ledger.account(addr)
    head, latest = chain.get_block(None), chain.get_snapshot(None)
    first, second = chain.get_snapshot(1), chain.get_snapshot(2)
    assert head is not None and head["height"] == 12
    assert latest is not None and latest["epoch"] == 2
    assert first is not None and second is not None and first["root"] != second["root"]


def test_block_out_of_order_or_badly_signed_is_refused(pair: tuple[Chain, Ledger]) -> None:
    chain, ledger = pair
    first, second = ledger.next_block(5), ledger.next_block(5)
    refused = chain.apply_block(block_of(second.frame), ledger.producer_pub)
    assert not refused.ok and "next block" in str(refused.error)
    impostor = derive_key(9, "producer", 0).verify_key.encode().hex()
    refused = chain.apply_block(block_of(first.frame), impostor)
    assert not refused.ok and "signature" in str(refused.error)
    tampered = block_of(first.frame)
    tampered["txs"][0]["amount"] += 1
    refused = chain.apply_block(tampered, ledger.producer_pub)
    assert not refused.ok and "hash" in str(refused.error)
    assert chain.height == 0
    assert chain.apply_block(block_of(first.frame), ledger.producer_pub).ok
    assert chain.apply_block(block_of(second.frame), ledger.producer_pub).ok


def test_replayed_transaction_fails_on_nonce(pair: tuple[Chain, Ledger]) -> None:
    chain, ledger = pair
    ledger.forged_fraction = 0.0
    built = ledger.next_block(3)
    assert chain.apply_block(block_of(built.frame), ledger.producer_pub).applied == 3
    replay = block_of(built.frame)
    txs = replay["txs"]
    digest = protocol.block_hash(2, chain.head, replay["time"], protocol.tx_root(txs))
    sig = ledger.producer.sign(bytes.fromhex(digest)).signature.hex()
    replay.update(height=2, parent=chain.head, hash=digest, sig=sig)
    result = chain.apply_block(replay, ledger.producer_pub)
    assert result.ok and result.applied == 0 and result.rejected == {"bad_nonce": 3}
