"""One entry point for the image stage: the rootfs and what is built from it, with sizes.

This module knows no runtime: each artifact other than the rootfs is made by the builder
registered under its name (``isobench.plugins.ARTIFACTS``; a runtime names the artifact it runs
in its ``artifact`` attribute), so a runtime with a new kind of artifact adds a builder and a
registry line, and nothing here changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from isobench import plugins
from isobench.errors import ConfigError
from isobench.images.rootfs import build_rootfs
from isobench.images.sizes import tree_bytes
from isobench.images.spec import ArtifactBuild, Artifacts, RootfsSpec
from isobench.util import paths
from isobench.util.locks import cache_in_use
from isobench.util.proc import CommandRunner, SubprocessRunner

ROOTFS = "rootfs"


def build_artifacts(
    spec: RootfsSpec,
    need: set[str],
    *,
    cache: Path | None = None,
    runner: CommandRunner | None = None,
    progress: Callable[[str], None] | None = None,
) -> Artifacts:
    """Build (or find cached) the artifacts ``need`` asks for, from the one rootfs of ``spec``.

    Args:
        spec: the workload's rootfs spec.
        need: artifact names (``rootfs`` and registered builders' names); the rootfs is always
            built.
        cache: cache root, ``paths.cache_dir()`` by default.
        runner: command runner, a real one by default.
        progress: called with one line per build step.

    Returns:
        Artifacts with ``sizes`` filled for the rootfs and each artifact built.
    """
    known = {ROOTFS, *plugins.names("artifact")}
    unknown = set(need) - known
    if unknown:
        raise ConfigError(f"unknown artifact kinds {sorted(unknown)}",
                          fix=f"use some of {sorted(known)}")
    cache = cache if cache is not None else paths.cache_dir()
    runner = runner or SubprocessRunner()
    with cache_in_use(cache):  # `isobench clean --cache` waits for no build
        return _build(spec, need, cache, runner, progress)


def _build(spec: RootfsSpec, need: set[str], cache: Path, runner: CommandRunner,
           progress: Callable[[str], None] | None) -> Artifacts:
    key, rootfs = build_rootfs(spec, cache=cache, runner=runner, progress=progress)
    sizes: dict[str, int] = {ROOTFS: tree_bytes(rootfs, runner=runner)}
    built: dict[str, object] = {}
    facts: dict[str, dict[str, object]] = {}
    for name in sorted(set(need) - {ROOTFS}):
        builder = plugins.load("artifact", name)
        made = builder(ArtifactBuild(spec, key, rootfs, cache, runner, progress))
        built[name] = made.value
        sizes.update(made.sizes)
        facts[name] = dict(made.facts)
    return Artifacts(key=key, rootfs=rootfs, built=built, sizes=sizes, facts=facts)
