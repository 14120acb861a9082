"""``LaunchSpec.volumes`` with a fake runner: the shared checks, and how each runtime makes,
names and removes a volume (native bind mount, Docker/Podman volume, QEMU second disk).
The real thing is ``tests/runtimes/test_contract.py``'s volume test."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from isobench.errors import StartError
from isobench.images.spec import Artifacts
from isobench.runtimes import volumes
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.cleanup import owner_live
from isobench.runtimes.docker import CONTAINER_LABELS, DockerHostRuntime, GvisorRuntime
from isobench.runtimes.docker.runtime import volume_leftovers
from isobench.runtimes.native import runtime as native
from isobench.runtimes.podman.command import Ulimits, run_argv
from isobench.runtimes.podman.runtime import teardown
from isobench.runtimes.qemu import VmConfig, qemu_argv, render_launch
from isobench.runtimes.qemu import runtime as qemu
from isobench.runtimes.qemu.image import VmArtifacts
from isobench.util.locks import Owner
from isobench.util.proc import FakeRunner
from isobench.workloads.base import LaunchSpec
from tests.runtimes.conftest import echo_launch

VOL = "/var/lib/isobench-vol"


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ISOBENCH_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def spec_with(*paths: str) -> LaunchSpec:
    return LaunchSpec(argv=("/bin/true",), volumes=paths, volume_mb=300)


# --- shared checks ------------------------------------------------------------------------------


def test_render_keeps_the_volumes() -> None:
    rendered = spec_with(VOL).render("127.0.0.1", 80)
    assert rendered.volumes == (VOL,) and rendered.volume_mb == 300


@pytest.mark.parametrize("bad", ["relative", "/", "/a b", "/a/../b", "/x,y", "/tmp", "/tmp/sub",
                                 "/v", "/v/inner"])
def test_volume_paths_must_be_plain_and_apart(bad: str) -> None:
    with pytest.raises(StartError):
        volumes.check_paths(["/v", bad] if bad != "/v" else ["/v", "/v/"], ["/tmp"])


def test_good_paths_pass() -> None:
    volumes.check_paths([VOL, "/data"], ["/tmp", "/run/x"])


def test_filesystem_of_takes_the_longest_mount(tmp_path: Path) -> None:
    mem, disk = tmp_path / "mem", tmp_path / "mem" / "disk"
    disk.mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\ntmpfs {mem} tmpfs rw 0 0\n"
                      f"/dev/vdb {disk} ext4 rw 0 0\n")
    assert volumes.filesystem_of(mem / "x" / "y", mounts).in_memory  # nearest existing: mem
    fs = volumes.filesystem_of(disk / "z", mounts)
    assert fs == volumes.Filesystem("ext4", "/dev/vdb", str(disk)) and not fs.in_memory
    assert volumes.filesystem_of(tmp_path, mounts).describe() == "ext4 on /dev/vda"


def test_disk_dir_falls_back_to_var_tmp_when_the_instance_dir_is_in_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    memory = volumes.Filesystem("tmpfs", "tmpfs", "/run")
    disk = volumes.Filesystem("ext4", "/dev/vda", "/")
    monkeypatch.setattr(volumes, "filesystem_of",
                        lambda p: memory if str(p).startswith("/run") else disk)
    assert volumes.disk_dir(Path("/srv/i/volumes"), "i") == Path("/srv/i/volumes")
    assert volumes.disk_dir(Path("/run/isobench/i"), "i") == volumes.FALLBACK_ROOT / "i"
    monkeypatch.setattr(volumes, "filesystem_of", lambda p: memory)
    with pytest.raises(StartError, match="no disk filesystem"):
        volumes.disk_dir(Path("/run/isobench/i"), "i")


MOUNTS = json.dumps([
    {"Type": "volume", "Name": "0123456789abcdef", "Source": "/var/lib/docker/volumes/x/_data",
     "Destination": VOL},
    {"Type": "tmpfs", "Destination": "/tmp"}])


def test_engine_volume_facts_name_the_backing_store_first() -> None:
    facts = volumes.engine_volume_facts(MOUNTS, [VOL], "docker volume", ", through gofer")
    line = facts[VOL]
    assert line.startswith("docker volume 0123456789ab at /var/lib/docker/volumes/x/_data (")
    assert line.endswith(", through gofer")
    with pytest.raises(StartError, match="no volume on /data"):
        volumes.engine_volume_facts(MOUNTS, [VOL, "/data"], "docker volume")
    with pytest.raises(StartError):
        volumes.engine_volume_facts("not json", [VOL], "docker volume")


# --- Docker and Podman --------------------------------------------------------------------------


def test_docker_argv_asks_for_an_empty_labelled_anonymous_volume() -> None:
    runtime = GvisorRuntime(RuntimeContext(runner=FakeRunner(), run_id="r1"))
    spec = echo_launch().render("127.0.0.1", 8080)
    spec = LaunchSpec(**{**spec.__dict__, "volumes": (VOL,)})
    argv = runtime.run_argv("img", "isobench-r1-gvisor-0", spec, Resources(), 8080)
    mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "--mount"]
    assert len(mounts) == 1
    options = mounts[0].split(",")
    assert options[:3] == ["type=volume", f"dst={VOL}", "volume-nocopy=true"]
    assert "volume-label=isobench.run=r1" in options
    assert "volume-label=isobench.runtime=gvisor" in options
    assert argv.index("--mount") < argv.index("img")


def test_docker_start_records_the_volume_and_removes_it_on_failure() -> None:
    fake = FakeRunner({"docker run": (0, "cid123\n"),
                       "docker inspect --format {{json .Mounts}}": (0, MOUNTS)})
    runtime = DockerHostRuntime(RuntimeContext(runner=fake, run_id="r2"))
    artifacts = Artifacts(key="k", rootfs=Path("/x"), built={"docker_image": "img"})
    spec = LaunchSpec(**{**echo_launch().__dict__, "volumes": (VOL,)})
    instance = runtime.start(artifacts, spec, Resources(), 18999)
    assert instance.facts["volumes"][VOL].startswith("docker volume 0123456789ab at /var/lib/")
    runtime.stop(instance)
    assert ("docker", "rm", "-f", "--volumes", "cid123") in fake.calls

    missing = FakeRunner({"docker run": (0, "cid456\n"),
                          "docker inspect --format {{json .Mounts}}": (0, "[]")})
    runtime = DockerHostRuntime(RuntimeContext(runner=missing, run_id="r3"))
    with pytest.raises(StartError, match="no volume"):
        runtime.start(artifacts, spec, Resources(), 18999)
    assert ("docker", "rm", "-f", "--volumes", "cid456") in missing.calls


def test_docker_clean_removes_dangling_volumes_of_dead_owners_only() -> None:
    dead = Owner(2**22 + 7, 1, "gone-boot", "dead-run")
    live = Owner.current("live-run")

    def row(name: str, owner: Owner) -> str:
        labels = owner.labels()
        return "\t".join([name, *(labels.get(k, "") for k in CONTAINER_LABELS)])

    fake = FakeRunner({"docker volume ls": (0, row("vdead", dead) + "\n" + row("vlive", live))})
    done = volume_leftovers(owner_live(), fake)
    ls = next(c for c in fake.calls if c[:3] == ("docker", "volume", "ls"))
    assert "dangling=true" in ls and "label=isobench.run" in ls
    assert [c for c in fake.calls if c[:3] == ("docker", "volume", "rm")] == [
        ("docker", "volume", "rm", "vdead")]
    assert done.removed == ["docker volume vdead of run dead-run"] and len(done.kept) == 1
    down = volume_leftovers(owner_live(), FakeRunner({"docker volume ls": (1, "")}))
    assert down.unchecked and not down.removed


def test_podman_argv_has_the_same_volume_and_teardown_removes_it() -> None:
    spec = LaunchSpec(**{**echo_launch().__dict__, "volumes": (VOL,)})
    argv = run_argv("c", Path("/r"), spec, Resources(), network="host", host_port=1,
                    labels={}, ulimits=Ulimits((1, 1), (1, 1)))
    assert ("--mount", f"type=volume,dst={VOL}") in set(itertools.pairwise(argv))
    fake = FakeRunner()
    teardown({"container": "c", "container_id": "cid"}, fake)
    assert fake.calls[0][5:] == ("rm", "-f", "-v", "-t", "0", "cid")


# --- native -------------------------------------------------------------------------------------


def _native_state(inst_dir: Path) -> dict[str, object]:
    return {"id": "i1", "dir": str(inst_dir), "state_file": str(inst_dir.parent / "i1.json"),
            "cgroups": {}}


def test_native_binds_a_directory_on_disk_and_teardown_removes_it(tmp_path: Path) -> None:
    inst_dir = tmp_path / "i1"
    merged = inst_dir / "merged"
    merged.mkdir(parents=True)
    state = _native_state(inst_dir)
    fake = FakeRunner()
    served = native.NativeRuntime(RuntimeContext(runner=fake))._mount_volumes(
        merged, inst_dir, spec_with(VOL, "/data"), state, fake)
    binds = [c for c in fake.calls if c[:2] == ("mount", "--bind")]
    assert binds == [("mount", "--bind", str(inst_dir / "volumes" / "v0"), str(merged / VOL[1:])),
                     ("mount", "--bind", str(inst_dir / "volumes" / "v1"), str(merged / "data"))]
    assert served[VOL].startswith(f"bind mount of {inst_dir / 'volumes' / 'v0'} (")
    assert "tmpfs" not in served[VOL]
    assert (inst_dir / "volumes" / "v0").stat().st_mode & 0o777 == 0o755
    assert state["volume_dirs"] == [str(inst_dir / "volumes")]
    assert json.loads(Path(str(state["state_file"])).read_text())["volume_dirs"] == [
        str(inst_dir / "volumes")]


def test_native_volume_outside_the_instance_dir_is_removed_by_teardown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inst_dir = tmp_path / "run" / "i1"
    merged = inst_dir / "merged"
    merged.mkdir(parents=True)
    outside = tmp_path / "vartmp" / "i1"
    monkeypatch.setattr(native, "disk_dir", lambda preferred, name: outside)
    state = _native_state(inst_dir)
    fake = FakeRunner()
    native.NativeRuntime(RuntimeContext(runner=fake))._mount_volumes(
        merged, inst_dir, spec_with(VOL), state, fake)
    assert (outside / "v0").is_dir()

    class Rm(FakeRunner):
        def _execute(self, call):  # type: ignore[no-untyped-def]
            import shutil

            if call.argv[:2] == ("rm", "-rf"):
                shutil.rmtree(call.argv[-1], ignore_errors=True)
            return super()._execute(call)

    steps = native.teardown_native(state, Rm())
    assert not outside.exists() and not inst_dir.exists()
    assert f"removed volume {outside}" in steps


# --- QEMU ---------------------------------------------------------------------------------------


VM = VmArtifacts(Path("/c/disk.ext4"), Path("/c/vmlinuz"), Path("/c/initrd.img"), "6.1.0-1-cloud")
GUEST_IP = "198.18.0.2/30"


def _cfg(machine: str) -> VmConfig:
    return VmConfig(vm=VM, accel="tcg", machine=machine, memory_mb=1024, vcpus=1,
                    netdev="tap,id=n0,ifname=tap0,script=no,downscript=no",
                    mac="52:54:00:00:00:01", launch_file=Path("/w/l"), serial_log=Path("/w/s"),
                    pidfile=Path("/w/p"), name="n", volumes=(Path("/w/vol0.img"),))


@pytest.mark.parametrize(("machine", "device"), [("q35", "virtio-blk-pci"),
                                                 ("microvm", "virtio-blk-device")])
def test_vm_gets_one_read_write_disk_per_volume(machine: str, device: str) -> None:
    argv = qemu_argv(_cfg(machine))
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives[0].endswith("readonly=on")  # the root disk stays read-only and first
    assert drives[1] == "id=v0,file=/w/vol0.img,format=raw,if=none,cache=none"
    assert f"{device},drive=v0,serial=isbvol0" in argv


def test_vm_launch_fragment_names_serial_and_path() -> None:
    text = render_launch(spec_with(VOL, "/data"), GUEST_IP)
    assert f"ISB_VOLUMES='isbvol0:{VOL} isbvol1:/data'" in text
    with pytest.raises(StartError):
        render_launch(spec_with("/tmp/x"), GUEST_IP)  # inside the writable /tmp
    assert "ISB_VOLUMES=''" in render_launch(LaunchSpec(argv=("/bin/true",)), GUEST_IP)


def test_vm_volume_image_is_sparse_ext4_and_removed(tmp_path: Path) -> None:
    fake = FakeRunner()
    images = qemu.make_volume_images(tmp_path, 2, 300, fake)
    assert [i.name for i in images] == ["vol0.img", "vol1.img"]
    assert images[0].stat().st_size == 300 * 2**20
    assert images[0].stat().st_blocks == 0  # sparse: nothing written until the guest writes
    assert fake.calls[0] == ("mkfs.ext4", "-q", "-F", "-m", "0", "-L", "isbvol0", "-E",
                             "lazy_itable_init=0,lazy_journal_init=0,nodiscard", str(images[0]))
    qemu.remove_volume_images(tmp_path)
    assert not list(tmp_path.glob("vol*.img")) and tmp_path.is_dir()


def test_vm_leftovers_remove_a_fallback_volume_dir(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fallback = tmp_path / "vartmp"
    monkeypatch.setattr(qemu, "FALLBACK_ROOT", fallback)
    vol_dir = fallback / "vm-abc"
    vol_dir.mkdir(parents=True)
    (vol_dir / "vol0.img").write_bytes(b"x")
    record = qemu.vm_dir() / "abc.json"
    record.write_text("{}")
    qemu._remove_vm(record, {"pid": None, "name": "n", "volume_dir": str(vol_dir),
                             "work_dir": str(tmp_path / "run" / "vm-abc")}, FakeRunner())
    assert not vol_dir.exists() and not record.exists()
