"""Real QEMU boots of the tiny test rootfs (each costs a few seconds under TCG: keep them few)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from isobench.images.spec import WORKLOAD_DIR, Artifacts
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.qemu import QemuRuntime, clean_vms
from isobench.runtimes.qemu.kvm_probe import probe_kvm, run_probe
from isobench.util.netutil import free_port
from isobench.workloads.base import LaunchSpec
from tests.runtimes.conftest import (  # noqa: F401  (tiny_rootfs is a fixture)
    TEST_CACHE,
    echo_launch,
    get_json,
    tiny_rootfs,
    tiny_spec,
    wait_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SECTIONS = ["/proc/stat", "/proc/meminfo", "/proc/loadavg", "/proc/net/dev", "tasks"]


@pytest.fixture(scope="session")
def vm_artifacts(need_qemu: None, tiny_rootfs: Artifacts) -> Artifacts:  # noqa: F811
    from isobench.images.build import build_artifacts

    started = time.monotonic()
    artifacts = build_artifacts(tiny_spec(), {"rootfs", "vm"}, cache=TEST_CACHE)
    print(f"\n[bench] vm artifacts ready in {time.monotonic() - started:.2f} s: {artifacts.sizes}")
    assert artifacts.get("vm") is not None
    return artifacts


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state dir, so clean_vms() here never touches other tests' VMs."""
    path = tmp_path / "state"
    monkeypatch.setenv("ISOBENCH_STATE", str(path))
    return path


def runtime(tmp_path: Path) -> QemuRuntime:
    return QemuRuntime(RuntimeContext(work_dir=tmp_path / "work", run_id="t-vm"))


def namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def qemu_gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def stats_sections(host: str, port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://{host}:{port}/cgi-bin/stats", timeout=5) as resp:
        assert resp.status == 200
        body = resp.read().decode()
    sections: dict[str, str] = {}
    name = None
    for line in body.splitlines():
        if line.startswith("==> ") and line.endswith(" <=="):
            name = line[4:-4]
            sections[name] = ""
        elif name is not None:
            sections[name] += line + "\n"
    return sections


def test_vm_runs_echo_app_with_env_workdir_user_and_agent(
    vm_artifacts: Artifacts, tmp_path: Path, state: Path
) -> None:
    vm = runtime(tmp_path)
    port = free_port()
    instance = vm.start(vm_artifacts, echo_launch(user="nobody"), Resources(), port)
    try:
        assert instance.vmm_pid and instance.pids == [instance.vmm_pid]
        assert instance.facts["network_path"] == "tap-bridge"
        netns, veth = instance.facts["vm_netns"], instance.facts["vm_veth"]
        assert instance.net_iface == veth and instance.host_address == instance.facts["vm_address"]
        assert netns in namespaces() and Path(f"/sys/class/net/{veth}").exists()
        assert (state / "vm" / f"{instance.facts['vm_id']}.json").is_file()
        seconds = wait_ready(vm, instance, deadline_s=90)
        print(f"\n[bench] vm launch → first 200: {seconds:.2f} s ({instance.facts['accel']})")
        info = get_json(instance.endpoint + "/")
        assert info["env"]["ISOBENCH_MARKER"] == f"hello-{port}"
        assert "PATH" not in info["env"] and "HOME" not in info["env"]  # clean environment
        assert info["cwd"] == WORKLOAD_DIR
        assert info["uid"] == 65534
        assert sorted(psutil.Process(instance.vmm_pid).cpu_affinity()) == [0]
        for thread in psutil.Process(instance.vmm_pid).threads():
            assert os.sched_getaffinity(thread.id) == {0}
        assert instance.agent_port
        sections = stats_sections(instance.host_address, instance.agent_port)
        assert list(sections) == SECTIONS
        assert sections["/proc/stat"].startswith("cpu ")
        assert "MemTotal:" in sections["/proc/meminfo"]
        assert len(sections["/proc/loadavg"].split()) == 5
        assert "eth0:" in sections["/proc/net/dev"]
        assert int(sections["tasks"].strip()) > 5
        assert vm.exited(instance) is None
        listening = {c.laddr.port for c in psutil.net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert port not in listening and 9100 not in listening  # nothing on the host for it
    finally:
        vm.stop(instance)
    assert netns not in namespaces() and not Path(f"/sys/class/net/{veth}").exists()
    assert instance.vmm_pid is not None and qemu_gone(instance.vmm_pid)
    assert not (state / "vm" / f"{instance.facts['vm_id']}.json").exists()
    assert not (instance.log_path.parent / "launch.sh").exists()  # type: ignore[union-attr]
    vm.stop(instance)  # idempotent


def test_vm_http_server_then_clean_vms_kills_leftover(
    vm_artifacts: Artifacts, tmp_path: Path, state: Path
) -> None:
    vm = runtime(tmp_path)
    spec = LaunchSpec(
        argv=("/usr/bin/python3", "-m", "http.server", "{port}", "--bind", "{bind}"),
        workdir="/tmp",
        ready_path="/",
    )
    instance = vm.start(vm_artifacts, spec, Resources(), free_port())
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(instance.endpoint + "/", timeout=0.5) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert vm.exited(instance) is None
                assert time.monotonic() < deadline, "http.server never answered"
                time.sleep(0.05)
        assert clean_vms() == [instance.facts["vm_id"]]
        assert instance.facts["vm_netns"] not in namespaces()  # its namespace went with it
        time.sleep(0.2)
        assert vm.exited(instance) is not None
        assert instance.vmm_pid is not None and qemu_gone(instance.vmm_pid)
    finally:
        vm.stop(instance)


def test_vm_workload_exit_is_reported(vm_artifacts: Artifacts, tmp_path: Path, state: Path) -> None:
    vm = runtime(tmp_path)
    spec = LaunchSpec(argv=("/bin/sh", "-c", "echo bye-from-guest; exit 7"))
    instance = vm.start(vm_artifacts, spec, Resources(), free_port())
    try:
        deadline = time.monotonic() + 90
        while (reason := vm.exited(instance)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "rc=" in reason
        instance.handle["proc"].wait(timeout=30)
        log = instance.log_path.read_text()  # type: ignore[union-attr]
        assert "[workload] bye-from-guest" in log
        assert "isobench: workload exited rc=7" in log
        assert instance.handle["proc"].returncode == 0  # clean poweroff
    finally:
        vm.stop(instance)


def test_kvm_probe(vm_artifacts: Artifacts, state: Path) -> None:
    vm = vm_artifacts.get("vm")
    assert vm is not None
    # The probe machinery itself: a TCG boot in probe mode prints the marker.
    assert run_probe(vm.kernel, vm.initrd, 30.0, accel="tcg").usable
    result = probe_kvm(vm.kernel, vm.initrd)
    print(f"\n[bench] kvm probe: {result}")
    assert result.reason
    assert (state / "kvm-probe.json").is_file()
    assert probe_kvm(vm.kernel, vm.initrd) == result  # cached
    out = subprocess.run(["pgrep", "-f", "isb_mode=probe"], capture_output=True, check=False)
    assert out.stdout.strip() == b""
    if result.usable:
        pytest.skip("KVM really boots a stock kernel on this host")
    assert not result.usable
