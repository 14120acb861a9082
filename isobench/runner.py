"""The lifecycle of a run; the only module that knows the order of the stages.

benchfile → plan → artifacts → for each planned trial (interleaved):
start → ready (startup time) → warm-up → telemetry on → load → telemetry off → stop
→ trial record + samples appended → summary rewritten. Cleanup is owned here: every started
instance is stopped on success, failure, timeout and Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from isobench import plugins, scenarios
from isobench.benchfile import Benchfile
from isobench.errors import IsobenchError, RuntimeUnavailable
from isobench.host import host_facts
from isobench.images.spec import Artifacts
from isobench.netutil import ensure_port_free, free_port, wait_ready
from isobench.plan import PlannedTrial, make_plan
from isobench.results import RunStore, Sample, TrialRecord
from isobench.runtimes.base import Instance, Resources, Runtime, RuntimeContext
from isobench.workloads.base import LaunchSpec, Workload

READY_DEADLINE_S = 60.0
READY_DEADLINE_EMULATED_S = 180.0
MIN_EFFECT = 0.05
"""The smallest relative difference a run is meant to resolve; noisier hosts get a warning."""


class Events(Protocol):
    """What the runner tells the user interface while it works."""

    def step(self, text: str) -> None: ...

    def trial_started(self, planned: PlannedTrial, total: int, duration_s: float) -> None: ...

    def trial_progress(self, planned: PlannedTrial, progress: dict[str, Any]) -> None: ...

    def trial_finished(self, planned: PlannedTrial, record: TrialRecord) -> None: ...


class NullEvents:
    def step(self, text: str) -> None:
        pass

    def trial_started(self, planned: PlannedTrial, total: int, duration_s: float) -> None:
        pass

    def trial_progress(self, planned: PlannedTrial, progress: dict[str, Any]) -> None:
        pass

    def trial_finished(self, planned: PlannedTrial, record: TrialRecord) -> None:
        pass


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so the same cleanup path runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def arms_for(bench: Benchfile) -> dict[str, str]:
    """Arm name → runtime name. A/A runs put the baseline in twice."""
    if bench.arms:
        return {name: arm.runtime for name, arm in bench.arms.items()}
    if bench.aa:
        base = bench.baseline_runtime
        return {base: base, f"{base}-b": base}
    return {name: name for name in bench.runtimes}


def resources_for(bench: Benchfile, arm: str, base: Resources) -> Resources:
    """The resources of one arm: the common ones, with the arm's own changes."""
    spec = (bench.arms or {}).get(arm)
    if spec is None or spec.cpu_quota is None:
        return base
    return dataclasses.replace(base, cpu_quota=spec.cpu_quota)


@dataclass
class Prepared:
    workload: Workload
    runtimes: dict[str, Runtime]
    artifacts: Artifacts
    scenario_name: str
    scenario: dict[str, Any]
    resources: Resources
    plan: list[PlannedTrial] = field(default_factory=list)


class Runner:
    """Runs one benchmark into a run directory."""

    def __init__(
        self,
        bench: Benchfile,
        store: RunStore,
        events: Events | None = None,
        ctx: RuntimeContext | None = None,
    ) -> None:
        self.bench = bench
        self.store = store
        self.events: Events = events or NullEvents()
        self.ctx = ctx or RuntimeContext(run_id=store.root.name, work_dir=store.root / "work")

    # ----------------------------------------------------------------------------- preparation
    def load_workload(self) -> Workload:
        cls = plugins.load("workload", self.bench.workload)
        workload: Workload = cls(self.bench.workload_options)
        reason = workload.check()
        if reason:
            raise RuntimeUnavailable(f"workload '{workload.name}' cannot run: {reason}")
        return workload

    def load_runtimes(self) -> dict[str, Runtime]:
        runtimes: dict[str, Runtime] = {}
        for name in sorted(set(arms_for(self.bench).values())):
            runtime: Runtime = plugins.load("runtime", name)(self.ctx)
            reason = runtime.check()
            if reason:
                raise RuntimeUnavailable(f"runtime '{name}' cannot run here: {reason}")
            runtimes[name] = runtime
        return runtimes

    def prepare(self) -> Prepared:
        from isobench.images.build import build_artifacts

        self.events.step("checking workload and runtimes")
        workload = self.load_workload()
        runtimes = self.load_runtimes()
        scenario_name, scenario = scenarios.resolve(workload, self.bench.scenario)
        if self.bench.duration_s is not None:
            scenario = scenarios.with_duration(scenario, self.bench.duration_s)
        need = {rt.artifact for rt in runtimes.values()}
        need.add("rootfs")
        res = self.bench.resources
        resources = Resources(tuple(res.cpus), res.memory_mb, tuple(res.loadgen_cpus))
        self._check_cpus(resources)
        artifacts = build_artifacts(workload.rootfs_spec(), need, progress=self.events.step)
        plan = make_plan(arms_for(self.bench), self.bench.trials, self.bench.seed)
        return Prepared(workload, runtimes, artifacts, scenario_name, scenario, resources, plan)

    @staticmethod
    def _check_cpus(resources: Resources) -> None:
        available = os.sched_getaffinity(0)
        for cpu in (*resources.cpus, *resources.loadgen_cpus):
            if cpu not in available:
                raise IsobenchError(
                    f"CPU {cpu} is not available (this host has CPUs {sorted(available)})",
                    fix="set resources.cpus / resources.loadgen_cpus to CPUs that exist",
                )

    def manifest(self, prep: Prepared) -> dict[str, Any]:
        return {
            "run_id": self.store.root.name,
            "created_at": time.time(),
            "status": "running",
            "benchfile": self.bench.model_dump(),
            "config": {
                "workload": prep.workload.name,
                "workload_options": prep.workload.options,
                "scenario_name": prep.scenario_name,
                "scenario": prep.scenario,
                "runtimes": list(self.bench.runtimes),
                "baseline": self.bench.baseline_runtime,
                "arms": arms_for(self.bench),
                "trials": self.bench.trials,
                "warmup_s": self.bench.warmup_s,
                "min_effect": MIN_EFFECT,
                "preset": self.bench.preset,
                "aa": self.bench.aa,
            },
            "resources": {
                "cpus": list(prep.resources.cpus),
                "memory_mb": prep.resources.memory_mb,
                "loadgen_cpus": list(prep.resources.loadgen_cpus),
            },
            "pinning": {
                "workload": list(prep.resources.cpus),
                "load_generator": list(prep.resources.loadgen_cpus),
                "isobench": list(prep.resources.loadgen_cpus),
            },
            "plan": {"seed": self.bench.seed, "order": [p.to_json() for p in prep.plan]},
            "host": host_facts(),
            "runtimes": {
                name: {
                    **rt.facts(),
                    "kind": rt.kind,
                    "artifact": rt.artifact,
                    "emulated": rt.emulated,
                }
                for name, rt in prep.runtimes.items()
            },
            "artifacts": {
                "key": prep.artifacts.key,
                "sizes": dict(prep.artifacts.sizes),
                "docker_image": prep.artifacts.docker_image,
                "vm_kernel": prep.artifacts.vm.kernel_version if prep.artifacts.vm else None,
            },
        }

    # ----------------------------------------------------------------------------- trials
    def _labels(self, planned: PlannedTrial) -> dict[str, Any]:
        return {"runtime": planned.arm, "trial": planned.trial, "round": planned.round}

    def run_trial(self, prep: Prepared, planned: PlannedTrial) -> tuple[TrialRecord, list[Sample]]:
        runtime = prep.runtimes[planned.runtime]
        labels = self._labels(planned)
        samples: list[Sample] = []
        record = TrialRecord(
            runtime=planned.arm,
            trial=planned.trial,
            position=planned.position,
            round=planned.round,
            status="failed",
            started_at=time.time(),
            ended_at=0.0,
        )
        instance: Instance | None = None
        try:
            spec = prep.workload.launch_spec()
            port = host_port_for(runtime, spec)
            resources = resources_for(self.bench, planned.arm, prep.resources)
            instance = runtime.start(prep.artifacts, spec, resources, port)
            inst = instance
            deadline = READY_DEADLINE_EMULATED_S if runtime.emulated else READY_DEADLINE_S
            startup = wait_ready(
                port,
                spec.ready_path,
                launched_at=inst.launched_at,
                deadline_s=deadline,
                exited=lambda: runtime.exited(inst),
            )
            record.startup_s = startup
            record.facts = {
                **inst.facts,
                "cpu_quota": resources.cpu_quota,
                "emulated": runtime.emulated,
                "runtime": runtime.name,
                "scenario": prep.scenario_name,
            }
            samples.append(Sample("startup_s", startup, "s", metadata={**labels, "source": "host"}))
            self._measure(prep, planned, inst, record, samples, labels)
            record.status = "ok"
        except IsobenchError as exc:
            record.error = str(exc)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a broken trial must not lose the run
            record.error = f"{type(exc).__name__}: {exc}"
        finally:
            if instance is not None:
                runtime.stop(instance)
            record.ended_at = time.time()
        return record, samples

    def _measure(
        self,
        prep: Prepared,
        planned: PlannedTrial,
        inst: Instance,
        record: TrialRecord,
        samples: list[Sample],
        labels: dict[str, Any],
    ) -> None:
        loadgen = prep.resources.loadgen_cpus
        idle = prep.scenario.get("executor") == scenarios.IDLE
        if not idle and self.bench.warmup_s > 0:
            prep.workload.drive(
                inst.endpoint,
                scenarios.with_duration(prep.scenario, self.bench.warmup_s),
                cpus=loadgen,
            )
        session = self._telemetry(inst, labels)
        measure_start = time.time()
        if session is not None:
            session.start()
        try:
            if idle:
                time.sleep(_scenario_seconds(prep.scenario))
                summary: dict[str, Any] = {}
            else:
                summary = prep.workload.drive(
                    inst.endpoint,
                    prep.scenario,
                    cpus=loadgen,
                    on_progress=lambda p: self.events.trial_progress(planned, p),
                )
        finally:
            if session is not None:
                samples.extend(session.stop())
        if session is not None:
            record.telemetry = session.summary()
            if session.skipped:
                record.facts["telemetry_skipped"] = session.skipped
        timeseries = summary.pop("timeseries", None) or []
        samples.extend(_timeseries_samples(timeseries, measure_start, labels))
        record.load = summary

    def _telemetry(self, inst: Instance, labels: dict[str, Any]) -> Any:
        try:
            from isobench.telemetry.session import TelemetrySession
        except ImportError:
            return None
        return TelemetrySession(
            inst,
            interval=self.bench.telemetry.interval,
            labels=labels,
            samplers=self.bench.telemetry.samplers,
        )

    # ----------------------------------------------------------------------------- the run
    def run(self, resume: bool = False) -> RunStore:
        with sigterm_as_interrupt():
            prep = self.prepare()
            done: set[int] = set()
            if resume and self.store.manifest_path.exists():
                manifest = self.store.read_manifest()
                prep.plan = [PlannedTrial(**p) for p in manifest["plan"]["order"]]
                done = {t.position for t in self.store.trials()}
                manifest["status"] = "running"
                self.store.write_manifest(manifest)
            else:
                manifest = self.manifest(prep)
                self.store.write_manifest(manifest)
            os.sched_setaffinity(0, set(prep.resources.loadgen_cpus))
            duration = _scenario_seconds(prep.scenario)
            try:
                for planned in prep.plan:
                    if planned.position in done:
                        continue
                    self.events.trial_started(planned, len(prep.plan), duration)
                    record, samples = self.run_trial(prep, planned)
                    self.store.append_trial(record, samples)
                    self._write_summary()
                    self.events.trial_finished(planned, record)
            except KeyboardInterrupt:
                manifest["status"] = "interrupted"
                self.store.write_manifest(manifest)
                raise
            manifest["status"] = "complete"
            manifest["finished"] = time.time()
            self.store.write_manifest(manifest)
        return self.store

    def _write_summary(self) -> None:
        try:
            from isobench.stats import analyze
        except ImportError:
            return
        trials = [t for t in self.store.trials() if t.status == "ok" and not t.warmup]
        self.store.write_summary(
            analyze(trials, baseline=self.bench.baseline_runtime, seed=self.bench.seed)
        )


def host_port_for(runtime: Runtime, spec: LaunchSpec) -> int:
    """The 127.0.0.1 port a trial reaches the workload on.

    A workload with a fixed port (a user's image) is reached on that very port where it shares
    the host's network; a runtime with a network of its own maps a free port to it.
    """
    if spec.port is not None and runtime.shares_host_network:
        ensure_port_free(spec.port)
        return spec.port
    return free_port()


def _scenario_seconds(scenario: dict[str, Any]) -> float:
    from isobench.benchfile import parse_duration

    if "duration" in scenario:
        return parse_duration(scenario["duration"])
    subs = scenario.get("scenarios") or {}
    values = [parse_duration(s["duration"]) for s in subs.values() if "duration" in s]
    return max(values) if values else 0.0


def _timeseries_samples(
    rows: list[dict[str, Any]], start: float, labels: dict[str, Any]
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


def default_run_dir(base: Path = Path("isobench-runs")) -> Path:
    return base / time.strftime("%Y%m%d-%H%M%S")
