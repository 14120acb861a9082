"""Removing what the image stage cached: the build cache directory and the Docker images."""

from __future__ import annotations

import shutil

from isobench import paths
from isobench.proc import CommandRunner


def remove_build_cache(runner: CommandRunner) -> list[str]:
    """Delete ``paths.cache_dir()`` and every Docker image labelled ``isobench=1``.

    Returns one line per thing removed. The next run rebuilds what it needs (a cold rootfs
    takes about a minute).
    """
    removed: list[str] = []
    images = runner.run(
        ["docker", "images", "-q", "--filter", f"label={paths.LABEL}=1"], check=False, timeout=60
    )
    for image in dict.fromkeys(images.stdout.split()):
        if runner.run(["docker", "rmi", "-f", image], check=False, timeout=120).ok:
            removed.append(f"docker image {image}")
    cache = paths.cache_dir()
    shutil.rmtree(cache, ignore_errors=True)
    removed.append(f"build cache {cache}")
    return removed
