"""``Runtime.exited`` names a death the way a failure reason needs it (unit level: a real killed
``sleep`` for the process runtimes, a fake command runner for Docker)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from isobench.runtimes.base import Instance, RuntimeContext
from isobench.runtimes.docker import DockerBridgeRuntime, container_exit
from isobench.runtimes.native import NativeRuntime
from isobench.runtimes.qemu import QemuRuntime
from isobench.util.proc import CommandResult, FakeRunner


def _killed_sleep() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["sleep", "30"])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return proc


@pytest.mark.parametrize(("line", "expected"), [
    ("false 137 false ", "exited with code 137 (SIGKILL)"),
    ("false 143 false ", "exited with code 143 (SIGTERM)"),
    ("false 1 false ", "exited with code 1"),
    ("false 137 true ", "exited with code 137 (SIGKILL), killed for running out of memory"),
    ("false 127 false exec: \"/app\": not found",
     'exited with code 127, error: exec: "/app": not found'),
    ("", "is not running (no state)"),
])
def test_container_exit_text(line: str, expected: str) -> None:
    assert container_exit(line) == expected


def _container(runner: FakeRunner) -> tuple[DockerBridgeRuntime, Instance]:
    runtime = DockerBridgeRuntime(RuntimeContext(runner=runner, run_id="r1"))
    instance = Instance(runtime="docker-bridge", host_port=1, launched_at=0.0,
                        facts={"container": "isobench-r1-docker-bridge-0"},
                        handle={"id": "cid", "name": "isobench-r1-docker-bridge-0", "pid": 0})
    return runtime, instance


def test_docker_killed_container() -> None:
    runtime, instance = _container(FakeRunner({
        "docker inspect": (0, "false 137 false \n"),
        "docker logs": (0, "serving on 0.0.0.0:8000\n"),
    }))
    assert runtime.exited(instance) == ("container isobench-r1-docker-bridge-0 exited with code "
                                        "137 (SIGKILL): serving on 0.0.0.0:8000")


def test_docker_running_container_is_alive() -> None:
    runtime, instance = _container(FakeRunner({"docker inspect": (0, "true 0 false \n")}))
    assert runtime.exited(instance) is None


def test_docker_engine_gone() -> None:
    """dockerd stopped mid-run: the container cannot be asked about any more."""
    down = CommandResult(("docker",), 1, "", "Cannot connect to the Docker daemon at "
                         "unix:///var/run/docker.sock. Is the docker daemon running?")
    runtime, instance = _container(FakeRunner({"docker inspect": down}))
    reason = runtime.exited(instance)
    assert reason is not None
    assert reason.startswith("container isobench-r1-docker-bridge-0 is gone (docker inspect: ")
    assert "Cannot connect to the Docker daemon" in reason


def test_native_killed_process(tmp_path: Path) -> None:
    proc = _killed_sleep()
    log = tmp_path / "app.log"
    log.write_text("serving\n")
    instance = Instance(runtime="native", host_port=1, launched_at=0.0, log_path=log,
                        handle={"proc": proc})
    assert NativeRuntime().exited(instance) == (
        f"native process {proc.pid} was killed by signal 9 (SIGKILL): serving")


def test_native_exit_code(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sh", "-c", "exit 3"])
    proc.wait(timeout=10)
    instance = Instance(runtime="native", host_port=1, launched_at=0.0,
                        log_path=tmp_path / "none.log", handle={"proc": proc})
    assert NativeRuntime().exited(instance) == f"native process {proc.pid} exited with code 3"


def test_qemu_killed(tmp_path: Path) -> None:
    proc = _killed_sleep()
    (tmp_path / "qemu.stderr").write_text("")
    serial = tmp_path / "serial.log"
    serial.write_text("isobench: workload starting\n")
    instance = Instance(runtime="vm", host_port=1, launched_at=0.0, log_path=serial,
                        handle={"proc": proc, "work": tmp_path})
    assert QemuRuntime().exited(instance) == (
        f"qemu {proc.pid} was killed by signal 9 (SIGKILL): isobench: workload starting")
