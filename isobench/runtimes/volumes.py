"""Dedicated volumes (``LaunchSpec.volumes``): the checks and host-side helpers every runtime
shares. Each runtime serves a volume its own way (a bind mount of a host directory, a Docker
volume, a second virtio disk); what is common is here: the paths are sane, the host storage
is a disk and not memory, and the one line ``Instance.facts["volumes"]`` records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from isobench.errors import StartError

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs"})
"""Filesystems whose files live in memory: never a volume's backing store."""

FALLBACK_ROOT = Path("/var/tmp/isobench-volumes")
"""Where a runtime puts a volume when its own instance directory lies on a memory filesystem
(``/run`` is a tmpfs on most hosts): ``/var/tmp`` is on disk by the FHS."""


@dataclass(frozen=True)
class Filesystem:
    """The mount holding a path, from ``/proc/self/mounts``."""

    fstype: str
    source: str
    mount_point: str

    @property
    def in_memory(self) -> bool:
        return self.fstype in MEMORY_FILESYSTEMS

    def describe(self) -> str:
        """``ext4 on /dev/vda``."""
        return f"{self.fstype} on {self.source}"


def filesystem_of(path: Path, mounts: Path = Path("/proc/self/mounts")) -> Filesystem:
    """The mount holding ``path`` (its nearest existing ancestor): the longest mount point that
    contains it; the last such line wins, as the kernel stacks mounts."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    target = os.path.realpath(probe)
    best = Filesystem("unknown", "unknown", "")
    with open(mounts) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 3:
                continue
            point = parts[1].replace("\\040", " ")
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best.mount_point):
                best = Filesystem(parts[2], parts[0], point)
    return best


def check_paths(volumes: Sequence[str], writable: Sequence[str] = ()) -> None:
    """Raise StartError unless every volume path is absolute, without whitespace or ``..``, not
    ``/``, not repeated and not nested in another volume or a writable (tmpfs) path."""
    seen: list[str] = []
    for raw in volumes:
        path = raw.rstrip("/")
        if (not raw.startswith("/") or not path or any(c.isspace() for c in raw)
                or ".." in raw.split("/") or "," in raw or "=" in raw or "'" in raw):
            raise StartError(f"volume path {raw!r} must be absolute, not /, without spaces, "
                             "commas, '=', quotes or ..",
                             fix="name a plain absolute directory such as /var/lib/data")
        for other in [*seen, *(w.rstrip("/") for w in writable)]:
            if path == other or path.startswith(other + "/") or other.startswith(path + "/"):
                raise StartError(f"volume path {raw!r} overlaps {other!r}",
                                 fix="give each volume and writable path its own directory")
        seen.append(path)


def disk_dir(preferred: Path, name: str) -> Path:
    """Where a host directory backing a volume goes: ``preferred`` when it lies on a disk
    filesystem, else :data:`FALLBACK_ROOT`/``name``. Raises StartError when neither is on disk.
    Nothing is created."""
    for candidate in (preferred, FALLBACK_ROOT / name):
        if not filesystem_of(candidate).in_memory:
            return candidate
    raise StartError(f"no disk filesystem for a volume: {preferred} and {FALLBACK_ROOT} are "
                     "both in memory", fix=f"put {FALLBACK_ROOT} on a disk")


def require_disk(path: Path, what: str) -> Filesystem:
    """The filesystem holding ``path``; StartError when it lives in memory."""
    fs = filesystem_of(path)
    if fs.in_memory:
        raise StartError(f"{what} {path} is on {fs.describe()} (memory), not a disk",
                         fix="put the run directory (--out) on a disk filesystem")
    return fs


def engine_volume_facts(mounts_json: str, paths: Sequence[str], what: str,
                        note: str = "") -> dict[str, str]:
    """``Instance.facts["volumes"]`` from a container engine's ``inspect --format
    '{{json .Mounts}}'``: per path ``WHAT NAME at SOURCE (ext4 on /dev/vda)NOTE``. StartError
    when a path has no volume mount or the volume's host directory lies in memory."""
    try:
        mounts = json.loads(mounts_json or "[]") or []
    except ValueError:
        mounts = []
    by_dst = {str(m.get("Destination")): m for m in mounts if isinstance(m, dict)}
    served: dict[str, str] = {}
    for path in paths:
        mount = by_dst.get(path)
        if mount is None or mount.get("Type") != "volume" or not mount.get("Source"):
            raise StartError(f"the engine mounted no volume on {path}",
                             fix="check the container's Mounts (inspect)")
        source = Path(str(mount["Source"]))
        fs = require_disk(source, "volume")
        name = str(mount.get("Name") or "?")[:12]
        served[path] = f"{what} {name} at {source} ({fs.describe()}){note}"
    return served
