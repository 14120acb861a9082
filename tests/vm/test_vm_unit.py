"""Driver logic of the VM runtime: argv, launch fragment, accel choice, initramfs packing, sizes."""

from __future__ import annotations

import gzip
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from isobench.errors import StartError
from isobench.runtimes.base import Instance, RuntimeContext
from isobench.runtimes.qemu import QemuRuntime, VmConfig, initramfs, qemu_argv, render_launch
from isobench.runtimes.qemu.image import MIB, VmArtifacts, disk_size_bytes, tree_size
from isobench.runtimes.qemu.kernel import resolve_kernel_package
from isobench.runtimes.qemu.kvm_probe import ProbeResult, _explain
from isobench.util.proc import FakeRunner
from isobench.workloads.base import LaunchSpec

VM = VmArtifacts(Path("/c/disk.ext4"), Path("/c/vmlinuz"), Path("/c/initrd.img"), "6.1.0-1-cloud")


def config(**kw: object) -> VmConfig:
    base: dict[str, object] = dict(
        vm=VM, accel="tcg", machine="q35", memory_mb=1024, vcpus=1,
        netdev="tap,id=n0,ifname=tap0,script=no,downscript=no", mac="52:54:00:12:ab:cd",
        launch_file=Path("/w/launch.sh"),
        serial_log=Path("/w/serial.log"), pidfile=Path("/w/qemu.pid"), name="isobench-vm-x",
    )  # fmt: skip
    base.update(kw)
    return VmConfig(**base)  # type: ignore[arg-type]


def after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_argv_tcg_q35() -> None:
    argv = qemu_argv(config())
    assert after(argv, "-accel") == ["tcg"] and after(argv, "-cpu") == ["max"]
    assert after(argv, "-M") == ["q35"]
    assert after(argv, "-m") == ["1024"] and after(argv, "-smp") == ["1"]
    assert after(argv, "-drive") == ["file=/c/disk.ext4,format=raw,if=virtio,readonly=on"]
    assert after(argv, "-netdev") == ["tap,id=n0,ifname=tap0,script=no,downscript=no"]
    assert "virtio-net-pci,netdev=n0,mac=52:54:00:12:ab:cd" in after(argv, "-device")
    assert not any("hostfwd" in a or a.startswith("user,") for a in argv)  # no user network
    assert after(argv, "-fw_cfg") == ["name=opt/isobench/launch,file=/w/launch.sh"]
    assert after(argv, "-serial") == ["file:/w/serial.log"]
    assert {"-nodefaults", "-no-reboot"} <= set(argv)
    assert after(argv, "-append")[0].startswith("console=ttyS0 panic=-1")


def test_argv_kvm_microvm_and_cmdline_launch() -> None:
    argv = qemu_argv(config(accel="kvm", machine="microvm", vcpus=2))
    assert after(argv, "-accel") == ["kvm"] and after(argv, "-cpu") == ["host"]
    assert after(argv, "-M") == ["microvm"] and after(argv, "-smp") == ["2"]
    assert "virtio-blk-device,drive=d0" in after(argv, "-device")
    assert "virtio-net-device,netdev=n0,mac=52:54:00:12:ab:cd" in after(argv, "-device")
    assert "readonly=on" in after(argv, "-drive")[0]
    # the launch spec (its environment may hold secrets) never reaches the kernel command line,
    # which any local user reads in `ps`: only fw_cfg, from a file only root can read
    assert "isb_launch" not in after(argv, "-append")[0]
    assert any(a.startswith("name=opt/isobench/launch,file=") for a in after(argv, "-fw_cfg"))


def parse_fragment(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        (token,) = shlex.split(line)
        key, _, value = token.partition("=")
        values[key] = value
    return values


def test_render_launch_quotes_everything() -> None:
    spec = LaunchSpec(
        argv=("/usr/bin/python3", "-c", "print('a b')", "{bind}:{port}"),
        env={"A": "x y", "B": "it's $HOME"},
        workdir="/opt/my app",
        user="nobody",
        writable_paths=("/tmp", "/var/cache/app"),
    ).render("0.0.0.0", 8123)
    values = parse_fragment(render_launch(spec, "198.18.0.2/30"))
    assert values["ISB_USER"] == "nobody"
    assert values["ISB_IP"] == "198.18.0.2/30" and values["ISB_GW"] == ""  # no default route
    assert values["ISB_WRITABLE"] == "/tmp /var/cache/app"
    assert shlex.split(values["ISB_CMD"]) == [
        "cd", "/opt/my app", "&&", "exec", "/run/isobench/bin/env", "-i",
        "A=x y", "B=it's $HOME", "/usr/bin/python3", "-c", "print('a b')", "0.0.0.0:8123",
    ]  # fmt: skip


def test_render_launch_in_a_real_shell(tmp_path: Path) -> None:
    spec = LaunchSpec(argv=("/bin/echo", "x y"), env={"K": "v w"}, workdir=str(tmp_path))
    frag = render_launch(spec, "198.18.0.2/30").replace("/run/isobench/bin/env", "/usr/bin/env")
    out = subprocess.run(
        ["sh", "-c", frag + '\neval "$ISB_CMD"'], capture_output=True, text=True, check=True
    )
    assert out.stdout == "x y\n"


def test_render_launch_rejects_relative_writable_path() -> None:
    with pytest.raises(StartError):
        render_launch(LaunchSpec(argv=("/bin/true",), writable_paths=("tmp",)), "198.18.0.2/30")


def runtime_with(result: ProbeResult) -> tuple[QemuRuntime, list[Path]]:
    probed: list[Path] = []

    def prober(kernel: Path, initrd: Path) -> ProbeResult:
        probed.append(kernel)
        return result

    runner = FakeRunner({"qemu-system-x86_64 --version": (0, "QEMU emulator version 7.2.9\n")})
    return QemuRuntime(RuntimeContext(runner=runner), prober=prober), probed


def test_accel_tcg_when_probe_fails() -> None:
    vm, probed = runtime_with(ProbeResult(False, "failed to set MSR 0x10a", 0.1))
    assert vm.choose_accel(VM) == "tcg"
    assert vm.choose_accel(VM) == "tcg"
    assert probed == [VM.kernel]  # probed once per runtime
    assert vm.emulated
    facts = vm.facts()
    assert facts["accel"] == "tcg" and facts["emulated"] == "true"
    assert facts["kvm_probe_reason"] == "failed to set MSR 0x10a"
    assert facts["network_path"] == "tap-bridge" and facts["machine"] == "q35"
    if shutil.which("qemu-system-x86_64"):
        assert facts["qemu_version"] == "7.2.9"


def test_accel_kvm_when_probe_boots() -> None:
    vm, _ = runtime_with(ProbeResult(True, "guest booted under kvm in 0.4 s", 0.4))
    assert vm.choose_accel(VM) == "kvm"
    assert not vm.emulated
    assert vm.facts()["emulated"] == "false"


def test_check_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    reason = QemuRuntime().check()
    assert reason is not None and "apt-get install qemu-system-x86" in reason


def test_exited_reads_the_console(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_text("[workload] serving\n")
    inst = Instance(runtime="vm", host_port=1, launched_at=0.0, log_path=log, handle={})
    vm = QemuRuntime()
    assert vm.exited(inst) is None
    log.write_text("[workload] boom\nisobench: workload exited rc=3\n")
    assert "rc=3" in (vm.exited(inst) or "")
    log.write_text("Kernel panic - not syncing: VFS\n")
    assert "panic" in (vm.exited(inst) or "")


def test_probe_reasons_are_recognised() -> None:
    msr = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0\nabort"
    assert _explain(msr) == "failed to set MSR 0x10a"
    assert _explain("KVM internal error. Suberror: 1\nemulation failure") == (
        "KVM internal error. Suberror: 1"
    )
    assert _explain("Probing EDD (edd=off to disable)... ok") is None


def test_resolve_kernel_package() -> None:
    out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-9-cloud-amd64\n"
    runner = FakeRunner({"apt-cache depends": (0, out)})
    package, version = resolve_kernel_package(runner)
    assert (package, version) == ("linux-image-6.1.0-9-cloud-amd64", "6.1.0-9-cloud-amd64")


def test_disk_size() -> None:
    assert disk_size_bytes(0) == 64 * MIB
    assert disk_size_bytes(100 * MIB) == 189 * MIB
    assert disk_size_bytes(1) % MIB == 0


def test_tree_size(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 1000)
    nbytes, entries = tree_size(tmp_path)
    assert entries == 2 and nbytes >= 1000


@pytest.mark.skipif(shutil.which("busybox") is None, reason="host busybox needed to read cpio")
def test_newc_archive_reads_back_with_busybox_cpio(tmp_path: Path) -> None:
    entries = {
        "bin": initramfs._dir(),
        "bin/hello": initramfs._file(b"#!/bin/sh\necho hi\n", executable=True),
        "bin/sh": initramfs._Entry(0o120777, b"busybox"),
        "x": initramfs._file(b"abc"),
    }
    archive = initramfs.pack_newc(entries)
    assert len(archive) % 4 == 0
    out = subprocess.run(
        ["busybox", "cpio", "-i", "-d"], input=archive, cwd=tmp_path, capture_output=True,
        check=True,
    )  # fmt: skip
    assert out.returncode == 0
    assert (tmp_path / "bin" / "hello").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (tmp_path / "bin" / "hello").stat().st_mode & 0o111
    assert (tmp_path / "bin" / "sh").is_symlink()
    assert (tmp_path / "x").read_text() == "abc"


def test_initramfs_is_deterministic_and_has_init(tmp_path: Path) -> None:
    mods = tmp_path / "modules"
    mods.mkdir()
    (mods / "virtio.ko").write_bytes(b"\x7fELF-fake-module")
    (mods / "modules.order").write_text("virtio.ko\n")
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF-fake-busybox")
    one = initramfs.build_initramfs(busybox, mods, ["sh", "mount", "busybox"])
    two = initramfs.build_initramfs(busybox, mods, ["sh", "mount", "busybox"])
    assert one == two
    raw = gzip.decompress(one)
    for name in (b"init\0", b"bin/sh\0", b"lib/modules/virtio.ko\0", b"www/cgi-bin/stats\0",
                 b"dev/console\0", b"TRAILER!!!\0"):
        assert name in raw, name
