"""The copy-on-write root an instance runs on, for runtimes that run the rootfs directory itself
(native's chroot, Podman's ``--rootfs``): an overlay whose lower layer is the shared, read-only
rootfs and whose upper layer is the instance's own directory (undone by each runtime's
teardown with :func:`isobench.images.rootfs.unmount_all`)."""

from __future__ import annotations

from pathlib import Path

from isobench.util.proc import CommandRunner


def mount_overlay(rootfs: Path, inst_dir: Path, runner: CommandRunner) -> Path:
    """Overlay ``rootfs`` (read-only lower) with ``inst_dir/upper``; returns the merged dir."""
    upper, work, merged = inst_dir / "upper", inst_dir / "work", inst_dir / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={rootfs},upperdir={upper},workdir={work}"
    runner.run(["mount", "-t", "overlay", "isobench-overlay", "-o", opts, str(merged)],
               timeout=30)
    return merged
