from collections import Counter

from isobench.run.plan import make_plan


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


def test_a_new_pair_does_not_start_with_the_previous_pairs_last_arm() -> None:
    arms = {a: a for a in ("a", "b", "c")}
    for seed in range(30):
        plan = make_plan(arms, 8, seed=seed)
        for r in range(2, 8, 2):  # the first round of each pair
            prev_last = [p for p in plan if p.round == r - 1][-1].arm
            first = next(p for p in plan if p.round == r).arm
            assert first != prev_last


def test_every_arm_gets_every_position_equally_in_each_pair_of_rounds() -> None:
    """Position drift within a round cancels in the paired ratios: a pair of rounds is an order
    and its reverse. Two arms used to run in the same order in every round."""
    for arms in ({"native": "native", "native-b": "native"}, {a: a for a in "abcd"}):
        for seed in range(20):
            plan = make_plan(arms, 6, seed=seed)
            for r in range(0, 6, 2):
                first = [p.arm for p in plan if p.round == r]
                second = [p.arm for p in plan if p.round == r + 1]
                assert second == first[::-1]
            firsts = Counter(next(p.arm for p in plan if p.round == r) for r in range(6))
            if len(arms) == 2:
                assert set(firsts.values()) == {3}  # each arm first in 3 of 6 rounds


def test_aa_arms_map_to_one_runtime() -> None:
    plan = make_plan({"native": "native", "native-b": "native"}, 3, seed=0)
    assert {p.runtime for p in plan} == {"native"}
    assert {p.arm for p in plan} == {"native", "native-b"}


def test_time_budget_stops_between_rounds_only() -> None:
    from isobench.run.orchestrator import RoundBudget

    arms = {"a": "a", "b": "b"}
    plan = make_plan(arms, trials=5, seed=0)
    budget = RoundBudget(seconds=50.0, arms=2)
    ran = []
    for planned in plan:
        if not budget.allows(planned):
            break
        ran.append(planned)
        budget.spent(10.0)  # every trial takes 10 s: rounds of 20 s
    # 2 rounds (40 s) fit; a third would end at 60 s > 50 s
    assert len(ran) == 4
    assert {p.round for p in ran} == {0, 1}
    assert "stopping with 2 complete rounds" in budget.reason
    unlimited = RoundBudget(seconds=None, arms=2)
    assert all(unlimited.allows(p) for p in plan)
