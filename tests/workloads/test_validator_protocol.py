"""Unit tests of the validator's gossip framing and canonical hashing."""

from __future__ import annotations

import asyncio
import struct

import pytest

from isobench.workloads.validator.node import protocol


def messages() -> list[dict]:
    return [{"type": "ping", "seq": i, "pad": "x" * (i * 37)} for i in range(20)]


def test_frame_roundtrip_in_any_chunking() -> None:
    stream = b"".join(protocol.encode_frame(m) for m in messages())
    for chunk in (1, 2, 3, 7, 64, 1000, len(stream)):
        decoder = protocol.FrameDecoder()
        out: list[dict] = []
        for i in range(0, len(stream), chunk):
            out.extend(decoder.feed(stream[i : i + chunk]))
        assert out == messages()
        assert decoder.pending == 0


def test_partial_frame_waits_for_the_rest() -> None:
    frame = protocol.encode_frame({"type": "ack", "height": 3})
    decoder = protocol.FrameDecoder()
    assert list(decoder.feed(frame[:-1])) == []
    assert decoder.pending == len(frame) - 1
    assert list(decoder.feed(frame[-1:])) == [{"type": "ack", "height": 3}]


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">I", 0),
        struct.pack(">I", protocol.MAX_FRAME + 1),
        struct.pack(">I", 3) + b"abc",
        struct.pack(">I", 2) + b"[]",
        struct.pack(">I", 11) + b'{"type": 5}',
        struct.pack(">I", 2) + b"\xff\xfe",
    ],
)
def test_bad_frames_are_refused(data: bytes) -> None:
    with pytest.raises(protocol.FrameError):
        list(protocol.FrameDecoder().feed(data))


def test_read_frame_returns_message_and_raw_bytes() -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader()
        frames = [protocol.encode_frame(m) for m in messages()[:3]]
        reader.feed_data(b"".join(frames))
        reader.feed_eof()
        for want, frame in zip(messages()[:3], frames, strict=True):
            got, raw = await protocol.read_frame(reader)
            assert got == want
            assert raw == frame
        with pytest.raises(asyncio.IncompleteReadError):
            await protocol.read_frame(reader)

    asyncio.run(scenario())


def test_encode_refuses_oversize() -> None:
    with pytest.raises(protocol.FrameError):
        protocol.encode_frame({"type": "x", "blob": "a" * protocol.MAX_FRAME})


def test_canonical_hashes() -> None:
    tx = {"from": "a" * 64, "to": "b" * 64, "amount": 5, "nonce": 0, "sig": "00" * 64}
    other = dict(tx, amount=6)
    assert protocol.tx_id(tx) != protocol.tx_id(other)
    assert protocol.tx_root([tx, other]) != protocol.tx_root([other, tx])
    h1 = protocol.block_hash(1, protocol.GENESIS_PARENT, 1.5, protocol.tx_root([tx]))
    assert h1 == protocol.block_hash(1, protocol.GENESIS_PARENT, 1.5000001, protocol.tx_root([tx]))
    assert h1 != protocol.block_hash(2, protocol.GENESIS_PARENT, 1.5, protocol.tx_root([tx]))
    rows = [("b" * 64, 10, 1), ("a" * 64, 3, 0)]
    assert protocol.snapshot_root(rows) == protocol.snapshot_root(list(reversed(rows)))
    assert protocol.snapshot_root(rows) != protocol.snapshot_root(rows[:1])


def test_upgrade_request_names_role_and_key() -> None:
    raw = protocol.upgrade_request("peer", "peer-1", "ab" * 32).decode()
    assert raw.startswith("GET /gossip HTTP/1.1\r\n")
    assert f"Upgrade: {protocol.UPGRADE_TOKEN}\r\n" in raw
    assert "X-Gossip-Role: peer\r\n" in raw and raw.endswith("\r\n\r\n")
