"""`isobench suite micro` end to end, for real: redis (server inside, redis-benchmark on the host)
and sysbench-cpu (through the agent) on native and docker-host, one table; and the fio workload
with its huge-page buffer on native.

Run it under the heavy lock: ``flock /tmp/isobench-heavy.lock pytest -m integration
tests/e2e/test_suite_micro.py`` (about 2 minutes once the micro rootfs is cached).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.fixtures.hugepages import reserved_huge_pages

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


@pytest.fixture
def huge_pages() -> Iterator[None]:
    """Two huge pages reserved for the test; the host's setting put back."""
    with reserved_huge_pages(2) as reached:
        require(reached, "the kernel could not reserve 2 huge pages")
        yield


def test_fio_with_a_huge_page_buffer_on_native(
    tmp_path: Path, need_root: None, huge_pages: None
) -> None:
    """The fio workload's option ``fio_buffer: huge``, for real: every job gets fio's
    ``--iomem=mmaphuge`` and the native trial is data (fio ran direct, figures above zero)."""
    bench = tmp_path / "bench.yaml"
    bench.write_text(json.dumps({
        "workload": "fio", "workload_options": {"fio_buffer": "huge"}, "runtimes": ["native"],
        "trials": 1, "duration": "1s", "warmup": "1s"}))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "isobench.cli", "run", "-f", str(bench), "--no-report",
         "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trial = json.loads((out / "trials.jsonl").read_text().splitlines()[0])
    assert trial["status"] == "ok", trial.get("reason")
    facts, metrics = trial["load"]["facts"], trial["load"]["metrics"]
    for job in ("fio-seqread", "fio-seqwrite", "fio-randread", "fio-vol-seqread"):
        assert "--iomem=mmaphuge" in facts[job]["argv"], facts[job]
        assert "buffer_pieces" not in facts[job]  # one huge page: no layout to read
    for name in ("fio_seqread_mb_s", "fio_seqwrite_mb_s", "fio_vol_seqread_mb_s"):
        assert metrics[name]["values"]["value"] > 0
    assert metrics["fio_seqread_direct"]["values"]["value"] == 1.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert "mmaphuge" in manifest["config"]["workload_options"]["parameters"]["buffer"]
