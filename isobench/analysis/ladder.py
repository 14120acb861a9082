"""Why is it slower? A gap broken down step by step (``isobench explain``).

A ladder is one interleaved run whose arms are configurations ``a_0`` (the baseline) … ``a_n``
(the target), each adding one layer to the one before. Step ``i``'s effect is the ratio
``a_i / a_{i-1}`` on the primary metric, estimated like every comparison of the tool
(:func:`isobench.analysis.stats.estimate`: paired within rounds, geometric mean of the per-round
ratios, Student-t ∪ bootstrap CI; unpaired fallback with fewer than 2 complete rounds), and
judged by the same three-way rule (:func:`isobench.analysis.verdicts.decide`). Each step's CI is
at its own level (95 %): with k steps, the chance that at least one of them excludes 1 by
chance is up to ``1 − 0.95^k``, which the result states.

**Product vs end-to-end.** The end-to-end ratio ``a_n / a_0`` is estimated directly, and the
product of the step ratios is compared with it: they *agree* when the product lies inside the
end-to-end CI. On rounds where every arm has a usable trial the per-round log ratios telescope
(``Σ ln(a_i/a_{i−1}) = ln(a_n/a_0)`` round by round), so the product of the steps' geometric
means then equals the end-to-end ratio exactly: the check confirms the steps account for the
whole gap, and a disagreement means steps were paired on different rounds (failed trials), whose
drift no longer cancels — the steps then do not add up to the gap and must not be read as its
parts. What one ladder cannot show is an interaction in the factorial sense (whether a layer
would cost the same added in another order): each step is measured on top of the layers before
it, and the result says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from isobench.analysis.metrics import IDLE_SCENARIO, MetricSpec, scenario_of, usable
from isobench.analysis.stats import estimate
from isobench.analysis.verdicts import decide
from isobench.results import TrialRecord

LADDER_VERSION = 1
Values = list[tuple[int, float]]


@dataclass(frozen=True)
class Step:
    """One rung as the analysis needs it: its arm, what it adds, and a note."""

    arm: str
    label: str
    note: str = ""


@dataclass(frozen=True)
class StepEffect:
    """The effect of one step (or of the whole ladder) on the primary metric.

    Attributes:
        arm, previous: the arm and the one it is compared with (``ratio = arm / previous``).
        ratio, low, high: the estimate and its 95 % CI (None with too few trials).
        verdict: ``slower``/``faster``/``equivalent``/``inconclusive`` (worse/better in the
            metric's direction) or ``too_few``.
        n: pairs (paired) or the smaller arm's trials (unpaired); ``estimator`` which.
        cumulative: the product of the step ratios up to and including this one.
    """

    arm: str
    previous: str
    label: str
    ratio: float | None
    low: float | None
    high: float | None
    verdict: str
    n: int = 0
    estimator: str | None = None
    cumulative: float | None = None
    note: str = ""


@dataclass(frozen=True)
class LadderResult:
    """Every step's effect, the end-to-end effect, and whether their product agrees."""

    metric: str
    metric_label: str
    unit: str
    better: str
    steps: list[StepEffect]
    total: StepEffect
    product: float | None
    agree: bool | None
    complete_rounds: int
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"version": LADDER_VERSION, **asdict(self)}


def _values(trials: Sequence[TrialRecord], spec: MetricSpec) -> dict[str, Values]:
    """Arm → (round, value) of its usable loaded trials (idle-scenario trials left out)."""
    out: dict[str, Values] = {}
    for t in usable(trials):
        if scenario_of(t) == IDLE_SCENARIO:
            continue
        value = spec.extract(t)
        if value is not None and math.isfinite(value):
            out.setdefault(t.arm, []).append((t.round, float(value)))
    return out


def _effect(base: Values, other: Values, *, arm: str, previous: str, label: str,
            spec: MetricSpec, seed: int, margin: float, alpha: float, note: str = "",
            ) -> StepEffect:
    est = estimate(base, other, seed=seed, margin=margin, alpha=alpha) if base and other else None
    if est is None:
        return StepEffect(arm, previous, label, None, None, None, "too_few", note=note)
    comparison = {"ratio": est.ratio, "ci": [est.low, est.high], "ci90": [est.low90, est.high90],
                  "better": spec.better, "primary": True}
    return StepEffect(arm, previous, label, est.ratio, est.low, est.high,
                      decide(comparison, margin=margin, alpha=alpha), est.n, est.estimator,
                      note=note)


def complete_rounds(values: Mapping[str, Values], arms: Sequence[str]) -> int:
    """Rounds in which every arm has exactly one usable value."""
    counts: list[dict[int, int]] = []
    for arm in arms:
        per: dict[int, int] = {}
        for r, _ in values.get(arm, []):
            per[r] = per.get(r, 0) + 1
        counts.append(per)
    if not counts:
        return 0
    rounds = set.intersection(*(set(c) for c in counts))
    return sum(1 for r in rounds if all(c[r] == 1 for c in counts))


def analyze_ladder(trials: Sequence[TrialRecord], steps: Sequence[Step], spec: MetricSpec, *,
                   seed: int = 0, margin: float = 0.05, alpha: float = 0.05) -> LadderResult:
    """Each step's ratio to the one before, the end-to-end ratio and the product check.

    Args:
        trials: the run's trial records (failed and warm-up ones are left out).
        steps: the ladder's arms in order; the first is the baseline.
        spec: the metric (the run's primary).
        seed, margin, alpha: as for :func:`isobench.analysis.stats.analyze`.
    """
    if len(steps) < 2:
        raise ValueError("a ladder needs a baseline and at least one step")
    values = _values(trials, spec)
    effects: list[StepEffect] = []
    cumulative: float | None = 1.0
    for i in range(1, len(steps)):
        prev, step = steps[i - 1], steps[i]
        eff = _effect(values.get(prev.arm, []), values.get(step.arm, []), arm=step.arm,
                      previous=prev.arm, label=step.label, spec=spec, seed=seed + 7 * i,
                      margin=margin, alpha=alpha, note=step.note)
        cumulative = None if cumulative is None or eff.ratio is None else cumulative * eff.ratio
        effects.append(dataclasses.replace(eff, cumulative=cumulative))
    first, last = steps[0], steps[-1]
    total = _effect(values.get(first.arm, []), values.get(last.arm, []), arm=last.arm,
                    previous=first.arm, label=f"end to end: {last.arm} / {first.arm}", spec=spec,
                    seed=seed, margin=margin, alpha=alpha)
    agree = None
    if cumulative is not None and total.low is not None and total.high is not None:
        agree = total.low <= cumulative <= total.high
    complete = complete_rounds(values, [s.arm for s in steps])
    k = len(effects)
    notes = [
        f"each step's CI is {(1 - alpha) * 100:g} % on its own: with {k} steps the chance that "
        f"one excludes 1 by chance alone is up to {(1 - (1 - alpha) ** k) * 100:.0f} %",
        "each step is measured on top of the layers before it; whether a layer would cost the "
        "same in another order (an interaction) one ladder cannot show",
    ]
    if agree is False:
        notes.append("the product of the steps lies outside the end-to-end CI: the steps were "
                     "paired on different rounds (failed trials), so they do not add up to the "
                     "gap; rerun with more trials")
    return LadderResult(spec.name, spec.title, spec.unit, spec.better, effects, total,
                        cumulative, agree, complete, alpha, notes)


def agreement_text(result: LadderResult) -> str:
    """One line: the product of the steps beside the end-to-end ratio, and whether they agree."""
    t = result.total
    if result.product is None or t.ratio is None or t.low is None or t.high is None:
        return "product of the steps vs end to end: not estimable (too few trials)"
    head = (f"product of the steps {result.product:.3f} vs end to end {t.ratio:.3f} "
            f"[{t.low:.3f}, {t.high:.3f}]")
    if result.agree:
        return head + ": agree (the product lies inside the end-to-end CI)"
    return head + ": DO NOT agree (steps paired on different rounds; see notes)"
