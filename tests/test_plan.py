from collections import Counter

from isobench.plan import make_plan


def test_plan_interleaves_every_arm_once_per_round() -> None:
    arms = {"native": "native", "docker-bridge": "docker-bridge", "vm": "vm"}
    plan = make_plan(arms, trials=5, seed=7)
    assert len(plan) == 15
    assert [p.position for p in plan] == list(range(15))
    for r in range(5):
        in_round = [p.arm for p in plan if p.round == r]
        assert sorted(in_round) == sorted(arms)
    assert Counter(p.arm for p in plan) == {a: 5 for a in arms}


def test_plan_is_seeded_and_orders_vary() -> None:
    arms = {a: a for a in ("a", "b", "c", "d")}
    assert make_plan(arms, 6, seed=1) == make_plan(arms, 6, seed=1)
    orders = {tuple(p.arm for p in make_plan(arms, 6, seed=1) if p.round == r) for r in range(6)}
    assert len(orders) > 1, "every round in the same order is not interleaving"
    assert make_plan(arms, 6, seed=1) != make_plan(arms, 6, seed=2)


def test_round_does_not_start_with_previous_rounds_last_arm() -> None:
    arms = {a: a for a in ("a", "b", "c")}
    for seed in range(30):
        plan = make_plan(arms, 8, seed=seed)
        for r in range(1, 8):
            prev_last = [p for p in plan if p.round == r - 1][-1].arm
            first = next(p for p in plan if p.round == r).arm
            assert first != prev_last


def test_aa_arms_map_to_one_runtime() -> None:
    plan = make_plan({"native": "native", "native-b": "native"}, 3, seed=0)
    assert {p.runtime for p in plan} == {"native"}
    assert {p.arm for p in plan} == {"native", "native-b"}
