"""What goes into the one root filesystem, and the artifacts built from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobench.util.proc import CommandRunner

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
class ArtifactBuild:
    """What an artifact builder gets: the built rootfs and where to cache what it makes.

    A builder is a function ``(ArtifactBuild) -> BuiltArtifact`` registered under the artifact's
    name in ``isobench.plugins.ARTIFACTS``; a runtime names the artifact it runs in its
    ``artifact`` class attribute. Builders must be idempotent (cached by ``key``).
    """

    spec: RootfsSpec
    key: str
    rootfs: Path
    cache: Path
    runner: CommandRunner
    progress: Callable[[str], None] | None = None


@dataclass(frozen=True)
class BuiltArtifact:
    """A builder's result.

    Attributes:
        value: what the runtime needs to start from it (an image reference, VM files...).
        sizes: bytes on disk; the key equal to the artifact's name is its whole size (what the
            article calls the image size), others are details (``vm_disk``, ``vm_boot``...).
        facts: recorded in the manifest (image id, kernel version...).
    """

    value: Any
    sizes: Mapping[str, int] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifacts:
    """The artifacts of one rootfs: the rootfs itself plus whatever the runtimes asked for.

    Attributes:
        key: content hash of the RootfsSpec (and builder version).
        rootfs: the native directory (used read-only; runtimes layer writes on top).
        built: artifact name → the builder's value (``docker_image`` → an image reference...).
        sizes: bytes per artifact (``rootfs`` and each built artifact's name) and details.
        facts: artifact name → facts for the manifest.
    """

    key: str
    rootfs: Path
    built: Mapping[str, Any] = field(default_factory=dict)
    sizes: Mapping[str, int] = field(default_factory=dict)
    facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """The built artifact ``name``; a BuildError when it was not built for this run."""
        if name not in self.built:
            from isobench.errors import BuildError

            raise BuildError(f"artifact {name!r} was not built",
                             fix="request it when building (the runtime's `artifact`)")
        return self.built[name]
