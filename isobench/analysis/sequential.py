"""Run until the answer is clear: the stopping rule behind ``isobench run --precision 3%``.

After each complete round (from the run's minimum number of rounds on), every non-emulated
runtime's primary comparison is looked at with intervals at ``α/10`` (:data:`LOOK_ALPHA`): a
runtime is *done* when that look decides it (slower, faster or equivalent within the margin) or
when its CI half-width is at most the requested precision. The run stops when every runtime is
done, or when ``--max-trials`` or the time budget ends it.

Why α/10: looking after every round and stopping on the first "significant" answer inflates
the false-difference rate. ``benchmarks/stats_sim.py`` simulates this host's drift model: with
α = 0.05 at each look an A/A pair is called different 11 % of the time and the 95 % CI covers
the truth only 89 % of the time; splitting α over up to 10 looks (Bonferroni) brings the A/A
rate to ≤ 5 % and coverage to ≥ 94 %. The final report is the ordinary analysis (95 % CIs) of
the trials the run ended with; the simulation prints its coverage and A/A rate too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from isobench.results import TrialRecord

LOOK_ALPHA = 0.005
"""α per look: 0.05 split over at most 10 looks."""
DECIDED = ("slower", "faster", "equivalent")


@dataclass(frozen=True)
class Look:
    """One runtime at one look: its primary verdict at ``LOOK_ALPHA`` and CI half-width."""

    runtime: str
    kind: str | None
    half_width_pct: float | None
    done: bool

    def text(self) -> str:
        width = "?" if self.half_width_pct is None else f"\u00b1{self.half_width_pct:.1f} %"
        state = self.kind if self.kind in DECIDED else ("precise" if self.done else "open")
        return f"{self.runtime} {width} ({state})"


def half_width_pct(ci: Sequence[float] | None) -> float | None:
    """Half the width of a ratio CI, in % (on the log scale, so a symmetric figure)."""
    if ci is None or ci[0] <= 0 or ci[1] <= 0:
        return None
    return (math.log(ci[1]) - math.log(ci[0])) / 2 * 100


def look(
    trials: Iterable[TrialRecord],
    *,
    baseline: str,
    primary: str | None,
    margin: float,
    precision: float,
    emulated: Iterable[str] = (),
    seed: int = 0,
) -> list[Look]:
    """The primary comparison of every non-emulated runtime, judged at :data:`LOOK_ALPHA`."""
    from isobench.analysis.stats import analyze, usable

    analysis = analyze(usable(trials), baseline=baseline, primary=primary, margin=margin,
                       alpha=LOOK_ALPHA, emulated=emulated, seed=seed)
    out = []
    for c in analysis["comparisons"]:
        if not c.get("primary") or c.get("emulated"):
            continue
        kind = c.get("verdict_kind")
        hw = half_width_pct(c.get("ci"))
        done = kind in DECIDED or (hw is not None and hw <= precision * 100)
        out.append(Look(c["runtime"], kind, hw, done))
    return out


def should_stop(looks: Sequence[Look]) -> bool:
    """True when there is something to compare and every runtime is done."""
    return bool(looks) and all(x.done for x in looks)
