"""Resolving a scenario name (or mapping) into the load scenario a trial drives.

Names: ``default`` (the workload's saturating scenario), ``idle`` (runtime up, no load: idle
overhead), ``steady`` (a fixed low request rate), or any ``<name>`` the workload offers as a
``<name>_scenario()`` method (``seed-003`` → ``seed_scenario`` for the records API). The entry
``{"k6": script-or-{script, vus, duration, iterations, stages}, "k6_env": {...}}`` (what a
benchfile's ``k6:`` becomes) is a k6 script translated by :mod:`isobench.load.k6script`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from isobench.errors import ConfigError
from isobench.load.scenario import parse_duration
from isobench.workloads.base import Workload

IDLE = "idle"
STEADY_RATE = 5

_ALIASES = {"seed-003": "seed", "seed-000": "default"}


def _method_name(name: str) -> str:
    return _ALIASES.get(name, name).replace("-", "_") + "_scenario"


def available(workload: Workload) -> list[str]:
    names = {"default", IDLE, "steady"}
    for attr in dir(workload):
        if attr.endswith("_scenario") and callable(getattr(workload, attr)):
            names.add(attr[: -len("_scenario")].replace("_", "-"))
    return sorted(names)


def with_duration(scenario: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A copy of ``scenario`` whose duration(s) are ``seconds``.

    Ramping scenarios (``stages``) keep their shape, stretched or shrunk to ``seconds``; with
    ``scenarios`` only the sub-scenarios change (a top-level ``duration`` would be refused).
    """
    out = copy.deepcopy(scenario)
    subs = out.get("scenarios")
    if isinstance(subs, dict):
        for sub in subs.values():
            if isinstance(sub, dict) and sub.get("stages"):
                _scale_stages(sub, seconds)
            elif isinstance(sub, dict) and "duration" in sub:
                sub["duration"] = f"{seconds:g}s"
        return out
    if out.get("stages") and str(out.get("executor", "")).startswith("ramping"):
        _scale_stages(out, seconds)
        return out
    out["duration"] = f"{seconds:g}s"
    return out


def resolve_k6(spec: str | dict[str, Any], env: dict[str, str] | None = None
               ) -> tuple[str, dict[str, Any]]:
    """(``k6:<file name>``, engine scenario) of a k6 script with k6's CLI overrides."""
    from isobench.load.k6script import Overrides, parse_stage, translate_file

    if isinstance(spec, str):
        spec = {"script": spec}
    try:
        stages = tuple(parse_stage(s) for s in spec.get("stages") or ())
    except ValueError as exc:
        raise ConfigError(f"k6 --stage: {exc}",
                          fix="write it as 30s:10 (duration:target)") from None
    over = Overrides(vus=spec.get("vus"), duration=spec.get("duration"),
                     iterations=spec.get("iterations"), stages=stages)
    script = str(spec["script"])
    return f"k6:{Path(script).name}", translate_file(script, env=env or {}, overrides=over)


def _scale_stages(sc: dict[str, Any], seconds: float) -> None:
    """Stretch or shrink ``sc``'s stages (same shape) to last ``seconds`` in all."""
    total = sum(parse_duration(s["duration"]) for s in sc["stages"])
    factor = seconds / total if total > 0 else 0.0
    sc["stages"] = [{**s, "duration": f"{parse_duration(s['duration']) * factor:g}s"}
                    for s in sc["stages"]]


def resolve(workload: Workload, scenario: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, scenario mapping) for a benchfile's ``scenario`` entry."""
    if isinstance(scenario, dict) and "k6" in scenario and set(scenario) <= {"k6", "k6_env"}:
        return resolve_k6(scenario["k6"], scenario.get("k6_env"))
    if isinstance(scenario, dict):
        return str(scenario.get("name", "custom")), copy.deepcopy(scenario)
    if scenario == IDLE:
        return IDLE, {"executor": IDLE, "duration": "30s"}
    if scenario == "steady" and not hasattr(workload, "steady_scenario"):
        base = workload.default_scenario()
        if "requests" not in base:
            raise ConfigError(
                f"workload '{workload.name}' has no HTTP requests for a steady scenario",
                fix=f"use one of: {', '.join(available(workload))}",
            )
        return "steady", {
            "executor": "constant-arrival-rate",
            "rate": STEADY_RATE,
            "timeUnit": "1s",
            "duration": base.get("duration", "30s"),
            "preAllocatedVUs": 4,
            "maxVUs": 16,
            "requests": base["requests"],
        }
    method = getattr(workload, _method_name(scenario), None)
    if method is None or not callable(method):
        raise ConfigError(
            f"workload '{workload.name}' has no scenario '{scenario}'",
            fix=f"use one of: {', '.join(available(workload))}",
        )
    return scenario, dict(method())
