"""Where isobench keeps its cache and its state, overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Build cache (rootfs, wheels, kernels, VM disks). ``ISOBENCH_CACHE`` overrides."""
    path = Path(os.environ.get("ISOBENCH_CACHE", Path.home() / ".cache" / "isobench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_dir() -> Path:
    """Live state of running instances (pid files, mounts), read by ``isobench clean``.

    ``ISOBENCH_STATE`` overrides.
    """
    path = Path(os.environ.get("ISOBENCH_STATE", "/run/isobench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


LABEL = "isobench"
"""Label/prefix on everything isobench creates (containers, images, netns, taps), for cleanup."""
