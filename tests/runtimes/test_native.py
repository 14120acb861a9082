"""Native runtime: the echo app chrooted into the tiny rootfs, pinned, memory-limited, cleaned."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil
import pytest

from isobench.errors import StartError
from isobench.images.spec import WORKLOAD_DIR, Artifacts
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.cleanup import only_run
from isobench.runtimes.native import NativeRuntime, launch_argv, resolve_user
from isobench.util.netutil import free_port
from isobench.util.proc import SubprocessRunner
from isobench.workloads.base import LaunchSpec
from tests.runtimes.conftest import echo_launch, get_json, mounts_containing, wait_ready

GIB = 1024**3


@pytest.fixture
def native(tmp_path: Path) -> NativeRuntime:
    return NativeRuntime(RuntimeContext(work_dir=tmp_path, run_id="t-native"))


def assert_gone(instance) -> None:
    inst_id = instance.facts["instance_id"]
    assert not psutil.pid_exists(instance.pids[0]) or (
        psutil.Process(instance.pids[0]).status() == psutil.STATUS_ZOMBIE
    )
    assert mounts_containing(inst_id) == []
    for path in instance.cgroups.values():
        assert not Path(path).exists(), path
    overlay = Path(instance.facts["overlay"])
    assert not overlay.parent.exists()
    assert not (overlay.parent.parent / f"{inst_id}.json").exists()


def test_launch_argv_joins_cgroups_then_pins_then_chroots() -> None:
    spec = LaunchSpec(argv=("/app", "x"), env={"A": "1"}, workdir="/w")
    argv = launch_argv(Path("/m"), spec, "0", (65534, 65534), [Path("/cg/memory/cgroup.procs")])
    assert argv[:3] == ["/bin/sh", "-c", argv[2]]
    rest = argv[argv.index("--") + 1 :]
    assert rest[:3] == ["taskset", "-c", "0"]
    assert rest[3:6] == ["chroot", "--userspec=65534:65534", "--groups=65534"]
    assert rest[6] == "/m"
    assert rest[7:10] == ["/usr/bin/env", "-i", "--chdir=/w"]
    assert "A=1" in rest and any(a.startswith("PATH=") for a in rest)
    assert rest[-2:] == ["/app", "x"]


@pytest.mark.integration
def test_native_runs_pinned_limited_and_cleans_up(native, tiny_rootfs: Artifacts) -> None:
    assert native.check() is None
    port = free_port()
    instance = native.start(tiny_rootfs, echo_launch(), Resources(), port)
    try:
        startup = wait_ready(native, instance)
        print(f"\n[bench] native launch -> first 200: {startup:.3f} s")
        info = get_json(instance.endpoint + "/info")
        assert info["env"]["ISOBENCH_MARKER"] == f"hello-{port}"
        assert set(info["env"]) <= {"ISOBENCH_MARKER", "PYTHONUNBUFFERED", "PATH", "LC_CTYPE"}
        assert info["cwd"] == WORKLOAD_DIR
        assert info["cpus"] == [0]
        assert info["uid"] == 0
        assert info["pid"] == instance.pids[0]
        assert instance.facts["network_path"] == "loopback"
        assert instance.facts["memory_limit"] == GIB
        mem = Path(instance.cgroups["memory"])
        assert int((mem / "memory.limit_in_bytes").read_text()) == GIB
        assert str(instance.pids[0]) in (mem / "cgroup.procs").read_text().split()
        assert (Path(instance.cgroups["cpuset"]) / "cpuset.cpus").read_text().strip() == "0"
        # writes land in the overlay, never in the cached rootfs
        probe = Path(instance.facts["overlay"]) / "opt" / "isobench" / "probe.txt"
        probe.write_text("x")
        assert not (tiny_rootfs.rootfs / "opt" / "isobench" / "probe.txt").exists()
        assert native.exited(instance) is None
    finally:
        native.stop(instance)
    assert_gone(instance)
    native.stop(instance)  # idempotent


@pytest.mark.integration
def test_native_user_and_death_reported(native, tiny_rootfs: Artifacts) -> None:
    assert resolve_user(tiny_rootfs.rootfs, "nobody") == (65534, 65534)
    instance = native.start(tiny_rootfs, echo_launch(user="nobody"), Resources(), free_port())
    try:
        wait_ready(native, instance)
        assert get_json(instance.endpoint + "/")["uid"] == 65534
    finally:
        native.stop(instance)
    assert_gone(instance)

    dying = LaunchSpec(argv=("/usr/bin/python3", "-c", "print('bye'); raise SystemExit(3)"))
    instance = native.start(tiny_rootfs, dying, Resources(), free_port())
    try:
        import time

        deadline = time.monotonic() + 15
        while (reason := native.exited(instance)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reason is not None and "code 3" in reason and "bye" in reason
    finally:
        native.stop(instance)
    assert_gone(instance)


@pytest.mark.integration
def test_native_port_taken_is_a_clear_error(native, tiny_rootfs: Artifacts) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(StartError, match="already taken"):
            native.start(tiny_rootfs, echo_launch(), Resources(), sock.getsockname()[1])


@pytest.mark.integration
def test_clean_removes_a_forgotten_native_instance(tmp_path: Path, tiny_rootfs: Artifacts) -> None:
    runtime = NativeRuntime(RuntimeContext(work_dir=tmp_path, run_id="t-native-forgotten"))
    instance = runtime.start(tiny_rootfs, echo_launch(), Resources(), free_port())
    wait_ready(runtime, instance)
    done = NativeRuntime.leftovers(only_run("t-native-forgotten"), SubprocessRunner()).removed
    assert len(done) == 1 and "killed" in done[0]
    instance.handle["proc"].wait(timeout=5)
    assert_gone(instance)
