"""Read-heavy JSON-RPC load on the node: an open-loop arrival rate over keep-alive connections.

Like k6's ``constant-arrival-rate`` executor: a request starts every ``1/rate`` seconds whatever
the latency; when all ``connections`` are busy the iteration is dropped and counted
(``dropped_iterations``), so a slow runtime shows up as latency and drops, not as a lower rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from typing import Any

from isobench.workloads.validator.stats import LatencyHistogram


class RpcError(Exception):
    """A JSON-RPC call failed (transport, HTTP status or JSON-RPC error)."""


class RpcConnection:
    """One keep-alive HTTP/1.1 connection to the node's JSON-RPC endpoint."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = 0

    async def call(self, method: str, params: Any = None, timeout: float = 10.0) -> Any:
        """The ``result`` of one call; RpcError on any failure (the connection is then reset)."""
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method,
                           "params": params if params is not None else {}}).encode()
        try:
            return await asyncio.wait_for(self._roundtrip(body), timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.close()
            raise RpcError(f"{method}: {type(exc).__name__}: {exc}") from exc

    async def _roundtrip(self, body: bytes) -> Any:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self._writer.write(head.encode() + body)
        await self._writer.drain()
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        payload = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        if status != 200:
            raise ValueError(f"HTTP {status}")
        reply = json.loads(payload)
        if reply.get("error"):
            raise ValueError(f"JSON-RPC error {reply['error']}")
        return reply.get("result")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class RpcLoad:
    """The RPC read mix at a fixed arrival rate.

    Args:
        host, port: the node.
        rate: requests per second (0: no load).
        connections: most requests in flight (k6's maxVUs).
        accounts: addresses to query balances of.
        height: callable giving the highest applied block height (for ``getBlock``).
        seed: makes the request mix reproducible.
    """

    def __init__(self, host: str, port: int, rate: float, connections: int,
                 accounts: list[str], height: Callable[[], int], seed: int = 0) -> None:
        self.rate, self.accounts, self.height = rate, accounts, height
        self.rng = random.Random(seed + 1)
        self.conns = [RpcConnection(host, port) for _ in range(max(connections, 1))]
        self.idle: asyncio.Queue[RpcConnection] = asyncio.Queue()
        for conn in self.conns:
            self.idle.put_nowait(conn)
        self.latency = LatencyHistogram()
        self.ok = 0
        self.failed = 0
        self.dropped = 0
        self.errors: dict[str, int] = {}
        self._inflight: set[asyncio.Task[None]] = set()

    def _request(self) -> tuple[str, Any]:
        draw = self.rng.random()
        if draw < 0.6:
            return "getBalance", {"account": self.rng.choice(self.accounts)}
        if draw < 0.85:
            top = self.height()
            return "getBlock", {"height": self.rng.randint(1, top)} if top else {}
        if draw < 0.95:
            return "getSnapshot", {}
        return "status", {}

    async def _one(self, conn: RpcConnection, method: str, params: Any) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            await conn.call(method, params)
        except RpcError as exc:
            self.failed += 1
            key = str(exc).split(":")[1].strip() if ":" in str(exc) else str(exc)
            self.errors[key] = self.errors.get(key, 0) + 1
        else:
            self.ok += 1
        finally:
            self.latency.record(loop.time() - start)
            self.idle.put_nowait(conn)

    async def run(self, duration: float) -> None:
        """Issue requests for ``duration`` seconds, then wait for those in flight."""
        if self.rate <= 0:
            await asyncio.sleep(duration)
            return
        loop = asyncio.get_running_loop()
        start, i = loop.time(), 0
        while True:
            at = start + i / self.rate
            if at >= start + duration:
                break
            await asyncio.sleep(max(at - loop.time(), 0))
            i += 1
            try:
                conn = self.idle.get_nowait()
            except asyncio.QueueEmpty:
                self.dropped += 1
                continue
            method, params = self._request()
            task = asyncio.create_task(self._one(conn, method, params))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=15)

    def close(self) -> None:
        for task in self._inflight:
            task.cancel()
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.close()
