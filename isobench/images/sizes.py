"""Sizes of artifacts on disk, in bytes, as the article reports "image size"."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from isobench.util.proc import CommandRunner


def tree_bytes(path: Path, *, runner: CommandRunner) -> int:
    """Apparent bytes of a tree, ``du -sb`` semantics (hard links counted once, dirs included).

    The rootfs is immutable once built, so the figure is cached beside it (``<dir>.size``).
    """
    memo = path.parent / f"{path.name}.size"
    try:
        data = json.loads(memo.read_text())
        if data.get("mtime") == path.stat().st_mtime_ns:
            return int(data["bytes"])
    except (OSError, ValueError, KeyError):
        pass
    out = runner.run(["du", "-sb", "--one-file-system", str(path)], timeout=600).stdout
    size = int(out.split()[0])
    with contextlib.suppress(OSError):
        memo.write_text(json.dumps({"bytes": size, "mtime": path.stat().st_mtime_ns}))
    return size


def file_sizes(path: Path) -> tuple[int, int]:
    """(allocated bytes on disk, apparent size) of a file; a sparse disk image differs a lot."""
    st = os.stat(path)
    return st.st_blocks * 512, st.st_size
