"""The VM artifact: the rootfs as an ext4 disk image, plus the guest kernel and initramfs."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from isobench.errors import BuildError
from isobench.images.sizes import file_sizes
from isobench.images.spec import ArtifactBuild, BuiltArtifact
from isobench.runtimes.qemu.initramfs import ensure_initramfs
from isobench.runtimes.qemu.kernel import cache_lock, ensure_kernel
from isobench.util.proc import CommandFailed, CommandRunner

MIB = 1024 * 1024


@dataclass(frozen=True)
class VmArtifacts:
    """A bootable VM: an ext4 disk holding the rootfs, a Debian guest kernel and an initramfs."""

    disk: Path
    kernel: Path
    initrd: Path
    kernel_version: str


def vm_sizes(vm: VmArtifacts) -> dict[str, int]:
    """``vm`` (disk allocated + kernel + initrd: the whole image), ``vm_disk`` (allocated),
    ``vm_disk_apparent`` and ``vm_boot`` (kernel + initrd)."""
    allocated, apparent = file_sizes(vm.disk)
    boot = vm.kernel.stat().st_size + vm.initrd.stat().st_size
    return {"vm": allocated + boot, "vm_disk": allocated, "vm_disk_apparent": apparent,
            "vm_boot": boot}


def build_artifact(build: ArtifactBuild) -> BuiltArtifact:
    """The ``vm`` artifact builder (registered in ``isobench.plugins.ARTIFACTS``)."""
    vm = ensure_vm_artifacts(build.rootfs, build.key, cache=build.cache, runner=build.runner,
                             progress=build.progress)
    return BuiltArtifact(vm, vm_sizes(vm), {"kernel_version": vm.kernel_version})


def tree_size(root: Path) -> tuple[int, int]:
    """``(bytes, entries)`` of a directory tree: apparent file sizes (no symlink following)."""
    total, count = 0, 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            count += 1
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            total += st.st_size
    return total, count


def disk_size_bytes(rootfs_bytes: int) -> int:
    """Disk image size for a rootfs: 1.25 × its bytes + 64 MiB, rounded up to a MiB."""
    raw = int(rootfs_bytes * 1.25) + 64 * MIB
    return -(-raw // MIB) * MIB


def disk_path(cache: Path, key: str) -> Path:
    return cache / "vm" / "disk" / f"{key}.ext4"


def ensure_disk(rootfs: Path, key: str, *, cache: Path, runner: CommandRunner) -> Path:
    """The ext4 image of ``rootfs`` cached under ``key``; built to a temp name and renamed.

    Raises:
        BuildError: the rootfs is missing or mkfs.ext4 fails.
    """
    target = disk_path(cache, key)
    if target.is_file():
        return target
    if not rootfs.is_dir():
        raise BuildError(f"rootfs {rootfs} does not exist", fix="rebuild the images")
    with cache_lock(cache / "vm" / "locks" / f"disk-{key}.lock"):
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        nbytes, entries = tree_size(rootfs)
        size = disk_size_bytes(nbytes)
        inodes = int(entries * 1.25) + 4096
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        with open(tmp, "wb") as fh:
            fh.truncate(size)  # sparse
        try:
            runner.run(
                [
                    "mkfs.ext4", "-q", "-F", "-N", str(inodes), "-L", "isobench",
                    "-d", str(rootfs), str(tmp), f"{size // 1024}k",
                ],
                timeout=900,
            )
        except CommandFailed as exc:
            tmp.unlink(missing_ok=True)
            raise BuildError(
                f"mkfs.ext4 could not build the VM disk: {exc}",
                fix="apt-get install e2fsprogs (>= 1.43 for -d) and check free space in the cache",
            ) from exc
        os.replace(tmp, target)
    return target


def ensure_vm_artifacts(
    rootfs: Path,
    key: str,
    *,
    cache: Path,
    runner: CommandRunner,
    progress: Callable[[str], None] | None = None,
) -> VmArtifacts:
    """Everything a VM boots from: the rootfs disk, a Debian cloud kernel and isobench's initramfs.

    Each part is cached (disk by ``key``, kernel by version, initramfs by kernel version and guest
    files) and built under a per-item ``fcntl`` lock, so concurrent callers build once.

    Args:
        rootfs: the built root filesystem directory.
        key: its content key (``Artifacts.key``).
        cache: the isobench cache directory.
        runner: runs apt, dpkg-deb and mkfs.ext4.
        progress: called with one-line status messages.
    """
    say = progress or (lambda _msg: None)
    say("vm: guest kernel")
    vmlinuz, modules, version = ensure_kernel(cache, runner)
    say(f"vm: initramfs for kernel {version}")
    initrd = ensure_initramfs(cache, runner, modules, version)
    say("vm: ext4 disk image")
    disk = ensure_disk(rootfs, key, cache=cache, runner=runner)
    return VmArtifacts(disk=disk, kernel=vmlinuz, initrd=initrd, kernel_version=version)

