"""Build the one root filesystem every runtime runs, in cached layers.

Layers (each cached on its own, under ``<cache>/rootfs/``):

* ``base/<base-key>``: ``debootstrap --variant=minbase`` of the suite with python3, python3-venv and
  the spec's Debian packages (keyed by suite + packages), docs and apt caches removed.
* ``wheels/<wheel-key>``: a wheelhouse downloaded on the HOST with ``pip download`` for the
  rootfs's CPython 3.11 (keyed by the requirements); the rootfs never talks to the index.
* ``<key>``: the final rootfs: a copy of the base, a venv at ``VENV`` with the wheels installed
  offline, the spec's files, the build commands' output and ``/opt/isobench/manifest.json``.

Every layer is built in a temporary directory next to its target and renamed when complete,
under an ``fcntl`` lock per key, so concurrent builders never see (or leave) a half-built tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from isobench.errors import BuildError
from isobench.images.spec import VENV, RootfsSpec
from isobench.util.locks import file_lock
from isobench.util.proc import CommandFailed, CommandRunner

BUILDER_VERSION = "2"
"""Bump when the final-layer recipe changes in a way that changes the rootfs content."""

LAYER_VERSION = "1"
"""Bump when the debootstrap or wheelhouse recipe changes (invalidates those layers too)."""

DEFAULT_MIRROR = "http://deb.debian.org/debian"
MANIFEST = "/opt/isobench/manifest.json"
PIP_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
CHROOT_PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_SMALLER = (
    "usr/share/doc", "usr/share/man", "usr/share/info", "var/cache/apt", "var/lib/apt/lists",
)

Progress = Callable[[str], None]


# --- keys ---------------------------------------------------------------------------------------


def _iter_files(src: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of every file under ``src`` (or ``src`` itself), sorted."""
    if src.is_file():
        yield "", src
        return
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED)
        for name in sorted(filenames):
            if name.endswith(".pyc"):
                continue
            path = Path(dirpath) / name
            yield str(path.relative_to(src)), path


def spec_key(spec: RootfsSpec) -> str:
    """The content key of a spec: its fields, its files' bytes and modes, the builder version."""
    h = hashlib.sha256()
    fields = {
        "builder": BUILDER_VERSION,
        "name": spec.name,
        "suite": spec.suite,
        "debian_packages": list(spec.debian_packages),
        "pip_requirements": list(spec.pip_requirements),
        "files": sorted(spec.files),
        "build_commands": [list(c) for c in spec.build_commands],
    }
    if spec.base_image:  # only when set, so the keys of debootstrapped specs stay as they were
        fields["base_image"] = spec.base_image
    h.update(json.dumps(fields, sort_keys=True).encode())
    for dest in sorted(spec.files):
        src = Path(spec.files[dest])
        if not src.exists():
            raise BuildError(f"rootfs file source {src} (for {dest}) does not exist",
                             fix="fix the workload's RootfsSpec.files")
        for rel, path in _iter_files(src):
            h.update(f"\0{dest}\0{rel}\0{path.stat().st_mode & 0o777:o}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def base_key(spec: RootfsSpec) -> str:
    """Key of the debootstrap layer: suite and Debian packages only."""
    data = json.dumps(
        {"builder": LAYER_VERSION, "suite": spec.suite, "packages": sorted(spec.debian_packages)}
    )
    return hashlib.sha256(data.encode()).hexdigest()


def wheels_key(spec: RootfsSpec) -> str:
    """Key of the wheelhouse layer: the requirements and the target platform."""
    data = json.dumps(
        {"builder": LAYER_VERSION, "reqs": sorted(spec.pip_requirements), "plat": PIP_PLATFORMS}
    )
    return hashlib.sha256(data.encode()).hexdigest()


def debian_mirror(sources: Sequence[Path] = (Path("/etc/apt/sources.list"),
                                             Path("/etc/apt/sources.list.d"))) -> str:
    """The Debian archive URI configured in the host's apt sources (not the security archive)."""
    files: list[Path] = []
    for src in sources:
        if src.is_dir():
            files += sorted(p for p in src.iterdir() if p.suffix in {".list", ".sources"})
        elif src.is_file():
            files.append(src)
    for path in files:
        with contextlib.suppress(OSError):
            for uri in re.findall(r"(https?://\S+)", path.read_text()):
                uri = uri.rstrip("/")
                if uri.endswith("/debian") and "security" not in uri and "snapshot" not in uri:
                    return uri
    return DEFAULT_MIRROR


# --- locking, atomic directories, chroot mounts -------------------------------------------------


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (deepest first)."""
    prefix = str(path.resolve()) if path.exists() else str(path)
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            point = line.split()[1].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_all(path: Path, runner: CommandRunner) -> None:
    """Unmount everything below ``path``; lazily as a last resort."""
    for point in mounts_under(path):
        if not runner.run(["umount", point], check=False, timeout=30).ok:
            runner.run(["umount", "-l", point], check=False, timeout=30)


def remove_tree(path: Path, runner: CommandRunner) -> None:
    """Remove a build or instance tree, never crossing into a mount (e.g. a bound /dev)."""
    if not path.exists() and not path.is_symlink():
        return
    unmount_all(path, runner)
    if mounts_under(path):
        raise BuildError(f"{path} still has mounts; not removing it",
                         fix=f"unmount them (grep {path} /proc/mounts) and remove it")
    runner.run(["rm", "-rf", "--one-file-system", str(path)], check=False, timeout=300)


@contextlib.contextmanager
def chroot_mounts(root: Path, runner: CommandRunner) -> Iterator[None]:
    """/proc and /dev mounted inside ``root`` for the block; always unmounted afterwards."""
    try:
        (root / "proc").mkdir(exist_ok=True)
        (root / "dev").mkdir(exist_ok=True)
        runner.run(["mount", "-t", "proc", "proc", str(root / "proc")], timeout=30)
        runner.run(["mount", "--bind", "/dev", str(root / "dev")], timeout=30)
        yield
    finally:
        unmount_all(root / "dev", runner)
        unmount_all(root / "proc", runner)


def _clean_stale(parent: Path, key: str, runner: CommandRunner) -> None:
    """Remove temp dirs a killed build of ``key`` left behind (caller holds the key's lock)."""
    for stale in parent.glob(f".tmp-{key}-*"):
        remove_tree(stale, runner)


class _Log:
    """The build log: every command's argv and output, so a failure names a file to read."""

    def __init__(self, path: Path, progress: Progress | None) -> None:
        self.path = path
        self.progress = progress
        path.parent.mkdir(parents=True, exist_ok=True)

    def say(self, text: str) -> None:
        with self.path.open("a") as fh:
            fh.write(f"== {time.strftime('%H:%M:%S')} {text}\n")
        if self.progress:
            self.progress(text)

    def run(self, step: str, runner: CommandRunner, argv: Sequence[str],
            timeout: float = 1800, cwd: Path | None = None) -> str:
        with self.path.open("a") as fh:
            fh.write(f"$ {shlex.join(argv)}\n")
        try:
            result = runner.run(argv, check=False, timeout=timeout, cwd=cwd)
        except (OSError, TimeoutError) as exc:  # subprocess.TimeoutExpired is not an OSError
            self._fail(step, str(exc))
        except Exception as exc:
            self._fail(step, f"{type(exc).__name__}: {exc}")
        with self.path.open("a") as fh:
            fh.write(result.stdout)
            fh.write(result.stderr)
            fh.write(f"[exit {result.returncode}]\n")
        if not result.ok:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
            self._fail(step, f"exit {result.returncode}: {tail[0][:200]}")
        return result.stdout

    def _fail(self, step: str, why: str) -> NoReturn:
        raise BuildError(f"rootfs build step '{step}' failed ({why})",
                         fix=f"read the build log {self.path}")


# --- layers -------------------------------------------------------------------------------------


def _ensure_base(spec: RootfsSpec, root: Path, runner: CommandRunner, log: _Log) -> Path:
    key = base_key(spec)
    target = root / "base" / key
    if target.is_dir():
        return target
    with file_lock(root / "locks" / f"base-{key}.lock"):
        if target.is_dir():
            return target
        _clean_stale(target.parent, key, runner)
        tmp = target.parent / f".tmp-{key}-{os.getpid()}"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            include = ",".join(["python3", "python3-venv", *spec.debian_packages])
            mirror = debian_mirror()
            debs = root / "debs"
            debs.mkdir(parents=True, exist_ok=True)
            log.say(f"debootstrap {spec.suite} (+{include}) from {mirror}")
            log.run("debootstrap", runner, [
                "debootstrap", "--variant=minbase", f"--include={include}",
                f"--cache-dir={debs}", spec.suite, str(tmp), mirror,
            ], timeout=3600)
            for rel in _SMALLER:
                d = tmp / rel
                if d.is_dir():
                    for child in d.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child)
                        else:
                            child.unlink()
            unmount_all(tmp, runner)  # debootstrap normally unmounts its own /proc, /sys
            os.rename(tmp, target)
        except BaseException:
            remove_tree(tmp, runner)
            raise
    return target


def _ensure_wheels(spec: RootfsSpec, root: Path, runner: CommandRunner, log: _Log) -> Path | None:
    if not spec.pip_requirements:
        return None
    key = wheels_key(spec)
    target = root / "wheels" / key
    if target.is_dir():
        return target
    with file_lock(root / "locks" / f"wheels-{key}.lock"):
        if target.is_dir():
            return target
        _clean_stale(target.parent, key, runner)
        tmp = target.parent / f".tmp-{key}-{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            log.say(f"pip download (host) {' '.join(spec.pip_requirements)}")
            plats = [a for p in PIP_PLATFORMS for a in ("--platform", p)]
            log.run("pip download", runner, [
                sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                "--no-cache-dir", "-d", str(tmp), "--only-binary=:all:", *plats,
                "--python-version", "3.11", "--implementation", "cp", *spec.pip_requirements,
            ], timeout=1800)
            os.rename(tmp, target)
        except BaseException:
            remove_tree(tmp, runner)
            raise
    return target


def _copy_files(spec: RootfsSpec, tree: Path) -> None:
    for dest in sorted(spec.files):
        src = Path(spec.files[dest])
        target = tree / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(*_IGNORED, "*.pyc"))
        else:
            shutil.copy2(src, target)


def _chroot(tree: Path, argv: Sequence[str]) -> list[str]:
    return ["chroot", str(tree), "/usr/bin/env", "-i", f"PATH={CHROOT_PATH}", "HOME=/root",
            "LANG=C.UTF-8", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_CACHE_DIR=1", *argv]


def _build_final(spec: RootfsSpec, key: str, base: Path, wheels: Path | None, tmp: Path,
                 runner: CommandRunner, log: _Log) -> None:
    log.say("copy base layer")
    tmp.mkdir(parents=True)
    log.run("copy base", runner, ["cp", "-a", "--reflink=auto", f"{base}/.", str(tmp)],
            timeout=600)
    with chroot_mounts(tmp, runner):
        venv_args = ["/usr/bin/python3", "-m", "venv"]
        if wheels is None:
            venv_args.append("--without-pip")
        log.say(f"create venv {VENV}")
        log.run("venv", runner, _chroot(tmp, [*venv_args, VENV]), timeout=600)
        if wheels is not None:
            inside = "/tmp/isobench-wheelhouse"
            shutil.copytree(wheels, tmp / inside.lstrip("/"))
            try:
                log.say("pip install (offline, from the wheelhouse)")
                log.run("pip install", runner, _chroot(tmp, [
                    f"{VENV}/bin/pip", "install", "--no-index", "--find-links", inside,
                    *spec.pip_requirements,
                ]), timeout=1800)
            finally:
                shutil.rmtree(tmp / inside.lstrip("/"), ignore_errors=True)
        _copy_files(spec, tmp)
        for i, cmd in enumerate(spec.build_commands):
            log.say(f"build command {i}: {shlex.join(cmd)}")
            log.run(f"build command {i} ({shlex.join(cmd)[:60]})", runner, _chroot(tmp, cmd))
    for rel in ("var/cache/apt", "var/lib/apt/lists", "root/.cache"):
        with contextlib.suppress(FileNotFoundError):
            for child in (tmp / rel).iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                elif child.name != "lock":
                    child.unlink()
    etc = tmp / "etc"
    if not (etc / "hosts").exists():  # Docker bind-mounts its own; chroot and VM need one
        (etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost\n")
    manifest = tmp / MANIFEST.lstrip("/")
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({
        "key": key,
        "builder": BUILDER_VERSION,
        "spec": {
            "name": spec.name, "suite": spec.suite,
            "debian_packages": list(spec.debian_packages),
            "pip_requirements": list(spec.pip_requirements),
            "files": {k: str(v) for k, v in sorted(spec.files.items())},
            "build_commands": [list(c) for c in spec.build_commands],
        },
    }, indent=2, sort_keys=True) + "\n")


def rootfs_dir(cache: Path, key: str) -> Path:
    """Where the finished rootfs of ``key`` lives."""
    return cache / "rootfs" / key


def build_rootfs(
    spec: RootfsSpec,
    *,
    cache: Path,
    runner: CommandRunner,
    progress: Progress | None = None,
) -> tuple[str, Path]:
    """Build (or find in the cache) the rootfs of ``spec``.

    Args:
        spec: what goes into the rootfs.
        cache: cache root (``paths.cache_dir()`` normally).
        runner: runs debootstrap, pip, cp, mount and chroot (needs root).
        progress: called with one line per build step.

    Returns:
        ``(key, rootfs directory)``. An unchanged spec returns at once.

    Raises:
        BuildError: naming the failing step and the build log; no partial rootfs is left.

    A spec with ``base_image`` gets that image's exported filesystem instead (see
    ``build_image_rootfs``).
    """
    if spec.base_image:
        return build_image_rootfs(spec, cache=cache, runner=runner, progress=progress)
    key = spec_key(spec)
    root = cache / "rootfs"
    target = rootfs_dir(cache, key)
    if (target / MANIFEST.lstrip("/")).is_file():
        return key, target
    if os.geteuid() != 0:
        raise BuildError("building a rootfs needs root (debootstrap, chroot, mount)",
                         fix="run isobench as root (sudo)")
    log = _Log(root / "logs" / f"{spec.name}-{key[:12]}.log", progress)
    with file_lock(root / "locks" / f"{key}.lock"):
        if (target / MANIFEST.lstrip("/")).is_file():
            return key, target
        _clean_stale(root, key, runner)
        if target.exists():  # no manifest: an incomplete tree from an old builder
            remove_tree(target, runner)
        started = time.monotonic()
        log.say(f"building rootfs {spec.name} {key[:12]}")
        base = _ensure_base(spec, root, runner, log)
        wheels = _ensure_wheels(spec, root, runner, log)
        tmp = root / f".tmp-{key}-{os.getpid()}"
        try:
            _build_final(spec, key, base, wheels, tmp, runner, log)
            os.rename(tmp, target)
        except CommandFailed as exc:
            remove_tree(tmp, runner)
            raise BuildError(f"rootfs build failed: {exc}", fix=f"read {log.path}") from exc
        except BaseException:
            remove_tree(tmp, runner)
            raise
        log.say(f"rootfs {key[:12]} ready in {time.monotonic() - started:.1f} s")
    return key, target


def build_image_rootfs(
    spec: RootfsSpec,
    *,
    cache: Path,
    runner: CommandRunner,
    progress: Progress | None = None,
) -> tuple[str, Path]:
    """The rootfs of a spec with ``base_image``: that local image's filesystem, exported.

    Returns:
        ``(key, rootfs directory)`` where ``key`` is the hex of the image ID.

    Raises:
        BuildError: the spec also asks for content, or the image is not local.
    """
    from isobench.images.user_image import export_rootfs, inspect_image  # it imports this module

    extra = [name for name in ("debian_packages", "pip_requirements", "files", "build_commands")
             if getattr(spec, name)]
    if extra:
        raise BuildError(f"rootfs spec '{spec.name}' sets base_image and also {', '.join(extra)}",
                         fix="put that content into the image (its Dockerfile) instead")
    assert spec.base_image is not None
    config = inspect_image(spec.base_image, runner=runner)
    return config.key, export_rootfs(config, cache=cache, runner=runner, progress=progress)
