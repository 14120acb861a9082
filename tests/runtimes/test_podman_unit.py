"""Podman runtimes without Podman: argv builder, limits, exit reasons, leftovers (fake runner)."""

from __future__ import annotations

import itertools
import json
import resource
from pathlib import Path

import pytest

from isobench import plugins
from isobench.errors import StartError
from isobench.images.spec import WORKLOAD_DIR, Artifacts
from isobench.results import atomic_write_json
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.podman import PodmanBridgeRuntime, PodmanHostRuntime
from isobench.runtimes.podman.command import (
    Ulimits,
    container_labels,
    container_ulimits,
    exit_reason,
    info_facts,
    parse_ps_json,
    run_argv,
    stderr_tail,
)
from isobench.runtimes.podman.runtime import load_states, podman_state_dir
from isobench.util.locks import Owner
from isobench.util.netutil import free_port
from isobench.util.proc import CommandResult, FakeRunner, SubprocessRunner
from tests.runtimes.conftest import echo_launch

ULIMITS = Ulimits(nofile=(20000, 20000), nproc=(4096, 4096))
GLOBAL = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]


def _argv(network: str, bind: str, port: int = 8080, **resources: object) -> list[str]:
    spec = echo_launch(user="nobody").render(bind, port)
    return run_argv("isobench-r1-x", Path("/run/isobench/podman/x/merged"), spec,
                    Resources(**resources),  # type: ignore[arg-type]
                    network=network, host_port=port, ulimits=ULIMITS,
                    labels=container_labels(Owner(4242, 777, "b00t", "r1"), "podman-" + network))


def _pairs(argv: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(argv))


def test_bridge_argv_publishes_on_loopback_only_and_fixes_the_host_quirks() -> None:
    argv = _argv("bridge", "0.0.0.0")
    pairs = _pairs(argv)
    assert argv[:7] == [*GLOBAL, "run", "-d"]
    assert ("--network", "bridge") in pairs
    assert ("--publish", "127.0.0.1:8080:8080") in pairs
    assert ("--cpuset-cpus", "0") in pairs and "--cpus" not in argv
    assert ("--memory", "1024m") in pairs and ("--memory-swap", "1024m") in pairs
    assert ("--ulimit", "nofile=20000:20000") in pairs and ("--ulimit", "nproc=4096:4096") in pairs
    assert ("--pids-limit", "-1") in pairs
    assert ("--label", "isobench.run=r1") in pairs
    assert ("--label", "isobench.owner-pid=4242") in pairs
    assert ("--label", "isobench.created-by=isobench") in pairs
    assert ("--label", "isobench.owner-start=777") in pairs
    assert ("--label", "isobench.owner-boot=b00t") in pairs
    assert ("--workdir", WORKLOAD_DIR) in pairs and ("--user", "nobody") in pairs
    assert ("--tmpfs", "/tmp") in pairs
    assert ("--env", "ISOBENCH_MARKER=hello-8080") in pairs
    assert any(a.startswith("PATH=") for a in argv)
    rootfs = argv.index("--rootfs")
    assert argv[rootfs + 1] == "/run/isobench/podman/x/merged"
    assert argv[rootfs + 3:] == [f"{WORKLOAD_DIR}/echo_app.py", "0.0.0.0", "8080"]


def test_host_argv_has_no_publish_and_quota_is_passed() -> None:
    argv = _argv("host", "127.0.0.1", cpu_quota=0.5, cpus=(1,))
    pairs = _pairs(argv)
    assert ("--network", "host") in pairs and "--publish" not in argv
    assert ("--cpus", "0.5") in pairs and ("--cpuset-cpus", "1") in pairs
    assert "127.0.0.1" in argv and "0.0.0.0" not in argv
    with pytest.raises(ValueError):
        _argv("slirp", "0.0.0.0")


def test_fixed_port_image_is_published_to_its_own_port() -> None:
    from isobench.workloads.base import LaunchSpec

    spec = LaunchSpec(argv=("python3", "app.py"), port=18081).render("0.0.0.0", 18081)
    argv = run_argv("n", Path("/m"), spec, Resources(), network="bridge", host_port=40001,
                    ulimits=ULIMITS, labels={})
    assert ("--publish", "127.0.0.1:40001:18081") in _pairs(argv)


def test_ulimits_are_our_own_capped_where_runc_must_stop() -> None:
    def limits(which: int) -> tuple[int, int]:
        return {resource.RLIMIT_NOFILE: (1024, 20000),
                resource.RLIMIT_NPROC: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)}[which]

    got = container_ulimits(limits, nr_open=1048576, pid_max=32768)
    assert got.nofile == (1024, 20000)
    assert got.nproc == (32768, 32768)
    assert got.describe() == "nofile=1024:20000 nproc=32768:32768"
    capped = container_ulimits(lambda _: (99999, 99999), nr_open=50000, pid_max=4096)
    assert capped.nofile == (50000, 50000) and capped.nproc == (4096, 4096)


def test_exit_reason_names_the_code_and_log_and_stays_quiet_while_running() -> None:
    assert exit_reason("c", True, "running 0 false", "") is None
    reason = exit_reason("c", True, "exited 3 false", "hello\nbye\n")
    assert reason == "podman container c exited with code 3 (status exited): hello | bye"
    oom = exit_reason("c", True, "exited 137 true", "")
    assert oom is not None and "OOM-killed" in oom and "137" in oom
    gone = exit_reason("c", False, "", "")
    assert gone is not None and "gone" in gone and "\n" not in gone


def test_stderr_tail_drops_podman_warnings() -> None:
    err = ('time="x" level=warning msg="Error validating CNI config file"\n'
           "Error: runc: runc create failed: boom\n")
    assert stderr_tail("", err) == "Error: runc: runc create failed: boom"


def test_parse_ps_json_keeps_labelled_containers() -> None:
    rows = [{"Id": "abc", "Names": ["isobench-r1-x"], "Labels": {"isobench.run": "r1"}},
            {"Id": "def", "Names": ["other"], "Labels": None},
            {"Id": "ghi", "Names": [], "Labels": {"isobench.run": "r2"}}]
    found = parse_ps_json(json.dumps(rows))
    assert [(c.id, c.name, c.run_id) for c in found] == [("abc", "isobench-r1-x", "r1"),
                                                         ("ghi", "ghi", "r2")]
    assert parse_ps_json("not json") == [] and parse_ps_json("") == []


def test_info_facts() -> None:
    info = {"version": {"Version": "4.3.1"},
            "host": {"networkBackend": "netavark", "cgroupManager": "cgroupfs",
                     "cgroupVersion": "v1", "conmon": {"version": "conmon version 2.1.6"},
                     "ociRuntime": {"name": "runc", "version": "runc version 1.1.5\ncommit: x"}}}
    facts = info_facts(info)
    assert facts["podman_version"] == "4.3.1"
    assert facts["podman_oci_runtime_version"] == "runc version 1.1.5"
    assert facts["podman_network_backend"] == "netavark"


def test_registered() -> None:
    assert plugins.load("runtime", "podman-bridge") is PodmanBridgeRuntime
    assert plugins.load("runtime", "podman-host") is PodmanHostRuntime
    assert PodmanBridgeRuntime.artifact == PodmanHostRuntime.artifact == "rootfs"
    assert not PodmanBridgeRuntime.shares_host_network and PodmanHostRuntime.shares_host_network


def test_check_without_podman(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _: None)
    reason = PodmanHostRuntime(RuntimeContext(runner=FakeRunner())).check()
    assert reason == "podman not installed (fix: apt-get install podman netavark)"


class RmRunner(FakeRunner):
    """A fake runner that really runs ``rm`` (inside tmp_path), so removals can be checked."""

    def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
        if argv[0] == "rm":
            self.calls.append(tuple(argv))
            return SubprocessRunner().run(argv, **kw)
        return super().run(argv, **kw)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ISOBENCH_STATE", str(tmp_path / "state"))
    return podman_state_dir()


def test_failed_run_removes_container_and_overlay_and_says_why(state_dir: Path,
                                                               tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    failed = CommandResult(("podman",), 126, "",
                           'time="x" level=warning msg="noise"\n'
                           "Error: runc create failed: error setting rlimit type 7\n")
    fake = RmRunner({"podman --runtime runc --cgroup-manager cgroupfs run": failed})
    runtime = PodmanHostRuntime(RuntimeContext(runner=fake, work_dir=tmp_path, run_id="r9"))
    with pytest.raises(StartError, match="resource limits"):
        runtime.start(Artifacts(key="k", rootfs=rootfs), echo_launch(), Resources(), free_port())
    assert any(c[0] == "mount" and c[2] == "overlay" for c in fake.calls)
    assert any(c[5:7] == ("rm", "-f") for c in fake.calls)
    assert list(state_dir.iterdir()) == []  # instance dir and state file removed


def _live(owner: Owner | None) -> bool:
    """The fake clean's idea of a live owner: the run called "live"."""
    return owner is not None and owner.run_id == "live"


def test_leftovers_remove_only_dead_runs(state_dir: Path) -> None:
    owners = {run: Owner(100 + i, 5, "b00t", run) for i, run in enumerate(("dead", "live"))}
    rows = [{"Id": "aaa", "Names": ["isobench-dead-podman-host-1"],
             "Labels": owners["dead"].labels()},
            {"Id": "bbb", "Names": ["isobench-live-podman-host-1"],
             "Labels": owners["live"].labels()}]
    for run in ("dead", "live"):
        inst = state_dir / f"isobench-{run}-podman-host-1"
        (inst / "upper").mkdir(parents=True)
        atomic_write_json(state_dir / f"{inst.name}.json",
                          {"id": inst.name, "container": inst.name, "dir": str(inst),
                           "run_id": run, "owner": owners[run].to_json()})
    fake = RmRunner({"podman --runtime runc --cgroup-manager cgroupfs ps": (0, json.dumps(rows))})
    done = PodmanBridgeRuntime.leftovers(_live, fake)
    removed = [c[-1] for c in fake.calls if c[5:7] == ("rm", "-f")]
    assert removed == ["aaa", "isobench-dead-podman-host-1"]
    assert done.removed[0] == "podman container isobench-dead-podman-host-1 of run dead"
    assert done.removed[1].startswith("podman instance isobench-dead-podman-host-1: ")
    assert len(done.removed) == 2 and len(done.kept) == 2 and not done.unchecked
    assert [s["run_id"] for s in load_states()] == ["live"]
    assert (state_dir / "isobench-live-podman-host-1" / "upper").is_dir()
    assert not (state_dir / "isobench-dead-podman-host-1").exists()
    again = PodmanBridgeRuntime.leftovers(_live, RmRunner({
        "podman --runtime runc --cgroup-manager cgroupfs ps": (0, "[]"),
        "podman --runtime runc --cgroup-manager cgroupfs rm": (1, "no such container")}))
    assert not again.removed


def test_leftovers_without_podman_still_undo_recorded_overlays(state_dir: Path) -> None:
    class NoPodman(RmRunner):
        def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
            if argv[0] == "podman":
                raise FileNotFoundError("podman")
            return super().run(argv, **kw)

    inst = state_dir / "isobench-gone-podman-bridge-1"
    inst.mkdir()
    atomic_write_json(state_dir / f"{inst.name}.json",
                      {"id": inst.name, "dir": str(inst), "run_id": "gone"})
    done = PodmanBridgeRuntime.leftovers(lambda owner: False, NoPodman())
    assert done.removed == [f"podman instance {inst.name}: removed {inst}"]
    assert not done.unchecked
    assert load_states() == []
