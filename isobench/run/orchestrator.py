"""The lifecycle of a run; the only module that knows the order of the stages.

benchfile → plan → artifacts → for each planned trial (interleaved): ``trial.Trial`` (start →
ready → warm-up → telemetry on → load → telemetry off → stop) → trial record + samples appended
→ interim analysis (``summary.json``) rewritten. Every started instance is stopped on success,
failure, timeout and Ctrl-C/SIGTERM (SIGTERM is turned into KeyboardInterrupt so the same path
runs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from isobench import plugins
from isobench.config import scenarios
from isobench.config.benchfile import Benchfile
from isobench.errors import ConfigError, IsobenchError, RuntimeUnavailable
from isobench.images.spec import Artifacts
from isobench.results import RunStore, Sample, TrialRecord
from isobench.run.plan import PlannedTrial, make_plan
from isobench.run.signals import shielded, stop_signals_interrupt
from isobench.run.trial import (
    Trial,
    TrialSetup,
    check_replicas,
    host_port_for,
    scenario_seconds,
)
from isobench.run.validity import Limits
from isobench.runtimes.base import Resources, Runtime, RuntimeContext
from isobench.util.clientnet import LOCAL, ClientNet, ClientPath
from isobench.util.host import host_facts
from isobench.util.locks import run_locks
from isobench.workloads.base import Workload

if TYPE_CHECKING:
    from isobench.analysis.stats import MetricSpec

MIN_EFFECT = 0.05
"""The smallest relative difference a run is meant to resolve; noisier hosts get a warning."""


class Events(Protocol):
    """What the orchestrator tells the user interface while it works."""

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
        self._round = -1

    def spent(self, seconds: float) -> None:
        self.used += seconds
        self.trials += 1

    def allows(self, planned: PlannedTrial, running: int | None = None) -> bool:
        """True unless a new round would start that the budget cannot finish; ``running`` is how
        many arms the next round runs (fewer than all once some sit out)."""
        if self.seconds is None or planned.round == self._round:
            return True
        self._round = planned.round
        if self.trials == 0:
            return True
        next_round = self.used / self.trials * (running or self.arms)
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


def workload_options_for(bench: Benchfile, arm: str) -> dict[str, Any]:
    """The workload options of one arm: the run's, with the arm's own merged over them."""
    spec = (bench.arms or {}).get(arm)
    return {**bench.workload_options, **(spec.workload_options if spec else {})}


def arm_options(bench: Benchfile) -> dict[str, dict[str, Any]]:
    """Arm name → its merged workload options, for the arms that have options of their own."""
    return {
        name: workload_options_for(bench, name)
        for name, spec in (bench.arms or {}).items()
        if spec.workload_options
    }


def check_same_rootfs(main: Workload, arm: str, other: Workload) -> None:
    """ConfigError unless ``other`` (an arm's workload) builds exactly ``main``'s rootfs."""
    if other.rootfs_spec() != main.rootfs_spec():
        raise ConfigError(
            f"arm '{arm}': its workload_options change the rootfs, so the arms would not run "
            "the same bits",
            fix="give arms only options that change the load (e.g. work_units), not the image",
        )


@dataclass
class Prepared:
    workload: Workload
    runtimes: dict[str, Runtime]
    artifacts: Artifacts
    scenario_name: str
    scenario: dict[str, Any]
    resources: Resources
    plan: list[PlannedTrial] = field(default_factory=list)
    per_arm: dict[str, tuple[Workload, dict[str, Any]]] = field(default_factory=dict)
    """Arms with workload options of their own → (their workload, their scenario)."""
    arm_runtimes: dict[str, Runtime] = field(default_factory=dict)
    """Arms with runtime options of their own → their runtime, those options set."""


class RunOrchestrator:
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
        self.settled: set[str] = set()
        """Arms that sit out the later rounds of a ``precision`` run (see ``_precise_after``)."""
        self.ctx = ctx or RuntimeContext(run_id=store.root.name, work_dir=store.root / "work")
        self.remote: ClientPath = LOCAL
        """The remote client's path for the run (made in :meth:`run` when an arm needs it)."""

    # ----------------------------------------------------------------------------- preparation
    def load_workload(self, options: dict[str, Any] | None = None) -> Workload:
        cls = plugins.load("workload", self.bench.workload)
        opts = self.bench.workload_options if options is None else options
        cls.check_options(opts)
        workload: Workload = cls(opts)
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

    def load_arm_runtimes(self) -> dict[str, Runtime]:
        """Arm → its own runtime object, for arms with ``runtime_options`` (checked by the
        runtime class: a bad option is a one-line ConfigError before anything starts)."""
        out: dict[str, Runtime] = {}
        for arm, spec in (self.bench.arms or {}).items():
            if spec.runtime_options:
                cls = plugins.load("runtime", spec.runtime)
                options = cls.check_options(spec.runtime_options)
                out[arm] = cls(self.ctx)
                out[arm].options = options
        return out

    def prepare(self) -> Prepared:
        from isobench.images.build import build_artifacts

        self.events.step("checking workload and runtimes")
        workload = self.load_workload()
        runtimes = self.load_runtimes()
        arm_runtimes = self.load_arm_runtimes()
        scenario_name, scenario = self._scenario(workload)
        workload.check_scenario(scenario)  # an unknown executor fails here, not in every trial
        self.primary_of(workload, scenario)  # so does an unknown --primary
        per_arm: dict[str, tuple[Workload, dict[str, Any]]] = {}
        for arm, options in arm_options(self.bench).items():
            own = self.load_workload(options)
            check_same_rootfs(workload, arm, own)
            per_arm[arm] = (own, self._scenario(own)[1])
            own.check_scenario(per_arm[arm][1])
        self._check_clients([workload, *(w for w, _ in per_arm.values())],
                            {**runtimes, **arm_runtimes})
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
        plan = make_plan(arms_for(self.bench), self.bench.planned_rounds, self.bench.seed)
        return Prepared(
            workload, runtimes, artifacts, scenario_name, scenario, resources, plan, per_arm,
            arm_runtimes,
        )

    def clients(self) -> dict[str, str]:
        """Arm name → ``local`` or ``remote`` (see ``isobench.util.clientnet``)."""
        return {arm: self.bench.client_for(arm) for arm in arms_for(self.bench)}

    def _check_clients(self, workloads: Sequence[Workload],
                       runtimes: Mapping[str, Runtime]) -> None:
        """A remote client needs a workload whose ``drive`` can take it, a runtime that can be
        reached from it and one replica (``runtimes``: runtime or arm name → its object)."""
        clients = self.clients()
        if "remote" not in clients.values():
            return
        for arm, runtime_name in arms_for(self.bench).items():
            runtime = runtimes.get(arm) or runtimes.get(runtime_name)
            if clients[arm] == "remote" and runtime is not None and runtime.remote_client_refused:
                raise ConfigError(f"arm '{arm}' ({runtime_name}) cannot take a remote client: "
                                  f"{runtime.remote_client_refused}",
                                  fix=f"give arm '{arm}' client: local" if self.bench.arms
                                  else f"use --client local, or leave {runtime_name} out")
        for workload in workloads:
            if not workload.drives_remote():
                raise ConfigError(f"workload '{workload.name}' runs its own client, which "
                                  "cannot run remote yet", fix="use --client local")
        if self.bench.replicas > 1:
            raise ConfigError("--client remote drives one replica",
                              fix="use --replicas 1, or --client local")

    @contextlib.contextmanager
    def _client_net(self) -> Iterator[None]:
        """The remote client's namespace and veth for the block, when an arm needs them;
        removed however the block ends (Ctrl-C included: shielded)."""
        if "remote" not in self.clients().values():
            yield
            return
        net = ClientNet(self.ctx.runner, self.ctx.run_id)
        try:
            self.remote = net.open()
            self.events.step(f"remote client: netns {self.remote.netns}, workload on "
                             f"{self.remote.address} ({self.remote.host_iface})")
            yield
        finally:
            with shielded():
                net.close()
                self.remote = LOCAL

    def client_of(self, arm: str) -> ClientPath:
        return self.remote if self.bench.client_for(arm) == "remote" else LOCAL

    def _scenario(self, workload: Workload) -> tuple[str, dict[str, Any]]:
        name, scenario = scenarios.resolve(workload, self.bench.scenario)
        if self.bench.duration_s is not None:
            scenario = scenarios.with_duration(scenario, self.bench.duration_s)
        return name, scenario

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
        env = shown_env if self.bench.show_env else redact_env  # values only on --show-env
        return {
            "run_id": self.store.root.name,
            "created_at": time.time(),
            "status": "running",
            "benchfile": env(self.bench.model_dump()),
            "config": {
                "workload": prep.workload.name,
                "workload_options": env(prep.workload.options),
                "scenario_name": prep.scenario_name,
                "scenario": prep.scenario,
                "runtimes": list(self.bench.runtimes),
                "baseline": self.bench.baseline_runtime,
                "arms": arms_for(self.bench),
                "arm_workload_options": env(arm_options(self.bench)),
                "arm_scenarios": {arm: sc for arm, (_, sc) in prep.per_arm.items()},
                "arm_runtime_options": {arm: rt.options for arm, rt in prep.arm_runtimes.items()},
                "trials": self.bench.trials,
                "warmup_s": self.bench.warmup_s,
                "min_effect": MIN_EFFECT,
                "primary": self.primary_for(prep),
                "margin": self.bench.margin_fraction,
                "alpha": self.bench.analysis_alpha,
                "precision": self.bench.precision_fraction,
                "preset": self.bench.preset,
                "aa": self.bench.aa,
                "replicas": self.bench.replicas,
                "client": self.bench.client,
                "arm_clients": self.clients(),
                "remote_client": self.remote.facts() if self.remote.remote else None,
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
        """The run's primary metric (see :meth:`primary_of`)."""
        return self.primary_of(prep.workload, prep.scenario)

    def primary_of(self, workload: Workload, scenario: dict[str, Any]) -> str:
        """``--primary`` (one of the workload's metrics, else a one-line ConfigError), else
        what the workload declares for ``scenario``."""
        if self.bench.primary is None:
            return workload.primary_metric_for(scenario)
        from isobench.analysis.stats import IDLE_METRICS

        names = [m.name for m in (*workload.metric_specs(), *IDLE_METRICS)]
        if self.bench.primary not in names:
            raise ConfigError(f"unknown primary metric '{self.bench.primary}' for workload "
                              f"{workload.name}",
                              fix=f"use one of: {', '.join(dict.fromkeys(names))}")
        return self.bench.primary

    # ----------------------------------------------------------------------------- trials
    def _labels(self, planned: PlannedTrial) -> dict[str, Any]:
        return {"runtime": planned.arm, "trial": planned.trial, "round": planned.round}

    def run_trial(self, prep: Prepared, planned: PlannedTrial) -> tuple[TrialRecord, list[Sample]]:
        """Run one planned trial (see ``isobench.run.trial``); never raises but for Ctrl-C."""
        workload, scenario = prep.per_arm.get(planned.arm, (prep.workload, prep.scenario))
        setup = TrialSetup(
            workload=workload,
            runtime=prep.arm_runtimes.get(planned.arm) or prep.runtimes[planned.runtime],
            artifacts=prep.artifacts,
            scenario_name=prep.scenario_name,
            scenario=scenario,
            resources=resources_for(self.bench, planned.arm, prep.resources),
            warmup_s=self.bench.warmup_s,
            replicas=self.bench.replicas,
            telemetry_interval=self.bench.telemetry.interval,
            telemetry_samplers=self.bench.telemetry.samplers,
            limits=Limits(max_error_rate=self.bench.max_error_rate,
                          allow_exposed=self.bench.allow_exposed),
            client=self.client_of(planned.arm),
        )
        record = TrialRecord(
            arm=planned.arm,
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
        res = self.bench.resources  # the run dir and pinned CPUs are this run's until it ends
        with (stop_signals_interrupt(),
              run_locks(self.store.root, [*res.cpus, *res.loadgen_cpus]),
              contextlib.ExitStack() as stack):
            prep = self.prepare()
            stack.enter_context(self._client_net())
            self.primary = self.primary_for(prep)
            done: set[int] = set()
            if resume and self.store.manifest_path.exists():
                dropped = self.store.repair()  # a trial cut short by a crash or a full disk
                if dropped:
                    self.events.step(f"dropped {dropped} bytes of samples of an unfinished trial")
                manifest = self.store.read_manifest()
                prep.plan = [PlannedTrial(**p) for p in manifest["plan"]["order"]]
                done = {t.position for t in self.store.trials()}
                manifest["status"] = "running"
                self.store.write_manifest(manifest)
            else:
                manifest = self.manifest(prep)
                self.store.write_private_benchfile(self.bench.model_dump())
                self.store.write_manifest(manifest)
            os.sched_setaffinity(0, set(prep.resources.loadgen_cpus))
            duration = scenario_seconds(prep.scenario)
            arms = arms_for(self.bench)
            budget = RoundBudget(self.bench.time_budget_s, len(arms))
            emulated = {a for a, rt in arms.items() if prep.runtimes[rt].emulated}
            self.settled = set()
            status = "complete"
            try:
                for i, planned in enumerate(prep.plan):
                    round_ends = (i + 1 == len(prep.plan)
                                  or prep.plan[i + 1].round != planned.round)
                    if planned.position not in done and planned.arm not in self.settled:
                        if not budget.allows(planned, len(arms) - len(self.settled)):
                            status = "budget"
                            self.events.step(budget.reason)
                            break
                        self.events.trial_started(planned, len(prep.plan), duration)
                        record, samples = self.run_trial(prep, planned)
                        budget.spent(record.ended_at - record.started_at)
                        self.store.append_trial(record, samples)
                        if self._note_path(manifest, planned.arm, record):
                            self.store.write_manifest(manifest)
                        self._write_interim_analysis()
                        self.events.trial_finished(planned, record)
                    if round_ends and self._precise_after(planned.round, emulated):
                        status = "precise"
                        break
            except KeyboardInterrupt:
                with shielded():
                    manifest["status"] = "interrupted"
                    self.store.write_manifest(manifest)
                raise
            manifest["status"] = status
            manifest["finished"] = time.time()
            self.store.write_manifest(manifest)
        return self.store

    @staticmethod
    def _note_path(manifest: dict[str, Any], arm: str, record: TrialRecord) -> bool:
        """Record the arm's network path and client in ``manifest["network_paths"]`` the first
        time a trial of it reports one (the report says which path each arm took); True when
        the manifest changed."""
        path = record.facts.get("network_path")
        paths = manifest.setdefault("network_paths", {})
        if not path or arm in paths:
            return False
        paths[arm] = {"path": path, "client": record.facts.get("client", "local"),
                      "target": record.facts.get("client_target", "127.0.0.1")}
        return True

    def _precise_after(self, round_index: int, emulated: set[str]) -> bool:
        """With ``precision``: after each complete round from the minimum on, whether every
        primary comparison is decided or precise enough (see ``analysis.sequential``).

        Arms that need no more trials go into ``self.settled`` and sit out the later rounds:
        a decided or precise-enough arm, and an emulated one (its figures get no verdict, so
        more rounds of it answer nothing). The baseline never sits out: every later round
        pairs the open arms with it, as the paired estimator needs.
        """
        target = self.bench.precision_fraction
        if target is None or round_index + 1 < self.bench.trials:
            return False
        from isobench.analysis.sequential import look, should_stop

        looks = look(self.store.trials(), baseline=self.bench.baseline_runtime,
                     primary=self.primary, margin=self.bench.margin_fraction,
                     precision=target, emulated=emulated, seed=self.bench.seed)
        self.events.step(f"round {round_index + 1}: " + ", ".join(x.text() for x in looks))
        if should_stop(looks):
            self.events.step(f"every verdict decided or within \u00b1{target * 100:g} %: "
                             f"stopping after {round_index + 1} rounds")
            return True
        baseline = self.bench.baseline_runtime
        newly = ({x.runtime for x in looks if x.done} | emulated) - {baseline} - self.settled
        if newly:
            self.events.step("no more rounds needed for " + ", ".join(sorted(newly))
                             + f"; later rounds run {baseline} and the open arms only")
            self.settled |= newly
        return False

    def _write_interim_analysis(self) -> None:
        """Rewrite ``summary.json``: the analysis of the trials so far."""
        try:
            from isobench.analysis.stats import analyze
        except ImportError:
            return
        trials = [t for t in self.store.trials() if t.status == "ok" and not t.warmup]
        self.store.write_interim_analysis(
            analyze(
                trials,
                baseline=self.bench.baseline_runtime,
                seed=self.bench.seed,
                min_effect=MIN_EFFECT,
                primary=self.primary,
                margin=self.bench.margin_fraction,
                alpha=self.bench.analysis_alpha,
                metrics=self._metric_specs(),
            )
        )

    def _metric_specs(self) -> Sequence[MetricSpec]:
        """The workload's own metrics (``Workload.metric_specs``), primary first."""
        cls = plugins.load("workload", self.bench.workload)
        return cls(self.bench.workload_options).metric_specs()


REDACTED = "<redacted>"


def redact_env(data: Any) -> Any:
    """``data`` with the values of every ``env`` entry hidden (keys kept): a workload's
    environment may carry tokens, and manifests and reports are shared. ``env`` may be a
    mapping or a list of ``KEY=VALUE``."""
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("env", "k6_env") and isinstance(value, Mapping):
                out[key] = {k: REDACTED for k in value}
            elif key in ("env", "k6_env") and isinstance(value, list | tuple):
                out[key] = [f"{str(v).split('=', 1)[0]}={REDACTED}" for v in value]
            else:
                out[key] = redact_env(value)
        return out
    if isinstance(data, list | tuple):
        return [redact_env(v) for v in data]
    return data


def shown_env(data: Any) -> Any:
    """``data`` unchanged: ``show_env`` (``--show-env``) asked for environment values."""
    return data


def dry_run(bench: Benchfile) -> list[str]:
    """What ``run --dry-run`` prints: the plan and its estimated time; builds and starts nothing."""
    from isobench.run.plan import describe, estimate_seconds
    from isobench.run.trial import scenario_seconds

    workload: Workload = plugins.load("workload", bench.workload)(bench.workload_options)
    _, scenario = scenarios.resolve(workload, bench.scenario)
    if bench.duration_s is not None:
        scenario = scenarios.with_duration(scenario, bench.duration_s)
    plan = make_plan(arms_for(bench), bench.planned_rounds, bench.seed)
    start = {name: float(plugins.load("runtime", name).typical_start_s)
             for name in set(arms_for(bench).values())}
    per_trial = bench.warmup_s + scenario_seconds(scenario) + 1.0
    lines = describe(plan, estimate_seconds(plan, per_trial, start))
    if bench.precision_fraction is not None:
        budget = bench.time_budget_s or 0.0
        lines.append(f"stops early once every primary verdict is decided or within "
                     f"\u00b1{bench.precision_fraction * 100:g} % (looked at after round "
                     f"{bench.trials} and each one after); time budget {budget / 60:g} min")
    return lines


def default_run_dir(base: Path = Path("isobench-runs")) -> Path:
    return base / time.strftime("%Y%m%d-%H%M%S")
