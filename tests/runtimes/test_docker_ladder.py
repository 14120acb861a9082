"""The Docker ladder of ``isobench explain`` and the per-arm runtime options it runs on: the
``docker run`` arguments of every step (fake runner), one layer added per step, the option checks
and the arms the command builds."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from isobench.config.benchfile import load_benchfile
from isobench.errors import ConfigError, StartError
from isobench.images.spec import Artifacts
from isobench.results import RunStore
from isobench.run import explain
from isobench.run.orchestrator import RunOrchestrator
from isobench.runtimes.base import LadderStep, Resources, RuntimeContext
from isobench.runtimes.docker import DockerBridgeRuntime, DockerHostRuntime, GvisorRuntime
from isobench.runtimes.docker.runtime import DockerRuntime
from isobench.runtimes.native import NativeRuntime
from isobench.util.netutil import free_port
from isobench.util.proc import FakeRunner
from tests.runtimes.conftest import echo_launch

CLASSES: dict[str, type[DockerRuntime]] = {"docker-host": DockerHostRuntime,
                                           "docker-bridge": DockerBridgeRuntime}
IMAGE = "isobench/x:abc"


def _argv(step: LadderStep, port: int = 8080) -> list[str]:
    cls = CLASSES[step.runtime]
    runtime = cls(RuntimeContext(runner=FakeRunner(), run_id="r1"))
    runtime.options = cls.check_options(step.options)
    spec = echo_launch().render(cls.bind, port)
    return runtime.run_argv(IMAGE, "isobench-r1-x-0", spec, Resources(cpus=(0,)), port)


def _pairs(argv: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(argv))


def _layers(argv: list[str]) -> dict[str, bool]:
    pairs = _pairs(argv)
    return {
        "unconfined": ("--security-opt", "seccomp=unconfined") in pairs
        and ("--security-opt", "apparmor=unconfined") in pairs,
        "cgroup_limits": ("--cpuset-cpus", "0") in pairs and ("--memory", "1024m") in pairs,
        "taskset": ("--entrypoint", "taskset") in pairs and argv[argv.index(IMAGE) + 1:][:2]
        == ["-c", "0"],
        "log_none": ("--log-driver", "none") in pairs,
        "host_network": ("--network", "host") in pairs,
        "published_loopback": ("--publish", "127.0.0.1:8080:8080") in pairs,
    }


def test_each_docker_step_adds_one_layer() -> None:
    steps = DockerBridgeRuntime.ladder_from("native")
    assert steps is not None
    assert [s.arm for s in steps] == ["native", "bare-container", "seccomp", "cgroups",
                                      "docker-host", "docker-bridge"]
    assert steps[0].runtime == "native" and not steps[0].options
    layers = {s.arm: _layers(_argv(s)) for s in steps[1:]}
    assert layers["bare-container"] == {"unconfined": True, "cgroup_limits": False,
                                        "taskset": True, "log_none": True,
                                        "host_network": True, "published_loopback": False}
    assert layers["seccomp"] == {**layers["bare-container"], "unconfined": False}
    assert layers["cgroups"] == {**layers["seccomp"], "cgroup_limits": True, "taskset": False}
    assert layers["docker-host"] == {**layers["cgroups"], "log_none": False}
    assert layers["docker-bridge"] == {**layers["docker-host"], "host_network": False,
                                       "published_loopback": True}


def test_the_steps_that_are_a_runtime_run_it_exactly_as_users_do() -> None:
    steps = {s.arm: s for s in DockerBridgeRuntime.ladder_from("native") or []}
    for name, cls in CLASSES.items():
        plain = cls(RuntimeContext(runner=FakeRunner(), run_id="r1"))
        spec = echo_launch().render(cls.bind, 8080)
        expected = plain.run_argv(IMAGE, "isobench-r1-x-0", spec, Resources(cpus=(0,)), 8080)
        assert steps[name].options == {} and _argv(steps[name]) == expected


def test_the_pinned_cpus_are_the_same_in_every_step() -> None:
    for step in (DockerBridgeRuntime.ladder_from("native") or [])[1:]:
        argv = _argv(step)
        pinned = [b for a, b in itertools.pairwise(argv) if a in ("--cpuset-cpus", "-c")]
        assert pinned == ["0"], (step.arm, argv)


def test_remote_client_steps_when_arms_can_choose_their_client() -> None:
    steps = DockerBridgeRuntime.ladder_from("native", remote_client=True) or []
    tail = [(s.arm, s.runtime, s.client) for s in steps[-3:]]
    assert tail == [("remote-client", "docker-host", "remote"),
                    ("bridge-dnat", "docker-bridge", "remote"),
                    ("docker-bridge", "docker-bridge", "local")]
    assert _argv(steps[-2]) == _argv(steps[-1])  # the same container: only the client moves


def test_sub_ladders_and_pairs_without_one() -> None:
    host = DockerHostRuntime.ladder_from("native") or []
    assert [s.arm for s in host][-1] == "docker-host" and len(host) == 5
    bridge = DockerBridgeRuntime.ladder_from("docker-host") or []
    assert [s.arm for s in bridge] == ["docker-host", "docker-bridge"]
    assert bridge[0].label == "docker-host (baseline)" and bridge[0].options == {}
    assert DockerHostRuntime.ladder_from("docker-bridge") is None
    assert GvisorRuntime.ladder_from("native") is None
    assert NativeRuntime.ladder_from("docker-host") is None


def test_runtime_options_are_checked() -> None:
    assert DockerHostRuntime.check_options({"security": "default", "log_driver": "none"}) == {
        "log_driver": "none"}
    with pytest.raises(ConfigError, match="no runtime option 'seccomp'"):
        DockerHostRuntime.check_options({"seccomp": "off"})
    with pytest.raises(ConfigError, match="limits: 'none' is not one of cgroup, affinity"):
        DockerHostRuntime.check_options({"limits": "none"})
    with pytest.raises(ConfigError, match="native takes no runtime_options"):
        NativeRuntime.check_options({"x": 1})


def test_affinity_needs_taskset_in_the_rootfs(tmp_path: Path) -> None:
    fake = FakeRunner()
    runtime = DockerHostRuntime(RuntimeContext(runner=fake))
    runtime.options = {"limits": "affinity"}
    artifacts = Artifacts(key="k", rootfs=tmp_path, built={"docker_image": "img"})
    with pytest.raises(StartError, match="taskset"):
        runtime.start(artifacts, echo_launch(), Resources(), free_port())
    assert fake.calls == []  # refused before docker run


def test_explain_arms_and_refusals() -> None:
    steps, notes = explain.ladder("native", "docker-bridge", remote_client=False)
    arms = explain.arms_data(steps, client_path=False)
    assert list(arms) == [s.arm for s in steps]
    assert arms["bare-container"] == {"runtime": "docker-host", "runtime_options": {
        "security": "unconfined", "limits": "affinity", "log_driver": "none"}}
    assert arms["native"] == {"runtime": "native"}
    assert notes and "remote-client, bridge-dnat" in notes[0]
    remote, _ = explain.ladder("native", "docker-bridge", remote_client=True)
    with_client = explain.arms_data(remote, client_path=True)
    assert with_client["bridge-dnat"]["client"] == "remote"
    assert with_client["native"]["client"] == "local"
    with pytest.raises(ValueError, match="remote client"):
        explain.arms_data(remote, client_path=False)
    with pytest.raises(ConfigError) as err:
        explain.ladder("native", "vm")
    assert "native\u2192docker-bridge" in err.value.fix and "docker-host\u2192docker-bridge" in \
        err.value.fix
    with pytest.raises(ConfigError, match="unknown runtime"):
        explain.ladder("nativ", "docker-bridge")


def test_the_explain_benchfile_and_the_runner_give_each_arm_its_options(tmp_path: Path) -> None:
    steps, _ = explain.ladder("native", "docker-bridge", remote_client=False)
    bench = explain.explain_benchfile(steps, {"workload": "burn", "trials": 2,
                                              "runtimes": ["vm"]})
    assert bench.baseline_runtime == "native" and bench.runtimes == ["native", "docker-host",
                                                                      "docker-bridge"]
    orchestrator = RunOrchestrator(bench, RunStore(tmp_path / "run"))
    own = orchestrator.load_arm_runtimes()
    assert sorted(own) == ["bare-container", "cgroups", "seccomp"]
    assert own["cgroups"].options == {"log_driver": "none"} and own["cgroups"].name == \
        "docker-host"
    bad = load_benchfile(None, {"arms": {"a": {"runtime": "docker-host", "runtime_options": {
        "limits": "none"}}}})
    with pytest.raises(ConfigError, match="limits"):
        RunOrchestrator(bad, RunStore(tmp_path / "bad")).load_arm_runtimes()
