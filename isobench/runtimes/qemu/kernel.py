"""The guest kernel: Debian's cloud kernel, fetched with apt, with the few modules a VM needs.

The cloud kernel builds virtio, virtio-blk, virtio-net and fw_cfg as modules and ships no
``modules.dep``, so the initramfs loads :data:`MODULES` with ``insmod`` in that order.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from isobench.errors import BuildError
from isobench.util.locks import file_lock as cache_lock  # one flock lock everywhere
from isobench.util.proc import CommandFailed, CommandRunner

META_PACKAGE = "linux-image-cloud-amd64"
"""Debian meta package whose dependency names the current cloud kernel."""

MODULES: tuple[str, ...] = (
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_mmio.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/block/virtio_blk.ko",
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/virtio_net.ko",
    "kernel/drivers/char/hw_random/virtio-rng.ko",
    "kernel/drivers/firmware/qemu_fw_cfg.ko",
    "kernel/fs/overlayfs/overlay.ko",
)
"""Modules the guest needs, relative to ``lib/modules/<version>``, in insmod (dependency) order."""

ORDER_FILE = "modules.order"
"""File in the modules directory listing the kept module file names, one per line, in load order."""


def apt_run(runner: CommandRunner, argv: list[str], *, cwd: Path | None = None) -> str:
    """Run an apt command; if the package lists are empty or stale, ``apt-get update`` and retry."""
    try:
        return runner.run(argv, cwd=cwd, timeout=600).stdout
    except CommandFailed:
        runner.run(["apt-get", "update"], timeout=600)
        try:
            return runner.run(argv, cwd=cwd, timeout=600).stdout
        except CommandFailed as exc:
            raise BuildError(
                f"apt could not resolve the guest kernel: {exc}",
                fix="check that Debian's package mirror is reachable (apt-get update)",
            ) from exc


def resolve_kernel_package(runner: CommandRunner) -> tuple[str, str]:
    """The ``linux-image-<ver>-cloud-amd64`` package the meta package depends on, and ``<ver>``."""
    out = apt_run(runner, ["apt-cache", "depends", META_PACKAGE])
    match = re.search(r"Depends:\s*(linux-image-(\S+-cloud-amd64))\b", out)
    if match is None:
        runner.run(["apt-get", "update"], timeout=600)
        out = apt_run(runner, ["apt-cache", "depends", META_PACKAGE])
        match = re.search(r"Depends:\s*(linux-image-(\S+-cloud-amd64))\b", out)
    if match is None:
        raise BuildError(
            f"cannot find the kernel that {META_PACKAGE} depends on",
            fix="run apt-get update; the host needs Debian's main archive in its sources",
        )
    return match.group(1), match.group(2)


def download_deb(runner: CommandRunner, package: str, dest: Path) -> Path:
    """``apt-get download`` one package into ``dest``; the .deb path."""
    apt_run(runner, ["apt-get", "download", package], cwd=dest)
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if not debs:
        raise BuildError(f"apt-get download {package} produced no .deb", fix="run apt-get update")
    return debs[-1]


def kernel_dir(cache: Path, version: str) -> Path:
    """Cache directory of one kernel version with the current module list (a new module in
    :data:`MODULES` makes a new directory, so a cached kernel never lacks one)."""
    modules_key = hashlib.sha256("\n".join(MODULES).encode()).hexdigest()[:8]
    return cache / "vm" / "kernel" / f"{version}-{modules_key}"


def ensure_kernel(cache: Path, runner: CommandRunner) -> tuple[Path, Path, str]:
    """Fetch (once per version) the Debian cloud kernel and the modules a VM guest needs.

    Args:
        cache: the isobench cache directory (``paths.cache_dir()``).
        runner: runs apt-cache / apt-get / dpkg-deb.

    Returns:
        ``(vmlinuz, modules_dir, version)``; ``modules_dir`` holds the .ko files flat plus
        :data:`ORDER_FILE` listing them in load order.

    Raises:
        BuildError: apt cannot resolve or download the kernel.
    """
    package, version = resolve_kernel_package(runner)
    final = kernel_dir(cache, version)
    vmlinuz, modules = final / "vmlinuz", final / "modules"
    if (modules / ORDER_FILE).is_file() and vmlinuz.is_file():
        return vmlinuz, modules, version
    with cache_lock(cache / "vm" / "locks" / f"kernel-{version}.lock"):
        if (modules / ORDER_FILE).is_file() and vmlinuz.is_file():
            return vmlinuz, modules, version
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=final.parent, prefix=".build-") as tmp_s:
            tmp = Path(tmp_s)
            # apt's sandbox user must be able to write the download directory.
            tmp.chmod(0o755)
            deb = download_deb(runner, package, tmp)
            tree = tmp / "tree"
            runner.run(["dpkg-deb", "-x", str(deb), str(tree)], timeout=600)
            out = tmp / "out"
            (out / "modules").mkdir(parents=True)
            src_vmlinuz = tree / "boot" / f"vmlinuz-{version}"
            if not src_vmlinuz.is_file():
                raise BuildError(f"{deb.name} has no boot/vmlinuz-{version}", fix="report a bug")
            shutil.copy2(src_vmlinuz, out / "vmlinuz")
            mod_root = tree / "lib" / "modules" / version
            names: list[str] = []
            for rel in MODULES:
                src = mod_root / rel
                if not src.is_file():
                    raise BuildError(
                        f"kernel {version} lacks module {rel}",
                        fix="pin a kernel version that builds virtio as modules",
                    )
                shutil.copy2(src, out / "modules" / src.name)
                names.append(src.name)
            (out / "modules" / ORDER_FILE).write_text("\n".join(names) + "\n")
            (out / "version").write_text(version + "\n")
            if final.exists():
                shutil.rmtree(final)
            out.rename(final)
    return vmlinuz, modules, version
