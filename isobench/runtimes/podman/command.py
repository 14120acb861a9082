"""Podman command lines and the parsing of Podman's answers, as pure functions.

What this host kind needs for rootful Podman to run at all is fixed here, once, for every command:

* ``--runtime runc``: Debian's default OCI runtime for Podman (crun) does not work on a cgroup v1
  hybrid host; runc (shipped with docker.io) does.
* ``--cgroup-manager cgroupfs``: no systemd to delegate cgroups to.
* explicit ``--ulimit nofile=S:H --ulimit nproc=S:H``: Podman asks runc for limits above the hard
  limits a process may set here (``error setting rlimit type 7``). The container gets the limits
  isobench itself runs with, as the native process (which inherits them) and a Docker container
  (which inherits dockerd's) do. nproc is capped at ``kernel.pid_max``: conmon ran with an nproc
  hard limit of 32768 (this host's pid_max) and any higher value failed (``rlimit type 6``).
"""

from __future__ import annotations

import json
import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobench.runtimes.base import Resources
from isobench.runtimes.oci import limits_and_process_args
from isobench.util.locks import Owner
from isobench.util.paths import LABEL
from isobench.workloads.base import LaunchSpec

OCI_RUNTIME = "runc"
CGROUP_MANAGER = "cgroupfs"
GLOBAL_FLAGS: tuple[str, ...] = ("--runtime", OCI_RUNTIME, "--cgroup-manager", CGROUP_MANAGER)
INSTALL_FIX = "apt-get install podman netavark"


def podman(*args: str) -> list[str]:
    """``podman`` with the global flags this host needs, then ``args``."""
    return ["podman", *GLOBAL_FLAGS, *args]


# --- resource limits ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ulimits:
    """Soft and hard RLIMIT_NOFILE / RLIMIT_NPROC given to the container."""

    nofile: tuple[int, int]
    nproc: tuple[int, int]

    def args(self) -> list[str]:
        return ["--ulimit", f"nofile={self.nofile[0]}:{self.nofile[1]}",
                "--ulimit", f"nproc={self.nproc[0]}:{self.nproc[1]}"]

    def describe(self) -> str:
        return (f"nofile={self.nofile[0]}:{self.nofile[1]} "
                f"nproc={self.nproc[0]}:{self.nproc[1]}")


def _read_int(path: str, default: int) -> int:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return default


def _capped(limit: tuple[int, int], cap: int) -> tuple[int, int]:
    soft, hard = (cap if v == resource.RLIM_INFINITY or v < 0 or v > cap else v for v in limit)
    return min(soft, hard), hard


def container_ulimits(
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    nr_open: int | None = None,
    pid_max: int | None = None,
) -> Ulimits:
    """isobench's own limits (what the native process inherits), capped where runc must stop.

    Args:
        getrlimit: ``resource.getrlimit`` (a stand-in in tests).
        nr_open: ``fs.nr_open`` (the kernel's ceiling for nofile); read from /proc when None.
        pid_max: ``kernel.pid_max`` (the ceiling for nproc here); read from /proc when None.
    """
    nr_open = nr_open if nr_open is not None else _read_int("/proc/sys/fs/nr_open", 1048576)
    pid_max = pid_max if pid_max is not None else _read_int("/proc/sys/kernel/pid_max", 32768)
    return Ulimits(nofile=_capped(getrlimit(resource.RLIMIT_NOFILE), nr_open),
                   nproc=_capped(getrlimit(resource.RLIMIT_NPROC), pid_max))


# --- labels and the run command -----------------------------------------------------------------


def container_labels(owner: Owner, runtime: str) -> dict[str, str]:
    """The labels every container carries, set at create time (``isobench clean`` finds leftovers
    by them): its run and its owner (pid, the pid's start time and the boot id, so a reused pid
    is not taken for the owner), as for Docker containers (``Owner.labels``)."""
    return {**owner.labels(), f"{LABEL}.runtime": runtime}


def run_argv(name: str, rootfs: Path, spec: LaunchSpec, resources: Resources, *, network: str,
             host_port: int, labels: Mapping[str, str], ulimits: Ulimits) -> list[str]:
    """The full ``podman run -d`` command line (``spec`` already rendered).

    ``network`` is ``bridge`` (the port published on ``resources.host_address`` only: 127.0.0.1
    unless the client is remote) or ``host``. The container
    runs the unpacked directory ``rootfs`` itself (``--rootfs``: no image, no import); everything
    the spec names is passed explicitly, as the Docker runtimes do.
    """
    if network not in ("bridge", "host"):
        raise ValueError(f"network must be bridge or host, not {network!r}")
    argv = podman("run", "-d", "--name", name)
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    if network == "bridge":
        argv += ["--network", "bridge",
                 "--publish",
                 f"{resources.host_address}:{host_port}:{spec.listen_port(host_port)}"]
    else:
        argv += ["--network", "host"]
    argv += limits_and_process_args(
        spec, resources, ["--pids-limit", "-1", *ulimits.args(), "--log-driver", "k8s-file"])
    argv += ["--rootfs", str(rootfs), *spec.argv]
    return argv


# --- Podman's answers ---------------------------------------------------------------------------


def stderr_tail(stdout: str, stderr: str, lines: int = 2) -> str:
    """The last lines of a failed command's output, without Podman's ``level=warning`` noise."""
    text = [line for line in (stderr or stdout).strip().splitlines()
            if line.strip() and "level=warning" not in line]
    return " | ".join(text[-lines:])[:300]


@dataclass(frozen=True)
class Labelled:
    """A container found by its ``isobench.run`` label."""

    id: str
    name: str
    run_id: str
    labels: Mapping[str, str] = field(default_factory=dict)


def parse_ps_json(text: str) -> list[Labelled]:
    """``podman ps -a --format json`` → the containers carrying an ``isobench.run`` label."""
    try:
        rows = json.loads(text or "[]")
    except ValueError:
        return []
    found = []
    for row in rows if isinstance(rows, list) else []:
        labels = row.get("Labels") or {}
        run_id = labels.get(f"{LABEL}.run")
        if run_id is None:
            continue
        names = row.get("Names") or []
        found.append(Labelled(id=str(row.get("Id", "")), run_id=str(run_id),
                              name=str(names[0] if names else row.get("Id", "")),
                              labels={str(k): str(v) for k, v in labels.items()}))
    return found


INSPECT_STATE = "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}} {{.State.Error}}"
"""The ``podman inspect --format`` that :func:`exit_reason` reads."""


def exit_reason(name: str, inspect_ok: bool, state: str, log_tail: str) -> str | None:
    """None while the container runs, else one line: how it ended, and its last log lines.

    Args:
        name: the container's name.
        inspect_ok: whether ``podman inspect`` found the container.
        state: its output with :data:`INSPECT_STATE`.
        log_tail: its last log lines.
    """
    fields = state.split(maxsplit=3)
    if inspect_ok and fields and fields[0] in ("running", "created", "configured", "initialized"):
        return None
    if not inspect_ok or not fields:
        how = "is gone (removed, exit code unknown)"
    else:
        code = fields[1] if len(fields) > 1 else "?"
        how = f"exited with code {code} (status {fields[0]}"
        if len(fields) > 2 and fields[2] == "true":
            how += ", OOM-killed"
        if len(fields) > 3 and fields[3].strip():
            how += f", error: {fields[3].strip()}"
        how += ")"
    detail = " | ".join(log_tail.strip().splitlines()[-5:])
    return f"podman container {name} {how}" + (f": {detail}" if detail else "")


def info_facts(info: Mapping[str, Any]) -> dict[str, Any]:
    """The facts worth recording from ``podman info --format json``."""
    host = info.get("host") or {}
    oci = host.get("ociRuntime") or {}
    version = str(oci.get("version") or "").splitlines()
    return {
        "podman_version": (info.get("version") or {}).get("Version"),
        "podman_oci_runtime": oci.get("name"),
        "podman_oci_runtime_version": version[0] if version else None,
        "podman_cgroup_manager": host.get("cgroupManager"),
        "podman_cgroup_version": host.get("cgroupVersion"),
        "podman_network_backend": host.get("networkBackend"),
        "podman_conmon_version": (host.get("conmon") or {}).get("version"),
    }
