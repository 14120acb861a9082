"""The validator node: one TCP port for JSON-RPC, health and the gossip stream.

Routes on the one port:

* ``GET /healthz`` → ``200 {"ok": true, "height": H}``.
* ``POST /`` → JSON-RPC 2.0: ``getBlock {height?}``, ``getBalance {account}``,
  ``getSnapshot {epoch?}``, ``status``.
* ``GET /gossip`` with ``Connection: Upgrade``, ``Upgrade: isobench-gossip/1`` and the headers
  ``X-Gossip-Role`` (producer | peer | collector), ``X-Gossip-Id`` and ``X-Gossip-Key`` (the
  connecting side's ed25519 public key, hex) → ``101``, then length-prefixed JSON frames both
  ways (``protocol.py``). The node first sends ``welcome``. Then:

  - producer → ``block``; node → producer ``ack`` once the block is applied (or refused).
  - node → every peer: each applied block (the producer's frame, unchanged) and every other
    peer's ``attest``; peer → node: ``attest`` (verified, then re-gossiped) and ``ping``
    (answered ``pong``).
  - node → collector: a signed ``snapshot`` each epoch (queued until a collector is connected).

The node never connects out: the chain reaches it, so it needs nothing from its host but the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from . import httpio, protocol
from .chain import Chain, verify_sig

log = logging.getLogger("validator")


@dataclass(frozen=True)
class NodeConfig:
    """Node settings, from ``VALIDATOR_*`` environment variables."""

    block_time: float = 1.0
    epoch_blocks: int = 10
    data_dir: Path = Path("/tmp/validator")
    seed: str = "validator-node-0"
    send_queue: int = 2000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> NodeConfig:
        env = dict(os.environ if env is None else env)
        return cls(
            block_time=float(env.get("VALIDATOR_BLOCK_TIME", "1.0")),
            epoch_blocks=int(env.get("VALIDATOR_EPOCH_BLOCKS", "10")),
            data_dir=Path(env.get("VALIDATOR_DATA_DIR", "/tmp/validator")),
            seed=env.get("VALIDATOR_SEED", "validator-node-0"),
            send_queue=int(env.get("VALIDATOR_SEND_QUEUE", "2000")),
        )


class Conn:
    """One gossip stream: its role, its key and a bounded send queue drained by a task."""

    def __init__(self, role: str, ident: str, key: str, writer: asyncio.StreamWriter,
                 limit: int) -> None:
        self.role, self.ident, self.key, self.writer = role, ident, key, writer
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=limit)
        self.dropped = 0
        self.task = asyncio.create_task(self._pump())

    def send(self, frame: bytes) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _pump(self) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while True:
                chunks = [await self.queue.get()]
                while not self.queue.empty():
                    chunks.append(self.queue.get_nowait())
                self.writer.write(b"".join(chunks))
                await self.writer.drain()

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.writer.close()


class Node:
    """The validator node; ``await node.run(host, port)`` serves until SIGTERM/SIGINT."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        seed = hashlib.sha256(config.seed.encode()).digest()
        self.key = SigningKey(seed)
        self.pub = self.key.verify_key.encode().hex()
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validator-db")
        self.chain = Chain(config.data_dir / "state.db", self.key, config.epoch_blocks)
        self.conns: set[Conn] = set()
        self.blocks: asyncio.Queue[tuple[dict[str, Any], bytes, Conn]] = asyncio.Queue()
        self.pending_snapshots: list[bytes] = []
        self.counters: dict[str, int] = {
            "blocks_received": 0, "blocks_applied": 0, "blocks_refused": 0, "attest_ok": 0,
            "attest_bad": 0, "pings": 0, "snapshots": 0, "rpc": 0, "unknown_frames": 0,
            "stalled_slots": 0,
        }
        self.started = time.monotonic()
        self.last_block_at = time.monotonic()

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await asyncio.start_server(self.handle, host, port, limit=httpio.MAX_BODY * 2)
        tasks = [asyncio.create_task(self._apply_loop()), asyncio.create_task(self._ticker())]
        log.info("validator node %s listening on %s:%d", self.pub[:16], host, port)
        try:
            await stop.wait()
        finally:
            server.close()
            for task in tasks:
                task.cancel()
            for conn in list(self.conns):
                await conn.close()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.run_in_executor(self.db, self.chain.close)
            self.db.shutdown(wait=True)

    async def _ticker(self) -> None:
        """Slot clock: counts slots in which a connected producer delivered no block."""
        while True:
            await asyncio.sleep(self.config.block_time)
            idle = time.monotonic() - self.last_block_at
            if idle > 2 * self.config.block_time and self._role("producer"):
                self.counters["stalled_slots"] += 1

    def _role(self, role: str) -> list[Conn]:
        return [c for c in self.conns if c.role == role]

    # --- connections ---------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await httpio.read_request(reader)
                except httpio.HttpError as exc:
                    writer.write(httpio.json_response(exc.status, {"error": str(exc)},
                                                      keep_alive=False))
                    break
                if request is None:
                    break
                if request.path == protocol.GOSSIP_PATH and request.method == "GET":
                    await self._gossip(request, reader, writer)
                    return
                writer.write(await self._route(request))
                await writer.drain()
                if not request.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _route(self, request: httpio.Request) -> bytes:
        keep = request.keep_alive
        if request.path == "/healthz":
            if request.method != "GET":
                return httpio.json_response(405, {"error": "use GET"}, keep_alive=keep)
            return httpio.json_response(200, {"ok": True, "height": self.chain.height},
                                        keep_alive=keep)
        if request.path == "/":
            if request.method != "POST":
                return httpio.json_response(405, {"error": "use POST"}, keep_alive=keep)
            return httpio.json_response(200, await self._rpc(request.body), keep_alive=keep)
        return httpio.json_response(404, {"error": "not found"}, keep_alive=keep)

    # --- JSON-RPC ------------------------------------------------------------------------

    async def _rpc(self, body: bytes) -> Any:
        try:
            call = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _rpc_error(None, -32700, "parse error")
        if isinstance(call, list):
            return [await self._rpc_one(c) for c in call]
        return await self._rpc_one(call)

    async def _rpc_one(self, call: Any) -> dict[str, Any]:
        self.counters["rpc"] += 1
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return _rpc_error(None, -32600, "invalid request")
        ident, method, params = call.get("id"), call["method"], call.get("params") or {}
        first = params[0] if isinstance(params, list) and params else None

        def param(name: str) -> Any:
            return params.get(name) if isinstance(params, dict) else first

        loop = asyncio.get_running_loop()
        try:
            if method == "status":
                result: Any = self.status()
            elif method == "getBalance":
                account = param("account")
                if not isinstance(account, str) or len(account) != 64:
                    return _rpc_error(ident, -32602, "account must be a 64-hex-digit key")
                result = await loop.run_in_executor(self.db, self.chain.get_balance, account)
            elif method == "getBlock":
                height = param("height")
                height = None if height in (None, "latest") else int(height)
                result = await loop.run_in_executor(self.db, self.chain.get_block, height)
            elif method == "getSnapshot":
                epoch = param("epoch")
                epoch = None if epoch in (None, "latest") else int(epoch)
                result = await loop.run_in_executor(self.db, self.chain.get_snapshot, epoch)
            else:
                return _rpc_error(ident, -32601, f"method not found: {method}")
        except (TypeError, ValueError) as exc:
            return _rpc_error(ident, -32602, f"invalid params: {exc}")
        return {"jsonrpc": "2.0", "id": ident, "result": result}

    def status(self) -> dict[str, Any]:
        roles: dict[str, int] = {}
        for conn in self.conns:
            roles[conn.role] = roles.get(conn.role, 0) + 1
        return {
            "node": self.pub, "height": self.chain.height, "head": self.chain.head,
            "txs_applied": self.chain.txs_applied, "txs_rejected": dict(self.chain.txs_rejected),
            "connections": roles, "dropped_frames": sum(c.dropped for c in self.conns),
            "uptime": round(time.monotonic() - self.started, 3), **self.counters,
        }

    # --- gossip --------------------------------------------------------------------------

    async def _gossip(self, request: httpio.Request, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        headers = request.headers
        role, key = headers.get("x-gossip-role", ""), headers.get("x-gossip-key", "")
        upgrade_ok = (headers.get("upgrade", "").lower() == protocol.UPGRADE_TOKEN
                      and "upgrade" in headers.get("connection", "").lower())
        key_ok = len(key) == 64 and all(ch in "0123456789abcdef" for ch in key.lower())
        if not upgrade_ok or role not in protocol.ROLES or (role != "collector" and not key_ok):
            writer.write(httpio.json_response(400, {"error": "bad gossip upgrade request"},
                                              keep_alive=False))
            await writer.drain()
            return
        writer.write(httpio.switching_protocols(protocol.UPGRADE_TOKEN))
        conn = Conn(role, headers.get("x-gossip-id", role), key.lower(), writer,
                    self.config.send_queue)
        self.conns.add(conn)
        conn.send(protocol.encode_frame({
            "type": "welcome", "node": self.pub, "height": self.chain.height,
            "head": self.chain.head, "epoch_blocks": self.config.epoch_blocks,
            "block_time": self.config.block_time,
        }))
        if role == "collector":
            for frame in self.pending_snapshots:
                conn.send(frame)
            self.pending_snapshots.clear()
        try:
            while True:
                message, raw = await protocol.read_frame(reader)
                self._dispatch(conn, message, raw)
        except (asyncio.IncompleteReadError, ConnectionError, protocol.FrameError):
            pass
        finally:
            self.conns.discard(conn)
            await conn.close()

    def _dispatch(self, conn: Conn, message: dict[str, Any], raw: bytes) -> None:
        kind = message["type"]
        if kind == "block" and conn.role == "producer":
            self.counters["blocks_received"] += 1
            self.last_block_at = time.monotonic()
            self.blocks.put_nowait((message, raw, conn))
        elif kind == "attest" and conn.role == "peer":
            try:
                signed = protocol.attest_bytes(int(message["height"]), str(message["hash"]))
                good = verify_sig(conn.key, signed, str(message["sig"]))
            except (KeyError, TypeError, ValueError):
                good = False
            if not good:
                self.counters["attest_bad"] += 1
                return
            self.counters["attest_ok"] += 1
            for other in self._role("peer"):
                if other is not conn:
                    other.send(raw)
        elif kind == "ping":
            self.counters["pings"] += 1
            conn.send(protocol.encode_frame({"type": "pong", "seq": message.get("seq"),
                                             "height": self.chain.height}))
        else:
            self.counters["unknown_frames"] += 1

    async def _apply_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            block, raw, producer = await self.blocks.get()
            result = await loop.run_in_executor(self.db, self.chain.apply_block, block,
                                                producer.key)
            self.counters["blocks_applied" if result.ok else "blocks_refused"] += 1
            if result.ok:
                for peer in self._role("peer"):
                    peer.send(raw)
            producer.send(protocol.encode_frame({
                "type": "ack", "height": result.height, "hash": result.hash, "ok": result.ok,
                "error": result.error, "applied": result.applied, "rejected": result.rejected,
                "backlog": self.blocks.qsize(),
            }))
            if result.snapshot is not None:
                self.counters["snapshots"] += 1
                frame = protocol.encode_frame(result.snapshot)
                collectors = self._role("collector")
                for collector in collectors:
                    collector.send(frame)
                if not collectors:
                    self.pending_snapshots = [*self.pending_snapshots[-99:], frame]


def _rpc_error(ident: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}
