"""The lifecycle of a run; the only module that knows the order of the stages.

benchfile → plan → artifacts → for each planned trial (interleaved): ``trial.Trial`` (start →
ready → warm-up → telemetry on → load → telemetry off → stop) → trial record + samples appended
→ summary rewritten. Every started instance is stopped on success, failure, timeout and
Ctrl-C/SIGTERM (SIGTERM is turned into KeyboardInterrupt so the same path runs).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from isobench import plugins, scenarios
from isobench.benchfile import Benchfile
from isobench.errors import IsobenchError, RuntimeUnavailable
from isobench.host import host_facts
from isobench.images.spec import Artifacts
from isobench.plan import PlannedTrial, make_plan
from isobench.results import RunStore, Sample, TrialRecord
from isobench.runtimes.base import Resources, Runtime, RuntimeContext
from isobench.signals import shielded, stop_signals_interrupt
from isobench.trial import (
    Trial,
    TrialSetup,
    check_replicas,
    host_port_for,
    scenario_seconds,
)
from isobench.workloads.base import Workload

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


class RoundBudget:
    """An optional time budget that ends a run between rounds, never in the middle of one (so
    every arm keeps the same number of trials)."""

    def __init__(self, seconds: float | None, arms: int) -> None:
        self.seconds = seconds
        self.arms = arms
        self.used = 0.0
        self.trials = 0
        self.reason = ""

    def spent(self, seconds: float) -> None:
        self.used += seconds
        self.trials += 1

    def allows(self, planned: PlannedTrial) -> bool:
        """True unless a new round would start that the budget cannot finish."""
        if self.seconds is None or self.trials == 0 or planned.position % self.arms != 0:
            return True
        next_round = self.used / self.trials * self.arms
        if self.used + next_round <= self.seconds:
            return True
        self.reason = (
            f"time budget: {self.used:.0f} s used of {self.seconds:.0f} s, another round needs "
            f"~{next_round:.0f} s; stopping with {planned.round} complete rounds"
        )
        return False


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
        self.primary: str | None = bench.primary
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
        spec = workload.launch_spec()
        for runtime in runtimes.values():  # fail now, in one line, not in every trial
            check_replicas(runtime, spec, self.bench.replicas)
            host_port_for(runtime, spec)
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
                "primary": self.primary_for(prep),
                "margin": self.bench.margin_fraction,
                "preset": self.bench.preset,
                "aa": self.bench.aa,
                "replicas": self.bench.replicas,
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
                "built": {name: dict(f) for name, f in prep.artifacts.facts.items()},
            },
        }

    def primary_for(self, prep: Prepared) -> str:
        """The run's primary metric: ``--primary``, else what the workload declares."""
        return self.bench.primary or prep.workload.primary_metric_for(prep.scenario)

    # ----------------------------------------------------------------------------- trials
    def _labels(self, planned: PlannedTrial) -> dict[str, Any]:
        return {"runtime": planned.arm, "trial": planned.trial, "round": planned.round}

    def run_trial(self, prep: Prepared, planned: PlannedTrial) -> tuple[TrialRecord, list[Sample]]:
        """Run one planned trial (see ``isobench.trial``); never raises but for Ctrl-C."""
        setup = TrialSetup(
            workload=prep.workload,
            runtime=prep.runtimes[planned.runtime],
            artifacts=prep.artifacts,
            scenario_name=prep.scenario_name,
            scenario=prep.scenario,
            resources=resources_for(self.bench, planned.arm, prep.resources),
            warmup_s=self.bench.warmup_s,
            replicas=self.bench.replicas,
            telemetry_interval=self.bench.telemetry.interval,
            telemetry_samplers=self.bench.telemetry.samplers,
        )
        record = TrialRecord(
            runtime=planned.arm,
            trial=planned.trial,
            position=planned.position,
            round=planned.round,
            status="failed",
            started_at=time.time(),
            ended_at=0.0,
        )
        trial = Trial(
            setup, self._labels(planned), lambda p: self.events.trial_progress(planned, p)
        )
        return trial.run(record), trial.samples

    # ----------------------------------------------------------------------------- the run
    def run(self, resume: bool = False) -> RunStore:
        with stop_signals_interrupt():
            prep = self.prepare()
            self.primary = self.primary_for(prep)
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
            duration = scenario_seconds(prep.scenario)
            budget = RoundBudget(self.bench.time_budget_s, len(arms_for(self.bench)))
            status = "complete"
            try:
                for planned in prep.plan:
                    if planned.position in done:
                        continue
                    if not budget.allows(planned):
                        status = "budget"
                        self.events.step(budget.reason)
                        break
                    self.events.trial_started(planned, len(prep.plan), duration)
                    record, samples = self.run_trial(prep, planned)
                    budget.spent(record.ended_at - record.started_at)
                    self.store.append_trial(record, samples)
                    self._write_summary()
                    self.events.trial_finished(planned, record)
            except KeyboardInterrupt:
                with shielded():
                    manifest["status"] = "interrupted"
                    self.store.write_manifest(manifest)
                raise
            manifest["status"] = status
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
            analyze(
                trials,
                baseline=self.bench.baseline_runtime,
                seed=self.bench.seed,
                min_effect=MIN_EFFECT,
                primary=self.primary,
                margin=self.bench.margin_fraction,
            )
        )


def default_run_dir(base: Path = Path("isobench-runs")) -> Path:
    return base / time.strftime("%Y%m%d-%H%M%S")
