"""One trial: start the instance(s), wait until ready, warm up, measure, stop — always stop.

The runner decides which trial runs when; this module knows what one trial does::

    start N replicas → each ready (startup time) → warm-up load (discarded)
    → telemetry on → load → telemetry off → stop every replica (also on errors and Ctrl-C)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from isobench import scenarios
from isobench.benchfile import parse_duration
from isobench.errors import ConfigError, IsobenchError
from isobench.images.spec import Artifacts
from isobench.netutil import ensure_port_free, free_port
from isobench.results import Sample, TrialRecord
from isobench.runtimes.base import Instance, Resources, Runtime
from isobench.signals import shielded
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


def host_port_for(runtime: Runtime, spec: LaunchSpec) -> int:
    """The 127.0.0.1 port a trial reaches the workload on.

    A workload with a fixed port (a user's image) is reached on that very port where it shares
    the host's network; a runtime with a network of its own maps a free port to it.
    """
    if spec.port is not None and runtime.shares_host_network:
        ensure_port_free(spec.port)
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


def _timeseries_samples(
    rows: list[dict[str, Any]], start: float, labels: Mapping[str, Any]
) -> list[Sample]:
    out: list[Sample] = []
    for row in rows:
        t = float(row.get("t", 0.0))
        for key, value in row.items():
            if key == "t" or not isinstance(value, int | float):
                continue
            out.append(
                Sample(f"load_{key}", float(value), "", start + t, {**labels, "source": "load"})
            )
    return out


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
        if len(instances) == 1:
            return workload.drive(instances[0].endpoint, scenario, cpus=cpus, on_progress=progress)
        return workload.drive_many(
            [i.endpoint for i in instances], scenario, cpus=cpus, on_progress=progress
        )

    def run(self, record: TrialRecord) -> TrialRecord:
        """Fill ``record`` (status, startup, load, telemetry, facts, error)."""
        s = self.setup
        instances: list[Instance] = []
        try:
            spec = s.workload.launch_spec()
            check_replicas(s.runtime, spec, s.replicas)
            for _ in range(s.replicas):
                port = host_port_for(s.runtime, spec)
                instances.append(s.runtime.start(s.artifacts, spec, s.resources, port))
            deadline = READY_DEADLINE_EMULATED_S if s.runtime.emulated else READY_DEADLINE_S
            startups = [self._ready(inst, spec, deadline) for inst in instances]
            record.startup_s = max(startups)
            record.facts = {
                **instances[0].facts,
                "cpu_quota": s.resources.cpu_quota,
                "emulated": s.runtime.emulated,
                "runtime": s.runtime.name,
                "scenario": s.scenario_name,
                "replicas": s.replicas,
            }
            if s.replicas > 1:
                record.facts["startup_each_s"] = startups
            for i, startup in enumerate(startups):
                meta = {**self.labels, "source": "host", "replica": i}
                self.samples.append(Sample("startup_s", startup, "s", metadata=meta))
            self._measure(instances, record)
            record.status = "ok"
        except IsobenchError as exc:
            record.error = str(exc)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a broken trial must not lose the run
            record.error = f"{type(exc).__name__}: {exc}"
        finally:
            with shielded():
                for inst in instances:
                    s.runtime.stop(inst)
            record.ended_at = time.time()
        return record

    def _ready(self, inst: Instance, spec: LaunchSpec, deadline: float) -> float:
        runtime = self.setup.runtime
        return self.setup.workload.ready(
            inst.host_port,
            spec,
            launched_at=inst.launched_at,
            deadline_s=deadline,
            exited=lambda: runtime.exited(inst),
        )

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
