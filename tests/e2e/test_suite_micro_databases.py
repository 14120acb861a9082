"""`isobench suite micro --only postgres,mariadb` end to end, for real: PostgreSQL and MariaDB
inside native and gVisor (the runtime where both needed a fix: a shell glob instead of ``ls``,
InnoDB's own I/O threads instead of io_uring), pgbench and sysbench oltp_read_write on the
host. About 60 s once the micro rootfs and its Docker image are cached.

Run it under the heavy lock: ``flock /tmp/isobench-heavy.lock pytest -m integration
tests/e2e/test_suite_micro_databases.py``.
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


def test_databases_on_native_and_gvisor(
    tmp_path: Path, need_root: None, need_docker: None
) -> None:
    require(shutil.which("pgbench") is not None, "pgbench (postgresql) missing")
    require(shutil.which("sysbench") is not None, "sysbench missing")
    out = tmp_path / "suite"
    proc = subprocess.run(
        [sys.executable, "-m", "isobench.cli", "suite", "micro", "--only", "postgres,mariadb",
         "--runtimes", "native,gvisor", "--quick", "--trials", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = json.loads((out / "suite.json").read_text())
    assert table["complete"] and not table["errors"], table.get("failed")
    rows = {(r["benchmark"], r["metric"]): r for r in table["rows"]}
    for key in (("postgres", "pgbench_tps"), ("postgres", "pgbench_latency_p99_ms"),
                ("mariadb", "oltp_tps"), ("mariadb", "oltp_qps"),
                ("mariadb", "oltp_latency_p95_ms")):
        row = rows[key]
        assert row["baseline"]["n"] == 2 and row["baseline"]["median"] > 0, row
        assert row["cells"]["gvisor"]["ratio"] > 0, row
    pg = json.loads((out / "postgres" / "trials.jsonl").read_text().splitlines()[0])
    assert "tps = " in pg["load"]["raw"]["pgbench"]
    assert pg["load"]["facts"]["server_version"].startswith("15")
    assert pg["load"]["facts"]["transactions_logged"] > 0
    manifest = json.loads((out / "postgres" / "manifest.json").read_text())
    assert manifest["config"]["workload_options"]["parameters"]["scale"] == 10
    maria = json.loads((out / "mariadb" / "trials.jsonl").read_text().splitlines()[0])
    assert "MariaDB" in maria["load"]["facts"]["server_version"]
    assert "transactions:" in maria["load"]["raw"]["oltp_read_write"]
