"""Several validator nodes driven at once (``replicas: N``): the merge, and real nodes.

The unit tests merge known per-replica results; the integration tests start real node processes
on 127.0.0.1 (as ``test_validator_node`` does) and drive them through ``drive_many``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from isobench.errors import ConfigError
from isobench.workloads.validator.driver import ChainDriver, ValidatorDriveError
from isobench.workloads.validator.replicas import merge_progress, replica_scenario
from isobench.workloads.validator.scenario import ChainScenario
from isobench.workloads.validator.stats import LatencyHistogram
from isobench.workloads.validator.summary import (
    TRENDS,
    ReplicaResult,
    RpcOutcome,
    summarize,
)
from isobench.workloads.validator.workload import NODE_PACKAGE, ValidatorWorkload
from tests.workloads.test_validator_node import NodeProcess, free_port, rpc

# --- the merge of known per-replica results ----------------------------------------------


def hist(ms_values: list[float]) -> LatencyHistogram:
    out = LatencyHistogram()
    for ms in ms_values:
        out.record(ms / 1000)
    return out


def result(lags_ms: list[float], *, sent: int, missed: int, forged: int, rpc_ok: int,
           rpc_failed: int, rpc_ms: list[float], elapsed: float, seed: int) -> ReplicaResult:
    counts = {
        "validator_blocks_sent": sent, "validator_blocks_applied": len(lags_ms),
        "validator_blocks_missed": missed, "validator_forged_sent": forged,
        "validator_forged_rejected": forged, "validator_tx_mismatch": 0,
        "validator_snapshots": sent // 10,
        "validator_gossip_bytes_sent": 1000 * sent, "validator_gossip_bytes_received": 10 * sent,
    }
    hists = {name: LatencyHistogram() for name in TRENDS}
    hists["validator_block_lag"] = hist(lags_ms)
    outcome = RpcOutcome(rpc_ok, rpc_failed, 0, hist(rpc_ms), {"TimeoutError": rpc_failed})
    return ReplicaResult(counts, hists, elapsed, outcome, f"http://127.0.0.1:{9000 + seed}", seed)


def two_replicas() -> tuple[ReplicaResult, ReplicaResult]:
    fast = result([float(i) for i in range(1, 21)], sent=20, missed=0, forged=20, rpc_ok=400,
                  rpc_failed=0, rpc_ms=[2.0] * 400, elapsed=20.0, seed=0)
    slow = result([100.0 + 10 * i for i in range(1, 21)], sent=20, missed=3, forged=20,
                  rpc_ok=390, rpc_failed=10, rpc_ms=[50.0] * 400, elapsed=25.0, seed=1)
    return fast, slow


def test_merge_sums_counts_and_merges_percentiles() -> None:
    fast, slow = two_replicas()
    summary = summarize([fast, slow], ChainScenario(), replicas=True)
    m = {name: entry["values"] for name, entry in summary["metrics"].items()}

    assert m["validator_blocks_sent"] == {"count": 40, "rate": 40 / 25.0}
    assert m["validator_blocks_applied"]["count"] == 40
    assert m["validator_blocks_missed"]["count"] == 3
    assert m["validator_forged_rejected"]["count"] == 40
    assert m["validator_snapshots"]["count"] == 4
    assert summary["metrics"]["validator_gossip_bytes_sent"]["contains"] == "data"
    assert m["validator_gossip_bytes_sent"]["count"] == 40_000

    # One histogram over every block of both nodes: 1..20 ms and 110..300 ms.
    lag = m["validator_block_lag"]
    assert lag["count"] == 40
    assert lag["min"] == pytest.approx(1.0) and lag["max"] == pytest.approx(300.0)
    assert lag["med"] == pytest.approx(20.0, rel=0.02)  # rank 19.5 of 40: the fast node's top
    assert lag["p(95)"] == pytest.approx(280.0, rel=0.02)
    assert lag["avg"] == pytest.approx((sum(range(1, 21)) + 2000 + 10 * 210) / 40)

    # The worst node: the slow one's p95 (its own 19th of 20 values, 290 ms) and its misses.
    worst = m["validator_block_lag_worst_p95"]
    assert worst["value"] == pytest.approx(290.0, rel=0.02) and worst["replica"] == 1
    assert worst["min"] == pytest.approx(19.0, rel=0.02)
    assert summary["metrics"]["validator_block_lag_worst_p95"]["contains"] == "time"
    assert m["validator_blocks_missed_worst"]["value"] == 3
    assert m["validator_blocks_missed_worst"]["replica"] == 1
    assert m["validator_replicas"]["count"] == 2

    # The RPC load of both nodes: 800 requests, 10 failed, half at 2 ms and half at 50 ms.
    assert m["http_reqs"]["count"] == 800
    assert m["http_req_failed"] == {"rate": 10 / 800, "passes": 10, "fails": 790}
    assert m["http_req_duration"]["med"] == pytest.approx(2.0, rel=0.02)
    assert m["http_req_duration"]["p(90)"] == pytest.approx(50.0, rel=0.02)
    assert summary["errors"] == {"TimeoutError": 10}
    assert summary["state"]["testRunDurationMs"] == 25_000.0
    assert summary["options"]["replicas"] == 2
    assert [r["seed"] for r in summary["replicas"]] == [0, 1]
    assert summary["replicas"][1]["blocks_missed"] == 3


def test_one_result_without_replicas_has_no_replica_metrics() -> None:
    fast, _ = two_replicas()
    plain = summarize([fast], ChainScenario())
    assert not any("replica" in name or "worst" in name for name in plain["metrics"])
    assert "replicas" not in plain and "replicas" not in plain["options"]
    merged = summarize([fast], ChainScenario(), replicas=True)
    for name, entry in plain["metrics"].items():
        assert merged["metrics"][name] == entry, name
    assert merged["metrics"]["validator_replicas"]["values"]["count"] == 1
    with pytest.raises(ValueError):
        summarize([], ChainScenario())


def test_each_replica_gets_its_own_seed() -> None:
    base = ChainScenario(seed=7, txs_per_block=10)
    assert [replica_scenario(base, i).seed for i in range(3)] == [7, 8, 9]
    assert replica_scenario(base, 2).txs_per_block == 10


def test_progress_is_summed_with_the_worst_alongside() -> None:
    part = {"reqs": 10, "blocks_sent": 5, "blocks_applied": 5, "blocks_late": 0,
            "snapshots": 0, "rpc_failed": 0, "block_lag_p95_ms": 4.0}
    late = {**part, "blocks_late": 2, "block_lag_p95_ms": 1500.0}
    merged = merge_progress([part, late], 5.0, 20.0)
    assert merged["blocks_applied"] == 10 and merged["reqs"] == 20 and merged["rate"] == 4.0
    assert merged["blocks_late"] == 2 and merged["blocks_late_worst"] == 2
    assert merged["block_lag_worst_p95_ms"] == 1500.0 and merged["replicas"] == 2


def test_drive_many_refuses_bad_endpoints() -> None:
    workload = ValidatorWorkload()
    with pytest.raises(ConfigError):
        workload.drive_many([], {"duration": "1s"})
    with pytest.raises(ConfigError):
        workload.drive_many(["http://127.0.0.1:9", "http://10.0.0.5:8000"], {"duration": "1s"})


def test_idle_drive_many_sends_nothing() -> None:
    summary = ValidatorWorkload().drive_many(["http://127.0.0.1:9", "http://127.0.0.1:10"],
                                             {"executor": "idle", "duration": "0.1s"})
    assert summary["metrics"]["validator_replicas"]["values"]["count"] == 2
    assert set(summary["metrics"]) == {"validator_replicas"}


# --- real nodes ----------------------------------------------------------------------------


def launch_node(tmp_path: Path, name: str) -> NodeProcess:
    """A real node as a host process on 127.0.0.1 (as test_validator_node's fixture)."""
    workload = ValidatorWorkload()
    (_dest, src), = workload.rootfs_spec().files.items()
    home = tmp_path / name
    shutil.copytree(src, home / NODE_PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    spec = workload.launch_spec().render("127.0.0.1", port)
    env = dict(spec.env)
    env["PYTHONPATH"] = f"{home}:{sysconfig.get_paths()['purelib']}"
    env["VALIDATOR_DATA_DIR"] = str(home / "data")
    log = home / "node.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-S", *spec.argv[1:]], env=env, cwd=home,
                                stdout=out, stderr=subprocess.STDOUT)
    return NodeProcess(proc, port, log)


def wait_ready(node: NodeProcess) -> None:
    deadline = time.monotonic() + 15
    while True:
        assert node.proc.poll() is None, f"node exited: {node.log.read_text()}"
        try:
            with urllib.request.urlopen(node.endpoint + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "node never became ready"
        time.sleep(0.1)


def stop_node(node: NodeProcess) -> None:
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()


@pytest.fixture
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[NodeProcess]]:
    started: list[NodeProcess] = []
    try:
        for i in range(int(request.param)):
            started.append(launch_node(tmp_path, f"node{i}"))
        for node in started:
            wait_ready(node)
        yield started
    finally:
        for node in started:
            stop_node(node)


def loadgen_cpus() -> tuple[int, ...]:
    return (max(os.sched_getaffinity(0)),)


@pytest.mark.integration
@pytest.mark.parametrize("nodes", [3], indirect=True)
def test_three_replicas_15s_at_default_rate(nodes: list[NodeProcess]) -> None:
    workload = ValidatorWorkload()
    progress: list[dict] = []
    affinity = os.sched_getaffinity(0)
    summary = workload.drive_many([n.endpoint for n in nodes],
                                  {**workload.default_scenario(), "duration": "15s"},
                                  cpus=loadgen_cpus(), on_progress=progress.append)
    assert os.sched_getaffinity(0) == affinity
    m = {name: entry["values"] for name, entry in summary["metrics"].items()}
    count = {k: v["count"] for k, v in m.items() if "count" in v}

    # Every replica applied each of its 15 blocks in time and rejected exactly its 15 forgeries.
    assert m["validator_replicas"]["count"] == 3
    for digest in summary["replicas"]:
        assert (digest["blocks_sent"], digest["blocks_applied"], digest["blocks_missed"]) == (
            15, 15, 0), digest
        assert digest["forged_rejected"] == 15  # 15 blocks x 50 txs x 0.02
        assert digest["snapshots"] == 1
    assert count["validator_blocks_sent"] == count["validator_blocks_applied"] == 45
    assert count["validator_blocks_missed"] == 0 and count["validator_blocks_refused"] == 0
    assert count["validator_forged_sent"] == count["validator_forged_rejected"] == 45
    assert count["validator_txs_applied"] == 3 * (750 - 15)
    assert count["validator_tx_mismatch"] == 0
    assert count["validator_snapshots"] == 3 and count["validator_snapshots_invalid"] == 0
    assert count["validator_balance_checked"] == 60 and count["validator_balance_mismatch"] == 0
    assert count["validator_attestations_received"] == 3 * 4 * 3 * 15
    assert count["http_reqs"] == pytest.approx(3 * 20 * 15, abs=10)
    assert m["http_req_failed"]["passes"] == 0

    # One lag histogram over all 45 blocks; the worst node's p95 bounds the merged one.
    assert m["validator_block_lag"]["count"] == 45
    worst = m["validator_block_lag_worst_p95"]
    assert 0 < m["validator_block_lag"]["p(95)"] <= worst["value"] * (1 + 1e-9) <= 1000.0
    assert worst["value"] == max(d["block_lag_ms"]["p(95)"] for d in summary["replicas"])
    assert m["validator_blocks_missed_worst"]["value"] == 0
    assert m["validator_driver_loop_lag"]["count"] > 100

    # Three different chains (seeds 0, 1, 2), each node at height 15 with its own forgeries.
    heads = set()
    for node in nodes:
        status = rpc(node.port, "status")["result"]
        assert status["height"] == 15 and status["txs_rejected"] == {"bad_sig": 15}
        heads.add(rpc(node.port, "getBlock", {"height": 15})["result"]["hash"])
    assert len(heads) == 3

    # Progress about once a second, summed over the replicas.
    assert 12 <= len(progress) <= 20
    assert all(p["replicas"] == 3 for p in progress)
    assert progress[-1]["blocks_applied"] >= 3 * 13
    assert max(p["blocks_applied"] for p in progress) <= 45


@pytest.mark.integration
@pytest.mark.parametrize("nodes", [2], indirect=True)
def test_a_replica_going_away_fails_the_drive_naming_it(nodes: list[NodeProcess]) -> None:
    threading.Timer(2.5, nodes[1].proc.kill).start()
    started = time.monotonic()
    with pytest.raises(ValidatorDriveError) as info:
        ValidatorWorkload().drive_many([n.endpoint for n in nodes],
                                       {"duration": "30s", "rpc_rate": 5})
    assert time.monotonic() - started < 10
    assert f"replica 1 of 2 ({nodes[1].endpoint})" in str(info.value) and info.value.fix
    assert nodes[0].proc.poll() is None  # the healthy replica is left running


# --- a warm-up drive, then the measured one, on the same nodes ----------------------------


def test_a_driver_resumes_only_its_own_chain() -> None:
    sc = ChainScenario(txs_per_block=4)
    warm = ChainDriver("http://127.0.0.1:9", sc)
    for _ in range(3):
        warm.ledger.next_block(sc.txs_per_block)
    driver = ChainDriver("http://127.0.0.1:9", sc, ledger=warm.ledger)
    assert driver.ledger is warm.ledger and driver.forged_before == warm.ledger.forged_total
    driver._resume({"height": 3, "head": warm.ledger.head})
    assert driver.acked_height == 3 and driver.ledger.height == 3
    with pytest.raises(ValidatorDriveError, match="another chain"):
        driver._resume({"height": 3, "head": "00" * 32})
    driver._resume({"height": 0})  # a fresh node on the same port: a fresh chain
    assert driver.ledger.height == 0 and driver.forged_before == 0
    other = ChainDriver("http://127.0.0.1:9", replica_scenario(sc, 1), ledger=warm.ledger)
    assert other.ledger is not warm.ledger and other.ledger.seed == 1


@pytest.mark.integration
@pytest.mark.parametrize("nodes", [2], indirect=True)
def test_measured_drive_continues_the_warm_up_chain(nodes: list[NodeProcess]) -> None:
    workload = ValidatorWorkload()
    scenario = {**workload.default_scenario(), "rpc_rate": 5}
    endpoints = [n.endpoint for n in nodes]
    workload.drive_many(endpoints, {**scenario, "duration": "3s"})  # the runner's warm-up
    summary = workload.drive_many(endpoints, {**scenario, "duration": "5s"})
    m = {name: entry["values"] for name, entry in summary["metrics"].items()}
    assert m["validator_blocks_applied"]["count"] == 2 * 5
    assert m["validator_blocks_missed"]["count"] == 0
    assert m["validator_forged_sent"]["count"] == m["validator_forged_rejected"]["count"] == 10
    assert m["validator_tx_mismatch"]["count"] == m["validator_balance_mismatch"]["count"] == 0
    for node in nodes:
        assert rpc(node.port, "status")["result"]["height"] == 8
    # One replica alone (drive), on the first node: continues that chain too.
    single = workload.drive(endpoints[0], {**scenario, "duration": "2s"})
    assert single["metrics"]["validator_blocks_applied"]["values"]["count"] == 2
    assert "validator_replicas" not in single["metrics"]
    assert rpc(nodes[0].port, "status")["result"]["height"] == 10
