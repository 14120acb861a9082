"""The validator node in every runtime for real (issue: blocks applied with no misses at the
default rate, signatures really verified, RPC answering), and several replicas per trial."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _run(out: Path, *flags: str) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "isobench.cli", "run", "--workload", "validator", "--no-report",
         "--out", str(out), *flags],
        capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]


def _value(trial: dict, metric: str, stat: str = "count") -> float:
    return float(trial["load"]["metrics"][metric]["values"][stat])


def test_node_in_every_runtime_20s(tmp_path: Path, need_docker: None, need_qemu: None) -> None:
    trials = _run(
        tmp_path / "run", "--runtimes", "native,docker-bridge,docker-host,vm", "--trials", "1",
        "--duration", "20s", "--warmup", "2s",
    )
    assert {t["arm"] for t in trials} == {"native", "docker-bridge", "docker-host", "vm"}
    for t in trials:
        assert t["status"] == "ok", t["error"]
        who = t["arm"]
        assert _value(t, "validator_blocks_applied") >= 19, who
        assert _value(t, "validator_blocks_missed") == 0, who
        forged = _value(t, "validator_forged_sent")
        assert forged > 0 and _value(t, "validator_forged_rejected") == forged, who
        assert _value(t, "http_reqs") > 100, who
        assert _value(t, "http_req_failed", "rate") == 0, who
        assert t["telemetry"]["cpu_seconds"] > 0, who
        assert t["telemetry"]["net_rx_bytes"] > 10_000, who


def test_three_replicas_per_trial(tmp_path: Path, need_docker: None) -> None:
    trials = _run(
        tmp_path / "run", "--runtimes", "native,docker-bridge", "--trials", "1",
        "--duration", "10s", "--warmup", "1s", "--replicas", "3",
    )
    for t in trials:
        assert t["status"] == "ok", t["error"]
        assert t["facts"]["replicas"] == 3 and len(t["facts"]["startup_each_s"]) == 3
        assert _value(t, "validator_replicas") == 3
        assert _value(t, "validator_blocks_applied") >= 27
        assert _value(t, "validator_blocks_missed") == 0
        assert t["load"]["metrics"]["validator_block_lag_worst_p95"]["values"]["value"] > 0
