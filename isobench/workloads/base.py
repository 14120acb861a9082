"""The workload contract.

A workload says what goes into the rootfs (``rootfs_spec``), how its server is started inside any
runtime (``launch_spec``), and what load drives it by default (``default_scenario``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from isobench.errors import ConfigError
from isobench.images.spec import RootfsSpec

if TYPE_CHECKING:
    from isobench.analysis.stats import MetricSpec
    from isobench.run.validity import Limits
    from isobench.util.clientnet import ClientPath


@dataclass(frozen=True)
class LaunchSpec:
    """How to start the workload's server inside the rootfs, identically in every runtime.

    ``argv`` and ``env`` values may contain the placeholders ``{bind}`` (address to listen on: the
    runtime fills in ``127.0.0.1`` where the host network is shared, ``0.0.0.0`` behind a bridge or
    inside a VM) and ``{port}`` (the port to listen on: isobench uses the same number inside and on
    the host's 127.0.0.1).

    Attributes:
        argv: absolute command inside the rootfs.
        env: environment variables (a clean environment: nothing is inherited from the host).
        workdir: working directory inside the rootfs.
        ready_path: HTTP path that answers 200 once the server is ready.
        user: user to run as (None: root), as Docker's ``User``.
        writable_paths: paths the workload writes to (tmpfs or an upper layer in every runtime).
        port: a fixed port the workload listens on inside (a user's image that ignores
            ``{port}``); None means it listens on ``{port}``, the same number as on the host.
            Runtimes with their own network (bridge, VM) map ``127.0.0.1:host_port`` to it; on
            the host network the trial makes ``host_port`` equal to it.
        volumes: absolute paths inside the runtime that must each be a dedicated volume on the
            host's disk: an empty directory (owned by root, mode 0755: writable by a workload
            running as root; name a path the rootfs does not hold) on a filesystem
            backed by a disk, never a tmpfs or the instance's root overlay, created for the
            instance at ``start`` and removed with it at ``stop``. Each runtime serves it its own
            way (a bind mount of a host directory, a Docker volume, a second virtio disk) and
            names what served it in ``Instance.facts["volumes"]`` (path → one line).
        volume_mb: the space each volume must offer, in MiB: a runtime that must size a volume
            in advance (a VM's disk image, made sparse) makes it this large; the others give
            the free space of the host filesystem holding it.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/"
    ready_path: str = "/healthz"
    user: str | None = None
    writable_paths: tuple[str, ...] = ("/tmp",)
    port: int | None = None
    volumes: tuple[str, ...] = ()
    volume_mb: int = 1024

    def listen_port(self, host_port: int) -> int:
        """The port the workload listens on inside, given the host port it is reached on."""
        return self.port if self.port is not None else host_port

    def render(self, bind: str, port: int) -> LaunchSpec:
        """The spec with placeholders filled in."""

        def fill(text: str) -> str:
            return text.replace("{bind}", bind).replace("{port}", str(port))

        return LaunchSpec(
            argv=tuple(fill(a) for a in self.argv),
            env={k: fill(v) for k, v in self.env.items()},
            workdir=self.workdir,
            ready_path=self.ready_path,
            user=self.user,
            writable_paths=self.writable_paths,
            port=self.port,
            volumes=self.volumes,
            volume_mb=self.volume_mb,
        )


class Workload(ABC):
    """A workload plug-in. Subclasses are registered in ``isobench.plugins`` (or an entry point)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    primary_metric: ClassVar[str] = "rps"
    """The metric whose comparison with the baseline is each runtime's headline verdict (every
    other metric is secondary); see :meth:`primary_metric_for` and ``isobench.analysis.stats``."""

    option_names: ClassVar[frozenset[str] | None] = None
    """The ``workload_options`` keys this workload reads; None when it does not declare them
    (any key passes). A workload that declares them refuses any other key in
    :meth:`check_options`, so a misspelt option is an error, not a setting silently ignored."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """A one-line ConfigError naming the keys this workload reads when ``options`` (what the
        user gave, before the workload adds its own records) has any other."""
        if cls.option_names is None:
            return
        unknown = sorted(set(options) - cls.option_names)
        if unknown:
            known = ", ".join(sorted(cls.option_names)) or "none"
            raise ConfigError(f"workload {cls.name} has no option {', '.join(unknown)}",
                              fix=f"its options: {known}")

    @abstractmethod
    def rootfs_spec(self) -> RootfsSpec:
        """What the rootfs holds; its content hash is the image cache key."""

    @abstractmethod
    def launch_spec(self) -> LaunchSpec:
        """How the server starts (same in every runtime)."""

    @abstractmethod
    def default_scenario(self) -> dict[str, Any]:
        """The default load scenario, in the benchfile's ``scenario`` form."""

    def primary_metric_for(self, scenario: Mapping[str, Any]) -> str:
        """The primary metric under ``scenario``: ``idle_cpu_percent`` when nothing loads the
        workload (executor ``idle``); ``p95_ms`` instead of ``rps`` under a fixed-rate arrival
        executor (the scenario, not the runtime, sets the request rate there); otherwise
        :attr:`primary_metric`."""
        subs = scenario.get("scenarios")
        executors = {str(scenario.get("executor", ""))}
        if isinstance(subs, Mapping):
            executors |= {
                str(s.get("executor", "")) for s in subs.values() if isinstance(s, Mapping)
            }
        executors.discard("")
        if executors == {"idle"}:
            return "idle_cpu_percent"
        if self.primary_metric == "rps" and executors and all(
            e.endswith("arrival-rate") for e in executors
        ):
            return "p95_ms"
        names = [m.name for m in self.metric_specs()]
        if names and self.primary_metric not in names:
            return names[0]  # a workload with metrics of its own: the first is its headline
        return self.primary_metric

    def check(self) -> str | None:
        """None when the workload can run with its options here, else a one-line reason."""
        return None

    def validate(
        self, summary: Mapping[str, Any], duration_s: float, limits: Limits | None = None
    ) -> str | None:
        """None when a measured load's ``summary`` shows the workload really served it, else a
        one-line reason (the trial is then recorded ``failed`` and left out of the statistics).

        The default is the HTTP rule of :func:`isobench.run.validity.http_failure`: an error rate
        (failed requests or checks) of at most ``limits.max_error_rate`` and at least
        ``limits.min_ok_per_s`` successful requests per second of ``duration_s`` (never fewer
        than ``limits.min_ok_requests``). A workload with another protocol, or one legitimately
        slower than that, overrides it. Deaths and failed thresholds are checked for every
        workload by the trial itself.
        """
        from isobench.run.validity import http_failure

        return http_failure(summary, duration_s, limits)

    def check_scenario(self, scenario: Mapping[str, Any]) -> None:
        """Raise a one-line ConfigError when ``scenario`` cannot drive this workload, before any
        artifact is built or instance started. The default checks the built-in HTTP engine's
        schema (executors, VU counts, thresholds) for workloads it drives; a workload with a
        ``drive`` of its own checks its own form by overriding this."""
        from isobench.config import scenarios
        from isobench.load.scenario import ScenarioSet

        if type(self).drive is not Workload.drive or scenario.get("executor") == scenarios.IDLE:
            return
        ScenarioSet.parse(scenario)
    def ready(
        self,
        port: int,
        spec: LaunchSpec,
        *,
        launched_at: float,
        deadline_s: float,
        exited: Callable[[], str | None],
        host: str = "127.0.0.1",
    ) -> float:
        """Wait until the instance reached on ``host``:``port`` serves; seconds since launch.

        ``launched_at`` is a ``time.monotonic()`` stamp; ``exited()`` returns the reason when the
        instance died (then raise StartError at once). The default polls ``spec.ready_path`` over
        HTTP until it answers 200; a server with a protocol of its own (Redis, iperf3) overrides
        it with a probe of that protocol.
        """
        from isobench.util.netutil import wait_ready

        return wait_ready(port, spec.ready_path, launched_at=launched_at, deadline_s=deadline_s,
                          exited=exited, host=host)

    def drives_remote(self) -> bool:
        """True when :meth:`drive` can run its client on a remote path (``--client remote``):
        the built-in engine can; a workload with a ``drive`` (and ``ready``) of its own cannot
        until it takes the ``client`` argument."""
        return type(self).drive is Workload.drive

    def metric_specs(self) -> Sequence[MetricSpec]:
        """The metrics analysed for this workload, the primary one first.

        The default is the HTTP set (``isobench.analysis.stats.DEFAULT_METRICS``); a workload whose
        ``drive()`` reports figures of its own (``redis_get_ops``...) returns their specs.
        """
        from isobench.analysis.stats import DEFAULT_METRICS

        return DEFAULT_METRICS

    def drive(
        self,
        endpoint: str,
        scenario: Mapping[str, Any],
        *,
        cpus: tuple[int, ...] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        client: ClientPath | None = None,
    ) -> dict[str, Any]:
        """Apply the scenario's load to ``endpoint`` (``http://ADDRESS:PORT``).

        ``client`` is the path the load takes (``isobench.util.clientnet``): with a remote one,
        the client is started behind ``client.prefix`` (``ip netns exec NS``), still pinned to
        ``cpus``. The runner passes it only when it is remote.

        Returns the k6-style summary (``{"metrics": {...}, "thresholds": {...}, ...}``), with the
        1 s time series under ``"timeseries"`` (the trial moves it into samples). The
        default drives HTTP with the built-in load engine; workloads with a protocol of their own
        (the validator's gossip, a peer client such as pgbench) override it.
        """
        from isobench.load.api import run_load

        prefix = client.prefix if client is not None else ()
        result = run_load(endpoint, scenario, cpus=cpus, on_progress=on_progress, prefix=prefix)
        return {**result.summary, "timeseries": result.timeseries}

    def drive_many(
        self,
        endpoints: list[str],
        scenario: Mapping[str, Any],
        *,
        cpus: tuple[int, ...] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Drive several replicas at once and return one summary over all of them.

        The default supports one replica; workloads that can load several override it.
        """
        if len(endpoints) == 1:
            return self.drive(endpoints[0], scenario, cpus=cpus, on_progress=on_progress)
        raise ConfigError(
            f"workload '{self.name}' does not support replicas", fix="run it with --replicas 1"
        )
