"""The native runtime: the workload as a bare process, chrooted into the same rootfs.

No namespaces. Writes go to an overlayfs upper layer in a per-instance directory (the cached rootfs
is never touched); /proc and /dev are mounted in; the process is pinned with taskset and limited
by a cgroup v1 memory group (plus cpuacct, cpuset and blkio groups for telemetry). A volume
(``LaunchSpec.volumes``) is a bind mount of a fresh host directory on disk (under the instance
directory, or ``/var/tmp/isobench-volumes`` when that lies on a tmpfs). Every instance
is recorded in ``paths.state_dir()/native/<id>.json`` so ``isobench clean`` can undo a killed run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from isobench.errors import StartError
from isobench.images.rootfs import mounts_under, remove_tree, unmount_all
from isobench.images.spec import Artifacts
from isobench.runtimes.base import Instance, Resources, Runtime
from isobench.runtimes.cgroups import create_instance_cgroups, kill_cgroup_procs, remove_cgroups
from isobench.runtimes.cleanup import Cleaned, Live, read_state_files, save_state
from isobench.runtimes.overlay import mount_overlay
from isobench.runtimes.volumes import check_paths, disk_dir, require_disk
from isobench.util import paths
from isobench.util.locks import Owner
from isobench.util.netutil import ensure_port_free
from isobench.util.proc import CommandRunner
from isobench.workloads.base import LaunchSpec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH Docker gives a container whose image sets none; the same for native."""

_COUNTER = itertools.count()


def native_state_dir() -> Path:
    path = paths.state_dir() / "native"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_user(rootfs: Path, user: str) -> tuple[int, int]:
    """``name``, ``uid``, ``name:group`` or ``uid:gid`` → (uid, gid), looked up in the rootfs
    (as Docker resolves ``--user`` inside the image)."""
    name, _, group = user.partition(":")

    def table(file: str) -> dict[str, list[str]]:
        rows: dict[str, list[str]] = {}
        with contextlib.suppress(OSError):
            for line in (rootfs / "etc" / file).read_text().splitlines():
                parts = line.split(":")
                if len(parts) >= 4:
                    rows[parts[0]] = parts
        return rows

    passwd, groups = table("passwd"), table("group")
    if name.isdigit():
        uid = int(name)
        gid = next((int(p[3]) for p in passwd.values() if p[2] == name), uid)
    elif name in passwd:
        uid, gid = int(passwd[name][2]), int(passwd[name][3])
    else:
        raise StartError(f"user '{name}' does not exist in the rootfs",
                         fix="create it in a build command or use a numeric uid")
    if group:
        if group.isdigit():
            gid = int(group)
        elif group in groups:
            gid = int(groups[group][2])
        else:
            raise StartError(f"group '{group}' does not exist in the rootfs",
                             fix="create it in a build command or use a numeric gid")
    return uid, gid


def launch_argv(merged: Path, spec: LaunchSpec, cpuset: str, uid_gid: tuple[int, int] | None,
                procs_files: list[Path]) -> list[str]:
    """The command line: join the cgroups, pin, chroot, clean env and cwd (``env -i --chdir``).

    Every step execs the next, so the pid returned by Popen is the workload's pid.

    The outer host shell writes its own pid into the instance's ``cgroup.procs`` before exec'ing,
    so no child can escape the groups.
    """
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    chroot = ["chroot"]
    if uid_gid is not None:
        chroot += [f"--userspec={uid_gid[0]}:{uid_gid[1]}", f"--groups={uid_gid[1]}"]
    join = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f"; shift; done; shift; exec "$@"'
    return [
        "/bin/sh", "-c", join, "isobench-native", *map(str, procs_files), "--",
        "taskset", "-c", cpuset, *chroot, str(merged),
        "/usr/bin/env", "-i", f"--chdir={spec.workdir}",
        *(f"{k}={v}" for k, v in sorted(env.items())), *spec.argv,
    ]


def teardown_native(state: dict[str, Any], runner: CommandRunner) -> list[str]:
    """Undo everything one native instance created, from its state record. Idempotent.

    Returns:
        What was removed, one short line each.
    """
    done: list[str] = []
    cgroup_dirs = [Path(p) for p in state.get("cgroups", {}).values()]
    pid, created = state.get("pid"), state.get("pid_create_time")
    if pid:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(int(pid))
            if created is None or abs(proc.create_time() - float(created)) < 0.5:
                tree = [proc, *proc.children(recursive=True)]
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        p.send_signal(signal.SIGKILL)
                psutil.wait_procs(tree, timeout=5)
                done.append(f"killed pid {pid}")
    if cgroup_dirs:
        kill_cgroup_procs(cgroup_dirs)
    inst_dir = Path(state["dir"]) if state.get("dir") else None
    if inst_dir is not None:
        if mounts_under(inst_dir):
            unmount_all(inst_dir, runner)
            done.append(f"unmounted {inst_dir}")
        left = remove_cgroups(cgroup_dirs)
        if len(left) < len(cgroup_dirs):
            done.append(f"removed {len(cgroup_dirs) - len(left)} cgroups")
        if inst_dir.exists():
            remove_tree(inst_dir, runner)
            done.append(f"removed {inst_dir}")
    else:
        remove_cgroups(cgroup_dirs)
    for raw in state.get("volume_dirs", []):  # those outside the instance directory (/var/tmp)
        vol = Path(raw)
        if (inst_dir is None or inst_dir not in vol.parents) and vol.exists():
            remove_tree(vol, runner)
            done.append(f"removed volume {vol}")
    if state.get("state_file"):
        Path(state["state_file"]).unlink(missing_ok=True)
    return done


class NativeRuntime(Runtime):
    """The workload as a process chrooted into the rootfs (no namespaces), pinned and limited."""

    name = "native"
    kind = "process"
    artifact = "rootfs"
    description = "bare process chrooted into the rootfs (overlay for writes), taskset + cgroup v1"

    def shell_hint(self, instance: Instance, spec: LaunchSpec) -> str:
        overlay = instance.facts.get("overlay")
        if not overlay:
            return super().shell_hint(instance, spec)
        user = f" --userspec={spec.user}" if spec.user else ""
        return f"shell: chroot{user} {overlay} /bin/sh   (app cwd: {spec.workdir})"

    def check(self) -> str | None:
        if os.geteuid() != 0:
            return "native needs root (chroot, overlay mounts, cgroups) (fix: run as root)"
        if "overlay" not in Path("/proc/filesystems").read_text():
            return "overlayfs is not available (fix: modprobe overlay)"
        return None

    def facts(self) -> dict[str, Any]:
        return {"network_path": "loopback", "namespaces": "none"}

    def start(
        self, artifacts: Artifacts, spec: LaunchSpec, resources: Resources, host_port: int
    ) -> Instance:
        ensure_port_free(host_port, resources.host_address)
        runner = self.ctx.runner
        rendered = spec.render(resources.host_address, host_port)
        inst_id = f"{self.ctx.run_id}-{next(_COUNTER)}-{uuid.uuid4().hex[:6]}"
        inst_dir = native_state_dir() / inst_id
        state_file = native_state_dir() / f"{inst_id}.json"
        state: dict[str, Any] = {"id": inst_id, "dir": str(inst_dir), "state_file": str(state_file),
                                 "cgroups": {}, "run_id": self.ctx.run_id,
                                 "cgroup_name": f"isobench-{inst_id}",
                                 "owner": Owner.current(self.ctx.run_id).to_json()}
        save_state(state)
        log_path = self.ctx.work_dir / "logs" / f"native-{inst_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        check_paths(rendered.volumes, rendered.writable_paths)
        try:
            merged = self._mount(artifacts.rootfs, inst_dir, rendered, runner)
            volumes = self._mount_volumes(merged, inst_dir, rendered, state, runner)
            groups = create_instance_cgroups(state["cgroup_name"], resources.cpuset,
                                             resources.memory_mb * 1024 * 1024,
                                             resources.cpu_quota)
            save_state(state, cgroups={k: str(v) for k, v in groups.dirs.items()})
            uid_gid = resolve_user(artifacts.rootfs, rendered.user) if rendered.user else None
            argv = launch_argv(merged, rendered, resources.cpuset, uid_gid, groups.procs_files())
            launched = time.monotonic()
            with log_path.open("ab") as log:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        env={"PATH": DEFAULT_PATH}, start_new_session=True)
            state["pid"] = proc.pid
            with contextlib.suppress(psutil.Error):
                state["pid_create_time"] = psutil.Process(proc.pid).create_time()
            save_state(state)
        except BaseException as exc:
            teardown_native(state, runner)
            if isinstance(exc, StartError):
                raise
            if isinstance(exc, Exception):
                raise StartError(f"native start failed: {exc}",
                                 fix="run `isobench doctor`; see the log " + str(log_path)) from exc
            raise
        limit = groups.memory_limit
        facts: dict[str, Any] = {
            "network_path": "loopback" if resources.local else "veth-host",
            "pinning": f"taskset -c {resources.cpuset}"
            + (" + cpuset cgroup" if "cpuset" in groups.dirs else ""),
            "memory_limit": limit if limit is not None else
            f"none (cgroups not writable: {'; '.join(groups.problems)})",
            "instance_id": inst_id,
            "overlay": str(merged),
        }
        if volumes:
            facts["volumes"] = volumes
        if groups.problems:
            facts["cgroup_problems"] = groups.problems
        return Instance(
            runtime=self.name, host_port=host_port, launched_at=launched, pids=[proc.pid],
            cgroups=dict(groups.dirs), net_iface=None, facts=facts, log_path=log_path,
            handle={"proc": proc, "state": state}, host_address=resources.host_address,
        )

    def _mount(self, rootfs: Path, inst_dir: Path, spec: LaunchSpec,
               runner: CommandRunner) -> Path:
        merged = mount_overlay(rootfs, inst_dir, runner)
        runner.run(["mount", "-t", "proc", "proc", str(merged / "proc")], timeout=30)
        runner.run(["mount", "--bind", "/dev", str(merged / "dev")], timeout=30)
        for path in spec.writable_paths:
            target = merged / path.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            runner.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "isobench-tmpfs", str(target)],
                       timeout=30)
        return merged

    def _mount_volumes(self, merged: Path, inst_dir: Path, spec: LaunchSpec,
                       state: dict[str, Any], runner: CommandRunner) -> dict[str, str]:
        """Bind-mount an empty host directory on disk onto each of ``spec.volumes``: under
        the instance directory when that is on disk, else under ``/var/tmp`` (``/run`` is a
        tmpfs on most hosts). Each directory is in the state record before it exists, so
        teardown removes it; what served each path, one line each."""
        served: dict[str, str] = {}
        for i, path in enumerate(spec.volumes):
            base = disk_dir(inst_dir / "volumes", state["id"])
            source = base / f"v{i}"
            if str(base) not in state.setdefault("volume_dirs", []):
                state["volume_dirs"].append(str(base))
                save_state(state)
            source.mkdir(parents=True, mode=0o755)
            source.chmod(0o755)
            fs = require_disk(source, "volume directory")
            target = merged / path.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            runner.run(["mount", "--bind", str(source), str(target)], timeout=30)
            served[path] = f"bind mount of {source} ({fs.describe()})"
        return served

    def exited(self, instance: Instance) -> str | None:
        proc: subprocess.Popen[bytes] | None = (instance.handle or {}).get("proc")
        if proc is None or proc.poll() is None:
            return None
        tail = ""
        if instance.log_path and instance.log_path.exists():
            lines = instance.log_path.read_text(errors="replace").strip().splitlines()
            tail = " | ".join(lines[-5:])
        code = proc.returncode
        if code < 0:
            try:
                what = f"was killed by signal {-code} ({signal.Signals(-code).name})"
            except ValueError:
                what = f"was killed by signal {-code}"
        else:
            what = f"exited with code {code}"
        return f"native process {proc.pid} {what}" + (f": {tail}" if tail else "")

    def stop(self, instance: Instance) -> None:
        handle = instance.handle or {}
        proc: subprocess.Popen[bytes] | None = handle.get("proc")
        state: dict[str, Any] | None = handle.get("state")
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if state is not None:
            teardown_native(state, self.ctx.runner)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    @classmethod
    def leftovers(cls, live: Live, runner: CommandRunner) -> Cleaned:
        """Tear down native instances whose owner died (see ``isobench.runtimes.cleanup``):
        the workload's process tree, its cgroups, its mounts and its directory."""
        done = Cleaned()
        for state in load_states():
            what = f"native instance {state.get('id')}"
            if done.keeps(what, Owner.from_json(state.get("owner")), live):
                continue
            steps = teardown_native(state, runner)
            left = Path(state["dir"]) if state.get("dir") else None
            if left is not None and left.exists():
                done.unchecked.append(f"{what}: could not remove {left} (mounts left?)")
            else:
                done.removed.append(f"{what} of run {state.get('run_id', '?')}: "
                                    + (", ".join(steps) or "state removed"))
        return done


def load_states() -> list[dict[str, Any]]:
    """Every native instance recorded in the state directory (live or left by a killed run)."""
    return read_state_files(native_state_dir())
