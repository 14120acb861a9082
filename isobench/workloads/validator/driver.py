"""Host side of the validator workload: plays the rest of the chain through 127.0.0.1 only.

One asyncio loop runs a block producer (real ed25519 keys and signatures, deterministic seed,
a share of forged transactions), ``peers`` gossip peers that connect in (attest every block
they get, ping), the snapshot collector (checks every epoch's root against the driver's own
model) and a read-heavy JSON-RPC load. All connections go IN to the node's one port.

Measured (k6-style summary, durations in ms): ``validator_block_lag`` (block sent → node's ack
of applied), ``validator_blocks_applied`` / ``_missed`` (no ack of applied within
``block_deadline``), ``validator_forged_rejected``, ``validator_snapshot_latency`` (last block of
the epoch sent → signed snapshot received), ``validator_gossip_lag``, ``validator_ping_rtt``,
``http_reqs`` / ``http_req_duration`` / ``http_req_failed`` of the RPC load, and checks of the
node's answers (``validator_tx_mismatch``, ``validator_snapshots_invalid``,
``validator_balance_mismatch``) that must stay 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from isobench.errors import IsobenchError
from isobench.util.clientnet import own_endpoint
from isobench.workloads.validator.ledger import Ledger, derive_key
from isobench.workloads.validator.node import protocol
from isobench.workloads.validator.node.chain import verify_sig
from isobench.workloads.validator.rpcload import RpcConnection, RpcError, RpcLoad
from isobench.workloads.validator.scenario import ChainScenario
from isobench.workloads.validator.stats import LatencyHistogram
from isobench.workloads.validator.summary import (
    ReplicaResult,
    RpcOutcome,
    envelope,
    summarize,
)

Progress = Callable[[dict[str, Any]], None]


class ValidatorDriveError(IsobenchError):
    """The node could not be driven (unreachable, refused the gossip upgrade, went away)."""


class GossipLink:
    """One gossip stream to the node, opened by the HTTP upgrade; counts bytes both ways."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 welcome: dict[str, Any]) -> None:
        self.reader, self.writer, self.welcome = reader, writer, welcome
        self.bytes_in = 0
        self.bytes_out = 0

    @classmethod
    async def open(cls, host: str, port: int, role: str, ident: str, key: str,
                   timeout: float = 10.0) -> GossipLink:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.write(protocol.upgrade_request(role, ident, key, host=f"{host}:{port}"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            if not head.startswith(b"HTTP/1.1 101"):
                writer.close()
                raise ValidatorDriveError(
                    f"node refused the gossip upgrade: {head.splitlines()[0].decode()!r}",
                    fix="check that the endpoint runs the isobench validator node")
            welcome, raw = await asyncio.wait_for(protocol.read_frame(reader), timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise ValidatorDriveError(f"cannot open a gossip stream to {host}:{port}: {exc!r}",
                                      fix="check that the node is up (GET /healthz)") from exc
        link = cls(reader, writer, welcome)
        link.bytes_in = len(head) + len(raw)
        return link

    async def recv(self) -> dict[str, Any]:
        message, raw = await protocol.read_frame(self.reader)
        self.bytes_in += len(raw)
        return message

    async def send(self, frame: bytes) -> None:
        self.writer.write(frame)
        self.bytes_out += len(frame)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


class ChainDriver:
    """Drives one node for one scenario; ``await run()`` returns the k6-style summary.

    After the run, ``ledger`` holds the expected chain state (tests compare the node to it).
    Given the ``ledger`` of an earlier drive of the same node (the trial's warm-up), the
    driver continues that chain; a node that holds blocks it does not know is refused.
    """

    def __init__(self, endpoint: str, scenario: ChainScenario,
                 on_progress: Progress | None = None, ledger: Ledger | None = None) -> None:
        self.host, self.port = own_endpoint(endpoint, "validator endpoint")
        self.endpoint = endpoint
        self.sc = scenario
        self.on_progress = on_progress
        self.ledger = ledger if ledger is not None and fits(ledger, scenario) else (
            new_ledger(scenario))
        self.forged_before = self.ledger.forged_total
        self.sent_at: dict[int, float] = {}
        self.expected: dict[int, tuple[int, int]] = {}
        self.roots: dict[int, tuple[int, str]] = {}
        self.block_lag = LatencyHistogram()
        self.snapshot_latency = LatencyHistogram()
        self.gossip_lag = LatencyHistogram()
        self.ping_rtt = LatencyHistogram()
        self.n = dict.fromkeys((
            "sent", "applied", "on_time", "refused", "txs_applied", "forged_rejected",
            "tx_mismatch", "snapshots", "snapshots_invalid", "attest_received", "pongs",
            "balance_checked", "balance_mismatch"), 0)
        self.acked_height = 0
        self.snapshot_epochs: set[int] = set()
        self.links: list[GossipLink] = []
        self.node_pub = ""
        self.rpc: RpcLoad | None = None
        self.start: float | None = None
        self._done = asyncio.Event()

    # --- actors --------------------------------------------------------------------------

    async def _produce(self, producer: GossipLink, start: float) -> None:
        loop = asyncio.get_running_loop()
        blocks = int(self.sc.duration / self.sc.block_time + 1e-9)
        for i in range(blocks):
            await asyncio.sleep(max(start + i * self.sc.block_time - loop.time(), 0))
            built = self.ledger.next_block(self.sc.txs_per_block)
            self.expected[built.height] = (built.valid, built.forged)
            if built.snapshot is not None:
                self.roots[built.snapshot[0]] = (built.height, built.snapshot[1])
            self.sent_at[built.height] = loop.time()
            self.n["sent"] += 1
            await producer.send(built.frame)

    async def _acks(self, producer: GossipLink) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                ack = await producer.recv()
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                if self._done.is_set():
                    return
                raise ValidatorDriveError(
                    f"node closed the producer stream after block {self.acked_height}",
                    fix="see the node's log (it may have crashed or run out of memory)") from exc
            if ack.get("type") != "ack":
                continue
            height = int(ack["height"])
            lag = loop.time() - self.sent_at.get(height, loop.time())
            if not ack.get("ok"):
                self.n["refused"] += 1
                continue
            self.block_lag.record(lag)
            self.n["applied"] += 1
            self.n["on_time"] += lag <= self.sc.block_deadline
            self.acked_height = max(self.acked_height, height)
            rejected = dict(ack.get("rejected") or {})
            valid, forged = self.expected.get(height, (-1, -1))
            self.n["txs_applied"] += int(ack.get("applied", 0))
            bad_sig = int(rejected.pop("bad_sig", 0))
            self.n["forged_rejected"] += bad_sig
            wrong = int(ack.get("applied", -1)) != valid or bad_sig != forged
            if wrong or sum(rejected.values()) != 0:
                self.n["tx_mismatch"] += 1

    async def _collect(self, collector: GossipLink) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                snap = await collector.recv()
                if snap.get("type") != "snapshot":
                    continue
                epoch, root = int(snap["epoch"]), str(snap["root"])
                last, expected = self.roots.get(epoch, (-1, ""))
                signed = verify_sig(self.node_pub, protocol.snapshot_bytes(epoch, root),
                                    str(snap.get("sig", "")))
                if not signed or root != expected or epoch in self.snapshot_epochs:
                    self.n["snapshots_invalid"] += 1
                    continue
                self.snapshot_epochs.add(epoch)
                self.n["snapshots"] += 1
                self.snapshot_latency.record(loop.time() - self.sent_at.get(last, loop.time()))

    async def _peer(self, link: GossipLink, index: int) -> None:
        loop = asyncio.get_running_loop()
        key = derive_key(self.sc.seed, "peer", index)
        pings: dict[int, float] = {}

        async def pinger() -> None:
            seq = 0
            with contextlib.suppress(ConnectionError):
                while True:
                    seq += 1
                    pings[seq] = loop.time()
                    await link.send(protocol.encode_frame({"type": "ping", "seq": seq}))
                    await asyncio.sleep(self.sc.ping_interval)

        task = asyncio.create_task(pinger()) if self.sc.ping_interval > 0 else None
        try:
            while True:
                msg = await link.recv()
                kind = msg.get("type")
                if kind == "block":
                    height, digest = int(msg["height"]), str(msg["hash"])
                    self.gossip_lag.record(loop.time() - self.sent_at.get(height, loop.time()))
                    sig = key.sign(protocol.attest_bytes(height, digest)).signature.hex()
                    await link.send(protocol.encode_frame(
                        {"type": "attest", "height": height, "hash": digest, "sig": sig,
                         "peer": index}))
                elif kind == "attest":
                    self.n["attest_received"] += 1
                elif kind == "pong":
                    sent = pings.pop(int(msg.get("seq") or 0), None)
                    if sent is not None:
                        self.ping_rtt.record(loop.time() - sent)
                        self.n["pongs"] += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if task is not None:
                task.cancel()

    def progress(self, now: float) -> dict[str, Any]:
        """The running figures at loop time ``now`` (what ``on_progress`` gets about 1/s)."""
        rpc = self.rpc
        elapsed = now - self.start if self.start is not None else 0.0
        reqs = (rpc.ok + rpc.failed) if rpc else 0
        return {
            "elapsed": round(elapsed, 1), "reqs": reqs, "rate": reqs / max(elapsed, 1e-9),
            "blocks_sent": self.n["sent"],
            "blocks_applied": self.n["applied"],
            "blocks_late": self.n["applied"] - self.n["on_time"],
            "block_lag_p95_ms": round(self.block_lag.trend_ms()["p(95)"], 2),
            "snapshots": self.n["snapshots"],
            "rpc_failed": rpc.failed if rpc else 0,
        }

    async def _progress(self) -> None:
        loop = asyncio.get_running_loop()
        while self.on_progress is not None:
            await asyncio.sleep(1.0)
            self.on_progress(self.progress(loop.time()))

    # --- run -----------------------------------------------------------------------------

    async def _check_balances(self, sample: int = 20) -> None:
        conn = RpcConnection(self.host, self.port)
        addrs = sorted(self.ledger.balances)
        step = max(len(addrs) // sample, 1)
        try:
            for addr in addrs[::step][:sample]:
                got = await conn.call("getBalance", {"account": addr})
                self.n["balance_checked"] += 1
                if (got["balance"], got["nonce"]) != self.ledger.account(addr):
                    self.n["balance_mismatch"] += 1
        except RpcError:
            self.n["balance_mismatch"] += 1
        finally:
            conn.close()

    def _resume(self, welcome: Mapping[str, Any]) -> None:
        """Start a fresh chain on a fresh node, or continue ours where the node holds it."""
        height, head = int(welcome.get("height", 0)), str(welcome.get("head", ""))
        if height == 0:
            if self.ledger.height != 0:
                self.ledger = new_ledger(self.sc)
                self.forged_before = 0
            return
        if (height, head) != (self.ledger.height, self.ledger.head):
            raise ValidatorDriveError(
                f"the node already holds {height} blocks of another chain",
                fix="start a fresh node for every trial (its state lives in a tmpfs)")
        self.acked_height = height

    async def run(self) -> dict[str, Any]:
        """Drive the node for the scenario's duration; the summary once every ack is in."""
        return summarize([await self.execute()], self.sc)

    async def execute(self) -> ReplicaResult:
        """Drive the node for the scenario's duration; the raw result once every ack is in."""
        loop = asyncio.get_running_loop()
        sc, tasks = self.sc, []
        try:
            collector = await GossipLink.open(self.host, self.port, "collector", "collector", "")
            self.links.append(collector)
            producer = await GossipLink.open(self.host, self.port, "producer", "producer",
                                             self.ledger.producer_pub)
            self.links.append(producer)
            self._resume(producer.welcome)
            welcome = producer.welcome
            self.node_pub = str(welcome["node"])
            self.ledger.epoch_blocks = int(welcome.get("epoch_blocks", 10))
            for i in range(sc.peers):
                pub = derive_key(sc.seed, "peer", i).verify_key.encode().hex()
                self.links.append(await GossipLink.open(self.host, self.port, "peer",
                                                        f"peer-{i}", pub))
            self.rpc = RpcLoad(self.host, self.port, sc.rpc_rate, sc.rpc_connections,
                               self.ledger.addrs, lambda: self.acked_height, sc.seed)
            start = self.start = loop.time()
            tasks = [asyncio.create_task(self._acks(producer)),
                     asyncio.create_task(self._collect(collector)),
                     asyncio.create_task(self._progress()),
                     *(asyncio.create_task(self._peer(link, i))
                       for i, link in enumerate(self.links[2:]))]
            rpc_task = asyncio.create_task(self.rpc.run(sc.duration))
            await self._race(self._produce(producer, start), tasks[0])
            await self._race(self._drain(), tasks[0])
            await rpc_task
            elapsed = loop.time() - start
            await self._check_balances()
            return self.result(elapsed)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise ValidatorDriveError(
                f"the node dropped a gossip stream after block {self.acked_height}: {exc!r}",
                fix="see the node's log (it may have crashed or run out of memory)") from exc
        finally:
            self._done.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.rpc is not None:
                self.rpc.close()
            for link in self.links:
                link.close()

    @staticmethod
    async def _race(work: Any, watch: asyncio.Task[None]) -> None:
        """Await ``work``; if ``watch`` (the ack reader) fails first, raise its error."""
        job = asyncio.ensure_future(work)
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            watch.result()
        job.result()

    async def _drain(self) -> None:
        """Wait for the acks and snapshots still due, up to ``drain_timeout``."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.sc.drain_timeout
        while loop.time() < until:
            acked = self.n["applied"] + self.n["refused"] >= self.n["sent"]
            snapped = self.snapshot_epochs.issuperset(
                e for e, (last, _) in self.roots.items() if last <= self.acked_height)
            if acked and snapped:
                return
            await asyncio.sleep(0.02)

    def result(self, elapsed: float) -> ReplicaResult:
        """The raw outcome (counts and histograms), for one summary or a merge of replicas."""
        n, rpc = self.n, self.rpc
        due = [e for e, (last, _) in self.roots.items() if last <= self.acked_height]
        counts = {
            "validator_blocks_sent": n["sent"],
            "validator_blocks_applied": n["applied"],
            "validator_blocks_missed": n["sent"] - n["on_time"],
            "validator_blocks_refused": n["refused"],
            "validator_txs_applied": n["txs_applied"],
            "validator_forged_sent": self.ledger.forged_total - self.forged_before,
            "validator_forged_rejected": n["forged_rejected"],
            "validator_tx_mismatch": n["tx_mismatch"],
            "validator_snapshots": n["snapshots"],
            "validator_snapshots_invalid": n["snapshots_invalid"],
            "validator_snapshots_missed": len(set(due) - self.snapshot_epochs),
            "validator_attestations_received": n["attest_received"],
            "validator_balance_checked": n["balance_checked"],
            "validator_balance_mismatch": n["balance_mismatch"],
            "validator_gossip_bytes_sent": sum(x.bytes_out for x in self.links),
            "validator_gossip_bytes_received": sum(x.bytes_in for x in self.links),
        }
        hists = {"validator_block_lag": self.block_lag,
                 "validator_snapshot_latency": self.snapshot_latency,
                 "validator_gossip_lag": self.gossip_lag, "validator_ping_rtt": self.ping_rtt}
        outcome = None
        if rpc is not None:
            outcome = RpcOutcome(rpc.ok, rpc.failed, rpc.dropped, rpc.latency, dict(rpc.errors))
        return ReplicaResult(counts, hists, elapsed, outcome, endpoint=self.endpoint,
                             seed=self.sc.seed)

    def summary(self, elapsed: float) -> dict[str, Any]:
        """The k6 ``handleSummary``-shaped summary of the run (as ``isobench.load`` returns)."""
        return summarize([self.result(elapsed)], self.sc)


def new_ledger(sc: ChainScenario) -> Ledger:
    """A fresh chain model for the scenario (its seed, accounts and forged share)."""
    return Ledger(sc.seed, sc.accounts, sc.forged_fraction)


def fits(ledger: Ledger, sc: ChainScenario) -> bool:
    """Whether ``ledger`` models the chain ``sc`` plays (same seed, accounts, forged share)."""
    return (ledger.seed, ledger.accounts, ledger.forged_fraction) == (
        sc.seed, sc.accounts, sc.forged_fraction)


def run_driver(endpoint: str, scenario: Mapping[str, Any] | ChainScenario, *,
               on_progress: Progress | None = None,
               ledgers: MutableMapping[str, Ledger] | None = None) -> dict[str, Any]:
    """Drive the node at ``endpoint`` (``http://127.0.0.1:PORT``) and return the summary.

    ``ledgers`` (endpoint → chain model) carries the chain from one drive of a node to the
    next, as the trial's warm-up and measured drives of one instance: the driver continues
    the chain it finds there and leaves its own in it.

    Raises:
        ConfigError: a bad scenario or an endpoint neither on loopback nor isobench's own.
        ValidatorDriveError: the node cannot be reached or goes away during the run.
    """
    sc = scenario if isinstance(scenario, ChainScenario) else ChainScenario.from_mapping(scenario)
    if sc.idle:
        time.sleep(sc.duration)
        return envelope({}, sc.duration, sc, {})
    driver = ChainDriver(endpoint, sc, on_progress,
                         ledger=ledgers.get(endpoint) if ledgers is not None else None)
    try:
        return asyncio.run(driver.run())
    finally:
        if ledgers is not None:
            ledgers.clear()
            ledgers[endpoint] = driver.ledger
