"""``isobench explain --from A --to B``: a gap broken down one layer at a time.

The target runtime's class names the configurations between the two runtimes
(``Runtime.ladder_from``: for Docker, native → a bare container → + seccomp → + cgroup limits →
+ logging → … → docker-bridge); each configuration becomes one arm of ONE interleaved run (arms
are ``ArmModel``s with ``runtime_options`` and, where the build has the remote load-client path,
a ``client``), so drift falls on every step alike and each step is paired by round with the one
before (:mod:`isobench.analysis.ladder`). The ladder is written to ``ladder.json`` in the run
directory, where ``isobench report`` finds it again (waterfall chart:
:mod:`isobench.report.ladder`).

Everything here but :func:`run_explain` is pure or reads only the registry.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from isobench import plugins
from isobench.config.benchfile import ArmModel, Benchfile, load_benchfile
from isobench.errors import ConfigError, IsobenchError
from isobench.results import RunStore, atomic_write_json
from isobench.runtimes.base import LadderStep

LADDER_FILE = "ladder.json"
EventsFactory = Callable[[], AbstractContextManager[Any]]


def has_client_path() -> bool:
    """Whether arms can choose their load-client path (``ArmModel.client``: local/remote)."""
    return "client" in ArmModel.model_fields


def ladder_pairs() -> list[tuple[str, str]]:
    """Every (from, to) pair of registered runtimes that has a ladder."""
    names = plugins.names("runtime")
    pairs = []
    for target in names:
        try:
            cls = plugins.load("runtime", target)
        except Exception:  # a third-party plug-in that does not load has no ladder
            continue
        pairs += [(source, target) for source in names
                  if source != target and cls.ladder_from(source, remote_client=True)]
    return pairs


def ladder(source: str, target: str, *, remote_client: bool | None = None,
           ) -> tuple[list[LadderStep], list[str]]:
    """The steps from ``source`` to ``target`` and notes on what is not measured apart; a
    one-line ConfigError naming the pairs that have a ladder otherwise."""
    plugins.load("runtime", source)  # an unknown name fails with the valid names
    cls = plugins.load("runtime", target)
    remote = has_client_path() if remote_client is None else remote_client
    steps = cls.ladder_from(source, remote_client=remote)
    if not steps:
        pairs = ", ".join(f"{a}\u2192{b}" for a, b in ladder_pairs()) or "none"
        raise ConfigError(f"isobench explain has no ladder from {source} to {target}",
                          fix=f"explain one of: {pairs}")
    notes = []
    full = cls.ladder_from(source, remote_client=True) or []
    if len(full) > len(steps):
        left = ", ".join(s.arm for s in full if s.arm not in {x.arm for x in steps})
        notes.append(f"steps {left} left out: they need the remote load-client path (a per-arm "
                     "`client`), which this build lacks")
    return list(steps), notes


def arms_data(steps: list[LadderStep], client_path: bool) -> dict[str, dict[str, Any]]:
    """The benchfile ``arms`` of a ladder: one arm per step, in order."""
    arms: dict[str, dict[str, Any]] = {}
    for step in steps:
        if step.arm in arms:
            raise ValueError(f"ladder step {step.arm} appears twice")
        arm: dict[str, Any] = {"runtime": step.runtime}
        if step.options:
            arm["runtime_options"] = dict(step.options)
        if client_path:
            arm["client"] = step.client or "local"
        elif step.client == "remote":
            raise ValueError(f"ladder step {step.arm} needs the remote client path")
        arms[step.arm] = arm
    return arms


def explain_benchfile(steps: list[LadderStep], overrides: Mapping[str, Any]) -> Benchfile:
    """The run's benchfile: the user's settings (workload, trials, durations, resources...)
    with the ladder's arms, the first step the baseline."""
    data = {k: v for k, v in overrides.items() if k not in ("runtimes", "arms", "baseline", "aa")}
    data["arms"] = arms_data(steps, has_client_path())
    data["baseline"] = steps[0].arm
    return load_benchfile(None, data)


def ladder_document(source: str, target: str, steps: list[LadderStep],
                    notes: list[str]) -> dict[str, Any]:
    """``ladder.json``: the steps in order (arm, label, runtime, options, client, note)."""
    return {
        "version": 1,
        "from": source,
        "to": target,
        "steps": [{"arm": s.arm, "label": s.label, "runtime": s.runtime,
                   "options": dict(s.options), "client": s.client, "note": s.note}
                  for s in steps],
        "notes": notes,
    }


def run_explain(source: str, target: str, out: Path, overrides: Mapping[str, Any], *,
                events: EventsFactory | None = None) -> RunStore:
    """Run the ladder into ``out`` (a run directory with ``ladder.json``); returns its store.
    Nothing is made when the pair or the settings are refused (ConfigError)."""
    from isobench.run.orchestrator import NullEvents, RunOrchestrator

    steps, notes = ladder(source, target)
    bench = explain_benchfile(steps, overrides)
    made = not out.exists()
    store = RunStore(out)
    atomic_write_json(store.root / LADDER_FILE, ladder_document(source, target, steps, notes))
    affinity = os.sched_getaffinity(0)
    try:
        with events() if events else nullcontext(NullEvents()) as sink:
            RunOrchestrator(bench, store, sink).run()
    except IsobenchError:
        if made and not store.manifest_path.exists():  # refused before the run began
            shutil.rmtree(store.root, ignore_errors=True)
        raise
    finally:
        os.sched_setaffinity(0, affinity)  # the orchestrator pins this process to the load CPUs
    return store
