"""Integration: the real node as a plain host process, driven by the real chain driver.

The node runs from a copy of its package named as in the rootfs (``validator_node``), with
``python -S`` and only that copy and PyNaCl's site-packages on the path: it cannot import
isobench, so it has no dependency on the host beyond its port.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from isobench.util.netutil import free_port
from isobench.workloads.validator.driver import ChainDriver, ValidatorDriveError
from isobench.workloads.validator.scenario import ChainScenario
from isobench.workloads.validator.workload import NODE_PACKAGE, ValidatorWorkload

pytestmark = pytest.mark.integration


def rpc(port: int, method: str, params: object = None) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


class NodeProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    workload = ValidatorWorkload()
    (_dest, src), = workload.rootfs_spec().files.items()
    shutil.copytree(src, tmp_path / NODE_PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    spec = workload.launch_spec().render("127.0.0.1", port)
    env = dict(spec.env)
    env["PYTHONPATH"] = f"{tmp_path}:{sysconfig.get_paths()['purelib']}"
    env["VALIDATOR_DATA_DIR"] = str(tmp_path / "data")
    argv = [sys.executable, "-S", *spec.argv[1:]]
    log = tmp_path / "node.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    handle = NodeProcess(proc, port, log)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, f"node exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(handle.endpoint + spec.ready_path, timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "node never became ready"
            time.sleep(0.1)
        yield handle
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_node_cannot_import_isobench(node: NodeProcess, tmp_path: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import validator_node.server; import isobench"],
        env={"PYTHONPATH": f"{tmp_path}:{sysconfig.get_paths()['purelib']}"},
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert "No module named 'isobench'" in probe.stderr


def test_driven_20s_at_default_rate(node: NodeProcess) -> None:
    scenario = ChainScenario.from_mapping({**ValidatorWorkload().default_scenario(),
                                           "duration": "20s"})
    driver = ChainDriver(node.endpoint, scenario, on_progress=lambda p: None)
    summary = asyncio.run(driver.run())
    m = {name: entry["values"] for name, entry in summary["metrics"].items()}
    count = {k: v["count"] for k, v in m.items() if "count" in v}

    # Every block applied in time, each forged transaction rejected and counted exactly.
    assert count["validator_blocks_sent"] == 20
    assert count["validator_blocks_applied"] == 20
    assert count["validator_blocks_missed"] == 0
    assert count["validator_blocks_refused"] == 0
    assert count["validator_forged_sent"] == driver.ledger.forged_total == 20  # 1000 x 0.02
    assert count["validator_forged_rejected"] == 20
    assert count["validator_tx_mismatch"] == 0
    assert count["validator_txs_applied"] == 1000 - 20
    assert 0 < m["validator_block_lag"]["p(95)"] <= 1000.0

    # A signed, correct snapshot per epoch (blocks 1-10, 11-20).
    assert count["validator_snapshots"] == 2
    assert count["validator_snapshots_invalid"] == 0
    assert count["validator_snapshots_missed"] == 0
    for epoch in (1, 2):
        snap = rpc(node.port, "getSnapshot", {"epoch": epoch})["result"]
        assert snap["root"] == driver.roots[epoch][1]

    # Chatty gossip both ways: 4 peers got every block and attested; attestations re-gossiped.
    assert m["validator_gossip_lag"]["count"] == 4 * 20
    assert count["validator_attestations_received"] == 4 * 3 * 20
    assert m["validator_ping_rtt"]["count"] > 100  # 4 peers x 2 pings/s x 20 s = 160

    # RPC answered at the offered rate; balances match the applied transactions.
    assert count["http_reqs"] == pytest.approx(20 * 20, abs=5)
    assert m["http_req_failed"]["passes"] == 0
    assert count["validator_balance_checked"] == 20
    assert count["validator_balance_mismatch"] == 0
    touched = sorted(driver.ledger.balances)
    for addr in touched[:5]:
        got = rpc(node.port, "getBalance", [addr])["result"]
        assert (got["balance"], got["nonce"]) == driver.ledger.account(addr)
        assert got["balance"] != 10**12

    status = rpc(node.port, "status")["result"]
    assert status["height"] == 20
    assert status["txs_rejected"] == {"bad_sig": 20}
    assert status["attest_ok"] == 80 and status["attest_bad"] == 0
    assert status["dropped_frames"] == 0


def test_node_going_away_fails_the_drive_clearly(node: NodeProcess) -> None:
    scenario = ChainScenario.from_mapping({"duration": "30s", "rpc_rate": 5})
    driver = ChainDriver(node.endpoint, scenario)

    async def run_and_kill() -> None:
        task = asyncio.create_task(driver.run())
        await asyncio.sleep(2.5)
        node.proc.kill()
        await task

    started = time.monotonic()
    with pytest.raises(ValidatorDriveError) as info:
        asyncio.run(run_and_kill())
    assert time.monotonic() - started < 10
    assert "block" in str(info.value) and info.value.fix


def test_http_errors_and_clean_sigterm(node: NodeProcess) -> None:
    assert rpc(node.port, "nope")["error"]["code"] == -32601
    assert rpc(node.port, "getBalance", {"account": "xyz"})["error"]["code"] == -32602
    assert rpc(node.port, "getBlock", {"height": 1})["result"] is None
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
        sock.sendall(b"GET /gossip HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\nX-Gossip-Role: peer\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{node.endpoint}/nothing", timeout=5)
    assert info.value.code == 404
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=10) == 0
    assert os.path.exists(node.log)
