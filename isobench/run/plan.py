"""Trials × runtimes → a seeded, interleaved order: drift and noise fall on every runtime alike."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PlannedTrial:
    """One entry of the plan: which arm runs, its trial index, its round, its global position."""

    position: int
    round: int
    arm: str
    runtime: str
    trial: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def make_plan(arms: dict[str, str], trials: int, seed: int) -> list[PlannedTrial]:
    """Rounds of every arm in a fresh seeded random order.

    Args:
        arms: arm name → runtime name (they differ only for A/A runs: ``native-b`` → ``native``).
        trials: trials per arm.
        seed: the RNG seed; the same seed gives the same plan.

    Consecutive rounds never start with the arm the previous round ended with, where there is a
    choice, so no arm always benefits from a warm predecessor.
    """
    rng = random.Random(seed)
    names = list(arms)
    plan: list[PlannedTrial] = []
    previous_last: str | None = None
    for round_index in range(trials):
        order = names[:]
        rng.shuffle(order)
        if len(order) > 1 and order[0] == previous_last:
            swap = rng.randrange(1, len(order))
            order[0], order[swap] = order[swap], order[0]
        for arm in order:
            plan.append(
                PlannedTrial(
                    position=len(plan),
                    round=round_index,
                    arm=arm,
                    runtime=arms[arm],
                    trial=round_index,
                )
            )
        previous_last = order[-1]
    return plan


def estimate_seconds(
    plan: list[PlannedTrial], per_trial_s: float, start_s: dict[str, float]
) -> float:
    """Wall time of a plan: each trial's fixed part (warm-up + load + stop) plus its runtime's
    typical start-up (``start_s``, by runtime name; 1 s where unknown). Image builds are extra."""
    return sum(per_trial_s + start_s.get(p.runtime, 1.0) for p in plan)


def describe(plan: list[PlannedTrial], seconds: float) -> list[str]:
    """Lines for ``isobench run --dry-run``: arms, rounds, the order, the estimated time."""
    arms = list(dict.fromkeys(p.arm for p in plan))
    rounds = 1 + max((p.round for p in plan), default=-1)
    lines = [f"arms: {', '.join(arms)}",
             f"rounds: {rounds} (one trial of every arm per round, {len(plan)} trials)"]
    for r in range(rounds):
        order = [p.arm for p in plan if p.round == r]
        lines.append(f"  round {r + 1}: {' → '.join(order)}")
    minutes, secs = divmod(round(seconds), 60)
    lines.append(f"estimated time: {minutes} min {secs:02d} s (plus image builds on first use)")
    return lines
