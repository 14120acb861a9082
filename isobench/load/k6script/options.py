"""k6 ``options`` (and k6's CLI flags) → the engine's scenario section.

k6's rules, reproduced:

* precedence: ``--vus/--duration/--iterations/--stage`` beat the script. Giving any of
  ``--duration``, ``--iterations`` or ``--stage`` discards *all* of the script's ``duration``,
  ``iterations``, ``stages`` and ``scenarios`` (so ``--vus 10 --duration 30s`` on a script with
  ``scenarios`` runs one ``constant-vus`` scenario of the default function); ``--vus`` alone
  only replaces ``vus``;
* shortcuts → one scenario named ``default`` running ``default()``: ``iterations`` →
  ``shared-iterations`` (``duration`` becomes its ``maxDuration``), else ``duration`` →
  ``constant-vus``, else ``stages`` → ``ramping-vus`` (``vus`` is its ``startVUs``), else
  ``scenarios`` as written, else 1 VU × 1 iteration. ``iterations``/``duration`` with
  ``stages``, or a shortcut with ``scenarios`` in the same place, are k6's conflict errors.

Durations are normalised to seconds (``"90s"``; a bare number is milliseconds, as in k6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from isobench.load.k6script.errors import RUN_K6, Node, refuse
from isobench.load.scenario import parse_duration

SCENARIO_KEYS = {"executor", "exec", "env", "tags", "startTime", "gracefulStop", "vus",
                 "duration", "iterations", "stages", "startVUs", "gracefulRampDown", "rate",
                 "timeUnit", "preAllocatedVUs", "maxVUs", "startRate", "maxDuration"}
EXECUTORS = {"constant-vus", "ramping-vus", "constant-arrival-rate", "ramping-arrival-rate",
             "per-vu-iterations", "shared-iterations"}
DURATION_KEYS = ("duration", "startTime", "gracefulStop", "gracefulRampDown", "timeUnit",
                 "maxDuration")
# options that change nothing the engine measures (or only k6's own output)
IGNORED_OPTIONS = {"summaryTimeUnit", "insecureSkipTLSVerify", "httpDebug", "setupTimeout",
                   "teardownTimeout", "noUsageReport", "cloud", "ext", "throw", "batch",
                   "batchPerHost", "maxRedirects", "dns", "hosts", "tlsVersion",
                   "tlsCipherSuites", "systemTags", "consoleOutput", "linger", "paused",
                   "noColor", "discardResponseBodies", "noSetup", "noTeardown"}
HANDLED_OPTIONS = {"vus", "duration", "iterations", "stages", "scenarios", "thresholds",
                   "tags", "summaryTrendStats", "userAgent", "noConnectionReuse",
                   "noVUConnectionReuse"}


@dataclass(frozen=True)
class Overrides:
    """k6's CLI flags that change the load (None / empty: not given)."""

    vus: int | None = None
    duration: str | None = None
    iterations: int | None = None
    stages: tuple[tuple[str, float], ...] = ()

    def any_execution(self) -> bool:
        return self.duration is not None or self.iterations is not None or bool(self.stages)


def parse_stage(text: str) -> tuple[str, float]:
    """``30s:10`` (k6's ``--stage``) → ("30s", 10); ``30s`` alone keeps the target at 0."""
    dur, _, target = text.partition(":")
    try:
        parse_duration(dur)
        return dur.strip(), float(target) if target.strip() else 0.0
    except ValueError:
        raise ValueError(f"bad stage {text!r} (expected DURATION:TARGET, e.g. 30s:10)") from None


def seconds(value: Any) -> str:
    """A k6 duration (string, or number of milliseconds) as ``"<seconds>s"``."""
    s = value / 1000.0 if isinstance(value, int | float) else parse_duration(value)
    text = f"{s:.6f}".rstrip("0").rstrip(".")
    return f"{text}s"


class OptionsReader:
    """Turns evaluated options (plus :class:`Overrides`) into scenarios to translate."""

    def __init__(self, filename: str, options: Mapping[str, Any], node: Node | None) -> None:
        self.filename = filename
        self.options = dict(options)
        self.node = node

    def _refuse(self, what: str, fix: str = RUN_K6, key: str | None = None) -> Exception:
        return refuse(self.filename, _prop(self.node, key) if key else self.node, what, fix)

    def check_keys(self) -> None:
        for key, value in self.options.items():
            if key in ("noConnectionReuse", "noVUConnectionReuse") and value:
                raise self._refuse(f"the option {key}: true", "isobench's VUs keep their "
                                   f"connection alive: drop the option, or {RUN_K6}", key)
            if key not in HANDLED_OPTIONS | IGNORED_OPTIONS:
                raise self._refuse(f"the option {key!r}", f"remove it, or {RUN_K6}", key)

    def scenarios(self, cli: Overrides) -> tuple[dict[str, dict[str, Any]], bool]:
        """``{name: k6 scenario options}`` and whether it came from shortcuts (one scenario)."""
        o = self.options
        vus, duration, iters = o.get("vus"), o.get("duration"), o.get("iterations")
        stages, scen = o.get("stages"), o.get("scenarios")
        if cli.any_execution():
            duration, iters, scen = cli.duration, cli.iterations, None
            stages = [{"duration": d, "target": t} for d, t in cli.stages] or None
        if cli.vus is not None:
            vus = cli.vus
        where = "command line" if cli.any_execution() else "script options"
        vus_n = 1 if vus is None else int(vus)
        if iters is not None:
            self._conflict(stages, scen, "iterations", where)
            sc: dict[str, Any] = {"executor": "shared-iterations", "vus": vus_n,
                                  "iterations": int(iters)}
            if duration is not None:
                sc["maxDuration"] = duration
            return {"default": sc}, True
        if duration is not None:
            self._conflict(stages, scen, "duration", where)
            if parse_duration(duration if not isinstance(duration, int | float)
                              else duration / 1000.0) <= 0:
                raise self._refuse("a duration of 0", "give a duration above 0", "duration")
            return {"default": {"executor": "constant-vus", "vus": vus_n,
                                "duration": duration}}, True
        if stages:
            self._conflict(None, scen, "stages", where)
            return {"default": {"executor": "ramping-vus", "startVUs": vus_n,
                                "stages": stages}}, True
        if scen:
            if not isinstance(scen, dict):
                raise self._refuse("scenarios that are not an object", key="scenarios")
            return {str(k): dict(v) for k, v in scen.items()}, False
        return {"default": {"executor": "per-vu-iterations", "vus": 1, "iterations": 1}}, True

    def _conflict(self, stages: Any, scen: Any, shortcut: str, where: str) -> None:
        if stages:
            raise self._refuse(f"`{shortcut}` and `stages` together ({where})",
                               "keep one of them (k6 refuses both)", shortcut)
        if scen:
            raise self._refuse(f"`{shortcut}` and `scenarios` together ({where})",
                               "keep one of them (k6 refuses both)", shortcut)

    def normalise(self, name: str, sc: Mapping[str, Any]) -> dict[str, Any]:
        """A k6 scenario's options in the engine's terms (``exec``/``env`` removed)."""
        unknown = sorted(set(sc) - SCENARIO_KEYS)
        if unknown:
            raise self._refuse(f"the scenario option {unknown[0]!r} (scenario {name!r})",
                               f"remove it, or {RUN_K6}", "scenarios")
        executor = sc.get("executor")
        if executor not in EXECUTORS:
            raise self._refuse(f"the executor {executor!r} (scenario {name!r})",
                               f"use one of {', '.join(sorted(EXECUTORS))}, or {RUN_K6}",
                               "scenarios")
        out: dict[str, Any] = {k: v for k, v in sc.items() if k not in ("exec", "env")}
        try:
            for key in DURATION_KEYS:
                if key in out:
                    out[key] = seconds(out[key])
            if "stages" in out:
                out["stages"] = [{"duration": seconds(s["duration"]), "target": s["target"]}
                                 for s in out["stages"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise self._refuse(f"a bad duration or stage in scenario {name!r} ({exc})",
                               "write durations as 30s, 1m30s or 500ms", "scenarios") from None
        tags = {**{k: str(v) for k, v in (self.options.get("tags") or {}).items()},
                **{k: str(v) for k, v in (sc.get("tags") or {}).items()}}
        if tags:
            out["tags"] = tags
        return out


def _prop(node: Node | None, key: str) -> Node | None:
    """The property node ``key`` of an object literal (for line:column), or ``node``."""
    if node is None or node.get("type") != "ObjectExpression":
        return node
    for p in node.get("properties", []):
        k = p.get("key") or {}
        if k.get("name") == key or k.get("value") == key:
            return p
    return node
