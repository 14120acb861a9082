"""The VM runtime: the rootfs disk booted read-only by QEMU, reached on a tap over its own veth.

KVM is used only when :func:`probe_kvm` saw a guest boot under it; otherwise QEMU runs under TCG
(``-accel tcg -cpu max``), ``emulated`` is True and every trial says so. The whole QEMU process
(all threads) is pinned to ``resources.cpus`` with taskset. The launch spec reaches the guest init
(``isobench/runtimes/qemu/guest/init.sh``) through fw_cfg as a small shell fragment. A volume
(``LaunchSpec.volumes``) is a second virtio disk: a sparse raw file of ``volume_mb`` MiB in the
VM's work directory, made ext4 on the host, attached read-write with ``cache=none`` and mounted
by the guest init at its path (found by its serial); removed at ``stop`` and by ``leftovers``.

The network (:mod:`isobench.runtimes.qemu.tapnet`): QEMU runs in a namespace of isobench's own,
its virtio-net NIC on a tap bridged to a veth whose host end has the /30's first address; the
guest has the second. Clients (the load, readiness probes, the telemetry agent on port 9100)
reach the guest's address directly: ``Instance.host_address`` is it and ``host_port`` the
guest's port. Nothing listens on the host for a VM.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isobench.errors import StartError
from isobench.images.spec import Artifacts
from isobench.results import atomic_write_json
from isobench.runtimes.base import HostCheck, Instance, Resources, Runtime, RuntimeContext
from isobench.runtimes.cleanup import Cleaned, Live
from isobench.runtimes.qemu.image import VmArtifacts
from isobench.runtimes.qemu.kvm_probe import ProbeResult, cached_probe, probe_kvm
from isobench.runtimes.qemu.tapnet import VmNet, open_vm_net
from isobench.runtimes.volumes import FALLBACK_ROOT, check_paths, disk_dir, require_disk
from isobench.util import paths
from isobench.util.clientnet import NETNS_PREFIX, teardown
from isobench.util.locks import Owner
from isobench.util.proc import CommandRunner, SubprocessRunner
from isobench.workloads.base import LaunchSpec

QEMU = "qemu-system-x86_64"
TUN = "/dev/net/tun"
NETWORK_PATH = "tap-bridge"
"""``facts["network_path"]``: host → veth → bridge → tap → virtio-net (:mod:`.tapnet`)."""
AGENT_GUEST_PORT = 9100
GUEST_BIN = "/run/isobench/bin"
EXIT_MARK = "isobench: workload exited rc="
PANIC_MARK = "Kernel panic"
CMDLINE = "console=ttyS0 panic=-1 quiet"

Prober = Callable[[Path, Path], ProbeResult]


def vm_dir() -> Path:
    """``paths.state_dir()/vm``: one JSON record per running VM, for ``clean_vms``."""
    path = paths.state_dir() / "vm"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class VmRecord:
    """One starting VM's record, ``vm_dir()/<vm_id>.json``: what ``clean_vms`` reads to remove
    it. Written before anything else is made, and again (atomically: its temporary name does not
    match ``*.json``, so ``clean`` never reads half a record) each time the start makes more:
    the network, the volume directory, QEMU's pid."""

    vm_id: str
    data: dict[str, Any]

    @property
    def path(self) -> Path:
        return vm_dir() / f"{self.vm_id}.json"

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def work(self) -> Path:
        return Path(self.data["work_dir"])

    def save(self, **more: Any) -> None:
        """Add ``more`` to the record and write it."""
        self.data.update(more)
        atomic_write_json(self.path, self.data)


def render_launch(spec: LaunchSpec, guest_ip: str, gateway: str = "") -> str:
    """The guest init's launch fragment for an already rendered spec (shell-quoted assignments);
    ``guest_ip`` is ``ADDR/PREFIXLEN`` for eth0, ``gateway`` the default route's (none if empty)."""
    env = [f"{k}={v}" for k, v in spec.env.items()]
    cmd = " ".join(
        [
            "cd", shlex.quote(spec.workdir), "&&", "exec", f"{GUEST_BIN}/env", "-i",
            *(shlex.quote(e) for e in env), *(shlex.quote(a) for a in spec.argv),
        ]
    )  # fmt: skip
    for path in spec.writable_paths:
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise StartError(f"writable path {path!r} must be absolute, without spaces")
    check_paths(spec.volumes, spec.writable_paths)
    lines = {
        "ISB_CMD": cmd,
        "ISB_USER": spec.user or "",
        "ISB_WRITABLE": " ".join(spec.writable_paths),
        "ISB_VOLUMES": " ".join(f"{volume_serial(i)}:{p}" for i, p in enumerate(spec.volumes)),
        "ISB_IP": guest_ip,
        "ISB_GW": gateway,
    }
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in lines.items())


def volume_serial(index: int) -> str:
    """The virtio-blk serial of the disk serving volume ``index``; the guest init finds the
    disk by it (``/sys/block/vdX/serial``), whatever letter the kernel gave it."""
    return f"isbvol{index}"


def volume_image_argv(image: Path, index: int) -> list[str]:
    """``mkfs.ext4`` of a volume's disk image on the host: quiet, forced (a regular file), every
    inode table and the journal written now (``lazy_*_init=0``: no ext4lazyinit thread writing
    in the guest while it is measured), no reserved blocks."""
    return ["mkfs.ext4", "-q", "-F", "-m", "0", "-L", volume_serial(index),
            "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", str(image)]


def make_volume_images(directory: Path, count: int, size_mb: int,
                       runner: CommandRunner) -> list[Path]:
    """``count`` sparse raw files of ``size_mb`` MiB in ``directory``, each made ext4."""
    images = []
    for i in range(count):
        image = directory / f"vol{i}.img"
        with open(image, "wb") as fh:
            fh.truncate(size_mb * 2**20)
        images.append(image)
        runner.run(volume_image_argv(image, i), timeout=300)
    return images


def remove_volume_images(directory: Path | None) -> None:
    """Remove the volume images in ``directory`` (a VM's work directory or its fallback on
    disk); the fallback directory itself too."""
    if directory is None:
        return
    for image in directory.glob("vol*.img"):
        image.unlink(missing_ok=True)
    if FALLBACK_ROOT in directory.parents:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class VmConfig:
    """Everything the QEMU command line depends on."""

    vm: VmArtifacts
    accel: str  # "kvm" or "tcg"
    machine: str  # "q35" or "microvm"
    memory_mb: int
    vcpus: int
    netdev: str
    """``-netdev`` value (:meth:`tapnet.VmNet.netdev`)."""
    mac: str
    launch_file: Path
    serial_log: Path
    pidfile: Path
    name: str
    volumes: tuple[Path, ...] = ()
    """Raw ext4 images, one per ``LaunchSpec.volumes`` entry: extra virtio disks (read-write,
    ``cache=none``: the guest's direct I/O reaches the host's disk, not its page cache)."""


THREAD_ROLES = {"CPU */KVM": "vcpu", "CPU */TCG": "vcpu", "*": "io-main"}
"""QEMU's threads for the CPU split: the vCPU threads (named by ``-name ...,debug-threads=on``)
and the rest (main loop, I/O, RCU, workers)."""


def qemu_argv(cfg: VmConfig) -> list[str]:
    """The ``qemu-system-x86_64`` argv for one VM (without the taskset prefix)."""
    kvm = cfg.accel == "kvm"
    cpu = ["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", "tcg", "-cpu", "max"]
    # the launch spec (command, environment: possibly secrets) goes only through fw_cfg, a file
    # readable by root alone; never on the kernel command line, which every local user can read
    # in `ps`
    append = CMDLINE
    if cfg.machine == "microvm":
        devices = [
            "-drive", f"id=d0,file={cfg.vm.disk},format=raw,if=none,readonly=on",
            "-device", "virtio-blk-device,drive=d0",
            "-netdev", cfg.netdev, "-device", f"virtio-net-device,netdev=n0,mac={cfg.mac}",
        ]  # fmt: skip
        machine = ["-M", "microvm"]
        blk = "virtio-blk-device"
    else:
        devices = [
            "-drive", f"file={cfg.vm.disk},format=raw,if=virtio,readonly=on",
            "-netdev", cfg.netdev, "-device", f"virtio-net-pci,netdev=n0,mac={cfg.mac}",
        ]  # fmt: skip
        machine = ["-M", cfg.machine]
        blk = "virtio-blk-pci"
    for i, image in enumerate(cfg.volumes):
        devices += [
            "-drive", f"id=v{i},file={image},format=raw,if=none,cache=none",
            "-device", f"{blk},drive=v{i},serial={volume_serial(i)}",
        ]  # fmt: skip
    return [
        QEMU, "-name", f"{cfg.name},debug-threads=on", *machine, *cpu,
        "-nodefaults", "-display", "none", "-no-reboot",
        "-m", str(cfg.memory_mb), "-smp", str(cfg.vcpus),
        "-kernel", str(cfg.vm.kernel), "-initrd", str(cfg.vm.initrd), "-append", append,
        *devices,
        "-fw_cfg", f"name=opt/isobench/launch,file={cfg.launch_file}",
        "-serial", f"file:{cfg.serial_log}", "-monitor", "none", "-pidfile", str(cfg.pidfile),
    ]  # fmt: skip


def tail(path: Path | None, nbytes: int = 4096) -> str:
    """The last ``nbytes`` of a log file, as text ('' if unreadable)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - nbytes))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _excerpt(text: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)


def _alive(pid: int, marker: str) -> bool:
    """True if ``pid`` runs and its command line contains ``marker`` (guards against pid reuse)."""
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _terminate(pid: int, marker: str, grace: float = 3.0) -> None:
    """SIGTERM (the root disk is read-only, so this is safe), wait, then SIGKILL."""
    if not _alive(pid, marker):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid, marker) or _zombie(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return ") Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


def _remove_vm(record: Path, data: dict[str, Any], runner: CommandRunner) -> bool:
    """Kill one recorded VM (if it still runs), remove its namespace, work directory and record;
    True if a running VM was killed."""
    killed = False
    with contextlib.suppress(KeyError, ValueError, TypeError):
        pid, name = int(data["pid"]), str(data["name"])
        if _alive(pid, name):
            _terminate(pid, name)
            killed = True
    net = data.get("net")
    if isinstance(net, dict) and str(net.get("netns", "")).startswith(NETNS_PREFIX):
        teardown(net, runner)
    volume_dir = data.get("volume_dir")
    if isinstance(volume_dir, str) and Path(volume_dir).name.startswith("vm-"):
        remove_volume_images(Path(volume_dir))
    work = data.get("work_dir")
    if isinstance(work, str) and Path(work).name.startswith("vm-"):
        shutil.rmtree(work, ignore_errors=True)
    record.unlink(missing_ok=True)
    return killed


def _vm_records() -> list[tuple[Path, dict[str, Any]]]:
    found: list[tuple[Path, dict[str, Any]]] = []
    for record in sorted(vm_dir().glob("*.json")):
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            data = {}
        found.append((record, data if isinstance(data, dict) else {}))
    return found


def clean_vms(runner: CommandRunner | None = None) -> list[str]:
    """Kill every VM recorded under ``state_dir()/vm``, whoever owns it; the ids of those that
    still ran. (``isobench clean`` uses ``QemuRuntime.leftovers``, which spares live runs.)"""
    runner = runner or SubprocessRunner()
    return [record.stem for record, data in _vm_records() if _remove_vm(record, data, runner)]


class QemuRuntime(Runtime):
    """The workload in a QEMU VM (KVM when a probe boot proves it works, TCG otherwise)."""

    name = "vm"
    kind = "vm"
    typical_start_s = 8.0  # a boot under TCG; ~2 s with KVM
    artifact = "vm"
    description = "QEMU VM from the same rootfs (ext4 disk, read-only), virtio-net on a tap"
    shares_host_network = False
    remote_client_refused = ("the VM is reached on its own veth from the host (a bridged "
                             "virtio-net path already)")

    def __init__(
        self,
        ctx: RuntimeContext | None = None,
        *,
        machine: str = "q35",
        prober: Prober | None = None,
    ) -> None:
        super().__init__(ctx)
        self.machine = machine
        self._prober: Prober = prober or (lambda k, i: probe_kvm(k, i))
        self._probe: ProbeResult | None = None
        self._version: str | None = None

    # -- host level -------------------------------------------------------------------------
    @classmethod
    def host_checks(cls, probe: bool) -> list[HostCheck]:
        from isobench.runtimes.qemu.checks import kvm_check, qemu_check

        return [qemu_check(), kvm_check(probe)]

    def shell_hint(self, instance: Instance, spec: LaunchSpec) -> str:
        return f"console: tail -f {instance.log_path}   (the VM's serial console; no shell)"

    def check(self) -> str | None:
        if shutil.which(QEMU) is None:
            return f"{QEMU} not installed (fix: apt-get install qemu-system-x86)"
        if not Path(TUN).exists():
            return f"no {TUN} for the VM's tap (fix: modprobe tun)"
        if shutil.which("ip") is None:
            return "no `ip` command for the VM's namespace (fix: apt-get install iproute2)"
        return None

    def choose_accel(self, vm: VmArtifacts) -> str:
        """``kvm`` if a probe boot of this kernel succeeded under KVM, else ``tcg``."""
        if self._probe is None:
            self._probe = self._prober(vm.kernel, vm.initrd)
        return "kvm" if self._probe.usable else "tcg"

    def _known_probe(self) -> ProbeResult | None:
        return self._probe or cached_probe()

    @property
    def accel(self) -> str:
        probe = self._known_probe()
        return "kvm" if probe is not None and probe.usable else "tcg"

    @property
    def emulated(self) -> bool:
        return self.accel == "tcg"

    def qemu_version(self) -> str:
        """``7.2.9`` style version of the installed QEMU (asked once per runtime object)."""
        if self._version is None:
            if shutil.which(QEMU) is None:
                return "not installed"
            out = self.ctx.runner.run([QEMU, "--version"], check=False, timeout=10).stdout
            first = out.splitlines()[0] if out else ""
            version = first.replace("QEMU emulator version", "").strip()
            self._version = version.split()[0] if version else "unknown"
        return self._version

    def facts(self) -> dict[str, Any]:
        probe = self._known_probe()
        return {
            "accel": self.accel,
            "emulated": "true" if self.emulated else "false",
            "kvm_probe_reason": probe.reason if probe else "not probed yet",
            "qemu_version": self.qemu_version(),
            "machine": self.machine,
            "network_path": NETWORK_PATH,
        }

    # -- lifecycle --------------------------------------------------------------------------
    def start(
        self, artifacts: Artifacts, spec: LaunchSpec, resources: Resources, host_port: int
    ) -> Instance:
        vm = artifacts.built.get(self.artifact)
        if not isinstance(vm, VmArtifacts):
            raise StartError("no VM artifacts were built", fix="build images with the vm artifact")
        if not resources.local:
            raise StartError(f"the VM cannot be reached from a remote client: "
                             f"{self.remote_client_refused}", fix="use --client local")
        accel = self.choose_accel(vm)
        vm_id = uuid.uuid4().hex[:12]
        name = f"{paths.LABEL}-vm-{vm_id}"
        work = self.ctx.work_dir / self.ctx.run_id / f"vm-{vm_id}"
        work.mkdir(parents=True, exist_ok=True)
        owner = Owner.current(self.ctx.run_id)
        record = VmRecord(vm_id, {"pid": None, "name": name, "work_dir": str(work),
                                  "started": time.time(), "run_id": self.ctx.run_id,
                                  "owner": owner.to_json()})
        record.save()  # first: `clean` finds whatever comes next
        try:
            net = open_vm_net(self.ctx.runner, self.ctx.run_id)
            record.save(net=net.record)
            instance = self._launch(vm, accel, record, net, spec, resources, host_port)
        except BaseException:
            _remove_vm(record.path, record.data, self.ctx.runner)
            raise
        return instance

    def _launch(self, vm: VmArtifacts, accel: str, record: VmRecord, net: VmNet,
                spec: LaunchSpec, resources: Resources, host_port: int) -> Instance:
        """Write the launch spec, make the volumes and start QEMU in ``net``'s namespace (what
        fails here is removed by :meth:`start`)."""
        vm_id, name, work = record.vm_id, record.name, record.work
        guest_port = spec.listen_port(host_port)
        rendered = spec.render("0.0.0.0", guest_port)
        launch_file = work / "launch.sh"
        launch_file.touch(mode=0o600)
        launch_file.chmod(0o600)
        launch_file.write_text(render_launch(rendered, f"{net.guest_address}/{net.prefixlen}"))
        volumes: tuple[Path, ...] = ()
        if spec.volumes:
            vol_dir = disk_dir(work, f"vm-{vm_id}")
            record.save(volume_dir=str(vol_dir))
            vol_dir.mkdir(parents=True, exist_ok=True)
            fs = require_disk(vol_dir, "VM volume directory")
            volumes = tuple(make_volume_images(vol_dir, len(spec.volumes), spec.volume_mb,
                                               self.ctx.runner))
        cfg = VmConfig(
            vm=vm, accel=accel, machine=self.machine,
            memory_mb=resources.memory_mb, vcpus=resources.vcpus,
            netdev=net.netdev(), mac=net.mac,
            launch_file=launch_file, serial_log=work / "serial.log",
            pidfile=work / "qemu.pid", name=name, volumes=volumes,
        )  # fmt: skip
        argv = [*net.prefix, "taskset", "-c", resources.cpuset, *qemu_argv(cfg)]
        cfg.serial_log.touch()
        launched_at = time.monotonic()
        try:
            with open(work / "qemu.stderr", "wb") as err:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
        except OSError as exc:
            raise StartError(
                f"cannot start {QEMU}: {exc}", fix="apt-get install qemu-system-x86"
            ) from exc
        record.save(pid=proc.pid)
        facts = self.facts() | net.facts() | {
            "accel": accel,
            "emulated": "true" if accel == "tcg" else "false",
            "pinning": f"qemu (all threads) on cpus {resources.cpuset}",
            "vm_id": vm_id,
        }
        if volumes:
            facts["volumes"] = {
                path: (f"virtio-blk disk {image} (serial {volume_serial(i)}, ext4 made on "
                       f"the host; sparse {spec.volume_mb} MiB raw file on {fs.describe()}, "
                       "cache=none)")
                for i, (path, image) in enumerate(zip(spec.volumes, volumes, strict=True))}
        return Instance(
            runtime=self.name, host_port=guest_port, launched_at=launched_at,
            pids=[proc.pid], vmm_pid=proc.pid, agent_port=AGENT_GUEST_PORT,
            net_iface=net.host_iface,
            thread_roles=dict(THREAD_ROLES), facts=facts, log_path=cfg.serial_log,
            handle={"proc": proc, "id": vm_id, "name": name, "work": work, "net": net,
                    "volume_dir": Path(record.data["volume_dir"]) if volumes else None},
            host_address=net.guest_address,
        )  # fmt: skip

    def exited(self, instance: Instance) -> str | None:
        handle = instance.handle or {}
        proc: subprocess.Popen[bytes] | None = handle.get("proc")
        console = tail(instance.log_path)
        if proc is not None and proc.poll() is not None:
            err = tail(handle["work"] / "qemu.stderr", 1024) if "work" in handle else ""
            code = proc.returncode
            what = f"exited with code {code}"
            if code < 0:
                with contextlib.suppress(ValueError):
                    what = f"was killed by signal {-code} ({signal.Signals(-code).name})"
            return f"qemu {proc.pid} {what}: {_excerpt(err + chr(10) + console)}"
        if EXIT_MARK in console:
            return f"workload exited in the guest: {_excerpt(console)}"
        if PANIC_MARK in console:
            return f"guest kernel panic: {_excerpt(console)}"
        return None

    def stop(self, instance: Instance) -> None:
        handle = instance.handle or {}
        proc: subprocess.Popen[bytes] | None = handle.get("proc")
        name = str(handle.get("name", ""))
        if proc is not None:
            if proc.poll() is None:
                _terminate(proc.pid, name)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        work: Path | None = handle.get("work")
        net: VmNet | None = handle.get("net")
        if net is not None:
            net.close(self.ctx.runner)
        remove_volume_images(handle.get("volume_dir"))
        if work is not None:
            for temp in ("launch.sh", "qemu.pid"):
                (work / temp).unlink(missing_ok=True)
        vm_id = handle.get("id")
        if vm_id:
            (vm_dir() / f"{vm_id}.json").unlink(missing_ok=True)

    @classmethod
    def leftovers(cls, live: Live, runner: CommandRunner) -> Cleaned:
        """Kill VMs whose owner died and remove their work directories (see
        ``isobench.runtimes.cleanup``)."""
        done = Cleaned()
        for record, data in _vm_records():
            what = f"VM {record.stem}"
            if done.keeps(what, Owner.from_json(data.get("owner")), live):
                continue
            killed = _remove_vm(record, data, runner)
            done.removed.append(f"{what} of run {data.get('run_id', '?')}"
                                + (" (killed qemu)" if killed else " (record)"))
        return done
