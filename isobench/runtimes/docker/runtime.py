"""Docker runtimes: bridge network with a published port, host network, and gVisor (runsc).

All three run the rootfs's Docker image (``docker import`` of the same tree) through the ``docker``
CLI with the same pinning (``--cpuset-cpus``), memory limit (``--memory`` = ``--memory-swap``),
environment, working directory, user and tmpfs mounts as the other runtimes. A volume
(``LaunchSpec.volumes``) is an anonymous Docker volume, labelled with its owner and removed
with the container (``docker rm --volumes``); under gVisor the gofer serves it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import psutil

from isobench.errors import ConfigError, StartError
from isobench.images.docker_image import engine_problem
from isobench.images.spec import Artifacts
from isobench.runtimes.base import HostCheck, Instance, LadderStep, Resources, Runtime
from isobench.runtimes.cgroups import CGROUP_ROOT, cgroup_dirs
from isobench.runtimes.cleanup import Cleaned, Live
from isobench.runtimes.oci import limits_and_process_args
from isobench.runtimes.volumes import check_paths, engine_volume_facts
from isobench.util.locks import Owner, read_records, remove_record, write_record
from isobench.util.netutil import ensure_port_free
from isobench.util.paths import LABEL
from isobench.util.proc import CommandResult, CommandRunner
from isobench.workloads.base import LaunchSpec

ENGINE_FIX = "scripts/start-dockerd.sh"
CONTAINER_LABELS = tuple(dict.fromkeys([f"{LABEL}.run", *Owner(0, 0, "").labels()]))
"""The labels ``list_containers`` reads, in its ``docker ps --format`` order."""
RECORDS = "docker"
"""State-record kind: ``state_dir()/docker/<container name>.json`` per container started."""
_COUNTERS: dict[tuple[str, str], itertools.count[int]] = {}


def _next_name(run_id: str, runtime: str) -> str:
    counter = _COUNTERS.setdefault((run_id, runtime), itertools.count())
    return f"{LABEL}-{run_id}-{runtime}-{next(counter)}"


def _tail(result: CommandResult, lines: int = 1) -> str:
    text = [line for line in (result.stderr or result.stdout).strip().splitlines()
            if line.strip() and "--help'" not in line]  # not docker's "Run 'docker run --help'"
    return " | ".join(text[-lines:])[:300]


def list_containers(
    runner: CommandRunner,
) -> list[tuple[str, str, dict[str, str], bool | None]] | None:
    """Every container carrying an ``isobench.run`` label, as (id, name, isobench labels,
    inherited): ``inherited`` is True when its image carries that label too (isobench did not set
    it), None when the image's labels could not be read. None when Docker does not answer."""
    keys = CONTAINER_LABELS
    fmt = "\t".join(["{{.ID}}", "{{.Names}}", *(f'{{{{.Label "{k}"}}}}' for k in keys)])
    ps = runner.run(["docker", "ps", "-a", "--no-trunc", "--filter", f"label={LABEL}.run",
                     "--format", fmt], check=False, timeout=60)
    if not ps.ok:
        return None
    rows = [line.split("\t") for line in ps.stdout.splitlines() if line.strip()]
    rows = [r for r in rows if len(r) == 2 + len(keys)]
    if not rows:
        return []
    images = runner.run(["docker", "inspect", "--format", "{{.Id}} {{.Image}}",
                         *(r[0] for r in rows)], check=False, timeout=60)
    image_of = dict(line.split(" ", 1) for line in images.stdout.splitlines() if " " in line)
    wanted = sorted(set(image_of.values()))
    image_labels: dict[str, dict[str, str]] = {}
    if wanted:
        out = runner.run(["docker", "image", "inspect", "--format",
                          "{{.Id}} {{json .Config.Labels}}", *wanted], check=False, timeout=60)
        for line in out.stdout.splitlines():
            iid, _, raw = line.partition(" ")
            with contextlib.suppress(ValueError):
                image_labels[iid] = json.loads(raw) or {}
    found: list[tuple[str, str, dict[str, str], bool | None]] = []
    for row in rows:
        cid, name, values = row[0], row[1], row[2:]
        labels = {k: v for k, v in zip(keys, values, strict=True) if v}
        image = image_of.get(cid)
        inherited: bool | None = None  # unknown: never removed on a guess
        if image is not None and image in image_labels:
            inherited = f"{LABEL}.run" in image_labels[image]
        found.append((cid, name, labels, inherited))
    return found


def find_docker_proxy(host_port: int) -> int | None:
    """The pid of the docker-proxy relaying 127.0.0.1:host_port, if one runs."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if cmd and Path(cmd[0]).name == "docker-proxy" and "-host-port" in cmd:
            with contextlib.suppress(ValueError, IndexError):
                if int(cmd[cmd.index("-host-port") + 1]) == host_port:
                    return int(proc.pid)
    return None


def host_veth(pid: int) -> str | None:
    """Host-side name of the veth whose peer is the container's eth0 (container init ``pid``)."""
    try:
        peer = int(Path(f"/proc/{pid}/root/sys/class/net/eth0/iflink").read_text())
    except (OSError, ValueError):
        return None
    for iface in Path("/sys/class/net").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if int((iface / "ifindex").read_text()) == peer:
                return iface.name
    return None


def container_exit(inspect_line: str) -> str:
    """``exited with code 137 (SIGKILL)`` from ``docker inspect``'s ``Running ExitCode
    OOMKilled Error`` line (an exit code above 128 is 128 + the signal that ended it)."""
    fields = inspect_line.strip().split(maxsplit=3)
    code = int(fields[1]) if len(fields) > 1 and fields[1].lstrip("-").isdigit() else None
    if code is None:
        return f"is not running ({inspect_line.strip() or 'no state'})"
    text = f"exited with code {code}"
    if code > 128:
        with contextlib.suppress(ValueError):
            text += f" ({signal.Signals(code - 128).name})"
    if len(fields) > 2 and fields[2] == "true":
        text += ", killed for running out of memory"
    if len(fields) > 3 and fields[3]:
        text += f", error: {fields[3]}"
    return text


DOCKERD_PIDFILE = Path("/var/run/docker.pid")


def dockerd_pids() -> list[int]:
    """dockerd's pid (its descendants, containerd among them, are found by the samplers)."""
    try:
        text = DOCKERD_PIDFILE.read_text().strip()
    except OSError:
        return []
    return [int(text)] if text.isdigit() else []


class DockerRuntime(Runtime):
    """Common driver; subclasses choose the network mode and the OCI runtime."""

    kind = "container"
    artifact = "docker_image"
    bind: ClassVar[str] = "127.0.0.1"
    network_path: ClassVar[str] = "host-network"
    oci_runtime: ClassVar[str | None] = None
    helper_roles: ClassVar[dict[str, str]] = {
        "docker-proxy": "docker-proxy", "containerd-shim*": "containerd-shim"}
    """How the CPU split names the helpers outside the container's cgroup (``Instance``)."""
    process_roles: ClassVar[dict[str, str]] = {}
    """How the CPU split divides the container's own processes (``Instance``), if at all."""
    OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "security": ("default", "unconfined"),
        "limits": ("cgroup", "affinity"),
        "log_driver": ("default", "none", "json-file", "local"),
    }
    """Per-arm ``runtime_options`` (``isobench explain`` uses them; the first value is what
    users get): ``security: unconfined`` adds ``--security-opt seccomp=unconfined`` and
    ``apparmor=unconfined``; ``limits: affinity`` drops ``--cpuset-cpus``/``--memory`` and pins
    with ``taskset`` inside the container instead (the same CPUs, no cgroup limit);
    ``log_driver`` sets ``--log-driver`` (``default``: dockerd's)."""

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        for key, value in options.items():
            if key not in cls.OPTIONS:
                raise ConfigError(f"runtime {cls.name} has no runtime option '{key}'",
                                  fix=f"use some of: {', '.join(cls.OPTIONS)}")
            if value not in cls.OPTIONS[key]:
                raise ConfigError(f"runtime option {key}: {value!r} is not one of "
                                  f"{', '.join(cls.OPTIONS[key])}",
                                  fix=f"write {key}: {cls.OPTIONS[key][0]} (or leave it out)")
        return {k: v for k, v in options.items() if v != cls.OPTIONS[k][0]}

    @classmethod
    def ladder_from(cls, other: str, *, remote_client: bool = False) -> list[LadderStep] | None:
        from isobench.runtimes.docker.ladder import ladder_between

        return ladder_between(other, cls.name, remote_client) if cls.oci_runtime is None else None

    # --- checks and facts ---------------------------------------------------------------------

    def _engine(self) -> tuple[str | None, dict[str, Any]]:
        try:
            result = self.ctx.runner.run(
                ["docker", "info", "--format", "{{json .}}"], check=False, timeout=20)
        except (OSError, Exception) as exc:  # binary missing, timeout
            return f"docker CLI failed: {exc} (fix: apt-get install docker.io; {ENGINE_FIX})", {}
        if not result.ok:
            return f"Docker engine not answering: {_tail(result)} (fix: {ENGINE_FIX})", {}
        try:
            info: dict[str, Any] = json.loads(result.stdout)
        except ValueError:
            return f"docker info gave no JSON (fix: {ENGINE_FIX})", {}
        if info.get("ServerErrors"):
            return f"Docker engine not answering: {info['ServerErrors'][0]} (fix: {ENGINE_FIX})", {}
        return None, info

    @classmethod
    def host_checks(cls, probe: bool) -> list[HostCheck]:
        from isobench.runtimes.docker.checks import engine_check

        return [engine_check()]

    def shell_hint(self, instance: Instance, spec: LaunchSpec) -> str:
        container = instance.facts.get("container")
        if container:
            return f"shell: docker exec -it {container} /bin/sh"
        return super().shell_hint(instance, spec)

    def check(self) -> str | None:
        reason, _ = self._engine()
        return reason

    def facts(self) -> dict[str, Any]:
        _, info = self._engine()
        return self.engine_facts(info)

    def engine_facts(self, info: dict[str, Any]) -> dict[str, Any]:
        """:meth:`facts` from one ``docker info`` (``{}`` when the engine did not answer)."""
        return {
            "network_path": self.network_path,
            "docker_server_version": info.get("ServerVersion"),
            "docker_cgroup_driver": info.get("CgroupDriver"),
            "docker_cgroup_version": info.get("CgroupVersion"),
            "docker_storage_driver": info.get("Driver"),
            "oci_runtime": self.oci_runtime or info.get("DefaultRuntime"),
            "docker_logging_driver": info.get("LoggingDriver"),
            "docker_security_options": info.get("SecurityOptions"),
        }

    # --- launch ---------------------------------------------------------------------------------

    def network_args(self, host_port: int, listen_port: int, address: str) -> list[str]:
        """The network flags; ``address`` is ``Resources.host_address``."""
        return ["--network", "host"]

    def bind_for(self, resources: Resources) -> str:
        """The address the workload listens on inside: ``bind`` behind a bridge; on the host
        network the address it is reached on."""
        return self.bind if not self.shares_host_network else resources.host_address

    def path_for(self, resources: Resources) -> str:
        """``network_path`` for this client: the class's own with a local client; a remote one
        reaches a host-network server straight over the veth."""
        return self.network_path if resources.local else "veth-host"

    def run_argv(self, image: str, name: str, spec: LaunchSpec, resources: Resources,
                 host_port: int) -> list[str]:
        """The full ``docker run -d`` command line (``spec`` already rendered).

        Everything the spec names is passed explicitly (entrypoint and arguments, environment,
        working directory, user), so a workload's image config never leaks in unless the spec
        carries it (an image workload's spec is that config); with no ``user`` the image's own
        ``User`` applies, as in ``docker run``.
        """
        opts = self.options
        affinity = opts.get("limits") == "affinity"
        argv = ["docker", "run", "-d", "--name", name]
        for key, value in {**Owner.current(self.ctx.run_id).labels(),
                           f"{LABEL}.runtime": self.name}.items():
            argv += ["--label", f"{key}={value}"]
        if self.oci_runtime:
            argv += ["--runtime", self.oci_runtime]
        argv += self.network_args(host_port, spec.listen_port(host_port),
                                  resources.host_address)
        if opts.get("security") == "unconfined":
            argv += ["--security-opt", "seccomp=unconfined", "--security-opt",
                     "apparmor=unconfined"]
        if opts.get("log_driver"):
            argv += ["--log-driver", opts["log_driver"]]
        owner = Owner.current(self.ctx.run_id)
        volume_options = ["volume-nocopy=true", *(f"volume-label={k}={v}" for k, v in
                                                  {**owner.labels(),
                                                   f"{LABEL}.runtime": self.name}.items())]
        argv += limits_and_process_args(spec, resources, cgroup_limits=not affinity,
                                        volume_options=volume_options)
        if affinity:  # the same CPUs as every arm, without a cgroup cpuset
            argv += ["--entrypoint", "taskset", image, "-c", resources.cpuset, *spec.argv]
        else:
            argv += ["--entrypoint", spec.argv[0], image, *spec.argv[1:]]
        return argv

    def start(
        self, artifacts: Artifacts, spec: LaunchSpec, resources: Resources, host_port: int
    ) -> Instance:
        image = artifacts.built.get(self.artifact)
        if not image:
            raise StartError(f"{self.name} needs the Docker image of the rootfs",
                             fix=f"build artifacts with need={{'{self.artifact}'}}")
        ensure_port_free(host_port, resources.host_address)
        if self.options.get("limits") == "affinity" and not any(
                (artifacts.rootfs / d / "taskset").exists() for d in ("usr/bin", "bin")):
            raise StartError("runtime option limits: affinity pins with taskset, which this "
                             "rootfs lacks", fix="install util-linux in the image, or drop "
                             "the option")
        rendered = spec.render(self.bind_for(resources), spec.listen_port(host_port))
        check_paths(rendered.volumes, rendered.writable_paths)
        runner = self.ctx.runner
        for _ in range(20):
            name = _next_name(self.ctx.run_id, self.name)
            argv = self.run_argv(str(image), name, rendered, resources, host_port)
            launched = time.monotonic()
            result = runner.run(argv, check=False, timeout=120)
            if result.ok or "is already in use" not in result.stderr:
                break
        if not result.ok:  # a half-made container may hold its anonymous volumes
            runner.run(["docker", "rm", "-f", "--volumes", name], check=False, timeout=60)
            err = _tail(result)
            if "address already in use" in err or "port is already allocated" in err:
                raise StartError(f"port {host_port} on {resources.host_address} is already "
                                 f"taken ({err})",
                                 fix="pick another port or stop what listens there")
            if "unknown or invalid runtime" in err:
                raise StartError(f"Docker does not know runtime {self.oci_runtime}: {err}",
                                 fix="scripts/register-runsc.sh")
            raise StartError(f"docker run failed for {self.name}: {err}",
                             fix=f"check `docker info` ({ENGINE_FIX})")
        container_id = result.stdout.strip().splitlines()[-1]
        write_record(RECORDS, name, {"id": container_id, "runtime": self.name},
                     Owner.current(self.ctx.run_id))
        try:
            instance = self._describe(name, container_id, host_port, launched, resources)
            if rendered.volumes:
                instance.facts["volumes"] = self._volumes(container_id, rendered.volumes)
        except BaseException:
            runner.run(["docker", "rm", "-f", "--volumes", container_id], check=False,
                       timeout=60)
            raise
        return instance

    def _describe(self, name: str, container_id: str, host_port: int, launched: float,
                  resources: Resources) -> Instance:
        out = self.ctx.runner.run(
            ["docker", "inspect", "--format",
             "{{.State.Pid}} {{.HostConfig.Memory}} {{.HostConfig.CpusetCpus}}", container_id],
            check=False, timeout=30)
        fields = out.stdout.split() if out.ok else []
        pid = int(fields[0]) if fields and fields[0].isdigit() else 0
        memory = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
        pids: list[int] = []
        if pid:
            pids.append(pid)
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(pid).parent()
                if parent is not None and "containerd-shim" in parent.name():
                    pids.append(parent.pid)
        cgroups: dict[str, Path] = cgroup_dirs(pid) if pid else {}
        if not cgroups:  # the container died already: Docker's default cgroupfs layout
            cgroups = {c: CGROUP_ROOT / c / "docker" / container_id
                       for c in ("memory", "cpuacct", "cpuset", "blkio")}
        pinning = (f"taskset -c {resources.cpuset} in the container, no cgroup limits"
                   if self.options.get("limits") == "affinity"
                   else f"--cpuset-cpus {resources.cpuset}")
        facts: dict[str, Any] = {
            "network_path": self.path_for(resources),
            "pinning": pinning,
            "memory_limit": memory,
            "container": name,
            "container_id": container_id,
        }
        if self.oci_runtime:
            facts["oci_runtime"] = self.oci_runtime
        if self.options:
            facts["runtime_options"] = dict(self.options)
        instance = Instance(runtime=self.name, host_port=host_port, launched_at=launched,
                            pids=pids, cgroups=cgroups, facts=facts,
                            daemon_pids=dockerd_pids(), helper_roles=dict(self.helper_roles),
                            process_roles=dict(self.process_roles),
                            log_path=self.ctx.work_dir / "logs" / f"{name}.log",
                            handle={"name": name, "id": container_id, "pid": pid},
                            host_address=resources.host_address)
        self._network_details(instance, pid)
        return instance

    def _network_details(self, instance: Instance, pid: int) -> None:
        """Hook for bridge mode (veth, docker-proxy)."""

    def _volumes(self, container_id: str, paths: tuple[str, ...]) -> dict[str, str]:
        """What serves each volume path (``docker inspect``'s Mounts): the volume's name and
        host directory, and the filesystem holding it; StartError when one is missing or
        lies in memory."""
        out = self.ctx.runner.run(["docker", "inspect", "--format", "{{json .Mounts}}",
                                   container_id], check=False, timeout=30)
        note = (", through gVisor's gofer, which does not pass O_DIRECT on to the host "
                "(google/gvisor#3626): direct I/O inside still goes through the host's page "
                "cache" if self.oci_runtime == "runsc" else "")
        return engine_volume_facts(out.stdout if out.ok else "", paths, "docker volume", note)

    # --- liveness and stop ----------------------------------------------------------------------

    def exited(self, instance: Instance) -> str | None:
        pid = (instance.handle or {}).get("pid")
        if pid and psutil.pid_exists(pid):
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    return None
        cid = (instance.handle or {}).get("id", "")
        state = self.ctx.runner.run(
            ["docker", "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}} "
             "{{.State.OOMKilled}} {{.State.Error}}", cid], check=False, timeout=30)
        if state.ok and state.stdout.startswith("true"):
            return None
        name = instance.facts.get("container") or cid
        if not state.ok:  # removed, or the engine itself is gone (dockerd stopped)
            return f"container {name} is gone (docker inspect: {_tail(state)})"
        logs = self.ctx.runner.run(["docker", "logs", "--tail", "5", cid], check=False,
                                   timeout=30)
        detail = " | ".join((logs.stdout + logs.stderr).strip().splitlines()[-5:])
        ended = f"container {name} {container_exit(state.stdout)}"
        return ended + (f": {detail}" if detail else "")

    def stop(self, instance: Instance) -> None:
        handle = instance.handle or {}
        cid = handle.get("id") or handle.get("name")
        if not cid:
            return
        runner = self.ctx.runner
        if instance.log_path is not None:
            with contextlib.suppress(Exception):
                logs = runner.run(["docker", "logs", cid], check=False, timeout=30)
                if logs.ok:
                    instance.log_path.parent.mkdir(parents=True, exist_ok=True)
                    instance.log_path.write_text(logs.stdout + logs.stderr)
        runner.run(["docker", "rm", "-f", "--volumes", cid], check=False, timeout=120)
        if handle.get("name"):
            remove_record(RECORDS, handle["name"])

    # --- leftovers of dead runs (``isobench clean``) --------------------------------------------

    @classmethod
    def leftovers(cls, live: Live, runner: CommandRunner) -> Cleaned:
        """Remove containers whose owner died (see ``isobench.runtimes.cleanup``).

        A container is isobench's when it carries the ``isobench.run`` label and its image does
        not (so a container of an image built ``FROM`` an isobench image, or committed from an
        isobench container, is never taken for one); its owner is in its labels.
        """
        done = Cleaned()
        records = {p.stem: p for p, _ in read_records(RECORDS)}
        problem = engine_problem(runner)
        if problem is not None:
            if records or not problem.startswith("not installed"):
                done.unchecked.append(f"docker: {problem} — containers not checked")
            return done
        found = list_containers(runner)
        if found is None:
            done.unchecked.append("docker: `docker ps` failed — containers not checked")
            return done
        for cid, name, labels, inherited in found:
            what = f"container {name} ({cid[:12]})"
            if inherited is None:
                done.unchecked.append(f"{what}: its image's labels unreadable — not checked")
            if inherited is not False:
                continue
            if done.keeps(what, Owner.from_labels(labels), live):
                continue
            rm = runner.run(["docker", "rm", "-f", "--volumes", cid], check=False, timeout=120)
            if rm.ok:
                done.removed.append(f"{what} of run {labels.get(f'{LABEL}.run', '?')}")
                remove_record(RECORDS, name)
            else:
                done.unchecked.append(f"{what}: docker rm failed: {_tail(rm)}")
        names = {name for _, name, _, _ in found}
        for name in set(records) - names:  # the container is gone already
            remove_record(RECORDS, name)
        done.extend(volume_leftovers(live, runner))
        return done


def volume_leftovers(live: Live, runner: CommandRunner) -> Cleaned:
    """Remove the volumes isobench labelled (``LaunchSpec.volumes``) that no container uses
    any more and whose owner died: ``docker rm --volumes`` removes them with their container,
    so only a container removed some other way leaves one."""
    done = Cleaned()
    keys = CONTAINER_LABELS
    fmt = "\t".join(["{{.Name}}", *(f'{{{{.Label "{k}"}}}}' for k in keys)])
    ls = runner.run(["docker", "volume", "ls", "--filter", f"label={LABEL}.run", "--filter",
                     "dangling=true", "--format", fmt], check=False, timeout=60)
    if not ls.ok:
        done.unchecked.append(f"docker: `docker volume ls` failed — volumes not checked: "
                              f"{_tail(ls)}")
        return done
    for line in ls.stdout.splitlines():
        row = line.split("\t")
        if len(row) != 1 + len(keys) or not row[0]:
            continue
        labels = {k: v for k, v in zip(keys, row[1:], strict=True) if v}
        what = f"docker volume {row[0][:12]}"
        if done.keeps(what, Owner.from_labels(labels), live):
            continue
        rm = runner.run(["docker", "volume", "rm", row[0]], check=False, timeout=60)
        if rm.ok:
            done.removed.append(f"{what} of run {labels.get(f'{LABEL}.run', '?')}")
        else:
            done.unchecked.append(f"{what}: docker volume rm failed: {_tail(rm)}")
    return done


class DockerBridgeRuntime(DockerRuntime):
    """Default Docker networking: a bridge, the port published on 127.0.0.1 (via docker-proxy)."""

    name = "docker-bridge"
    description = "Docker (runc), bridge network, port published on 127.0.0.1"
    bind = "0.0.0.0"
    network_path = "docker-proxy"
    shares_host_network = False

    def network_args(self, host_port: int, listen_port: int, address: str) -> list[str]:
        return ["--network", "bridge", "--publish", f"{address}:{host_port}:{listen_port}"]

    def path_for(self, resources: Resources) -> str:
        """A remote client's packets arrive on the veth and take PREROUTING DNAT; docker-proxy
        still listens on the address but only connections made on the host itself reach it."""
        return self.network_path if resources.local else "dnat"

    def _network_details(self, instance: Instance, pid: int) -> None:
        proxy = find_docker_proxy(instance.host_port)
        if proxy is not None:  # its CPU is counted whichever path the client takes
            instance.pids.append(proxy)
            instance.facts["docker_proxy_pid"] = proxy
        elif instance.host_address == "127.0.0.1":  # userland-proxy disabled: DNAT instead
            instance.facts["network_path"] = "docker-nat"
        if pid:
            instance.net_iface = host_veth(pid)


class DockerHostRuntime(DockerRuntime):
    """Docker (runc) sharing the host's network namespace."""

    name = "docker-host"
    description = "Docker (runc), host network"
    bind = "127.0.0.1"
    network_path = "host-network"


class GvisorRuntime(DockerRuntime):
    """gVisor's runsc under Docker, host network, systrap platform (ptrace on old releases).

    The host network (``--network=host``: the sentry makes the application's socket calls on the
    host's kernel) because runsc's own network stack refuses to start on kernels from 6.11 on:
    it takes every network namespace for the root one (gVisor issue 10704), in each Debian
    release. The platform is the one ``scripts/register-runsc.sh`` registered: systrap, gVisor's
    default since mid-2023, where the release has it, else ptrace; the manifest records it
    (``gvisor_platform``) with the release (``gvisor_version``).
    """

    name = "gvisor"
    description = "gVisor (runsc, systrap platform) under Docker, host network"
    bind = "127.0.0.1"
    network_path = "host-network"
    oci_runtime = "runsc"
    platforms: ClassVar[tuple[str, ...]] = ("systrap", "ptrace")
    # runsc re-executes itself (comm "exe"): the sentry is argv[0] runsc-sandbox, the gofer
    # runsc-gofer, both in the container's cgroup; the application runs in stub processes
    # (children of the sentry, no argv; under systrap and ptrace alike), counted with the rest
    process_roles: ClassVar[dict[str, str]] = {
        "runsc-sandbox": "sentry", "runsc-gofer": "gofer", "*": "stubs-and-other"}

    def check(self) -> str | None:
        reason, info = self._engine()
        if reason:
            return reason
        if self._runsc(info) is None:
            return ("Docker has no 'runsc' runtime registered "
                    "(fix: apt-get install runsc && scripts/register-runsc.sh)")
        args = self._runsc_args(info)
        if "--network=host" not in args:
            return ("runsc is registered without --network=host, which it needs here "
                    "(fix: scripts/register-runsc.sh)")
        if self._platform(info) not in self.platforms:
            return (f"runsc is registered with platform {self._platform(info)}, not one of "
                    f"{', '.join(self.platforms)} (fix: scripts/register-runsc.sh)")
        return None

    def engine_facts(self, info: dict[str, Any]) -> dict[str, Any]:
        facts = super().engine_facts(info)
        facts["gvisor_platform"] = self._platform(info)
        facts["gvisor_version"] = self._runsc_version(info)
        return facts

    @staticmethod
    def _runsc(info: dict[str, Any]) -> dict[str, Any] | None:
        """Docker's registration of ``runsc`` (``docker info``'s ``Runtimes``), if any."""
        runsc: dict[str, Any] | None = info.get("Runtimes", {}).get("runsc")
        return runsc

    @classmethod
    def _runsc_args(cls, info: dict[str, Any]) -> list[str]:
        runsc = cls._runsc(info) or {}
        return list(runsc.get("runtimeArgs") or runsc.get("runtimeargs") or [])

    @classmethod
    def _platform(cls, info: dict[str, Any]) -> str:
        """The platform the registered arguments name; none named: runsc's default, which
        ``register-runsc.sh`` never leaves implicit (it differs between releases)."""
        named = [a.split("=", 1)[1] for a in cls._runsc_args(info) if a.startswith("--platform=")]
        return named[-1] if named else "runsc's default (unnamed)"

    def _runsc_version(self, info: dict[str, Any]) -> str | None:
        """``runsc --version``'s first line of the binary Docker runs as ``runsc`` (its figures
        depend on the release: e.g. 20221219's host network failed every iperf3 test here,
        20240729's some)."""
        path = (self._runsc(info) or {}).get("path")
        if not path:
            return None
        try:
            result = self.ctx.runner.run([path, "--version"], check=False, timeout=20)
        except (OSError, Exception):
            return None
        lines = result.stdout.strip().splitlines() if result.ok else []
        return lines[0].removeprefix("runsc version ").strip() if lines else None
