"""What the image stage leaves on the host, and removing exactly that (``isobench clean --cache``).

* The cache directory's own layout (``paths.CACHE_ENTRIES``: ``rootfs/``, ``images/``, ``vm/``,
  ``byo/``, ``locks/``, ``tags/``, ``CACHEDIR.TAG``), nothing else in it, and only in a directory
  that looks like isobench's cache (``paths.is_isobench_cache``).
* The Docker image tags isobench created, recorded as ``<cache>/tags/<digest>.json`` (tag and
  image ID) when it created or found them. Only a recorded tag that still names the recorded image
  is removed (``docker rmi`` without ``-f``: an image a container uses stays). No image is chosen
  by label: labels are inherited by every image built ``FROM`` one of isobench's.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from isobench.images.rootfs import remove_tree
from isobench.runtimes.cleanup import Cleaned
from isobench.util import locks, paths
from isobench.util.proc import CommandRunner


def tags_dir(cache: Path) -> Path:
    return cache / "tags"


def record_tag(cache: Path, tag: str, image_id: str) -> None:
    """Remember that isobench made (or uses as its own) ``tag`` → ``image_id``."""
    target = tags_dir(cache) / f"{hashlib.sha256(tag.encode()).hexdigest()[:16]}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"tag": tag, "id": image_id}))
    os.replace(tmp, target)


def recorded_tags(cache: Path) -> list[tuple[Path, str, str]]:
    """(record file, tag, image ID) of every tag recorded under ``cache``."""
    found = []
    for path in sorted(tags_dir(cache).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            found.append((path, str(data["tag"]), str(data["id"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _remove_tags(cache: Path, runner: CommandRunner, done: Cleaned) -> bool:
    """``docker rmi`` each recorded tag still naming its image; False if any was not checked."""
    from isobench.images.docker_image import engine_problem

    tags = recorded_tags(cache)
    if not tags:
        return True
    problem = engine_problem(runner)
    if problem is not None:
        done.unchecked.append(f"docker: {problem} — {len(tags)} image tags not checked")
        return False
    complete = True
    for record, tag, image_id in tags:
        now = runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                         check=False, timeout=60)
        if not now.ok:  # the tag is gone already
            record.unlink(missing_ok=True)
            continue
        if now.stdout.strip() != image_id:
            done.kept.append(f"docker tag {tag}: now names another image, not isobench's")
            record.unlink(missing_ok=True)
            continue
        rmi = runner.run(["docker", "rmi", tag], check=False, timeout=120)
        if rmi.ok:
            done.removed.append(f"docker image tag {tag}")
            record.unlink(missing_ok=True)
        else:
            tail = (rmi.stderr or rmi.stdout).strip().splitlines()[-1:] or [""]
            done.unchecked.append(f"docker tag {tag}: not removed ({tail[0][:160]})")
            complete = False
    return complete


def remove_build_cache(runner: CommandRunner, cache: Path | None = None) -> Cleaned:
    """Remove isobench's image tags and its cache layout under ``cache`` (the configured one by
    default), unless a live build or run uses the cache.

    Returns:
        Lines removed / kept / not done (an unrecognised directory, a cache in use, Docker down).
    """
    cache = cache if cache is not None else paths.cache_path()
    done = Cleaned()
    if not cache.is_dir():
        return done
    if not paths.is_isobench_cache(cache):
        done.unchecked.append(f"{cache} does not look like isobench's cache (no isobench "
                              f"{paths.CACHE_TAG}, other files in it): not removed")
        return done
    hold = locks.cache_exclusive(cache)
    if hold is None:
        done.unchecked.append(f"build cache {cache}: in use by a live isobench run or build; "
                              "not removed")
        return done
    try:
        tags_complete = _remove_tags(cache, runner, done)
        for entry in sorted(paths.CACHE_ENTRIES, key=lambda e: e == paths.CACHE_TAG):  # tag last
            path = cache / entry
            if entry == "tags" and not tags_complete:
                continue  # keep the records of tags still to remove
            if not path.exists() and not path.is_symlink():
                continue
            if path.is_dir() and not path.is_symlink():
                remove_tree(path, runner)
            else:
                path.unlink(missing_ok=True)
            if path.exists():
                done.unchecked.append(f"build cache {path}: could not remove it")
            else:
                done.removed.append(f"build cache {path}")
        others = sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []
        if others:
            done.kept.append(f"{cache}: {len(others)} entries isobench did not create "
                             f"({', '.join(others[:3])}{'...' if len(others) > 3 else ''})")
        elif cache.is_dir():
            cache.rmdir()
    finally:
        hold.release()
    return done
