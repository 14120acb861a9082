"""CI gates: ``--fail-if "docker-bridge:rps<-5%"`` judged on the confidence interval.

A gate names a runtime (or ``*`` for every compared runtime), a metric of the analysis (``rps``,
``p95_ms``, ``startup_s``... or ``primary`` for the run's primary metric), a direction and a limit
in percent of change against the baseline::

    docker-bridge:rps<-5%       fails when req/s is *surely* more than 5 % below the baseline
    *:p95_ms>+10%               fails when any runtime's p95 is surely more than 10 % above

"Surely" means the whole 95 % CI lies beyond the limit: for ``<`` the CI's upper bound is below
the limit, for ``>`` its lower bound is above it. So a gate fails only on a regression that is
significant *and* larger than the limit, never on noise around the point estimate. A gate whose
comparison is missing (the runtime had no usable trials) fails: a CI job must not pass because
the measurement did not happen. Emulated runtimes are skipped (their figures decide nothing).

Pure functions; the CLI maps a failed gate to exit code :data:`isobench.exitcodes.GATE_FAILED`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from isobench.errors import ConfigError
from isobench.results_model import Analysis

GATE_RE = re.compile(
    r"^\s*(?P<runtime>[A-Za-z0-9_.@*-]+)\s*:\s*(?P<metric>[A-Za-z0-9_.()]+)\s*"
    r"(?P<op>[<>])\s*(?P<limit>[+-]?\d+(?:\.\d+)?)\s*%\s*$"
)
PRIMARY = "primary"


@dataclass(frozen=True)
class Gate:
    """One parsed ``--fail-if`` condition (see the module docstring)."""

    runtime: str
    metric: str
    op: Literal["<", ">"]
    limit_pct: float
    text: str


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate for one runtime: ``status`` is passed, failed or skipped."""

    gate: Gate
    runtime: str
    metric: str
    status: Literal["passed", "failed", "skipped"]
    reason: str


def parse_gate(text: str) -> Gate:
    """Parse ``RUNTIME:METRIC<LIMIT%`` or ``RUNTIME:METRIC>LIMIT%``; a one-line ConfigError
    naming the expected form otherwise."""
    match = GATE_RE.match(text)
    if match is None:
        raise ConfigError(
            f"cannot read the gate {text!r}",
            fix='write RUNTIME:METRIC<LIMIT% or RUNTIME:METRIC>LIMIT%, '
            'e.g. "docker-bridge:rps<-5%"',
        )
    op: Literal["<", ">"] = "<" if match["op"] == "<" else ">"
    return Gate(match["runtime"], match["metric"], op, float(match["limit"]), text.strip())


def parse_gates(texts: Iterable[str] | None) -> list[Gate]:
    return [parse_gate(t) for t in (texts or [])]


def _primary_of(analysis: Analysis) -> str | None:
    if analysis.primary is not None:
        return analysis.primary
    return analysis.metric_names[0] if analysis.metrics else None


def _ci_pct(comparison: Mapping[str, Any]) -> tuple[float, float] | None:
    ci = comparison.get("ci_pct")
    if ci is None or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return None
    return float(ci[0]), float(ci[1])


def judge(gate: Gate, comparison: Mapping[str, Any]) -> tuple[Literal["passed", "failed"], str]:
    """Judge one gate on one comparison dict (``ci_pct`` = the 95 % CI of the change in %)."""
    ci = _ci_pct(comparison)
    if ci is None:
        return "failed", "no confidence interval (too few usable trials)"
    lo, hi = ci
    shown = f"change [{lo:+.1f} %, {hi:+.1f} %]"
    if gate.op == "<" and hi < gate.limit_pct:
        return "failed", f"{shown} lies wholly below {gate.limit_pct:+g} %"
    if gate.op == ">" and lo > gate.limit_pct:
        return "failed", f"{shown} lies wholly above {gate.limit_pct:+g} %"
    return "passed", f"{shown} is not wholly {'below' if gate.op == '<' else 'above'} " \
                     f"{gate.limit_pct:+g} %"


def evaluate(gates: Sequence[Gate], analysis: Analysis) -> list[GateResult]:
    """Every gate against the analysis' comparisons (one result per gate × matching runtime)."""
    comparisons = analysis.comparisons
    primary = _primary_of(analysis)
    emulated = set(analysis.emulated)
    compared = list(dict.fromkeys(str(c["runtime"]) for c in comparisons))
    out: list[GateResult] = []
    for gate in gates:
        metric = primary if gate.metric == PRIMARY else gate.metric
        runtimes = compared if gate.runtime == "*" else [gate.runtime]
        if not runtimes:
            out.append(GateResult(gate, gate.runtime, metric or gate.metric, "failed",
                                  "no runtime was compared in this run"))
        for rt in runtimes:
            found = next((c for c in comparisons
                          if c["runtime"] == rt and c["metric"] == metric), None)
            is_emulated = rt in emulated if found is None else bool(
                found.get("emulated") or found.get("emulated_runtime"))
            if is_emulated:
                out.append(GateResult(gate, rt, str(metric), "skipped",
                                      "emulated runtime: its figures decide nothing"))
            elif found is None:
                out.append(GateResult(gate, rt, str(metric), "failed",
                                      f"no comparison of {metric} for {rt} in this run"))
            else:
                status, reason = judge(gate, found)
                out.append(GateResult(gate, rt, str(metric), status, reason))
    return out


def failed(results: Iterable[GateResult]) -> list[GateResult]:
    return [r for r in results if r.status == "failed"]


def to_json(results: Iterable[GateResult]) -> list[dict[str, Any]]:
    return [
        {"gate": r.gate.text, "runtime": r.runtime, "metric": r.metric, "status": r.status,
         "reason": r.reason}
        for r in results
    ]
