"""One trial: start the instance(s), wait until ready, warm up, measure, judge, stop — always stop.

The orchestrator decides which trial runs when; this module knows what one trial does::

    start N replicas → each ready (startup time) and still alive → warm-up load (discarded)
    → telemetry on → load → telemetry off → every replica still alive? → judge
    → stop every replica (also on errors and Ctrl-C)

From readiness to the end of the load a :class:`DeathWatch` polls ``Runtime.exited`` of every
instance twice a second (cheap: a ``waitpid``/``/proc`` look while the instance lives), so a
death is reported with when it happened. The verdict is :func:`isobench.run.validity.trial_failure`:
a trial whose instance died, whose load mostly failed, that served (almost) nothing or that
failed a threshold is recorded ``failed`` with its reason, never as data.
"""

from __future__ import annotations

import dataclasses
import http.client
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from isobench.config import scenarios
from isobench.config.benchfile import parse_duration
from isobench.errors import ConfigError, IsobenchError, StartError
from isobench.images.spec import Artifacts
from isobench.results import Sample, TrialRecord
from isobench.run.exposure import check_instances
from isobench.run.signals import shielded
from isobench.run.validity import Limits, death_reason, trial_failure
from isobench.runtimes.base import Instance, Resources, Runtime
from isobench.util.clientnet import LOCAL, ClientPath
from isobench.util.netutil import ensure_port_free, free_port
from isobench.workloads.base import LaunchSpec, Workload

READY_DEADLINE_S = 60.0
READY_DEADLINE_EMULATED_S = 180.0

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrialSetup:
    """Everything a trial needs, the same for every trial of an arm."""

    workload: Workload
    runtime: Runtime
    artifacts: Artifacts
    scenario_name: str
    scenario: dict[str, Any]
    resources: Resources
    warmup_s: float
    replicas: int = 1
    telemetry_interval: float = 1.0
    telemetry_samplers: Sequence[str] | None = None
    limits: Limits = field(default_factory=Limits)
    client: ClientPath = LOCAL
    """Where the load generator runs: on the host (127.0.0.1) or in isobench's namespace, through
    a veth (``isobench.util.clientnet``); the workload is then published on the veth's address."""

    @property
    def instance_resources(self) -> Resources:
        """The resources runtimes get: ``host_address`` is the client's target."""
        if self.resources.host_address == self.client.address:
            return self.resources
        return dataclasses.replace(self.resources, host_address=self.client.address)


def host_port_for(runtime: Runtime, spec: LaunchSpec, host: str = "127.0.0.1") -> int:
    """The port (on ``host``: 127.0.0.1 unless the client is remote) a trial reaches the
    workload on.

    A workload with a fixed port (a user's image) is reached on that very port where it shares
    the host's network; a runtime with a network of its own maps a free port to it.
    """
    if spec.port is not None and runtime.shares_host_network:
        ensure_port_free(spec.port, host)
        return spec.port
    return free_port()


def check_replicas(runtime: Runtime, spec: LaunchSpec, replicas: int) -> None:
    """Several replicas on the host network need a workload that listens on ``{port}``."""
    if replicas > 1 and spec.port is not None and runtime.shares_host_network:
        raise ConfigError(
            f"{replicas} replicas of a workload fixed to port {spec.port} cannot share the "
            f"host network of {runtime.name}",
            fix="use one replica, or a runtime with its own network (docker-bridge, vm)",
        )


def scenario_seconds(scenario: Mapping[str, Any]) -> float:
    """The measured duration of a scenario (the longest of its sub-scenarios)."""
    if "duration" in scenario:
        return parse_duration(scenario["duration"])
    subs = scenario.get("scenarios") or {}
    values = [parse_duration(s["duration"]) for s in subs.values() if "duration" in s]
    return max(values) if values else 0.0


def combine_telemetry(summaries: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """One trial's telemetry from several replicas: costs add up, host-wide figures do not.

    ``host_*`` (the whole host, seen by every replica's sampler) and ``telemetry_*`` (the
    samplers' own bookkeeping) are averaged; ``*_source*`` flags are kept from the first replica;
    everything else (CPU seconds and %, bytes, peaks, counts) is summed, so a peak is the sum of
    the replicas' peaks: an upper bound of the joint peak.
    """
    if len(summaries) == 1:
        return dict(summaries[0])
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for s in summaries for k in s):
        values = [float(s[key]) for s in summaries if key in s]
        if "_source" in key:
            out[key] = values[0]
        elif key.startswith(("host_", "telemetry_")) or key.endswith("_wall_seconds"):
            out[key] = statistics.fmean(values)
        else:
            out[key] = sum(values)
    return out


LOAD_UNITS = {"reqs": "req", "errors": "req", "rate": "req/s", "p50": "ms", "p90": "ms",
              "p95": "ms", "p99": "ms", "data_received": "B", "data_sent": "B", "vus": "VUs"}
"""Units of the load engine's 1 s time series (``load.api.TIMESERIES_FIELDS``)."""


def _timeseries_samples(
    rows: list[dict[str, Any]], start: float, labels: Mapping[str, Any]
) -> list[Sample]:
    """The load time series as samples ``load_<field>`` with their units."""
    out: list[Sample] = []
    for row in rows:
        t = float(row.get("t", 0.0))
        for key, value in row.items():
            if key == "t" or not isinstance(value, int | float):
                continue
            out.append(
                Sample(f"load_{key}", float(value), LOAD_UNITS.get(key, ""), start + t,
                       {**labels, "source": "load"})
            )
    return out


def probe(port: int, path: str, timeout: float = 2.0, host: str = "127.0.0.1") -> str:
    """What ``GET http://host:port/path`` gives now, in a few words (for a failure reason):
    ``HTTP 500``, ``connection refused``, ``no answer within 2 s``."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return f"HTTP {resp.status}"
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        conn.close()


class DeathWatch:
    """Polls ``runtime.exited`` of every instance in a daemon thread; keeps the first death.

    Attributes:
        reason: the first ``exited`` reason seen (prefixed ``replica i:`` with several), or None.
        seen_at: ``time.monotonic()`` when it was seen (within ``interval`` of the death).
    """

    def __init__(
        self, runtime: Runtime, instances: Sequence[Instance], interval: float = 0.5
    ) -> None:
        self.runtime = runtime
        self.instances = list(instances)
        self.interval = interval
        self.reason: str | None = None
        self.seen_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="isobench-deathwatch",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def check(self) -> str | None:
        """One look at every instance now; the first reason found (also kept), or None."""
        for i, inst in enumerate(self.instances):
            reason = self.runtime.exited(inst)
            if reason:
                if len(self.instances) > 1:
                    reason = f"replica {i}: {reason}"
                if self.reason is None:
                    self.reason, self.seen_at = reason, time.monotonic()
                return reason
        return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.check():
                    return
            except Exception:  # a failed look is not a death: the final check decides
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)


class Trial:
    """Runs one trial of one arm and returns its record and samples."""

    def __init__(self, setup: TrialSetup, labels: Mapping[str, Any], progress: Progress) -> None:
        self.setup = setup
        self.labels = dict(labels)
        self.progress = progress
        self.samples: list[Sample] = []

    def _drive(
        self, instances: Sequence[Instance], scenario: Mapping[str, Any], progress: Progress | None
    ) -> dict[str, Any]:
        cpus = self.setup.resources.loadgen_cpus
        workload = self.setup.workload
        client = self.setup.client
        if len(instances) == 1 and client.remote:  # only then: drive() overrides need not know
            return workload.drive(instances[0].endpoint, scenario, cpus=cpus,
                                  on_progress=progress, client=client)
        if len(instances) == 1:
            return workload.drive(instances[0].endpoint, scenario, cpus=cpus, on_progress=progress)
        return workload.drive_many(
            [i.endpoint for i in instances], scenario, cpus=cpus, on_progress=progress
        )

    def run(self, record: TrialRecord) -> TrialRecord:
        """Fill ``record`` (status, startup, load, telemetry, facts, error).

        ``status`` is ``ok`` only when :func:`isobench.run.validity.trial_failure` finds nothing
        wrong; otherwise ``failed`` with the reason in ``error`` (the load summary is kept in
        the record for diagnosis; the statistics never use it).
        """
        s = self.setup
        instances: list[Instance] = []
        self._watch: DeathWatch | None = None
        self._measure_t0: float | None = None
        try:
            spec = s.workload.launch_spec()
            check_replicas(s.runtime, spec, s.replicas)
            resources = s.instance_resources
            for _ in range(s.replicas):
                port = host_port_for(s.runtime, spec, resources.host_address)
                inst = s.runtime.start(s.artifacts, spec, resources, port)
                inst.client_iface = s.client.host_iface
                instances.append(inst)
            deadline = READY_DEADLINE_EMULATED_S if s.runtime.emulated else READY_DEADLINE_S
            startups = [self._ready(inst, spec, deadline) for inst in instances]
            record.startup_s = max(startups)
            listening = check_instances(instances, allow_exposed=s.limits.allow_exposed,
                                        allowed=s.limits.allowed_addresses
                                        | {s.client.address})
            record.facts = {
                **instances[0].facts,
                "cpu_quota": s.resources.cpu_quota,
                "emulated": s.runtime.emulated,
                "runtime": s.runtime.name,
                "scenario": s.scenario_name,
                "replicas": s.replicas,
                **listening,
                **s.client.facts(),
                "client_target": instances[0].host_address,  # a VM: its own address
            }
            if s.replicas > 1:
                record.facts["startup_each_s"] = startups
            for i, startup in enumerate(startups):
                meta = {**self.labels, "source": "host", "replica": i}
                self.samples.append(Sample("startup_s", startup, "s", metadata=meta))
            self._watch = DeathWatch(s.runtime, instances)
            self._watch.start()
            try:
                self._measure(instances, record)
            finally:
                self._watch.stop()
            reason = self._verdict(instances, record)
            if reason:
                record.error = reason
            else:
                record.status = "ok"
        except IsobenchError as exc:
            record.error = self._with_death(str(exc))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a broken trial must not lose the run
            record.error = self._with_death(f"{type(exc).__name__}: {exc}")
        finally:
            with shielded():
                for inst in instances:
                    s.runtime.stop(inst)
            record.ended_at = time.time()
        return record

    def _death(self) -> str | None:
        """Why an instance is gone, with when (see :func:`death_reason`), or None."""
        watch = self._watch
        if watch is None:
            return None
        if watch.reason is None:
            watch.check()  # the final look, after the load
            seen = None
        else:
            seen = watch.seen_at
        if watch.reason is None:
            return None
        t0 = self._measure_t0
        measuring = t0 is not None and (seen is None or seen >= t0)
        at = None if seen is None or t0 is None else seen - t0
        return death_reason(watch.reason, at, measuring)

    def _with_death(self, error: str) -> str:
        """An error, led by the death that probably caused it (when an instance died)."""
        try:
            death = self._death()
        except Exception:  # the original error is what must be reported
            death = None
        return f"{death}; then: {error}" if death else error

    def _verdict(self, instances: Sequence[Instance], record: TrialRecord) -> str | None:
        """The trial's failure reason (see :mod:`isobench.run.validity`), or None when it counts."""
        s = self.setup
        idle = s.scenario.get("executor") == scenarios.IDLE
        duration = scenario_seconds(s.scenario)
        if duration <= 0:  # stages / iterations: the time the load really ran
            duration = float((record.load.get("state") or {}).get("testRunDurationMs", 0)) / 1e3
        death = self._death()
        reason = trial_failure(record.load, death, duration, s.limits,
                               rule=None if idle else s.workload.validate)
        served_badly = not idle and bool(s.workload.validate(record.load, duration, s.limits))
        if reason and not death and served_badly:  # what does the workload answer now?
            path = s.workload.launch_spec().ready_path
            seen = "; ".join(
                (f"replica {i}: " if len(instances) > 1 else "")
                + probe(inst.host_port, path, host=inst.host_address)
                for i, inst in enumerate(instances)
            )
            reason += f" (after the load, GET {path}: {seen})"
        return reason

    def _ready(self, inst: Instance, spec: LaunchSpec, deadline: float) -> float:
        """Seconds to ready (the workload's own probe: HTTP 200 by default), from an instance
        that is still alive after it.

        An answer from a process that is not the instance's (its port taken by someone else
        on the host network, the instance dying with EADDRINUSE) is caught here when the death
        is already visible, else by the death watch during the load; a stranger sharing the
        port (``SO_REUSEPORT``) by :func:`isobench.run.exposure.check_instances` right after.
        """
        runtime = self.setup.runtime
        where = {"host": inst.host_address} if inst.host_address != "127.0.0.1" else {}
        startup = self.setup.workload.ready(  # (readiness is probed from the host)
            inst.host_port,
            spec,
            launched_at=inst.launched_at,
            deadline_s=deadline,
            exited=lambda: runtime.exited(inst),
            **where,
        )
        reason = runtime.exited(inst)
        if reason:
            raise StartError(
                f"{inst.host_address}:{inst.host_port} answered, but the instance "
                f"exited: {reason}",
                fix="is another process listening on that port? (ss -ltnp)",
            )
        return startup

    def _sessions(self, instances: Sequence[Instance]) -> list[Any]:
        try:
            from isobench.telemetry.session import TelemetrySession
        except ImportError:
            return []
        return [
            TelemetrySession(
                inst,
                interval=self.setup.telemetry_interval,
                labels={**self.labels, "replica": i} if len(instances) > 1 else self.labels,
                samplers=self.setup.telemetry_samplers,
            )
            for i, inst in enumerate(instances)
        ]

    def _measure(self, instances: Sequence[Instance], record: TrialRecord) -> None:
        s = self.setup
        idle = s.scenario.get("executor") == scenarios.IDLE
        if not idle and s.warmup_s > 0:
            self._drive(instances, scenarios.with_duration(s.scenario, s.warmup_s), None)
        sessions = self._sessions(instances)
        measure_start = time.time()
        self._measure_t0 = time.monotonic()
        for session in sessions:
            session.start()
        try:
            if idle:
                time.sleep(scenario_seconds(s.scenario))
                summary: dict[str, Any] = {}
            else:
                summary = self._drive(instances, s.scenario, self.progress)
        finally:
            for session in sessions:
                self.samples.extend(session.stop())
        if sessions:
            record.telemetry = combine_telemetry([session.summary() for session in sessions])
            skipped = {k: v for session in sessions for k, v in session.skipped.items()}
            if skipped:
                record.facts["telemetry_skipped"] = skipped
        timeseries = summary.pop("timeseries", None) or []
        self.samples.extend(_timeseries_samples(timeseries, measure_start, self.labels))
        record.load = summary
