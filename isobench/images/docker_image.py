"""The Docker image of a rootfs: the same bytes, imported as a single layer (no registry needed)."""

from __future__ import annotations

import shlex
from pathlib import Path

from isobench.errors import BuildError
from isobench.paths import LABEL
from isobench.proc import CommandRunner


def image_ref(name: str, key: str) -> str:
    """``isobench/<name>:<key[:12]>``."""
    return f"{LABEL}/{name}:{key[:12]}"


def import_argv(rootfs: Path, ref: str, key: str) -> list[str]:
    """One shell pipeline (``tar | docker import``) with pipefail, so either side failing fails."""
    pipeline = (
        f"set -o pipefail; tar --numeric-owner -C {shlex.quote(str(rootfs))} -c . | "
        f"docker import --change {shlex.quote(f'LABEL {LABEL}=1')} "
        f"--change {shlex.quote(f'LABEL {LABEL}.key={key}')} "
        f"--message {shlex.quote(f'isobench rootfs {key}')} - {shlex.quote(ref)}"
    )
    return ["bash", "-c", pipeline]


def ensure_docker_image(rootfs: Path, key: str, name: str, *, runner: CommandRunner) -> str:
    """Import ``rootfs`` as ``isobench/<name>:<key[:12]>`` unless that image already exists.

    Returns:
        The image reference.

    Raises:
        BuildError: when the engine does not answer or the import fails.
    """
    ref = image_ref(name, key)
    if runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                  check=False, timeout=60).ok:
        return ref
    result = runner.run(import_argv(rootfs, ref, key), check=False, timeout=1800)
    if not result.ok:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        raise BuildError(f"docker import of {rootfs} as {ref} failed: {tail[0][:200]}",
                         fix="check the engine answers (scripts/start-dockerd.sh) and disk space")
    return ref


def docker_image_size(ref: str, *, runner: CommandRunner) -> int:
    """The image's ``Size`` in bytes as the engine reports it."""
    out = runner.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], timeout=60)
    return int(out.stdout.strip())
