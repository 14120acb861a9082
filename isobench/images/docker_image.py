"""The Docker image of a rootfs: the same bytes, imported as a single layer (no registry needed)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from isobench.errors import BuildError
from isobench.images.cache import record_tag
from isobench.images.rootfs import build_rootfs
from isobench.images.spec import VENV, ArtifactBuild, BuiltArtifact, RootfsSpec
from isobench.util.locks import artifact_lock, cache_in_use
from isobench.util.paths import LABEL
from isobench.util.proc import CommandRunner

BASE_IMAGE = f"{LABEL}/base"
"""isobench's Debian base image for users' Dockerfiles (``FROM isobench/base``), tagged
``latest`` and ``<key12>``: debootstrap minbase + python3 + a venv with pip at ``VENV`` (on
``PATH``), imported with ``docker import`` (no registry needed)."""

BASE_SPEC = RootfsSpec(
    name="base",
    build_commands=(("/usr/bin/python3", "-m", "venv", "--clear", VENV),),
)
"""The base image's rootfs: the same debootstrap layer as every workload, a venv with pip."""

BASE_PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

BASE_CHANGES = (
    f"ENV PATH={BASE_PATH}",
    "ENV LANG=C.UTF-8",
    "CMD [\"/bin/bash\"]",
    # A build isobench runs offers pip a wheelhouse on 127.0.0.1 through these (no index).
    "ONBUILD ARG PIP_FIND_LINKS",
    "ONBUILD ARG PIP_NO_INDEX",
    "ONBUILD ARG PIP_TRUSTED_HOST",
)


def image_ref(name: str, key: str) -> str:
    """``isobench/<name>:<key[:12]>``."""
    return f"{LABEL}/{name}:{key[:12]}"


def engine_problem(runner: CommandRunner) -> str | None:
    """None when the Docker daemon answers; else ``not installed ...`` or ``daemon not
    reachable ...`` (one line)."""
    try:
        out = runner.run(["docker", "version", "--format", "{{.Server.Version}}"],
                         check=False, timeout=20)
    except FileNotFoundError:
        return "not installed (no docker CLI)"
    except Exception as exc:  # a hung daemon: timeout
        return f"daemon not reachable ({exc})"
    if not out.ok or not out.stdout.strip():
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or [""]
        return f"daemon not reachable ({tail[0][:120]})"
    return None


def image_id(ref: str, *, runner: CommandRunner) -> str | None:
    """The image ID a tag names, None if it names none."""
    out = runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                     check=False, timeout=60)
    return out.stdout.strip() or None if out.ok else None


def import_argv(rootfs: Path, ref: str, key: str, changes: Sequence[str] = ()) -> list[str]:
    """One shell pipeline (``tar | docker import``) with pipefail, so either side failing fails.

    ``changes`` are extra Dockerfile instructions for ``docker import --change``. The image gets
    one descriptive label, ``isobench.key``; no cleanup decision ever reads an image's labels
    (images built ``FROM`` this one inherit them).
    """
    extra = "".join(f"--change {shlex.quote(c)} " for c in changes)
    pipeline = (
        f"set -o pipefail; tar --numeric-owner -C {shlex.quote(str(rootfs))} -c . | "
        f"docker import --change {shlex.quote(f'LABEL {LABEL}.key={key}')} {extra}"
        f"--message {shlex.quote(f'isobench rootfs {key}')} - {shlex.quote(ref)}"
    )
    return ["bash", "-c", pipeline]


def ensure_docker_image(rootfs: Path, key: str, name: str, *, runner: CommandRunner,
                        cache: Path) -> str:
    """Import ``rootfs`` as ``isobench/<name>:<key[:12]>`` unless that image already exists.

    Concurrent callers for one key import once (a lock under ``cache``); the tag is recorded in
    ``cache`` as isobench's (``images.cache.record_tag``).

    Returns:
        The image reference.

    Raises:
        BuildError: when the engine does not answer or the import fails.
    """
    ref = image_ref(name, key)
    with artifact_lock(cache, "docker", key):
        found = image_id(ref, runner=runner)
        if found is None:
            result = runner.run(import_argv(rootfs, ref, key), check=False, timeout=1800)
            if not result.ok:
                tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
                raise BuildError(f"docker import of {rootfs} as {ref} failed: {tail[0][:200]}",
                                 fix="check the engine answers (scripts/start-dockerd.sh) "
                                     "and disk space")
            found = image_id(ref, runner=runner)
        if found:
            record_tag(cache, ref, found)
    return ref


def docker_image_size(ref: str, *, runner: CommandRunner) -> int:
    """The image's ``Size`` in bytes as the engine reports it."""
    out = runner.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], timeout=60)
    return int(out.stdout.strip())


def ensure_base_image(
    *,
    cache: Path,
    runner: CommandRunner,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Build (or find) ``isobench/base`` and point its ``latest`` tag at the current build.

    Returns:
        ``isobench/base:<key12>``.

    Raises:
        BuildError: when the rootfs build or the import fails.
    """
    with cache_in_use(cache):
        key, rootfs = build_rootfs(BASE_SPEC, cache=cache, runner=runner, progress=progress)
        ref = f"{BASE_IMAGE}:{key[:12]}"
        with artifact_lock(cache, "docker-base", key):
            found = image_id(ref, runner=runner)
            if found is None:
                if progress:
                    progress(f"docker import {ref}")
                result = runner.run(import_argv(rootfs, ref, key, BASE_CHANGES), check=False,
                                    timeout=1800)
                if not result.ok:
                    tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
                    raise BuildError(f"docker import of the base image {ref} failed: "
                                     f"{tail[0][:200]}",
                                     fix="check the engine answers (scripts/start-dockerd.sh)")
                found = image_id(ref, runner=runner)
            runner.run(["docker", "tag", ref, f"{BASE_IMAGE}:latest"], timeout=60)
            if found:
                record_tag(cache, ref, found)
                record_tag(cache, f"{BASE_IMAGE}:latest", found)
    return ref


def build_artifact(build: ArtifactBuild) -> BuiltArtifact:
    """The ``docker_image`` artifact builder (registered in ``isobench.plugins.ARTIFACTS``).

    A spec with ``base_image`` uses that local image itself (not a re-import of its exported
    filesystem); otherwise the rootfs is imported (cached by key).
    """
    if build.progress:
        build.progress("docker image")
    if build.spec.base_image:
        from isobench.images.user_image import inspect_image

        image = inspect_image(build.spec.base_image, runner=build.runner).id
    else:
        image = ensure_docker_image(build.rootfs, build.key, build.spec.name, runner=build.runner,
                                    cache=build.cache)
    size = docker_image_size(image, runner=build.runner)
    return BuiltArtifact(image, {"docker_image": size}, {"image": image})
