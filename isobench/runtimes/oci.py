"""What the OCI container runtimes (Docker, Podman) pass alike to ``run``.

The resource limits and the launch spec's process settings are spelled the same by ``docker run``
and ``podman run``; each runtime adds its own flags (labels, network, ``--runtime``, ulimits) and
its image or root filesystem around these.
"""

from __future__ import annotations

from collections.abc import Sequence

from isobench.runtimes.base import Resources
from isobench.runtimes.native import DEFAULT_PATH
from isobench.workloads.base import LaunchSpec


def volume_args(spec: LaunchSpec, options: Sequence[str] = ()) -> list[str]:
    """One anonymous volume per ``spec.volumes``: ``--mount type=volume,dst=PATH`` plus
    ``options`` (Docker: ``volume-nocopy=true`` and ``volume-label=K=V``). The engine makes it
    in its volume directory on the host's disk (``/var/lib/docker/volumes``,
    ``/var/lib/containers/storage/volumes``); ``rm --volumes`` removes it with the container."""
    argv: list[str] = []
    for path in spec.volumes:
        argv += ["--mount", ",".join(["type=volume", f"dst={path}", *options])]
    return argv


def limits_and_process_args(spec: LaunchSpec, resources: Resources,
                            extra_limits: Sequence[str] = (), *,
                            cgroup_limits: bool = True,
                            volume_options: Sequence[str] = ()) -> list[str]:
    """``--cpus`` (a CFS quota, when set), ``--cpuset-cpus``, ``--memory`` and ``--memory-swap``
    (equal: no swap), then ``extra_limits``, then the spec's working directory, user, writable
    paths (``--tmpfs``), volumes (:func:`volume_args` with ``volume_options``) and environment
    (sorted; ``PATH`` defaulted as the native runtime does).
    Entry point and arguments are left to the caller (an image or a ``--rootfs``).
    ``cgroup_limits=False`` leaves out ``--cpuset-cpus``/``--memory`` (the caller pins the
    process some other way; ``isobench explain``'s bare-container step)."""
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    memory = f"{resources.memory_mb}m"
    argv: list[str] = []
    if resources.cpu_quota is not None:
        argv += ["--cpus", f"{resources.cpu_quota:g}"]
    if cgroup_limits:
        argv += ["--cpuset-cpus", resources.cpuset, "--memory", memory, "--memory-swap", memory]
    argv += [*extra_limits, "--workdir", spec.workdir]
    if spec.user:
        argv += ["--user", spec.user]
    for path in spec.writable_paths:
        argv += ["--tmpfs", path]
    argv += volume_args(spec, volume_options)
    for key, value in sorted(env.items()):
        argv += ["--env", f"{key}={value}"]
    return argv
