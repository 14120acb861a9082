"""The runtime contract.

Lifecycle, called by a trial (run/trial.py) in this order for every trial::

    runtime = RuntimeClass(ctx)
    reason = runtime.check()                     # None, or why it cannot run here (doctor uses it)
    instance = runtime.start(artifacts, spec, resources, host_port)
    ... the trial polls http://<instance.host_address>:<instance.host_port><ready_path>;
        runtime.exited(instance) is polled beside it, so a dead process or VM fails fast
        instead of waiting for the deadline ...
    ... samplers read instance.pids / cgroups / net_iface / vmm_pid ...
    runtime.stop(instance)                       # always called, also after errors and Ctrl-C

Guarantees a runtime gives:
- ``start`` returns as soon as the workload was launched (not when it is ready); on failure it
  raises ``StartError`` after removing whatever it created.
- The workload is reachable only through <resources.host_address>:<host_port> (127.0.0.1 unless
  the client is remote), or, for a runtime with a network namespace of isobench's own that the
  host reaches directly (the VM: ``remote_client_refused``), only at its address there;
  nothing listens on any other non-loopback address. ``Instance.host_address``/``host_port``
  are where clients reach it and ``facts["network_path"]`` names the path traffic takes.
- ``stop`` is idempotent and removes everything the instance created (containers, VM processes,
  mounts, cgroups, network namespaces, taps, temporary files). It never raises for "already gone".
- Each of ``spec.volumes`` is, when the workload starts, an empty root-owned directory on a
  dedicated volume of the host's disk (not a tmpfs, not the root overlay), at least
  ``spec.volume_mb`` MiB, made for this instance and removed by ``stop`` (and by ``leftovers``);
  ``facts["volumes"]`` maps each path to one line naming what serves it, the first absolute
  path in it being its host backing store (the helpers shared by the runtimes are in
  ``isobench.runtimes.volumes``).
- Everything created is recorded (a state record under ``paths.state_dir()``, or labels set at
  ``docker run`` time) with its owner (``isobench.util.locks.Owner``), and the class's
  ``leftovers(live, runner)`` hook removes what owners that died left (``isobench clean``).

Around a run, commands ask the runtime class itself, so nothing outside its package needs to know
what it is: ``artifact`` (which builder in ``plugins.ARTIFACTS`` makes what it runs),
``host_checks()`` (doctor), ``shell_hint()`` (``isobench up``), and the ``Instance`` fields the
samplers read (``pids``, ``cgroups``, ``vmm_pid``, ``agent_port``, ``daemon_pids``,
``helper_roles``, ``thread_roles``, ``process_roles``).

Per-arm runtime options (a benchfile arm's ``runtime_options``) are checked by the class's
``check_options`` and set on the instance as ``options`` before any ``start``; ``ladder_from``
names the configurations between another runtime and this one (``isobench explain``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from isobench.errors import ConfigError
from isobench.images.spec import Artifacts
from isobench.runtimes.cleanup import Cleaned, Live
from isobench.util.proc import CommandRunner, SubprocessRunner
from isobench.workloads.base import LaunchSpec


@dataclass(frozen=True)
class Resources:
    """The resources every runtime gets, identically.

    Attributes:
        cpus: host CPUs the workload is pinned to (taskset, ``--cpuset-cpus``, QEMU threads).
        memory_mb: memory limit (cgroup, ``--memory``, VM RAM).
        loadgen_cpus: host CPUs the load generator (and isobench itself) is pinned to.
        cpu_quota: CPU time allowed per period, in CPUs (0.8 = 80 % of one CPU; CFS quota,
            ``docker --cpus``); None for no quota. Used to inject a known slowdown into one arm.
        host_address: the host address the workload is reached on, and the only one it may be
            published or listen on: ``127.0.0.1`` (a local client), or the host end of the
            remote client's veth (``isobench.util.clientnet``). Docker and Podman publish
            ``host_address:host_port``, host-network servers bind it (a VM is reached on its
            own veth instead: ``Instance.host_address``).
    """

    cpus: tuple[int, ...] = (0,)
    memory_mb: int = 1024
    loadgen_cpus: tuple[int, ...] = (1,)
    cpu_quota: float | None = None
    host_address: str = "127.0.0.1"

    @property
    def local(self) -> bool:
        """True when the client is a local one (the workload reached on loopback, or on the
        runtime's own veth)."""
        return self.host_address == "127.0.0.1"

    @property
    def cpuset(self) -> str:
        return ",".join(str(c) for c in self.cpus)

    @property
    def vcpus(self) -> int:
        return len(self.cpus)


@dataclass
class Instance:
    """A running workload, as the trial and the samplers see it.

    Attributes:
        runtime: the runtime's name.
        host_port: port on ``host_address`` where the workload answers.
        launched_at: ``time.monotonic()`` just before launch (startup time is measured from it).
        pids: host pids whose process trees make up the runtime's cost: the native process; for a
            container its init process plus containerd-shim and docker-proxy; for a VM the QEMU
            process (all its threads). Samplers walk each pid's descendants.
        cgroups: cgroup controller → absolute cgroup directory, where the runtime has one
            (``{"cpuacct": ..., "memory": ..., "blkio": ...}`` on cgroup v1, ``{"unified": ...}``
            on v2).
        net_iface: host-side network interface carrying only this instance's traffic (a
            container's veth, a VM's tap), or None when traffic crosses loopback.
        vmm_pid: the virtual machine monitor process (QEMU...) whose threads run a VM's guest;
            samplers report its guest time. None for processes and containers.
        agent_port: port on ``host_address`` of an in-instance telemetry agent (the guest's
            own view of a VM), where the runtime has one.
        daemon_pids: shared daemons the runtime relies on (dockerd): their CPU is reported apart
            as ``daemon``, since every instance of that runtime shares them.
        helper_roles: how the CPU split names the runtime's helper processes (those of the
            trees of ``pids`` outside the instance's cgroup): ``fnmatch`` pattern on the process
            name (``comm``) → role, first match wins (``{"docker-proxy": "docker-proxy",
            "containerd-shim*": "containerd-shim"}``); an unmatched helper is named by its comm.
        thread_roles: how the CPU split divides the instance's own CPU by thread: ``fnmatch``
            pattern on a thread's name → role (QEMU: ``{"CPU */KVM": "vcpu", "CPU */TCG":
            "vcpu"}``), the pattern ``"*"`` naming the rest (``"io-main"``). Empty: no split.
        process_roles: the same by process of the instance, matched on the process name or
            its ``argv[0]`` (gVisor: ``{"runsc-sandbox": "sentry", "runsc-gofer": "gofer"}``).
            At most one of ``thread_roles`` and ``process_roles``.
        facts: recorded with every trial: ``network_path`` (``loopback``, ``docker-proxy``,
            ``host-network``, ``tap-bridge``; remote client: ``veth-host``, ``dnat``...),
            ``accel`` (``kvm``/``tcg``), ``emulated`` (``true``/``false``), ``pinning``, ids.
        log_path: where the workload's console/stdout went.
        handle: runtime-private state (Popen, container id, ...).
        host_address: the address the workload answers on (``Resources.host_address``).
        client_iface: the host end of a remote client's veth (set by the trial, not the
            runtime): the network samplers count the load's packets there.
    """

    runtime: str
    host_port: int
    launched_at: float
    pids: list[int] = field(default_factory=list)
    cgroups: dict[str, Path] = field(default_factory=dict)
    net_iface: str | None = None
    vmm_pid: int | None = None
    agent_port: int | None = None
    daemon_pids: list[int] = field(default_factory=list)
    helper_roles: dict[str, str] = field(default_factory=dict)
    thread_roles: dict[str, str] = field(default_factory=dict)
    process_roles: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None
    handle: Any = None
    host_address: str = "127.0.0.1"
    client_iface: str | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host_address}:{self.host_port}"


@dataclass(frozen=True)
class HostCheck:
    """One line of ``isobench doctor``: a capability, whether it is there, the detail, the fix."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass
class RuntimeContext:
    """What a runtime needs from outside: a command runner and a working directory."""

    runner: CommandRunner = field(default_factory=SubprocessRunner)
    work_dir: Path = field(default_factory=lambda: Path("/tmp/isobench"))
    run_id: str = "adhoc"


class Runtime(ABC):
    """A runtime plug-in.

    Class attributes:
        name: the name users type (``docker-bridge``).
        shares_host_network: see below; decides how a fixed ``LaunchSpec.port`` is reached.
        kind: ``process``, ``container`` or ``vm``.
        artifact: which artifact it runs: ``rootfs``, ``docker_image`` or ``vm``.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    artifact: ClassVar[str]
    description: ClassVar[str] = ""
    typical_start_s: ClassVar[float] = 1.0
    """Launch to ready, for ``--dry-run``'s time estimate only (never a measurement)."""
    shares_host_network: ClassVar[bool] = True
    """True when the workload listens on the host's own network (native, ``--network host``);
    False when it has a network of its own reached through a port mapping (bridge, VM)."""
    remote_client_refused: ClassVar[str] = ""
    """Why the runtime takes no ``--client remote`` (empty: it takes one): a VM is reached on
    its own veth, so a client in another namespace would need the host to route between two."""

    def __init__(self, ctx: RuntimeContext | None = None) -> None:
        self.ctx = ctx or RuntimeContext()
        self.options: dict[str, Any] = {}
        """This arm's checked ``runtime_options`` ({} for the runtime as users run it)."""

    @abstractmethod
    def check(self) -> str | None:
        """None if this runtime can run on this host, else one line: why, and the fix."""

    def facts(self) -> dict[str, Any]:
        """Host-level facts recorded in the manifest (versions, acceleration, network path)."""
        return {}

    @property
    def emulated(self) -> bool:
        """True when figures from this runtime are not comparable (e.g. a VM under TCG)."""
        return False

    @abstractmethod
    def start(
        self, artifacts: Artifacts, spec: LaunchSpec, resources: Resources, host_port: int
    ) -> Instance:
        """Launch the workload; return without waiting for readiness."""

    def exited(self, instance: Instance) -> str | None:
        """None while the instance runs, else a one-line reason it is gone (with a log excerpt)."""
        return None

    @abstractmethod
    def stop(self, instance: Instance) -> None:
        """Stop and remove everything the instance created. Idempotent, never raises if gone."""

    @classmethod
    def leftovers(cls, live: Live, runner: CommandRunner) -> Cleaned:
        """Remove this runtime's objects whose owner is not ``live``; what was done, one line
        each, and what could not be checked (see ``isobench.runtimes.cleanup``)."""
        return Cleaned()

    # -- hooks for the commands around a run (none of them is needed by a trial) -------------
    @classmethod
    def host_checks(cls, probe: bool) -> list[HostCheck]:
        """What ``doctor`` shows about the host facilities this runtime relies on (an engine, a
        hypervisor...). Runtimes sharing a facility return the same check name; doctor shows
        it once. ``probe`` allows slow checks (a KVM probe boot)."""
        return []

    def shell_hint(self, instance: Instance, spec: LaunchSpec) -> str:
        """One line for ``isobench up``: how to get a shell (or console) of a running instance."""
        return f"log: {instance.log_path}"

    # -- per-arm options and the ladder of ``isobench explain`` ------------------------------
    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The checked ``runtime_options`` of an arm, or a one-line ConfigError naming what
        this runtime accepts. The base accepts none."""
        if options:
            raise ConfigError(f"runtime {cls.name} takes no runtime_options "
                              f"(got {', '.join(sorted(options))})",
                              fix="remove runtime_options from that arm")
        return {}

    @classmethod
    def ladder_from(cls, other: str, *, remote_client: bool = False) -> list[LadderStep] | None:
        """The configurations from runtime ``other`` to this one, one layer added per step:
        the first step is ``other`` as users run it, the last this runtime as users run it.
        ``remote_client``: steps may use the remote load-client path (an arm's ``client``).
        None when this runtime has no ladder from ``other``."""
        return None


@dataclass(frozen=True)
class LadderStep:
    """One configuration of an ``isobench explain`` ladder (one arm of its plan).

    Attributes:
        arm: the arm's name (a runtime's own name when the step is that runtime as users run it).
        label: what the step adds over the one before, e.g. ``+ default seccomp profile``.
        runtime: the runtime that runs it.
        options: its ``runtime_options`` ({} for the runtime as users run it).
        client: ``remote`` or ``local`` when the step needs that load-client path, else None.
        note: anything a reader of the step should know (one sentence).
    """

    arm: str
    label: str
    runtime: str
    options: Mapping[str, Any] = field(default_factory=dict)
    client: str | None = None
    note: str = ""
