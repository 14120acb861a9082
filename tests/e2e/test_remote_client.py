"""``--client remote`` for real: the load engine in isobench's own network namespace, the workload
reached at the host end of a veth (native: a listener on that address; docker-bridge: Docker's
PREROUTING DNAT, not docker-proxy), and nothing of it left after a run, a Ctrl-C, or a
``kill -9`` followed by ``isobench clean``.

~70 s under the heavy lock: a ``--quick`` run of two runtimes, one docker-bridge instance loaded
from the namespace, two short native runs that are interrupted."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from isobench.images.build import build_artifacts
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.docker import DockerBridgeRuntime
from isobench.util import clientnet
from isobench.util.clientnet import ClientNet
from isobench.util.locks import read_records
from isobench.util.netutil import free_port
from isobench.util.proc import SubprocessRunner
from isobench.workloads.burn import BurnWorkload

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "isobench.cli"]


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=True).stdout


def _gone(netns: str, host_iface: str, address: str) -> None:
    """Neither the namespace, nor the veth, nor its address is on the host any more."""
    assert netns not in _ip("netns", "list")
    assert host_iface not in _ip("-o", "link")
    assert f"inet {address}/" not in _ip("-4", "-o", "addr")
    rules = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True,
                           timeout=30).stdout
    assert netns not in rules and host_iface not in rules
    assert not any(r.get("netns") == netns for _, r in read_records(clientnet.RECORDS))


def _host_end(subnet: str) -> str:
    return str(next(ipaddress.IPv4Network(subnet).hosts()))


def _record_of(run_id: str, deadline_s: float, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The state record of the run's namespace, once the run made it."""
    end = time.monotonic() + deadline_s
    while True:
        for _, record in read_records(clientnet.RECORDS):
            if record.get("run_id") == run_id and record.get("netns") in _ip("netns", "list"):
                return record
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the run made no client namespace"
        time.sleep(0.2)


def _trial_running(run_id: str) -> bool:
    return any(run_id in line for line in Path("/proc/mounts").read_text().splitlines())


def test_remote_quick_run_takes_the_veth_and_leaves_nothing(tmp_path: Path,
                                                            need_docker: None) -> None:
    out = tmp_path / "remote-run"
    done = subprocess.run([*CLI, "run", "--workload", "burn", "--runtimes",
                           "native,docker-bridge", "--client", "remote", "--quick", "--trials", "2",
                           "--no-report", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    remote = manifest["config"]["remote_client"]
    assert manifest["config"]["arm_clients"] == {"native": "remote", "docker-bridge": "remote"}
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    paths = {t["arm"]: t["facts"]["network_path"] for t in trials}
    assert paths == {"native": "veth-host", "docker-bridge": "dnat"}
    assert all(t["status"] == "ok" for t in trials), [t["error"] for t in trials]
    for t in trials:
        assert t["facts"]["client"] == "remote"
        assert t["facts"]["client_target"] == remote["client_target"]
        # the load crossed the veth: its counters saw it (not loopback's)
        assert t["telemetry"]["net_rx_packets"] > 0 and t["telemetry"]["net_tx_bytes"] > 0
    assert manifest["network_paths"]["docker-bridge"]["path"] == "dnat"
    _gone(remote["client_netns"], remote["client_veth"], remote["client_target"])


def _proxy_bytes(pid: int) -> int:
    io = psutil.Process(pid).io_counters()
    return int(io.read_chars + io.write_chars)


def test_docker_bridge_remote_traffic_takes_dnat_not_docker_proxy(tmp_path: Path,
                                                                  need_docker: None) -> None:
    """What docker-proxy relays shows in its read/write byte counts; 200 responses of 64 KiB
    from the namespace must not pass through it (the DNAT rule of the address counts them)."""
    workload = BurnWorkload()
    artifacts = build_artifacts(workload.rootfs_spec(), {"rootfs", "docker_image"})
    runtime = DockerBridgeRuntime(RuntimeContext(work_dir=tmp_path, run_id="remote-dnat-test"))
    spec = workload.launch_spec()
    with ClientNet(SubprocessRunner(), "remote-dnat-test") as path:
        port = free_port()
        inst = runtime.start(artifacts, spec, Resources(host_address=path.address), port)
        try:
            workload.ready(port, spec, launched_at=inst.launched_at, deadline_s=60,
                           exited=lambda: runtime.exited(inst), host=path.address)
            listeners = {c.laddr.ip for c in psutil.net_connections(kind="inet")
                         if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}
            assert listeners <= {path.address}, listeners
            proxy = inst.facts.get("docker_proxy_pid")
            before = _proxy_bytes(proxy) if proxy else 0
            url = f"http://{path.address}:{port}/payload?bytes=65536"
            fetch = (f"import urllib.request as u\nn=0\nfor _ in range(200):\n"
                     f"    n+=len(u.urlopen('{url}').read())\nprint(n)")
            got = subprocess.run([*path.prefix, sys.executable, "-c", fetch], check=True,
                                 capture_output=True, text=True, timeout=120)
            received = int(got.stdout.split()[-1])
            assert received >= 200 * 1000
            if proxy:  # with the userland proxy on (Docker's default) it relays none of it
                assert _proxy_bytes(proxy) - before < received // 100
            nat = subprocess.run(["iptables", "-t", "nat", "-L", "DOCKER", "-n", "-v", "-x"],
                                 capture_output=True, text=True, timeout=30).stdout
            rule = [line for line in nat.splitlines()
                    if path.address in line and f"dpt:{port}" in line]
            assert rule and int(rule[0].split()[0]) >= 200, nat  # one packet per connection
            with urllib.request.urlopen(f"http://{path.address}:{port}/healthz", timeout=5):
                pass  # the host itself still reaches it (readiness is probed from here)
        finally:
            runtime.stop(inst)
    _gone(path.netns or "", path.host_iface or "", path.address)


def _start_remote_native(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, "run", "--workload", "burn", "--runtimes", "native",
                             "--client", "remote", "--trials", "2", "--duration", "20s",
                             "--warmup", "0", "--no-report", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _mid_trial(run_id: str, proc: subprocess.Popen[str]) -> dict[str, Any]:
    record = _record_of(run_id, 120, proc)
    end = time.monotonic() + 60
    while not _trial_running(run_id):
        assert proc.poll() is None and time.monotonic() < end, "no trial started"
        time.sleep(0.2)
    time.sleep(2)
    return record


def test_ctrl_c_removes_the_namespace(tmp_path: Path, need_root: None) -> None:
    out = tmp_path / "remote-ctrl-c"
    proc = _start_remote_native(out)
    try:
        record = _mid_trial(out.name, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    _gone(record["netns"], record["host_iface"], _host_end(record["subnet"]))


def test_kill_9_then_clean_removes_the_namespace(tmp_path: Path, need_root: None) -> None:
    out = tmp_path / "remote-kill-9"
    proc = _start_remote_native(out)
    try:
        record = _mid_trial(out.name, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert record["netns"] in _ip("netns", "list")  # a dead run's leftovers, until clean
    clean = subprocess.run([*CLI, "clean"], capture_output=True, text=True, timeout=300)
    assert f"client netns {record['netns']}" in clean.stdout + clean.stderr
    _gone(record["netns"], record["host_iface"], _host_end(record["subnet"]))
    assert not _trial_running(out.name)
