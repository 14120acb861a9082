"""Podman runtimes for real: the burn workload on the shared rootfs, bridge and host network.

Run under the heavy lock: ``flock /tmp/isobench-heavy.lock ... pytest <this file>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from isobench.errors import StartError
from isobench.images.spec import Artifacts
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.podman import PodmanBridgeRuntime, PodmanHostRuntime, PodmanRuntime
from isobench.runtimes.podman.runtime import podman_state_dir
from isobench.util.netutil import free_port
from isobench.workloads.base import LaunchSpec
from isobench.workloads.burn import BurnWorkload
from tests.conftest import require
from tests.fixtures.retrans import Retransmissions
from tests.runtimes.conftest import get_json, mounts_containing, wait_ready

pytestmark = pytest.mark.integration
GIB = 1024**3
RUNTIMES: dict[str, type[PodmanRuntime]] = {"podman-bridge": PodmanBridgeRuntime,
                                            "podman-host": PodmanHostRuntime}
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]


@pytest.fixture(scope="session")
def burn_rootfs(need_root: None) -> Artifacts:
    from isobench.images.build import build_artifacts

    return build_artifacts(BurnWorkload().rootfs_spec(), {"rootfs"})


@pytest.fixture(scope="session")
def need_podman(need_root: None) -> None:
    reason = PodmanBridgeRuntime(RuntimeContext()).check()
    require(reason is None, f"podman: {reason}")


def _containers(run_id: str) -> list[str]:
    out = subprocess.run([*PODMAN, "ps", "-aq", "--filter", f"label=isobench.run={run_id}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def _leftover_dirs(run_id: str) -> list[Path]:
    return [p for p in podman_state_dir().iterdir() if f"-{run_id}-" in p.name]


def _assert_nothing_left(run_id: str) -> None:
    assert _containers(run_id) == []
    assert mounts_containing(f"-{run_id}-") == []
    assert _leftover_dirs(run_id) == []


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_burn_runs_on_loopback_only_and_stop_removes_everything(
    name: str, need_podman: None, burn_rootfs: Artifacts, tmp_path: Path
) -> None:
    run_id = f"t-{name}"
    runtime = RUNTIMES[name](RuntimeContext(work_dir=tmp_path, run_id=run_id))
    port = free_port()
    instance = runtime.start(burn_rootfs, BurnWorkload().launch_spec(), Resources(), port)
    try:
        startup = wait_ready(runtime, instance)
        print(f"\n[bench] {name} podman run -> first 200: {startup:.3f} s")
        burned = get_json(instance.endpoint + "/burn?seconds=0.2")
        assert burned["seconds"] >= 0.2 and burned["loops"] > 0, burned
        listeners = [c for c in psutil.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port]
        assert listeners and {c.laddr.ip for c in listeners} == {"127.0.0.1"}, listeners
        assert instance.facts["memory_limit"] == GIB
        mem = Path(instance.cgroups["memory"])
        assert mem.name == f"libpod-{instance.facts['container_id']}"
        assert int((mem / "memory.limit_in_bytes").read_text()) == GIB
        assert (Path(instance.cgroups["cpuset"]) / "cpuset.cpus").read_text().strip() == "0"
        names = {psutil.Process(p).name() for p in instance.pids}
        assert "conmon" in names, names  # overhead: outside the container's cgroups
        conmon = instance.facts["conmon_pid"]
        assert conmon not in {int(p) for p in (mem / "cgroup.procs").read_text().split()}
        labels = json.loads(subprocess.run(
            [*PODMAN, "inspect", "--format", "{{json .Config.Labels}}",
             instance.facts["container"]], capture_output=True, text=True, check=True).stdout)
        assert labels["isobench.run"] == run_id
        assert labels["isobench.owner-pid"] == str(os.getpid())
        assert labels["isobench.owner-start"].isdigit() and labels["isobench.owner-boot"]
        overlay = Path(instance.facts["overlay"])
        assert overlay in {Path(m) for m in mounts_containing(overlay.parent.name)}
        assert not (Path(burn_rootfs.rootfs) / "run" / ".containerenv").exists()
        if name == "podman-bridge":
            assert instance.facts["network_path"] == "netavark-dnat"
            assert instance.facts.get("port_holder") == "conmon"
            assert {c.pid for c in listeners} == {conmon}
            assert instance.net_iface and Path("/sys/class/net", instance.net_iface).exists()
        else:
            assert instance.facts["network_path"] == "host-network"
            assert instance.net_iface is None
        assert runtime.exited(instance) is None
    finally:
        runtime.stop(instance)
    runtime.stop(instance)  # idempotent
    _assert_nothing_left(run_id)
    for path in instance.cgroups.values():
        assert not Path(path).exists(), path
    assert instance.log_path is not None and instance.log_path.exists()


def test_start_failure_leaves_nothing(need_podman: None, burn_rootfs: Artifacts,
                                      tmp_path: Path) -> None:
    run_id = "t-podman-fail"
    runtime = PodmanBridgeRuntime(RuntimeContext(work_dir=tmp_path, run_id=run_id))
    broken = LaunchSpec(argv=("/no/such/binary",))
    with pytest.raises(StartError) as err:
        runtime.start(burn_rootfs, broken, Resources(), free_port())
    assert "\n" not in err.value.args[0]
    _assert_nothing_left(run_id)


def test_death_is_reported_with_code_and_log(need_podman: None, burn_rootfs: Artifacts,
                                             tmp_path: Path) -> None:
    run_id = "t-podman-dead"
    runtime = PodmanHostRuntime(RuntimeContext(work_dir=tmp_path, run_id=run_id))
    dying = LaunchSpec(argv=("/usr/bin/python3", "-c", "print('bye'); raise SystemExit(3)"))
    instance = runtime.start(burn_rootfs, dying, Resources(), free_port())
    try:
        deadline = time.monotonic() + 20
        while (reason := runtime.exited(instance)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reason is not None and "bye" in reason and "code 3" in reason, reason
    finally:
        runtime.stop(instance)
    _assert_nothing_left(run_id)


def test_leftovers_remove_a_dead_runs_container_and_overlay(
    need_podman: None, burn_rootfs: Artifacts, tmp_path: Path
) -> None:
    from isobench.runtimes.cleanup import only_run
    from isobench.util.proc import SubprocessRunner

    run_id = "t-podman-left"
    runtime = PodmanHostRuntime(RuntimeContext(work_dir=tmp_path, run_id=run_id))
    instance = runtime.start(burn_rootfs, BurnWorkload().launch_spec(), Resources(), free_port())
    try:
        done = PodmanRuntime.leftovers(only_run(run_id), SubprocessRunner())
        assert any(instance.facts["container"] in line for line in done.removed), done
        _assert_nothing_left(run_id)
    finally:
        runtime.stop(instance)


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_telemetry_sees_the_workload_conmon_and_every_byte(
    name: str, need_podman: None, burn_rootfs: Artifacts, tmp_path: Path
) -> None:
    """Known costs (a 1 s burn, a 2 MB payload) show up; conmon is overhead, not the instance.

    Bounds: the burn busy-loops for 1 s of wall time, so the cgroup sees at least the CPU time
    the app itself reports; the payload crosses the port counter once (IP headers add < 5 %), plus
    what TCP sent again (``tests.fixtures.retrans``).
    """
    from isobench.telemetry.session import TelemetrySession

    runtime = RUNTIMES[name](RuntimeContext(work_dir=tmp_path, run_id=f"t-{name}-tm"))
    instance = runtime.start(burn_rootfs, BurnWorkload().launch_spec(), Resources(), free_port())
    payload = 2_000_000
    try:
        wait_ready(runtime, instance)
        retrans = Retransmissions(instance.pids)  # segments sent again are counted again
        session = TelemetrySession(instance, interval=0.5, labels={"runtime": name, "trial": 0})
        session.start()
        try:
            time.sleep(0.6)
            burned = get_json(instance.endpoint + "/burn?seconds=1")
            import urllib.request

            with urllib.request.urlopen(instance.endpoint + f"/payload?bytes={payload}",
                                        timeout=30) as resp:
                assert len(resp.read()) == payload
            time.sleep(0.6)
        finally:
            session.stop()
        s = session.summary()
        resent = retrans.byte_bound()
        print(f"\n[bench] {name}", {k: round(v, 3) for k, v in sorted(s.items())
                                    if k.startswith(("cpu_s", "cpu_o", "net_"))})
        assert s["cpu_source_cgroup"] == 1.0
        assert s["cpu_seconds"] >= burned["cpu_seconds"] * 0.95, s
        assert "cpu_overhead_seconds" in s and "cpu_daemon_seconds" not in s
        assert s["net_source_iface"] == 0.0
        assert payload <= s["net_tx_bytes"] <= payload * 1.15 + 20_000 + resent, (s, resent)
        assert 0 < s["net_rx_bytes"] < 20_000 + resent, (s, resent)
    finally:
        runtime.stop(instance)
    _assert_nothing_left(f"t-{name}-tm")
