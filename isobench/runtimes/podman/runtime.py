"""Podman runtimes: rootful Podman running the very rootfs directory the native runtime uses.

``podman run --rootfs DIR`` starts a container on an unpacked directory: same bits as native, no
image and no import step. The shared rootfs is never written: each instance gets an overlay mount
with a private upper directory (``paths.state_dir()/podman/<name>/``), recorded in a state file
beside it so ``isobench clean`` can undo a killed run (:meth:`PodmanRuntime.leftovers`).

Two network modes:

* ``podman-bridge``: Podman's default bridge, the port published on 127.0.0.1 only. Traffic takes
  netavark's DNAT rules (no userland proxy); conmon holds the published port open.
* ``podman-host``: the host's network namespace.

Telemetry: the container's cgroups (``/libpod_parent/libpod-<id>`` with the cgroupfs manager) are
the instance; conmon (the container's parent, outside those cgroups) is listed in
``Instance.pids`` so the samplers count it as runtime overhead, as containerd-shim and
docker-proxy are for Docker. Podman has no daemon.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import psutil

from isobench.errors import StartError
from isobench.images.rootfs import mounts_under, remove_tree, unmount_all
from isobench.images.spec import Artifacts
from isobench.runtimes.base import Instance, Resources, Runtime
from isobench.runtimes.cgroups import CONTROLLERS, cgroup_dirs, v1_mounts
from isobench.runtimes.cleanup import Cleaned, Live, read_state_files, save_state
from isobench.runtimes.docker import host_veth
from isobench.runtimes.overlay import mount_overlay
from isobench.runtimes.podman.command import (
    CGROUP_MANAGER,
    INSPECT_STATE,
    INSTALL_FIX,
    OCI_RUNTIME,
    container_labels,
    container_ulimits,
    exit_reason,
    info_facts,
    parse_ps_json,
    podman,
    run_argv,
    stderr_tail,
)
from isobench.runtimes.volumes import check_paths, engine_volume_facts
from isobench.util import paths
from isobench.util.locks import Owner
from isobench.util.netutil import ensure_port_free
from isobench.util.paths import LABEL
from isobench.util.proc import CommandRunner
from isobench.workloads.base import LaunchSpec


def podman_state_dir() -> Path:
    path = paths.state_dir() / "podman"
    path.mkdir(parents=True, exist_ok=True)
    return path


def teardown(state: dict[str, Any], runner: CommandRunner) -> list[str]:
    """Undo everything one instance created, from its state record. Idempotent, never raises for
    "already gone": the container (first: it uses the overlay), the overlay mount, the instance
    directory (upper and work dirs) and the state file.

    Returns:
        What was removed, one short line each.
    """
    done: list[str] = []
    name = state.get("container_id") or state.get("container")
    if name:
        with contextlib.suppress(OSError):  # podman missing: then no container can exist
            if runner.run(podman("rm", "-f", "-v", "-t", "0", str(name)), check=False,
                          timeout=120).ok:
                done.append(f"removed container {state.get('container')}")
    inst_dir = Path(state["dir"]) if state.get("dir") else None
    if inst_dir is not None:
        if mounts_under(inst_dir):
            unmount_all(inst_dir, runner)
            done.append(f"unmounted {inst_dir}")
        if inst_dir.exists():
            remove_tree(inst_dir, runner)
            done.append(f"removed {inst_dir}")
    if state.get("state_file"):
        Path(state["state_file"]).unlink(missing_ok=True)
    return done


def load_states() -> list[dict[str, Any]]:
    """Every podman instance recorded in the state directory (live or left by a killed run)."""
    return read_state_files(podman_state_dir())


def conmon_listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a listening TCP socket on ``port``."""
    with contextlib.suppress(psutil.Error):
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return True
    return False


class PodmanRuntime(Runtime):
    """Common driver; subclasses choose the network mode."""

    kind = "container"
    artifact = "rootfs"
    network: ClassVar[str] = "host"
    bind: ClassVar[str] = "127.0.0.1"
    remote_path: ClassVar[str] = "veth-host"
    """``network_path`` with a remote client (a host-network server reached over the veth)."""

    # --- checks and facts ---------------------------------------------------------------------

    _info_cache: tuple[str | None, dict[str, Any]] | None = None

    def _info(self) -> tuple[str | None, dict[str, Any]]:
        """(why Podman cannot run, or None; ``podman info``), asked once per runtime object."""
        if self._info_cache is None or self._info_cache[0] is not None:
            self._info_cache = self._ask_info()
        return self._info_cache

    def _ask_info(self) -> tuple[str | None, dict[str, Any]]:
        if shutil.which("podman") is None:
            return f"podman not installed (fix: {INSTALL_FIX})", {}
        if os.geteuid() != 0:
            return "the podman runtimes run rootful Podman (fix: run isobench as root)", {}
        if shutil.which(OCI_RUNTIME) is None:
            return f"{OCI_RUNTIME} not installed (fix: apt-get install runc)", {}
        try:
            result = self.ctx.runner.run(podman("info", "--format", "json"), check=False,
                                         timeout=60)
        except Exception as exc:  # timeout
            return f"podman info failed: {exc} (fix: {INSTALL_FIX})", {}
        if not result.ok:
            return (f"podman cannot run here: {stderr_tail(result.stdout, result.stderr)} "
                    f"(fix: {INSTALL_FIX}; see `podman info`)"), {}
        try:
            info: dict[str, Any] = json.loads(result.stdout)
        except ValueError:
            return "podman info gave no JSON (fix: see `podman info`)", {}
        return None, info

    def check(self) -> str | None:
        reason, info = self._info()
        if reason:
            return reason
        if "overlay" not in Path("/proc/filesystems").read_text():
            return "overlayfs is not available (fix: modprobe overlay)"
        backend = (info.get("host") or {}).get("networkBackend")
        if self.network == "bridge" and backend != "netavark":
            return (f"podman's network backend is {backend}, not netavark "
                    "(fix: apt-get install netavark, then `podman system reset`)")
        return None

    def network_path(self, info: dict[str, Any]) -> str:
        return "host-network"

    def facts(self) -> dict[str, Any]:
        _, info = self._info()
        ulimits = container_ulimits()
        return {
            "network_path": self.network_path(info),
            **info_facts(info),
            "oci_runtime": OCI_RUNTIME,
            "cgroup_manager": CGROUP_MANAGER,
            "ulimits": ulimits.describe(),
            "pids_limit": "unlimited (as Docker)",
            "rootfs": "the shared rootfs directory (--rootfs), overlay with a private upper dir",
        }

    # --- launch ---------------------------------------------------------------------------------

    def start(
        self, artifacts: Artifacts, spec: LaunchSpec, resources: Resources, host_port: int
    ) -> Instance:
        rootfs = Path(artifacts.rootfs)
        if not rootfs.is_dir():
            raise StartError(f"{self.name} needs the rootfs directory; {rootfs} is not one",
                             fix="build artifacts with need={'rootfs'}")
        ensure_port_free(host_port, resources.host_address)
        runner = self.ctx.runner
        bind = self.bind if not self.shares_host_network else resources.host_address
        rendered = spec.render(bind, spec.listen_port(host_port))
        name = f"{LABEL}-{self.ctx.run_id}-{self.name}-{uuid.uuid4().hex[:8]}"
        inst_dir = podman_state_dir() / name
        state_file = podman_state_dir() / f"{name}.json"
        me = Owner.current(self.ctx.run_id)
        state: dict[str, Any] = {"id": name, "container": name, "dir": str(inst_dir),
                                 "state_file": str(state_file), "run_id": self.ctx.run_id,
                                 "owner": me.to_json(), "runtime": self.name}
        save_state(state)
        ulimits = container_ulimits()
        check_paths(rendered.volumes, rendered.writable_paths)
        try:
            merged = mount_overlay(rootfs, inst_dir, runner)
            argv = run_argv(name, merged, rendered, resources, network=self.network,
                            host_port=host_port, ulimits=ulimits,
                            labels=container_labels(me, self.name))
            launched = time.monotonic()
            result = runner.run(argv, check=False, timeout=120)
            if not result.ok:
                raise self._start_error(host_port, stderr_tail(result.stdout, result.stderr))
            container_id = (result.stdout.strip().splitlines() or [name])[-1]
            save_state(state, container_id=container_id)
            instance = self._describe(state, host_port, launched, resources)
            if rendered.volumes:
                out = runner.run(podman("inspect", "--format", "{{json .Mounts}}",
                                        container_id), check=False, timeout=30)
                instance.facts["volumes"] = engine_volume_facts(
                    out.stdout if out.ok else "", rendered.volumes, "podman volume")
        except BaseException as exc:
            teardown(state, runner)
            if isinstance(exc, StartError):
                raise
            if isinstance(exc, Exception):
                raise StartError(f"{self.name} start failed: {exc}",
                                 fix="run `isobench doctor`") from exc
            raise
        instance.facts.update(ulimits=ulimits.describe(), overlay=str(merged))
        return instance

    def _start_error(self, host_port: int, err: str) -> StartError:
        if "address already in use" in err or "port is already allocated" in err:
            return StartError(f"port {host_port} on 127.0.0.1 is already taken ({err})",
                              fix="pick another port or stop what listens there")
        if "rlimit" in err:
            return StartError(f"runc refused the container's resource limits: {err}",
                              fix="lower isobench's own `ulimit -n`/`ulimit -u` (the container "
                                  "gets them)")
        return StartError(f"podman run failed for {self.name}: {err}",
                          fix="check `podman info` and `isobench doctor`")

    def _describe(self, state: dict[str, Any], host_port: int, launched: float,
                  resources: Resources) -> Instance:
        container_id = str(state["container_id"])
        out = self.ctx.runner.run(
            podman("inspect", "--format",
                   "{{.State.Pid}} {{.State.ConmonPid}} {{.HostConfig.Memory}}", container_id),
            check=False, timeout=30)
        fields = out.stdout.split() if out.ok else []
        ints = [int(f) if f.isdigit() else 0 for f in fields] + [0, 0, 0]
        pid, conmon, memory = ints[0], ints[1], ints[2]
        pids = [p for p in (pid, conmon) if p]
        cgroups: dict[str, Path] = cgroup_dirs(pid) if pid else {}
        if not cgroups:  # the container died already: cgroupfs manager's layout
            mounts = v1_mounts()
            cgroups = {c: mounts[c] / "libpod_parent" / f"libpod-{container_id}"
                       for c in CONTROLLERS if c in mounts}
        _, info = self._info()
        facts: dict[str, Any] = {
            "network_path": self.network_path(info) if resources.local else self.remote_path,
            "pinning": f"--cpuset-cpus {resources.cpuset}",
            "memory_limit": memory or None,
            "container": state["container"],
            "container_id": container_id,
            "conmon_pid": conmon or None,
            "oci_runtime": OCI_RUNTIME,
            "cgroup_manager": CGROUP_MANAGER,
        }
        instance = Instance(runtime=self.name, host_port=host_port, launched_at=launched,
                            pids=pids, cgroups=cgroups, facts=facts,
                            helper_roles={"conmon": "conmon"},
                            log_path=self.ctx.work_dir / "logs" / f"{state['container']}.log",
                            handle={"state": state, "pid": pid, "conmon": conmon},
                            host_address=resources.host_address)
        self._network_details(instance, pid, conmon)
        return instance

    def _network_details(self, instance: Instance, pid: int, conmon: int) -> None:
        """Hook for bridge mode (veth, the port conmon holds)."""

    # --- liveness and stop ----------------------------------------------------------------------

    def exited(self, instance: Instance) -> str | None:
        handle = instance.handle or {}
        pid = handle.get("pid")
        if pid and psutil.pid_exists(pid):
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    return None
        cid = str(instance.facts.get("container_id") or instance.facts.get("container"))
        runner = self.ctx.runner
        state = runner.run(podman("inspect", "--format", INSPECT_STATE, cid), check=False,
                           timeout=30)
        logs = ""
        if state.ok and not state.stdout.startswith("running"):
            tail = runner.run(podman("logs", "--tail", "5", cid), check=False, timeout=30)
            logs = tail.stdout + tail.stderr
        return exit_reason(str(instance.facts.get("container")), state.ok, state.stdout.strip(),
                           logs)

    def stop(self, instance: Instance) -> None:
        handle = instance.handle or {}
        state: dict[str, Any] | None = handle.get("state")
        if not state:
            return
        runner = self.ctx.runner
        cid = state.get("container_id")
        if cid and instance.log_path is not None and not handle.get("logs_saved"):
            with contextlib.suppress(Exception):
                logs = runner.run(podman("logs", str(cid)), check=False, timeout=30)
                if logs.ok:
                    instance.log_path.parent.mkdir(parents=True, exist_ok=True)
                    instance.log_path.write_text(logs.stdout + logs.stderr)
                    handle["logs_saved"] = True
        teardown(state, runner)

    # --- leftovers of killed runs ---------------------------------------------------------------

    def shell_hint(self, instance: Instance, spec: LaunchSpec) -> str:
        container = instance.facts.get("container")
        if container:
            return f"shell: podman exec -it {container} /bin/sh"
        return super().shell_hint(instance, spec)

    @classmethod
    def leftovers(cls, live: Live, runner: CommandRunner) -> Cleaned:
        """Remove podman containers and overlay instances whose owner died (see
        ``isobench.runtimes.cleanup``); the owner is in a container's labels and in the state
        record. Never raises when podman is not installed (then only recorded overlays are
        undone)."""
        done = Cleaned()
        found = None
        with contextlib.suppress(OSError):  # not installed: no podman container can exist
            found = runner.run(podman("ps", "-a", "--filter", f"label={LABEL}.run",
                                      "--format", "json"), check=False, timeout=60)
        if found is not None and not found.ok:
            done.unchecked.append("podman: `podman ps` failed — containers not checked")
        for container in parse_ps_json(found.stdout) if found is not None and found.ok else []:
            what = f"podman container {container.name}"
            if done.keeps(what, Owner.from_labels(container.labels), live):
                continue
            if runner.run(podman("rm", "-f", "-v", "-t", "0", container.id), check=False,
                          timeout=120).ok:
                done.removed.append(f"{what} of run {container.run_id}")
            else:
                done.unchecked.append(f"{what}: podman rm failed")
        for state in load_states():
            what = f"podman instance {state.get('id')}"
            if done.keeps(what, Owner.from_json(state.get("owner")), live):
                continue
            steps = teardown(state, runner)
            done.removed.append(f"{what}: " + (", ".join(steps) or "state removed"))
        return done


class PodmanBridgeRuntime(PodmanRuntime):
    """Rootful Podman, default bridge network, port published on 127.0.0.1 (netavark DNAT)."""

    name = "podman-bridge"
    description = ("Podman (runc, cgroupfs) on the rootfs directory, bridge network, port "
                   "published on 127.0.0.1 (netavark DNAT, conmon holds the port)")
    network = "bridge"
    bind = "0.0.0.0"
    shares_host_network = False
    remote_path = "dnat"

    def network_path(self, info: dict[str, Any]) -> str:
        backend = (info.get("host") or {}).get("networkBackend") or "netavark"
        return f"{backend}-dnat"

    def _network_details(self, instance: Instance, pid: int, conmon: int) -> None:
        if conmon and conmon_listens(conmon, instance.host_port):
            instance.facts["port_holder"] = "conmon"
        if pid:
            instance.net_iface = host_veth(pid)


class PodmanHostRuntime(PodmanRuntime):
    """Rootful Podman sharing the host's network namespace."""

    name = "podman-host"
    description = "Podman (runc, cgroupfs) on the rootfs directory, host network"
    network = "host"
    bind = "127.0.0.1"
