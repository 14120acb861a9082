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
