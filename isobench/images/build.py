"""One entry point for the image stage: the rootfs and what is built from it, with sizes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from isobench import paths
from isobench.errors import ConfigError
from isobench.images.docker_image import docker_image_size, ensure_docker_image
from isobench.images.export import inspect_image
from isobench.images.rootfs import build_rootfs
from isobench.images.sizes import tree_bytes, vm_sizes
from isobench.images.spec import Artifacts, RootfsSpec, VmArtifacts
from isobench.proc import CommandRunner, SubprocessRunner

KINDS = frozenset({"rootfs", "docker_image", "vm"})


def build_artifacts(
    spec: RootfsSpec,
    need: set[str],
    *,
    cache: Path | None = None,
    runner: CommandRunner | None = None,
    progress: Callable[[str], None] | None = None,
) -> Artifacts:
    """Build (or find cached) the artifacts ``need`` asks for, from the one rootfs of ``spec``.

    Args:
        spec: the workload's rootfs spec.
        need: subset of ``{"rootfs", "docker_image", "vm"}``; the rootfs is always built.
        cache: cache root, ``paths.cache_dir()`` by default.
        runner: command runner, a real one by default.
        progress: called with one line per build step.

    A spec with ``base_image`` uses that local image: its exported filesystem is the rootfs (and
    the VM disk's content), the image itself is the ``docker_image``.

    Returns:
        Artifacts with ``sizes`` filled for each artifact built: ``rootfs``, ``docker_image``,
        ``vm_disk`` (allocated), ``vm_disk_apparent``, ``vm_boot`` (kernel + initrd).
    """
    unknown = set(need) - KINDS
    if unknown:
        raise ConfigError(f"unknown artifact kinds {sorted(unknown)}",
                          fix=f"use some of {sorted(KINDS)}")
    cache = cache if cache is not None else paths.cache_dir()
    runner = runner or SubprocessRunner()
    key, rootfs = build_rootfs(spec, cache=cache, runner=runner, progress=progress)
    sizes: dict[str, int] = {"rootfs": tree_bytes(rootfs, runner=runner)}
    image: str | None = None
    if "docker_image" in need:
        if progress:
            progress("docker image")
        if spec.base_image:  # the image itself, not a re-import of its exported filesystem
            image = inspect_image(spec.base_image, runner=runner).id
        else:
            image = ensure_docker_image(rootfs, key, spec.name, runner=runner)
        sizes["docker_image"] = docker_image_size(image, runner=runner)
    vm: VmArtifacts | None = None
    if "vm" in need:
        from isobench.runtimes.qemu.image import ensure_vm_artifacts  # written beside this module

        vm = ensure_vm_artifacts(rootfs, key, cache=cache, runner=runner, progress=progress)
        sizes.update(vm_sizes(vm))
    return Artifacts(key=key, rootfs=rootfs, docker_image=image, vm=vm, sizes=sizes)
