"""What goes into the one root filesystem, and the artifacts built from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

VENV = "/opt/isobench/venv"
"""Where the workload's Python virtual environment lives inside the rootfs."""

WORKLOAD_DIR = "/opt/isobench/workload"
"""Where the workload's code and data live inside the rootfs."""


@dataclass(frozen=True)
class RootfsSpec:
    """Everything that determines the content of a workload's root filesystem.

    The content hash of these fields (and of the files' bytes) is the cache key: an unchanged spec
    rebuilds nothing.

    Attributes:
        name: short name, used in image tags and paths (``records-api``).
        suite: Debian suite for debootstrap.
        debian_packages: packages beyond ``python3`` (e.g. ``postgresql``, ``redis-server``).
        pip_requirements: requirement strings installed into ``VENV`` from a host-side wheelhouse.
        files: destination path in the rootfs → source path on the host (file or directory).
        build_commands: argv lists run inside the rootfs (chroot) after everything is installed,
            e.g. generating the SQLite data set. They must be deterministic.
        base_image: a local Docker image (reference or ``sha256:`` ID). When set, the rootfs is
            that image's exported filesystem instead of a debootstrap (cached by image ID), the
            ``docker_image`` artifact is the image itself, and the content fields above
            (``debian_packages``, ``pip_requirements``, ``files``, ``build_commands``) must be
            empty.
    """

    name: str
    suite: str = "bookworm"
    debian_packages: tuple[str, ...] = ()
    pip_requirements: tuple[str, ...] = ()
    files: Mapping[str, Path] = field(default_factory=dict)
    build_commands: tuple[tuple[str, ...], ...] = ()
    base_image: str | None = None


@dataclass(frozen=True)
class VmArtifacts:
    """A bootable VM: an ext4 disk holding the rootfs, a Debian guest kernel and an initramfs."""

    disk: Path
    kernel: Path
    initrd: Path
    kernel_version: str


@dataclass(frozen=True)
class Artifacts:
    """The artifacts of one rootfs. Fields are None for artifacts not requested.

    Attributes:
        key: content hash of the RootfsSpec (and builder version).
        rootfs: the native directory (used read-only; runtimes layer writes on top).
        docker_image: local image reference, e.g. ``isobench/records-api:<key12>``.
        vm: the VM disk, kernel and initrd.
        sizes: bytes per artifact: ``rootfs``, ``docker_image``, ``vm_disk``, ``vm_boot``
            (kernel + initrd); what the article calls the image size.
    """

    key: str
    rootfs: Path
    docker_image: str | None = None
    vm: VmArtifacts | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)
