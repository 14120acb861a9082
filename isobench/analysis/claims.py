"""An article's figures beside isobench's measurement of the same thing, with a verdict on each."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from isobench.config.presets import ArticleClaim, Preset
from isobench.results import TrialRecord


def _per_wall(trial: TrialRecord, key: str, scale: float) -> float | None:
    value, wall = trial.telemetry.get(key), trial.telemetry.get("cpu_wall_seconds")
    if value is None or not wall:
        return None
    return float(value) / float(wall) * scale


def _net_kb_per_s(trial: TrialRecord) -> float | None:
    rx, tx = trial.telemetry.get("net_rx_bytes"), trial.telemetry.get("net_tx_bytes")
    wall = trial.telemetry.get("cpu_wall_seconds")
    if rx is None or tx is None or not wall:
        return None
    return (float(rx) + float(tx)) / float(wall) / 1000.0


DERIVED: dict[str, Callable[[TrialRecord], float | None]] = {
    # what the runtime costs the host in user CPU, as % of one core (mpstat's %usr for that core)
    "cpu_user_percent": lambda t: _per_wall(t, "cpu_user_seconds", 100.0),
    # bytes in + out at the runtime's boundary per second (what nethogs shows per process)
    "net_kb_per_s": _net_kb_per_s,
    "cpu_user_percent_guest": lambda t: t.telemetry.get("guest_cpu_user_percent_mean"),
}
"""Figures computed from a trial's telemetry summary."""


@dataclass(frozen=True)
class ClaimCheck:
    """One article claim checked: the article's two figures, isobench's two, and the verdict."""

    label: str
    unit: str
    article: dict[str, float]
    measured: dict[str, float | None]
    runtimes: dict[str, str]
    verdict: str


def measured_value(
    claim: ArticleClaim, trials: Sequence[TrialRecord], runtime: str, sizes: Mapping[str, int]
) -> float | None:
    """Median over a runtime's ok trials of the figure a claim names (``size``: the bytes of the
    artifact the runtime runs, from ``sizes``, keyed by runtime)."""
    if claim.metric == "size":
        size = sizes.get(runtime)
        return None if size is None else float(size)
    values: list[float] = []
    for trial in trials:
        if trial.arm != runtime or trial.status != "ok":
            continue
        value: float | None
        if claim.metric.startswith("load:"):
            _, metric, stat = claim.metric.split(":", 2)
            value = trial.metric(metric, stat)
        elif claim.metric.startswith("telemetry:"):
            raw = trial.telemetry.get(claim.metric.split(":", 1)[1])
            value = None if raw is None else float(raw)
        elif claim.metric.startswith("derived:"):
            value = DERIVED[claim.metric.split(":", 1)[1]](trial)
        elif claim.metric == "startup_s":
            value = trial.startup_s
        else:
            value = None
        if value is not None:
            values.append(value * claim.scale)
    return statistics.median(values) if values else None


def _gap(values: Mapping[str, float | None]) -> float | None:
    vm, ctr = values.get("vm"), values.get("container")
    if vm is None or ctr is None or vm == 0:
        return None
    return (ctr - vm) / vm


def _verdict(claim: ArticleClaim, measured: dict[str, float | None], vm_emulated: bool) -> str:
    art_gap = _gap(claim.values)
    got_gap = _gap(measured)
    art = "n/a" if art_gap is None else f"{art_gap * 100:+.1f} %"
    if got_gap is None:
        return f"article: container vs VM {art}; not measured here"
    got = f"{got_gap * 100:+.1f} %"
    if vm_emulated and claim.metric != "size":
        return (
            f"article: container vs VM {art}; isobench {got}, but the VM ran under TCG "
            "(emulated) — not comparable, no verdict on this claim"
        )
    same_sign = (art_gap or 0) * got_gap > 0
    return f"article: container vs VM {art}; isobench {got} — " + (
        "same direction" if same_sign else "NOT reproduced"
    )


def check_claims(
    preset: Preset,
    trials: Sequence[TrialRecord],
    sizes: Mapping[str, int],
    emulated: Mapping[str, bool],
) -> list[ClaimCheck]:
    """Every claim of a preset, checked against the trials of a run (``sizes``: runtime → bytes
    of its artifact, see ``report.rundata.image_size``)."""
    out = []
    for claim in preset.claims:
        measured = {
            side: measured_value(claim, trials, runtime, sizes)
            for side, runtime in preset.sides.items()
        }
        vm_emulated = bool(emulated.get(preset.sides.get("vm", "vm")))
        out.append(
            ClaimCheck(
                claim.label,
                claim.unit,
                dict(claim.values),
                measured,
                dict(preset.sides),
                _verdict(claim, measured, vm_emulated),
            )
        )
    return out


def claims_json(checks: Sequence[ClaimCheck]) -> list[dict[str, Any]]:
    return [c.__dict__ for c in checks]
