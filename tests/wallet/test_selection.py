"""Denomination choice and exact coin selection (property-based)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from ecash.bank.config import power_of_two_ladder
from ecash.wallet.selection import (
    Candidate,
    choose_denominations,
    complete_reach,
    select_exact,
    suggest_break,
)

LADDER = power_of_two_ladder()


def payable(amount: int, values: list[int]) -> bool:
    """Brute-force subset sum (bounded knapsack) for small inputs."""
    reach = {0}
    for v in values:
        reach |= {r + v for r in reach if r + v <= amount}
    return amount in reach


def cands(values: list[int]) -> list[Candidate]:
    return [Candidate(i, v, 1000 - i) for i, v in enumerate(values)]


@given(st.integers(1, 300_000), st.lists(st.sampled_from(LADDER[:10]), max_size=20))
def test_load_sums_exactly_and_keeps_every_amount_payable(amount, held):
    values = choose_denominations(amount, LADDER, held)
    assert sum(values) == amount
    assert all(v in LADDER for v in values)
    # with what was held, every amount up to the new coins' total can be paid exactly
    assert complete_reach(held + values) >= complete_reach(held) + amount


@given(st.integers(1, 5_000))
def test_a_fresh_load_keeps_a_spread_of_small_coins(amount):
    values = choose_denominations(amount, LADDER)
    counts = Counter(values)
    if amount >= 12:
        assert counts[1] >= 2 and counts[2] >= 2
    assert len(values) <= 8 * amount.bit_length() + 4


@settings(max_examples=300)
@given(st.lists(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 5, 10, 20, 50]), max_size=14),
       st.integers(1, 200))
def test_selection_pays_exactly_whenever_possible(values, amount):
    chosen = select_exact(amount, cands(values))
    if payable(amount, values):
        assert chosen is not None and sum(c.value for c in chosen) == amount
        assert len({c.coin_id for c in chosen}) == len(chosen)
    else:
        assert chosen is None


@given(st.lists(st.sampled_from(LADDER[:12]), min_size=1, max_size=40), st.data())
def test_any_amount_up_to_a_fresh_loads_total_is_payable(held, data):
    values = choose_denominations(sum(held), LADDER)
    amount = data.draw(st.integers(1, sum(values)))
    chosen = select_exact(amount, cands(values))
    assert chosen is not None and sum(c.value for c in chosen) == amount


def test_selection_uses_the_soonest_deadline_first():
    coins = [Candidate(1, 4, 300), Candidate(2, 4, 100), Candidate(3, 4, 200)]
    assert [c.coin_id for c in select_exact(8, coins)] == [2, 3]


def test_break_suggestion_makes_the_amount_payable():
    coins = cands([64, 1])
    assert select_exact(3, coins) is None
    assert suggest_break(3, coins, LADDER) == 64
    assert suggest_break(100, cands([64]), LADDER) is None
