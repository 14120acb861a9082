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
    """Rounds of every arm, counterbalanced in pairs: a seeded random order, then its reverse.

    Args:
        arms: arm name → runtime name (they differ only for A/A runs: ``native-b`` → ``native``).
        trials: trials per arm.
        seed: the RNG seed; the same seed gives the same plan.

    Why pairs: the ratio is estimated within rounds, so an arm that always runs in the same
    position of its round carries any within-round drift (the host warming up or slowing down
    from one trial to the next) as if it were the arm's own effect. With two arms a free shuffle
    that never starts a round with the arm the previous one ended with leaves no choice at all:
    the order was the same in every round, and an A/A run found "native-b serves 13–23 % more
    requests per second than native". Each pair of rounds (an order, then the same order
    reversed) gives every arm the mirrored position, so a drift that is linear within the pair
    cancels exactly in the paired ratios. A new pair does not start with the arm the previous
    pair ended with, where there is a choice, so no arm always follows itself.
    """
    rng = random.Random(seed)
    names = list(arms)
    plan: list[PlannedTrial] = []
    previous: list[str] = []
    for round_index in range(trials):
        if round_index % 2 == 1:
            order = previous[::-1]
        else:
            order = names[:]
            rng.shuffle(order)
            if len(order) > 1 and previous and order[0] == previous[-1]:
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
        previous = order
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
