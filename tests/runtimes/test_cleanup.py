"""``isobench clean`` logic with a fake runner: only objects of dead owners go; a live run's stay;
a user's container built on isobench's image is never touched; what cannot be checked is said."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from isobench import cli
from isobench.runtimes import cleanup
from isobench.runtimes.cleanup import Cleaned, clean_leftovers, owner_live, runtime_hooks
from isobench.runtimes.docker import CONTAINER_LABELS, DockerBridgeRuntime, DockerRuntime
from isobench.runtimes.native import NativeRuntime, native_state_dir
from isobench.runtimes.qemu import QemuRuntime, vm_dir
from isobench.telemetry import nftcount
from isobench.util import locks
from isobench.util.locks import Owner
from isobench.util.proc import FakeRunner

REAL_NFT_LEFTOVERS = nftcount.leftovers


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state dir, and no real nftables: these tests never touch the host's objects."""
    monkeypatch.setenv("ISOBENCH_STATE", str(tmp_path / "state"))
    monkeypatch.setattr(nftcount, "leftovers", lambda live: Cleaned())
    return tmp_path / "state"


@pytest.fixture(scope="module")
def dead() -> Owner:
    """The owner record of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return Owner(child.pid, 12345, locks.boot_id(), "dead-run")


LIVE = Owner.current("live-run")
REUSED = Owner(LIVE.pid, LIVE.start + 7, LIVE.boot, "old-run")  # our pid, once another process's


def _row(cid: str, name: str, labels: dict[str, str]) -> str:
    return "\t".join([cid, name, *(labels.get(k, "") for k in CONTAINER_LABELS)])


def _docker(rows: list[str], images: dict[str, str], image_labels: dict[str, dict[str, str]],
            version: tuple[int, str] = (0, "24.0.7")) -> FakeRunner:
    return FakeRunner({
        "docker version": version,
        "docker ps -a": (0, "\n".join(rows) + "\n"),
        "docker inspect --format {{.Id}} {{.Image}}":
            (0, "".join(f"{c} {i}\n" for c, i in images.items())),
        "docker image inspect --format {{.Id}} {{json .Config.Labels}}":
            (0, "".join(f"{i} {json.dumps(lb)}\n" for i, lb in image_labels.items())),
    })


def test_docker_removes_only_dead_owners_containers(dead: Owner) -> None:
    victim_labels = {"isobench.key": "k", "isobench.run": "x"}  # e.g. an image that has them
    rows = [
        _row("c-live", "isobench-live-run-docker-bridge-0", LIVE.labels()),
        _row("c-dead", "isobench-dead-run-docker-bridge-0", dead.labels()),
        _row("c-reused", "isobench-old-run-docker-host-0", REUSED.labels()),
        _row("c-legacy", "isobench-legacy-docker-host-0", {"isobench.run": "legacy"}),
        _row("c-victim", "victim", {"isobench.run": "x"}),
    ]
    images = {"c-live": "sha256:i1", "c-dead": "sha256:i1", "c-reused": "sha256:i1",
              "c-legacy": "sha256:i1", "c-victim": "sha256:user"}
    runner = _docker(rows, images, {"sha256:i1": {"isobench.key": "k"},
                                    "sha256:user": victim_labels})
    done = DockerRuntime.leftovers(owner_live(), runner)
    removed = [c for c in runner.calls if c[:3] == ("docker", "rm", "-f")]
    assert removed == [("docker", "rm", "-f", "--volumes", "c-dead"),
                       ("docker", "rm", "-f", "--volumes", "c-reused")]
    assert len(done.removed) == 2 and "run dead-run" in done.removed[0]
    assert len(done.kept) == 1 and "live-run" in done.kept[0]
    assert len(done.unchecked) == 1 and "no owner recorded" in done.unchecked[0]
    assert not any("victim" in line for line in done.removed + done.kept + done.unchecked)


def test_docker_force_removes_live_ones_too_but_never_an_inherited_label(dead: Owner) -> None:
    rows = [_row("c-live", "a", LIVE.labels()), _row("c-victim", "victim", LIVE.labels())]
    runner = _docker(rows, {"c-live": "sha256:i1", "c-victim": "sha256:committed"},
                     {"sha256:i1": {}, "sha256:committed": LIVE.labels()})
    done = DockerRuntime.leftovers(owner_live(force=True), runner)
    assert [c[-1] for c in runner.calls if c[:2] == ("docker", "rm")] == ["c-live"]
    assert len(done.removed) == 1


def test_docker_unreadable_image_labels_are_not_a_reason_to_remove(dead: Owner) -> None:
    runner = _docker([_row("c1", "a", dead.labels())], {"c1": "sha256:gone"}, {})
    done = DockerRuntime.leftovers(owner_live(), runner)
    assert not any(c[:2] == ("docker", "rm") for c in runner.calls)
    assert done.unchecked and "not checked" in done.unchecked[0]


def test_docker_daemon_down_is_reported_not_counted_as_clean() -> None:
    runner = FakeRunner({"docker version": (1, "Cannot connect to the Docker daemon")})
    done = DockerRuntime.leftovers(owner_live(), runner)
    assert done.removed == [] and len(done.unchecked) == 1
    assert done.unchecked[0].startswith("docker: daemon not reachable")
    assert done.unchecked[0].endswith("containers not checked")


def test_cli_clean_exits_nonzero_and_says_what_was_not_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeRunner({"docker version": (1, "Cannot connect to the Docker daemon")})
    monkeypatch.setattr("isobench.util.proc.SubprocessRunner", lambda: fake)
    assert cli.main(["clean"]) == 1
    out = capsys.readouterr().out
    assert "not checked: docker: daemon not reachable" in out
    assert "0 removed, 0 kept (live runs), 1 not checked" in out
    assert "0 leftovers removed" not in out


def _native_state(owner: Owner | None, inst: str) -> Path:
    path = native_state_dir() / f"{inst}.json"
    data: dict[str, object] = {"id": inst, "run_id": owner.run_id if owner else "?",
                               "cgroups": {}, "state_file": str(path)}
    if owner is not None:
        data["owner"] = owner.to_json()
    path.write_text(json.dumps(data))
    return path


def test_native_instances_of_dead_owners_only(dead: Owner) -> None:
    live, gone, reused, legacy = (_native_state(LIVE, "a"), _native_state(dead, "b"),
                                  _native_state(REUSED, "c"), _native_state(None, "d"))
    done = NativeRuntime.leftovers(owner_live(), FakeRunner())
    assert live.exists() and legacy.exists()
    assert not gone.exists() and not reused.exists()
    assert len(done.removed) == 2 and len(done.kept) == 1 and len(done.unchecked) == 1
    NativeRuntime.leftovers(owner_live(force=True), FakeRunner())
    assert not live.exists() and not legacy.exists()


def test_vms_of_dead_owners_only(dead: Owner) -> None:
    for name, owner in (("v-live", LIVE), ("v-dead", dead)):
        record = {"pid": dead.pid, "name": f"isobench-vm-{name}", "work_dir": "/nonexistent/x",
                  "run_id": owner.run_id, "owner": owner.to_json()}
        (vm_dir() / f"{name}.json").write_text(json.dumps(record))
    done = QemuRuntime.leftovers(owner_live(), FakeRunner())
    assert sorted(p.stem for p in vm_dir().glob("*.json")) == ["v-live"]
    assert done.removed == ["VM v-dead of run dead-run (record)"]
    assert done.kept == [f"VM v-live: run live-run, pid {LIVE.pid} is live"]


def test_cleanup_iterates_registered_runtimes_once_per_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks = runtime_hooks()
    funcs = [getattr(h, "__func__", h) for h in hooks]
    assert len(funcs) == len(set(funcs))
    assert DockerBridgeRuntime.leftovers.__func__ in funcs  # type: ignore[attr-defined]
    calls: list[str] = []

    def fake_hook(name: str):  # type: ignore[no-untyped-def]
        return lambda live, runner: calls.append(name) or Cleaned(removed=[name])

    monkeypatch.setattr(cleanup, "runtime_hooks", lambda: [fake_hook("a"), fake_hook("b")])
    assert clean_leftovers(FakeRunner()).removed == ["a", "b"]
    assert "docker" not in Path(cleanup.__file__).read_text().split('"""', 2)[2]


class _FakeNft:
    available = True

    def __init__(self, tables: list[str]) -> None:
        self.tables = tables
        self.deleted: list[str] = []

    def run(self, cmd: str) -> str:
        if cmd == "list tables":
            return json.dumps({"nftables": [{"table": {"family": "inet", "name": t}}
                                            for t in self.tables]})
        self.deleted.append(cmd.split()[-1])
        return ""


def test_counter_tables_of_dead_owners_only(dead: Owner, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = nftcount.TABLE_PREFIX
    live_t, dead_t = f"{prefix}{LIVE.pid}_0", f"{prefix}{dead.pid}_0"
    unrecorded_live, unrecorded_dead = f"{prefix}{LIVE.pid}_1", f"{prefix}{dead.pid}_1"
    locks.write_record(nftcount.RECORDS, live_t, {}, LIVE)
    locks.write_record(nftcount.RECORDS, dead_t, {}, dead)
    fake = _FakeNft([live_t, dead_t, unrecorded_live, unrecorded_dead, "someone_elses"])
    monkeypatch.setattr(nftcount, "_nft", fake)
    monkeypatch.setattr(nftcount.os, "geteuid", lambda: 0)
    done = REAL_NFT_LEFTOVERS(owner_live())
    assert sorted(fake.deleted) == sorted([dead_t, unrecorded_dead])
    assert len(done.kept) == 2 and done.unchecked == []
    assert [p.stem for p, _ in locks.read_records(nftcount.RECORDS)] == [live_t]
