"""Where isobench keeps its cache and its state, overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_TAG = "CACHEDIR.TAG"
CACHE_TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# isobench build cache (rootfs trees, images, VM disks); `isobench clean --cache` empties"
    " it.\n"
)
"""The standard cache-directory tag (bford.info/cachedir), written only into a directory
isobench created or found empty, so ``clean --cache`` can tell its cache from anything else."""

CACHE_ENTRIES = frozenset({"rootfs", "images", "vm", "byo", "locks", "tags", CACHE_TAG})
"""Everything isobench creates directly in the cache directory; ``clean --cache`` removes these
and nothing else."""


def is_isobench_cache(path: Path) -> bool:
    """True if ``path`` carries isobench's cache tag, or holds only entries isobench creates."""
    tag = path / CACHE_TAG
    try:
        if tag.is_file() and "isobench" in tag.read_text(errors="replace"):
            return True
        names = {p.name for p in path.iterdir()}
    except OSError:
        return False
    return bool(names) and names <= CACHE_ENTRIES


def cache_path() -> Path:
    """The build cache's location, without creating it. ``ISOBENCH_CACHE`` overrides."""
    return Path(os.environ.get("ISOBENCH_CACHE", Path.home() / ".cache" / "isobench"))


def cache_dir() -> Path:
    """Build cache (rootfs, wheels, kernels, VM disks), created if missing; tagged as isobench's
    when it is new, empty or holds only isobench's entries (never a directory of other files)."""
    path = cache_path()
    path.mkdir(parents=True, exist_ok=True)
    tag = path / CACHE_TAG
    if not tag.exists() and {p.name for p in path.iterdir()} <= CACHE_ENTRIES:
        tag.write_text(CACHE_TAG_TEXT)
    return path


def state_dir() -> Path:
    """Live state: one record per object isobench created (container, native instance, VM,
    counter table) with its owner, and the host-wide lock files; read by ``isobench clean``.

    ``ISOBENCH_STATE`` overrides; without it root uses ``/run/isobench``, another user
    ``/tmp/isobench-state-<uid>``.
    """
    default = "/run/isobench" if os.geteuid() == 0 else f"/tmp/isobench-state-{os.geteuid()}"
    path = Path(os.environ.get("ISOBENCH_STATE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


LABEL = "isobench"
"""Prefix of the names and labels isobench gives what it creates. Containers get
``isobench.created-by``/``isobench.run``/``isobench.owner-*`` labels at ``docker run`` time; no
image isobench builds carries those, so nothing built ``FROM`` one is mistaken for isobench's."""
