"""Docker runtimes (bridge, host network, gVisor): argv (fake runner) and real containers."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from isobench.errors import StartError
from isobench.images.spec import WORKLOAD_DIR, Artifacts
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.cleanup import only_run
from isobench.runtimes.docker import (
    DockerBridgeRuntime,
    DockerHostRuntime,
    DockerRuntime,
    GvisorRuntime,
)
from isobench.util.netutil import free_port
from isobench.util.proc import FakeRunner, SubprocessRunner
from tests.runtimes.conftest import echo_launch, get_json, wait_ready

GIB = 1024**3
RUNTIMES = {"docker-bridge": DockerBridgeRuntime, "docker-host": DockerHostRuntime,
            "gvisor": GvisorRuntime}


def _argv(cls: type[DockerRuntime], port: int = 8080) -> list[str]:
    runtime = cls(RuntimeContext(runner=FakeRunner(), run_id="r1"))
    spec = echo_launch(user="nobody").render(cls.bind, port)
    return runtime.run_argv("isobench/x:abc", "isobench-r1-x-0", spec, Resources(), port)


def _pairs(argv: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(argv))


def test_bridge_argv() -> None:
    argv = _argv(DockerBridgeRuntime)
    pairs = _pairs(argv)
    assert argv[:3] == ["docker", "run", "-d"]
    assert ("--publish", "127.0.0.1:8080:8080") in pairs
    assert ("--network", "bridge") in pairs
    assert ("--cpuset-cpus", "0") in pairs
    assert ("--memory", "1024m") in pairs and ("--memory-swap", "1024m") in pairs
    assert ("--label", "isobench.created-by=isobench") in pairs
    assert ("--label", "isobench.run=r1") in pairs and ("--label", "isobench=1") not in pairs
    assert ("--workdir", WORKLOAD_DIR) in pairs and ("--user", "nobody") in pairs
    assert ("--tmpfs", "/tmp") in pairs
    assert ("--env", "ISOBENCH_MARKER=hello-8080") in pairs
    assert "--init" not in argv and "--runtime" not in argv
    image = argv.index("isobench/x:abc")
    assert argv[image + 1 :] == [f"{WORKLOAD_DIR}/echo_app.py", "0.0.0.0", "8080"]


def test_host_and_gvisor_argv() -> None:
    host = _argv(DockerHostRuntime)
    assert ("--network", "host") in _pairs(host) and "--publish" not in host
    assert "127.0.0.1" in host and "0.0.0.0" not in host
    gvisor = _argv(GvisorRuntime)
    assert ("--runtime", "runsc") in _pairs(gvisor) and ("--network", "host") in _pairs(gvisor)


def test_check_reports_engine_down_and_missing_runsc() -> None:
    down = FakeRunner({"docker info": (1, "Cannot connect to the Docker daemon")})
    reason = DockerHostRuntime(RuntimeContext(runner=down)).check()
    assert reason and "start-dockerd.sh" in reason
    info = json.dumps({"Runtimes": {"runc": {"path": "runc"}}, "ServerVersion": "20.10"})
    no_runsc = FakeRunner({"docker info": (0, info)})
    assert DockerHostRuntime(RuntimeContext(runner=no_runsc)).check() is None
    reason = GvisorRuntime(RuntimeContext(runner=no_runsc)).check()
    assert reason and "register-runsc.sh" in reason


@pytest.mark.parametrize(("args", "problem"), [
    (["--network=host", "--platform=systrap"], None),
    (["--network=host", "--platform=ptrace"], None),
    (["--network=host", "--platform=kvm"], "platform kvm"),
    (["--network=host"], "platform runsc's default"),
    (["--platform=systrap"], "without --network=host"),
])
def test_gvisor_check_names_network_and_platform(args: list[str], problem: str | None) -> None:
    info = json.dumps({"Runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": args}}})
    reason = GvisorRuntime(RuntimeContext(runner=FakeRunner({"docker info": (0, info)}))).check()
    if problem is None:
        assert reason is None
    else:
        assert reason and problem in reason and "register-runsc.sh" in reason


def test_gvisor_facts_name_the_runsc_release() -> None:
    """The manifest says which runsc ran: gVisor's figures depend on its release."""
    info = json.dumps({"Runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": [
        "--network=host", "--platform=systrap"]}}})
    runner = FakeRunner({"docker info": (0, info),
                         "/usr/bin/runsc --version": (0, "runsc version 0.0~20240729.0\n"
                                                         "spec: 1.0.2-dev\n")})
    facts = GvisorRuntime(RuntimeContext(runner=runner)).facts()
    assert facts["gvisor_version"] == "0.0~20240729.0"
    assert facts["gvisor_platform"] == "systrap"
    gone = FakeRunner({"docker info": (0, info), "/usr/bin/runsc --version": (127, "")})
    assert GvisorRuntime(RuntimeContext(runner=gone)).facts()["gvisor_version"] is None


def test_run_failure_on_taken_port_is_clear() -> None:
    from isobench.util.proc import CommandResult

    failed = CommandResult(("docker",), 125, "", "Error: bind: address already in use")
    fake = FakeRunner({"docker run": failed})
    runtime = DockerBridgeRuntime(RuntimeContext(runner=fake))
    with pytest.raises(StartError, match="already taken"):
        runtime.start(Artifacts(key="k", rootfs=Path("/x"), built={"docker_image": "img"}),
                      echo_launch(), Resources(), free_port())
    assert any(c[:3] == ("docker", "rm", "-f") for c in fake.calls)


def _container_exists(name: str) -> bool:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"name=^{name}$"],
                         capture_output=True, text=True, check=True)
    return bool(out.stdout.strip())


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_container_runs_pinned_limited_and_cleans_up(
    name: str, tiny_docker: Artifacts, tmp_path: Path
) -> None:
    runtime = RUNTIMES[name](RuntimeContext(work_dir=tmp_path, run_id="t-docker"))
    reason = runtime.check()
    if name == "gvisor" and reason:
        from tests.conftest import require

        require(False, reason)
    assert reason is None
    port = free_port()
    instance = runtime.start(tiny_docker, echo_launch(), Resources(), port)
    container = instance.facts["container"]
    try:
        assert container.startswith(f"isobench-t-docker-{name}-")
        startup = wait_ready(runtime, instance)
        print(f"\n[bench] {name} docker run -> first 200: {startup:.3f} s")
        info = get_json(instance.endpoint + "/info")
        assert info["env"]["ISOBENCH_MARKER"] == f"hello-{port}"
        assert info["cwd"] == WORKLOAD_DIR
        assert info["cpus"] == [0]
        assert instance.facts["memory_limit"] == GIB
        mem = Path(instance.cgroups["memory"])
        assert mem.parts[-2] == "docker" and mem.name == instance.facts["container_id"]
        assert int((mem / "memory.limit_in_bytes").read_text()) == GIB
        assert (Path(instance.cgroups["cpuset"]) / "cpuset.cpus").read_text().strip() == "0"
        names = {psutil.Process(p).name() for p in instance.pids}
        assert any("containerd-shim" in n for n in names), names
        labels = json.loads(subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config.Labels}}", container],
            capture_output=True, text=True, check=True).stdout)
        assert labels["isobench.created-by"] == "isobench" and labels["isobench.run"] == "t-docker"
        if name == "docker-bridge":
            assert instance.facts["network_path"] == "docker-proxy"
            assert "docker-proxy" in names
            assert instance.net_iface and instance.net_iface.startswith("veth")
            assert Path("/sys/class/net", instance.net_iface).exists()
        else:
            assert instance.facts["network_path"] == "host-network"
            assert instance.net_iface is None
        assert runtime.exited(instance) is None
    finally:
        runtime.stop(instance)
    assert not _container_exists(container)
    for path in instance.cgroups.values():
        assert not Path(path).exists(), path
    deadline = time.monotonic() + 5
    while any(psutil.pid_exists(p) for p in instance.pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(psutil.pid_exists(p) for p in instance.pids)
    if instance.net_iface:
        assert not Path("/sys/class/net", instance.net_iface).exists()
    runtime.stop(instance)  # idempotent


@pytest.mark.integration
def test_container_death_is_reported_and_cleaned(tiny_docker: Artifacts, tmp_path: Path) -> None:
    from isobench.workloads.base import LaunchSpec

    runtime = DockerHostRuntime(RuntimeContext(work_dir=tmp_path, run_id="t-docker-dead"))
    dying = LaunchSpec(argv=("/usr/bin/python3", "-c", "print('bye'); raise SystemExit(3)"))
    instance = runtime.start(tiny_docker, dying, Resources(), free_port())
    try:
        deadline = time.monotonic() + 20
        while (reason := runtime.exited(instance)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reason is not None and "bye" in reason and "code 3" in reason
    finally:
        runtime.stop(instance)
    assert not _container_exists(instance.facts["container"])


@pytest.mark.integration
def test_clean_containers_removes_labelled_leftovers(tiny_docker: Artifacts,
                                                     tmp_path: Path) -> None:
    runtime = DockerHostRuntime(RuntimeContext(work_dir=tmp_path, run_id="t-docker-left"))
    instance = runtime.start(tiny_docker, echo_launch(), Resources(), free_port())
    done = DockerHostRuntime.leftovers(only_run("t-docker-left"), SubprocessRunner()).removed
    assert any(instance.facts["container_id"][:12] in line for line in done)
    assert not _container_exists(instance.facts["container"])
