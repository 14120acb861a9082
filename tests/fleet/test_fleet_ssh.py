"""isobench fleet for real: ansible-playbook drives two "hosts" (this machine through Ansible's
local connection, and this machine again over SSH to a throwaway sshd on 127.0.0.1) plus a third
host whose SSH port nobody listens on. The burn workload, two native arms (×1 and ×2 work),
``--quick`` with 2 s trials. ``--serial``: both "hosts" are one 2-core machine and isobench pins
CPU 0/1 under a host-wide lock, so a second run at the same time would be refused, not queued.

Checks: both run directories come back; the unreachable host is reported with Ansible's reason
while the others report; the fleet report compares the two; a re-run skips the complete hosts.
Nothing here is timing- or statistics-sensitive: the ×2 work arm is slower on each host with a
margin of many standard errors; the interaction is only checked to be computed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from isobench.cli import main
from isobench.fleet import driver, layout, report
from tests.conftest import require
from tests.fleet.sshd import SSHD, free_port, running_sshd

pytestmark = pytest.mark.integration

BENCH = """\
workload: burn
workload_options: {work_units: 200}
arms:
  native: {runtime: native}
  native-x2: {runtime: native, workload_options: {work_units: 400}}
baseline: native
"""


def _inventory(tmp: Path, port: int, key: Path, dead_port: int) -> Path:
    inv = tmp / "inventory.ini"
    inv.write_text(
        "[bench]\n"
        "hostA ansible_connection=local\n"
        f"hostB ansible_host=127.0.0.1 ansible_port={port}\n"
        f"hostC ansible_host=127.0.0.1 ansible_port={dead_port}\n"
        "[bench:vars]\n"
        "ansible_user=root\n"
        "ansible_python_interpreter=/usr/bin/python3\n"
        f"ansible_ssh_private_key_file={key}\n"
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o IdentitiesOnly=yes'\n"
        f"isobench_remote_dir={tmp / 'remote'}\n"
        "isobench_poll_s=1\n")
    return inv


def test_fleet_over_ssh_with_an_unreachable_host(tmp_path: Path, need_root: None,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    require(Path(SSHD).exists(), "openssh-server not installed (scripts/setup-host.sh)")
    try:
        driver.find_ansible_playbook()
    except driver.FleetError:
        require(False, "ansible-core not installed (pip install -e '.[fleet]')")
    bench = tmp_path / "bench.yaml"
    bench.write_text(BENCH)
    out = tmp_path / "fleet-runs" / "f1"
    with running_sshd(tmp_path / "ssh") as sshd:
        inv = _inventory(tmp_path, sshd.port, sshd.key, free_port())
        args = ["fleet", "run", "-i", str(inv), "-f", str(bench), "--quick", "--serial",
                "--run-args", "--duration 2s --warmup 0.5s", "--out", str(out)]
        assert main(args) == 1  # hostC failed
        first = capfd.readouterr().out
        print(first)
        states = {h: layout.read_status(out, h) for h in ("hostA", "hostB", "hostC")}
        assert states["hostA"].state == "ok", states["hostA"]
        assert states["hostB"].state == "ok", states["hostB"]
        assert states["hostC"].state == "unreachable"
        assert "Connection refused" in states["hostC"].reason
        assert "hostC: unreachable" in first
        log = (tmp_path / "ssh" / "sshd.log").read_text()
        assert "Accepted publickey for root from 127.0.0.1" in log  # hostB really used SSH
        for host in ("hostA", "hostB"):
            manifest = json.loads((out / host / "manifest.json").read_text())
            assert manifest["config"]["workload"] == "burn"
            assert (out / host / "trials.jsonl").is_file()

        fleet = report.load_fleet(out)
        assert [h.name for h in fleet.hosts if h.run is not None] == ["hostA", "hostB"]
        for host in fleet.hosts[:2]:
            assert host.run is not None
            comp = next(c for c in host.run.analysis.comparisons
                        if c["runtime"] == "native-x2" and c["primary"])
            assert comp["ratio"] < 1.0  # twice the work per request: fewer requests per second
        (row,) = fleet.interactions
        assert row["runtime"] == "native-x2" and row["hosts"] == ["hostA", "hostB"]
        assert row["ci"][0] < row["ratio"] < row["ci"][1]
        assert main(["fleet", "report", str(out)]) == 1  # a host failed
        table = capfd.readouterr().out
        print(table)
        assert "ratio of ratios" in table and (out / "report.html").is_file()

        manifest_a = (out / "hostA" / "manifest.json").read_bytes()
        assert main(args) == 1  # again: only hostC is tried
        again = capfd.readouterr().out
        print(again)
        assert "hostA: complete" in again and "hostB: complete" in again
        assert "--limit hostC" in again
        assert (out / "hostA" / "manifest.json").read_bytes() == manifest_a
        assert layout.read_status(out, "hostC").state == "unreachable"
    shutil.rmtree(tmp_path / "remote", ignore_errors=True)
