"""`isobench suite micro` end to end, for real: redis (server inside, redis-benchmark on the host)
and sysbench-cpu (through the agent) on native and docker-host, one table.

Run it under the heavy lock: ``flock /tmp/isobench-heavy.lock pytest -m integration
tests/e2e/test_suite_micro.py`` (about 2 minutes once the micro rootfs is cached).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

pytestmark = pytest.mark.integration


def test_quick_micro_suite_native_and_docker_host(
    tmp_path: Path, need_root: None, need_docker: None
) -> None:
    require(shutil.which("redis-benchmark") is not None, "redis-benchmark (redis-tools) missing")
    out = tmp_path / "suite"
    proc = subprocess.run(
        [sys.executable, "-m", "isobench.cli", "suite", "micro", "--only", "redis,sysbench-cpu",
         "--runtimes", "native,docker-host", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = json.loads((out / "suite.json").read_text())
    assert table["complete"] and not table["errors"]
    rows = {(r["benchmark"], r["metric"]): r for r in table["rows"]}
    for key in (("redis", "redis_get_ops"), ("sysbench-cpu", "sysbench_cpu_events")):
        row = rows[key]
        assert row["baseline"]["n"] == 3 and row["baseline"]["median"] > 0, row
        cell = row["cells"]["docker-host"]
        assert cell["ratio"] > 0 and len(cell["ci"]) == 2, cell
    md = (out / "suite.md").read_text()
    assert "| redis | redis GET ops/s |" in md and "| sysbench-cpu | sysbench cpu events/s |" in md
    assert "redis GET ops/s" in proc.stdout  # the table is printed too
    # each run directory keeps the clients' raw output and their versions and parameters
    trial = json.loads((out / "redis" / "trials.jsonl").read_text().splitlines()[0])
    assert '"GET"' in trial["load"]["raw"]["P1"]
    assert trial["load"]["facts"]["server_version"].startswith("7.")
    manifest = json.loads((out / "redis" / "manifest.json").read_text())
    assert manifest["config"]["workload_options"]["client_version"].startswith("redis-benchmark")
    cpu = json.loads((out / "sysbench-cpu" / "trials.jsonl").read_text().splitlines()[0])
    assert "events per second" in cpu["load"]["raw"]["sysbench-cpu"]["stdout"]
