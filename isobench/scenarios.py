"""Resolving a scenario name (or mapping) into the load scenario a trial drives.

Names: ``default`` (the workload's saturating scenario), ``idle`` (runtime up, no load: idle
overhead), ``steady`` (a fixed low request rate), or any ``<name>`` the workload offers as a
``<name>_scenario()`` method (``seed-003`` → ``seed_scenario`` for the records API).
"""

from __future__ import annotations

import copy
from typing import Any

from isobench.errors import ConfigError
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
    """A copy of ``scenario`` whose duration(s) are ``seconds``."""
    out = copy.deepcopy(scenario)
    out["duration"] = f"{seconds:g}s"
    for sub in (out.get("scenarios") or {}).values():
        if isinstance(sub, dict) and "duration" in sub:
            sub["duration"] = f"{seconds:g}s"
    return out


def resolve(workload: Workload, scenario: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, scenario mapping) for a benchfile's ``scenario`` entry."""
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
