"""``image``: the user's own service, from a Dockerfile or a local image, in every runtime.

The image's filesystem is the rootfs (``RootfsSpec.base_image``: exported once, cached by image
ID; the Docker runtimes run the image itself) and its config is the launch spec, translated as
``docker run`` reads it: Entrypoint + Cmd, Env, WorkingDir (default ``/``), User, ExposedPorts.

Options (``workload_options`` in a benchfile; flags on the command line):

- ``dockerfile``: a Dockerfile to build (legacy builder, ``FROM`` a local image; ``isobench/base``
  is built on demand when a ``FROM`` line names it), or
- ``image``: a local image reference or ID (no registry is reachable: it must be local).
- ``context``: the build context (default: the Dockerfile's directory).
- ``port``: the port the app listens on inside (default: the image's only exposed TCP port).
- ``ready_path``: HTTP path answering 200 once ready (default ``/``; required when the image
  declares a HEALTHCHECK, which isobench cannot use as readiness).
- ``load_path``: the path the default scenario requests (default: ``ready_path``).
- ``env``: overrides, a mapping or ``KEY=VALUE`` strings; values may use ``{bind}`` (the address
  each runtime wants the app to listen on: ``127.0.0.1`` on the host network, ``0.0.0.0`` behind a
  bridge or in a VM) and ``{port}``.
- ``cmd``: replaces the image's Cmd (as ``docker run IMAGE CMD...`` does; the Entrypoint stays).
- ``writable``: extra paths the app writes to (a tmpfs in every runtime; the VM's root disk is
  read-only). ``/tmp`` and the image's empty VOLUMEs always are.
- ``requirements``: pip requirement files (relative to the context) downloaded on the host and
  offered to the build through 127.0.0.1 (images ``FROM isobench/base``); default
  ``requirements.txt`` when the context has one.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from isobench.errors import ConfigError, IsobenchError
from isobench.images.docker_image import BASE_IMAGE, ensure_base_image
from isobench.images.spec import RootfsSpec
from isobench.images.user_image import ImageConfig, build_dockerfile, export_rootfs, inspect_image
from isobench.runtimes.native import DEFAULT_PATH
from isobench.util import paths
from isobench.util.proc import CommandRunner, SubprocessRunner
from isobench.workloads.base import LaunchSpec, Workload


class Refusal(IsobenchError):
    """The image needs something isobench cannot give it in every runtime."""


def command_of(config: ImageConfig, cmd: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The argv ``docker run IMAGE [CMD...]`` starts: Entrypoint + (``cmd`` or the image's Cmd)."""
    return (*config.entrypoint, *(config.cmd if cmd is None else cmd))


def env_of(config: ImageConfig, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The image's Env list as a mapping (later entries win), then ``overrides``."""
    env: dict[str, str] = {}
    for item in config.env:
        key, sep, value = item.partition("=")
        if key and sep:
            env[key] = value
    env.update(overrides or {})
    return env


def port_of(config: ImageConfig, port: int | None) -> int:
    """``port`` if given, else the image's only exposed TCP port; a Refusal otherwise."""
    if port is not None:
        if not 0 < int(port) < 65536:
            raise ConfigError(f"port {port} is not a TCP port", fix="pass --port 1..65535")
        return int(port)
    tcp = sorted({int(p.split("/")[0]) for p in config.exposed_ports
                  if p.endswith("/tcp") or "/" not in p})
    if len(tcp) == 1:
        return tcp[0]
    if not tcp:
        raise Refusal("the image exposes no TCP port, so isobench does not know where it listens",
                      fix="pass --port PORT (the port the app listens on inside)")
    raise Refusal(f"the image exposes several TCP ports ({', '.join(map(str, tcp))})",
                  fix="pass --port with the one that serves HTTP")


def _in_rootfs(rootfs: Path, path: str) -> Path:
    return rootfs / path.lstrip("/")


def resolve_command(argv: tuple[str, ...], env: Mapping[str, str], rootfs: Path) -> tuple[str, ...]:
    """``argv`` with a bare ``argv[0]`` made absolute by the image's PATH, as execvp would."""
    head = argv[0]
    if "/" in head:
        if not head.startswith("/"):  # relative to the working directory: leave it to exec
            return argv
        if not os.path.lexists(_in_rootfs(rootfs, head)):
            raise Refusal(f"the image's command {head} does not exist in the image",
                          fix="fix ENTRYPOINT/CMD or pass --cmd")
        return argv
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        if directory.startswith("/") and os.path.lexists(_in_rootfs(rootfs, f"{directory}/{head}")):
            return (f"{directory.rstrip('/')}/{head}", *argv[1:])
    raise Refusal(f"the image's command '{head}' is not on its PATH",
                  fix="fix ENTRYPOINT/CMD or the image's PATH, or pass --cmd")


def home_of(rootfs: Path | None, user: str | None) -> str:
    """The HOME Docker gives the user: its passwd entry's home, ``/`` when it has none."""
    name = (user or "root").partition(":")[0]
    if rootfs is not None:
        try:
            for line in (rootfs / "etc" / "passwd").read_text().splitlines():
                parts = line.split(":")
                if len(parts) >= 6 and (parts[0] == name or parts[2] == name):
                    return parts[5] or "/"
        except OSError:
            pass
    return "/root" if name in ("root", "0") and rootfs is None else "/"


def launch_from_config(
    config: ImageConfig,
    *,
    port: int | None = None,
    ready_path: str | None = None,
    env: Mapping[str, str] | None = None,
    cmd: tuple[str, ...] | None = None,
    writable: tuple[str, ...] = (),
    rootfs: Path | None = None,
) -> LaunchSpec:
    """Translate an image's config (and the user's overrides) into a LaunchSpec.

    Args:
        config: the image's config.
        port: the port the app listens on (default: the only exposed TCP port).
        ready_path: readiness path (default ``/``; required with a HEALTHCHECK).
        env: environment overrides.
        cmd: replaces Cmd (the Entrypoint stays), as ``docker run IMAGE CMD...``.
        writable: extra writable paths.
        rootfs: the exported filesystem, to resolve the command on the image's PATH, HOME of
            the user, and to tell empty VOLUMEs (made writable) from ones holding data (refused).

    Raises:
        Refusal: one line naming what the image needs that isobench cannot give everywhere.
    """
    argv = command_of(config, cmd)
    if not argv:
        raise Refusal("the image has neither ENTRYPOINT nor CMD", fix="pass --cmd PROGRAM ARGS")
    if config.healthcheck and not ready_path:
        raise Refusal("the image's readiness is a HEALTHCHECK only "
                      f"({shlex.join(config.healthcheck)[:80]}); isobench probes readiness over "
                      "HTTP in every runtime", fix="pass --ready-path /PATH that answers 200")
    listen = port_of(config, port)
    environment = env_of(config, env)
    environment.setdefault("PATH", DEFAULT_PATH)
    user = config.user or None
    environment.setdefault("HOME", home_of(rootfs, user))
    volumes: list[str] = []
    for volume in config.volumes:
        if rootfs is not None:
            where = _in_rootfs(rootfs, volume)
            if where.is_dir() and any(where.iterdir()):
                raise Refusal(f"the image keeps data in VOLUME {volume}, which the native and VM "
                              "runtimes cannot provide as Docker does (they would hide it)",
                              fix="move that data out of the VOLUME in the Dockerfile")
        volumes.append(volume)
    if rootfs is not None:
        argv = resolve_command(argv, environment, rootfs)
    ready = ready_path or "/"
    if not ready.startswith("/"):
        raise ConfigError(f"ready path {ready!r} must start with /", fix="pass --ready-path /PATH")
    paths_w = tuple(dict.fromkeys(("/tmp", *volumes, *writable)))
    return LaunchSpec(argv=argv, env=environment, workdir=config.working_dir or "/",
                      ready_path=ready, user=user, writable_paths=paths_w, port=listen)


def uses_base_image(dockerfile: Path) -> bool:
    """True when a ``FROM`` line of ``dockerfile`` names ``isobench/base`` (built on demand)."""
    try:
        lines = dockerfile.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            image = next((w for w in words[1:] if not w.startswith("--")), "")
            if image.split("@")[0].split(":")[0] == BASE_IMAGE:
                return True
    return False


def _env_option(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    items = [value] if isinstance(value, str) else list(value)
    out: dict[str, str] = {}
    for item in items:
        key, sep, val = str(item).partition("=")
        if not key or not sep:
            raise ConfigError(f"env override {item!r} is not KEY=VALUE", fix="use --env KEY=VALUE")
        out[key] = val
    return out


def _argv_option(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(shlex.split(value)) if isinstance(value, str) else tuple(map(str, value))


class ImageWorkload(Workload):
    """The user's own image (built from a Dockerfile or already local), in every runtime."""

    name: ClassVar[str] = "image"
    option_names: ClassVar[frozenset[str] | None] = frozenset({
        "dockerfile", "image", "context", "port", "ready_path", "load_path", "env", "cmd",
        "writable", "requirements"})
    primary_metric: ClassVar[str] = "rps"
    description: ClassVar[str] = "your own app from a Dockerfile or a local image"

    def __init__(self, options: Mapping[str, Any] | None = None,
                 runner: CommandRunner | None = None, cache: Path | None = None) -> None:
        super().__init__(options)
        self.runner: CommandRunner = runner or SubprocessRunner()
        self._cache = cache
        self._config: ImageConfig | None = None
        self._rootfs: Path | None = None
        self._spec: LaunchSpec | None = None

    # --- preparation ------------------------------------------------------------------------

    @property
    def cache(self) -> Path:
        return self._cache if self._cache is not None else paths.cache_dir()

    def _source(self) -> tuple[Path | None, str | None]:
        dockerfile, image = self.options.get("dockerfile"), self.options.get("image")
        if bool(dockerfile) == bool(image):
            raise ConfigError("the image workload needs exactly one of dockerfile or image",
                              fix="pass --dockerfile PATH or --image NAME")
        return (Path(dockerfile).expanduser().resolve() if dockerfile else None,
                str(image) if image else None)

    def _requirements(self, context: Path) -> list[Path]:
        given = self.options.get("requirements")
        if given is None:
            default = context / "requirements.txt"
            return [default] if default.is_file() else []
        files = [given] if isinstance(given, str) else list(given)
        out = [(context / f) if not Path(f).is_absolute() else Path(f) for f in files]
        for f in out:
            if not f.is_file():
                raise ConfigError(f"requirements file {f} does not exist",
                                  fix="pass --requirements paths relative to the context")
        return out

    def image_config(self) -> ImageConfig:
        """Build the Dockerfile (if given), then inspect the image. Cached on the instance."""
        if self._config is None:
            dockerfile, image = self._source()
            if dockerfile is not None:
                if uses_base_image(dockerfile):
                    ensure_base_image(cache=self.cache, runner=self.runner)
                context = Path(self.options.get("context") or dockerfile.parent).resolve()
                work = self.cache / "byo" / hashlib.sha256(
                    f"{dockerfile}\0{context}".encode()).hexdigest()[:16]
                image = build_dockerfile(dockerfile, context, runner=self.runner, work=work,
                                         requirements=self._requirements(context),
                                         cache=self.cache)
            assert image is not None
            self._config = inspect_image(image, runner=self.runner)
        return self._config

    def rootfs(self) -> Path:
        """The image's exported filesystem (cached by image ID)."""
        if self._rootfs is None:
            self._rootfs = export_rootfs(self.image_config(), cache=self.cache, runner=self.runner)
        return self._rootfs

    # --- the workload contract ---------------------------------------------------------------

    def check(self) -> str | None:
        """Builds/inspects/exports the image; None, or why it cannot run in every runtime."""
        try:
            self.launch_spec()
        except IsobenchError as exc:
            return str(exc)
        return None

    def rootfs_spec(self) -> RootfsSpec:
        config = self.image_config()
        return RootfsSpec(name=f"image-{config.key[:12]}", base_image=config.id)

    def launch_spec(self) -> LaunchSpec:
        if self._spec is None:
            port = self.options.get("port")
            writable = self.options.get("writable") or ()
            args: dict[str, Any] = {
                "port": int(port) if port is not None else None,
                "ready_path": self.options.get("ready_path"),
                "env": _env_option(self.options.get("env")),
                "cmd": _argv_option(self.options.get("cmd")),
                "writable": (writable,) if isinstance(writable, str) else tuple(writable),
            }
            config = self.image_config()
            launch_from_config(config, **args)  # what the config alone refuses, before exporting
            self._spec = launch_from_config(config, rootfs=self.rootfs(), **args)
        return self._spec

    def default_scenario(self) -> dict[str, Any]:
        path = str(self.options.get("load_path") or self.options.get("ready_path") or "/")
        return {
            "executor": "constant-vus",
            "vus": 4,
            "duration": "20s",
            "requests": [{"method": "GET", "path": path, "name": "app", "checks": {"status": 200}}],
        }
