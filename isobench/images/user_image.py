"""A user's Docker image as isobench's rootfs: build it, read its config, export its filesystem.

* ``build_dockerfile``: ``docker build`` with the legacy builder (no registry is reachable here, so
  ``FROM`` must name a local image). Python requirements can be offered to the build from a
  wheelhouse downloaded on the host and served on 127.0.0.1 (images ``FROM isobench/base`` pick it
  up through ``ONBUILD ARG PIP_*``; see ``docker_image.ensure_base_image``).
* ``inspect_image``: the image's ID and config (Entrypoint, Cmd, Env, WorkingDir, User,
  ExposedPorts, Volumes, Healthcheck).
* ``export_rootfs``: ``docker create`` + ``docker export`` → a directory, cached by image ID under
  ``<cache>/images/<id>/rootfs``, built in a temporary directory under an ``fcntl`` lock.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isobench.errors import BuildError
from isobench.images.rootfs import PIP_PLATFORMS, remove_tree
from isobench.util.locks import Owner, file_lock, remove_record, write_record
from isobench.util.paths import LABEL
from isobench.util.proc import CommandRunner

EXPORT_VERSION = "1"
"""Bump when the export recipe changes (invalidates exported trees)."""

NO_REGISTRY_FIX = (
    "no registry is reachable here: build it locally (docker build FROM a local image such as "
    "isobench/base) or `docker load` it"
)
HOSTS = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImageConfig:
    """The parts of ``docker image inspect`` isobench honours.

    Attributes:
        id: the image ID (``sha256:...``).
        entrypoint: ``Config.Entrypoint`` (empty when unset).
        cmd: ``Config.Cmd`` (empty when unset).
        env: ``Config.Env`` as ``KEY=VALUE`` strings, in order.
        working_dir: ``Config.WorkingDir`` ("" when unset).
        user: ``Config.User`` ("" when unset).
        exposed_ports: ``Config.ExposedPorts`` keys, e.g. ``("8000/tcp",)``, sorted.
        volumes: ``Config.Volumes`` keys, sorted.
        healthcheck: ``Config.Healthcheck.Test`` (empty when unset or ``NONE``).
        size: the image's size in bytes.
    """

    id: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    healthcheck: tuple[str, ...] = ()
    size: int = 0

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> ImageConfig:
        """From one element of ``docker image inspect`` output."""
        cfg = data.get("Config") or {}
        health = tuple((cfg.get("Healthcheck") or {}).get("Test") or ())
        if health and health[0] == "NONE":
            health = ()
        return cls(
            id=str(data.get("Id", "")),
            entrypoint=tuple(cfg.get("Entrypoint") or ()),
            cmd=tuple(cfg.get("Cmd") or ()),
            env=tuple(cfg.get("Env") or ()),
            working_dir=str(cfg.get("WorkingDir") or ""),
            user=str(cfg.get("User") or ""),
            exposed_ports=tuple(sorted(cfg.get("ExposedPorts") or {})),
            volumes=tuple(sorted(cfg.get("Volumes") or {})),
            healthcheck=health,
            size=int(data.get("Size") or 0),
        )

    @property
    def key(self) -> str:
        """The hex digest of the image ID: the cache key of everything made from the image."""
        return self.id.split(":", 1)[-1]


def inspect_image(ref: str, *, runner: CommandRunner) -> ImageConfig:
    """The ID and config of a local image.

    Raises:
        BuildError: the image is not in the local engine (naming the fix).
    """
    result = runner.run(["docker", "image", "inspect", ref], check=False, timeout=60)
    if not result.ok:
        if "No such image" in result.stderr or "No such object" in result.stderr:
            raise BuildError(f"image '{ref}' is not in the local Docker engine",
                             fix=NO_REGISTRY_FIX)
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        raise BuildError(f"docker image inspect {ref} failed: {tail[0][:200]}",
                         fix="check the engine answers (scripts/start-dockerd.sh)")
    try:
        items = json.loads(result.stdout)
        return ImageConfig.from_inspect(items[0])
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        raise BuildError(f"docker image inspect {ref} gave no usable JSON ({exc})") from exc


# --- export -------------------------------------------------------------------------------------


def image_dir(cache: Path, key: str) -> Path:
    """``<cache>/images/<key>``: ``rootfs/`` and ``config.json`` (written last: the marker)."""
    return cache / "images" / key


def export_rootfs(config: ImageConfig, *, cache: Path, runner: CommandRunner,
                  progress: Progress | None = None) -> Path:
    """The image's filesystem as a directory (cached by image ID).

    The tree is what ``docker export`` gives for a created (never started) container, plus an
    ``/etc/hosts`` naming localhost when the image has none (Docker bind-mounts its own; a chroot
    and the VM need one).

    Raises:
        BuildError: naming the failing step; no partial tree is left.
    """
    target_dir = image_dir(cache, config.key)
    rootfs, marker = target_dir / "rootfs", target_dir / "config.json"
    if marker.is_file():
        return rootfs
    if os.geteuid() != 0:
        raise BuildError("exporting an image's filesystem needs root (file owners, device nodes)",
                         fix="run isobench as root (sudo)")
    with file_lock(cache / "images" / "locks" / f"{config.key}.lock"):
        if marker.is_file():
            return rootfs
        if target_dir.exists():  # a killed export
            remove_tree(target_dir, runner)
        if progress:
            progress(f"export image {config.id[:19]} to a rootfs")
        tmp = target_dir.parent / f".tmp-{config.key}-{os.getpid()}"
        if tmp.exists():
            remove_tree(tmp, runner)
        name = f"{LABEL}-export-{config.key[:12]}-{os.getpid()}"
        owner = Owner.current("export")
        labels = [a for k, v in owner.labels().items() for a in ("--label", f"{k}={v}")]
        try:
            (tmp / "rootfs").mkdir(parents=True)
            write_record("docker", name, {"id": name, "runtime": "export"}, owner)
            created = runner.run(
                ["docker", "create", "--name", name, *labels,
                 "--entrypoint", "/isobench-export-never-runs", config.id],
                check=False, timeout=120)
            if not created.ok:
                raise BuildError(f"docker create {config.id[:19]} failed: "
                                 f"{(created.stderr or created.stdout).strip()[-200:]}",
                                 fix="check the engine answers (scripts/start-dockerd.sh)")
            pipeline = (f"set -o pipefail; docker export {shlex.quote(name)} | "
                        f"tar -x --numeric-owner -C {shlex.quote(str(tmp / 'rootfs'))}")
            result = runner.run(["bash", "-c", pipeline], check=False, timeout=1800)
            if not result.ok:
                raise BuildError(f"docker export of {config.id[:19]} failed: "
                                 f"{(result.stderr or result.stdout).strip()[-200:]}",
                                 fix="check free disk space under " + str(cache))
            _fix_tree(tmp / "rootfs")
            meta = {"version": EXPORT_VERSION, "id": config.id, "config": config.__dict__}
            (tmp / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            os.rename(tmp, target_dir)
        except BaseException:
            remove_tree(tmp, runner)
            raise
        finally:
            runner.run(["docker", "rm", "-f", name], check=False, timeout=60)
            remove_record("docker", name)
    return rootfs


def _fix_tree(tree: Path) -> None:
    """What a runtime without Docker's bind mounts needs: mount points and a hosts file."""
    for d in ("proc", "dev", "sys", "tmp", "run"):
        path = tree / d
        if not path.exists() and not path.is_symlink():
            path.mkdir(mode=0o1777 if d == "tmp" else 0o755)
    hosts = tree / "etc" / "hosts"
    if (tree / "etc").is_dir() and not hosts.is_symlink() and (
            not hosts.exists() or hosts.stat().st_size == 0):
        hosts.write_text(HOSTS)


# --- build --------------------------------------------------------------------------------------


def build_tag(dockerfile: Path, context: Path) -> str:
    """``isobench/byo-<context name>:<hash of the Dockerfile and context paths>``."""
    digest = hashlib.sha256(f"{dockerfile.resolve()}\0{context.resolve()}".encode()).hexdigest()
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in context.resolve().name.lower())
    return f"{LABEL}/byo-{slug.strip('-.') or 'app'}:{digest[:12]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[int]:
    """An HTTP server on 127.0.0.1 (a free port) listing ``directory``, for the block."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="isobench-wheelhouse", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def download_wheels(requirements: Sequence[Path], dest: Path, *, runner: CommandRunner,
                    python_version: str = "3.11") -> None:
    """``pip download`` (on the host) the wheels of requirement files for the image's CPython."""
    plats = [a for p in PIP_PLATFORMS for a in ("--platform", p)]
    reqs = [a for r in requirements for a in ("-r", str(r))]
    result = runner.run([
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
        "-d", str(dest), "--only-binary=:all:", *plats, "--python-version", python_version,
        "--implementation", "cp", *reqs,
    ], check=False, timeout=1800)
    if not result.ok:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        raise BuildError(f"pip download of {', '.join(map(str, requirements))} failed: "
                         f"{tail[0][:200]}", fix="check the requirement names and versions")


def build_argv(dockerfile: Path, context: Path, tag: str, iidfile: Path,
               wheel_port: int | None = None) -> list[str]:
    """The ``docker build`` command (legacy builder; run it with ``DOCKER_BUILDKIT=0``)."""
    argv = ["docker", "build", "--file", str(dockerfile), "--tag", tag, "--iidfile", str(iidfile),
            "--network", "host", "--force-rm"]
    if wheel_port is not None:
        argv += ["--build-arg", f"PIP_FIND_LINKS=http://127.0.0.1:{wheel_port}/",
                 "--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_TRUSTED_HOST=127.0.0.1"]
    return [*argv, str(context)]


def build_dockerfile(dockerfile: Path, context: Path, *, runner: CommandRunner, work: Path,
                     requirements: Sequence[Path] = (), tag: str | None = None,
                     progress: Progress | None = None, cache: Path | None = None) -> str:
    """Build ``dockerfile`` in ``context`` with the legacy builder; return the image ID.

    Builds sharing ``work`` run one at a time (a lock in ``work``): a concurrent second build
    waits, then is answered from Docker's layer cache with the same image, so no duplicate is
    left dangling.

    Args:
        dockerfile: the Dockerfile on the host.
        context: the build context directory.
        runner: runs docker (and pip for the wheelhouse).
        work: a scratch directory (iidfile, wheelhouse, build log).
        requirements: pip requirement files whose wheels are downloaded on the host and offered to
            the build on 127.0.0.1 (the build runs with ``--network host``); only images whose
            base declares ``ONBUILD ARG PIP_FIND_LINKS`` etc. (``isobench/base``) use them.
        tag: the tag to give (``build_tag`` by default).
        progress: called with one line per step.
        cache: where to record the tag as isobench's (``images.cache.record_tag``), if given.

    Raises:
        BuildError: naming the build log.
    """
    work.mkdir(parents=True, exist_ok=True)
    with file_lock(work / "build.lock"):
        image_id = _build_dockerfile(dockerfile, context, runner=runner, work=work,
                                     requirements=requirements, tag=tag, progress=progress)
    if cache is not None and image_id.startswith("sha256:"):
        from isobench.images.cache import record_tag

        record_tag(cache, tag or build_tag(dockerfile, context), image_id)
    return image_id


def _build_dockerfile(dockerfile: Path, context: Path, *, runner: CommandRunner, work: Path,
                      requirements: Sequence[Path], tag: str | None,
                      progress: Progress | None) -> str:
    if not dockerfile.is_file():
        raise BuildError(f"Dockerfile {dockerfile} does not exist", fix="pass --dockerfile PATH")
    if not context.is_dir():
        raise BuildError(f"build context {context} is not a directory", fix="pass --context DIR")
    tag = tag or build_tag(dockerfile, context)
    work.mkdir(parents=True, exist_ok=True)
    iidfile, log = work / "iid", work / "docker-build.log"
    iidfile.unlink(missing_ok=True)
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    with contextlib.ExitStack() as stack:
        port: int | None = None
        if requirements:
            wheels = work / "wheels"
            wheels.mkdir(exist_ok=True)
            if progress:
                progress(f"pip download (host) for the build: {', '.join(map(str, requirements))}")
            download_wheels(requirements, wheels, runner=runner)
            port = stack.enter_context(serve_directory(wheels))
        argv = build_argv(dockerfile, context, tag, iidfile, port)
        if progress:
            progress(f"docker build {context} (legacy builder) → {tag}")
        result = runner.run(argv, check=False, timeout=3600, env=env)
    log.write_text(f"$ {shlex.join(argv)}\n{result.stdout}{result.stderr}"
                   f"[exit {result.returncode}]\n")
    if not result.ok:
        text = result.stderr + result.stdout
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        if "pull access denied" in text or "repository does not exist" in text or (
                "failed to resolve" in text) or "dial tcp" in text:
            raise BuildError(f"docker build {context}: a base image is not local ({tail[0][:160]})",
                             fix=NO_REGISTRY_FIX)
        raise BuildError(f"docker build {context} failed: {tail[0][:200]}",
                         fix=f"read the build log {log}")
    image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
    return image_id or tag

