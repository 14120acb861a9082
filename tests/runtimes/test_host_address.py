"""Every runtime publishes or listens on ``Resources.host_address`` and nowhere else: the
command lines each builds for a remote client (address 198.18.0.1), checked without starting
anything (``tests/e2e/test_remote_client.py`` runs it for real); the VM takes no remote client."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from isobench.errors import StartError
from isobench.images.spec import Artifacts
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.docker import DockerBridgeRuntime, DockerHostRuntime, GvisorRuntime
from isobench.runtimes.podman.command import Ulimits, container_labels, run_argv
from isobench.runtimes.qemu import QemuRuntime
from isobench.runtimes.qemu.image import VmArtifacts
from isobench.runtimes.qemu.kvm_probe import ProbeResult
from isobench.util.locks import Owner
from isobench.util.proc import FakeRunner
from tests.runtimes.conftest import echo_launch

REMOTE = Resources(host_address="198.18.0.1")


def _docker(cls: type[DockerBridgeRuntime] | type[DockerHostRuntime]) -> list[str]:
    runtime = cls(RuntimeContext(runner=FakeRunner(), run_id="r1"))
    spec = echo_launch().render(runtime.bind_for(REMOTE), 8080)
    return runtime.run_argv("isobench/x:abc", "n", spec, REMOTE, 8080)


def test_docker_bridge_publishes_on_the_veth_address_only() -> None:
    argv = _docker(DockerBridgeRuntime)
    assert ("--publish", "198.18.0.1:8080:8080") in set(itertools.pairwise(argv))
    assert "127.0.0.1:8080:8080" not in " ".join(argv)
    assert DockerBridgeRuntime().path_for(REMOTE) == "dnat"
    assert DockerBridgeRuntime().path_for(Resources()) == "docker-proxy"


def test_host_network_containers_listen_on_the_veth_address() -> None:
    for cls in (DockerHostRuntime, GvisorRuntime):
        argv = _docker(cls)
        assert "198.18.0.1" in argv and "127.0.0.1" not in argv and "0.0.0.0" not in argv
        assert cls().path_for(REMOTE) == "veth-host"
        assert cls().path_for(Resources()) == "host-network"


def test_podman_bridge_publishes_on_the_veth_address() -> None:
    spec = echo_launch().render("0.0.0.0", 8080)
    argv = run_argv("n", Path("/m"), spec, REMOTE, network="bridge", host_port=8080,
                    ulimits=Ulimits((1024, 1024), (512, 512)),
                    labels=container_labels(Owner(1, 1, "b"), "p"))
    assert ("--publish", "198.18.0.1:8080:8080") in set(itertools.pairwise(argv))


def test_the_vm_refuses_a_remote_client_before_making_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The VM is reached on its own veth (``tests/vm/test_tapnet.py``), never on a remote
    client's address: asked to, it makes nothing and says why."""
    monkeypatch.setenv("ISOBENCH_STATE", str(tmp_path / "state"))
    vm = VmArtifacts(Path("/c/disk"), Path("/c/vmlinuz"), Path("/c/initrd"), "6.1")
    runner = FakeRunner()
    runtime = QemuRuntime(RuntimeContext(runner=runner, work_dir=tmp_path, run_id="r"),
                          prober=lambda k, i: ProbeResult(False, "no kvm", 0.0))
    with pytest.raises(StartError, match="remote client"):
        runtime.start(Artifacts("k", tmp_path, built={"vm": vm}), echo_launch(), REMOTE, 8080)
    assert runner.calls == [] and not list(tmp_path.iterdir())
