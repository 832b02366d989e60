"""Which coins to withdraw and which to pay with.

Loading: :func:`choose_denominations` picks coins so that, together with what
the wallet already holds, every amount up to the total can be paid exactly
(each new coin is at most one more than the value of the smaller coins
before it) and keeps a spread of small coins (two of each, within half the
amount), rather than just the binary digits of the amount.

Paying: :func:`select_exact` finds coins whose values add up to exactly the
amount, preferring large coins (so small ones stay for change-free payments
later) and, within one value, the coins whose key expires first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SPREAD_MIN, SPREAD_MAX = 2, 8  # keep this many coins of each small value
SPREAD_DIVISOR = 16  # ... about amount / (16 * value), within those bounds
SPREAD_SHARE = 0.5  # ... using at most this share of a load


class NotRepresentable(ValueError):
    pass


def complete_reach(values: Iterable[int]) -> int:
    """The largest ``R`` such that every amount ``0..R`` is a sum of a sub-multiset
    of ``values`` found by the prefix rule (each coin <= 1 + the smaller ones)."""
    reach = 0
    for v in sorted(values):
        if v > reach + 1:
            break
        reach += v
    return reach


def spread_count(amount: int, value: int) -> int:
    return max(SPREAD_MIN, min(SPREAD_MAX, amount // (SPREAD_DIVISOR * value)))


def choose_denominations(amount: int, denominations: Sequence[int],
                         held: Iterable[int] = (), *,
                         spread_share: float = SPREAD_SHARE) -> list[int]:
    """Values of the coins to withdraw for ``amount`` (sum exactly ``amount``)."""
    if amount <= 0:
        raise NotRepresentable("the amount must be positive")
    denoms = sorted(set(denominations))
    if not denoms:
        raise NotRepresentable("the bank offers no denominations now")
    held = list(held)
    counts = Counter(held)
    reach = complete_reach(held)
    chosen: list[int] = []
    remaining = amount
    budget, used = int(amount * spread_share), 0
    scale = amount + sum(held)  # the spread follows what the wallet will hold

    def take(v: int) -> None:
        nonlocal reach, remaining
        chosen.append(v)
        counts[v] += 1
        reach += v
        remaining -= v

    for v in denoms:  # phase 1: a spread of small coins
        if v > reach + 1 or used + v > budget:
            break
        while counts[v] < spread_count(scale, v) and v <= remaining and used + v <= budget:
            take(v)
            used += v
    while remaining > 0:  # phase 2: grow geometrically, never leaving a gap
        fits = [d for d in denoms if d <= remaining and d <= reach + 1]
        if not fits:
            fits = [d for d in denoms if d <= remaining]
            if not fits:
                raise NotRepresentable(f"{amount} cannot be made of the coins"
                                       f" {denoms} (the smallest is {denoms[0]})")
        take(max(fits))
    return sorted(chosen)


@dataclass(frozen=True)
class Candidate:
    """A spendable coin as selection sees it."""

    coin_id: int
    value: int
    deadline: int  # its key's spend deadline: sooner is used first


MAX_SOLUTIONS = 8  # exact combinations compared per payment


def _reach(values: list[int], counts: list[int]) -> int:
    """:func:`complete_reach` of a multiset given as (descending values, counts)."""
    reach = 0
    for v, n in zip(reversed(values), reversed(counts), strict=True):
        if n == 0:
            continue
        if v > reach + 1:
            break
        reach += v * n
    return reach


def select_counts(amount: int, counts: dict[int, int]) -> dict[int, int] | None:
    """How many coins of each value pay exactly ``amount`` (``None``: impossible).

    Largest coins first; the first exact combination is taken when it costs
    the wallet no payable range beyond the amount paid, else the best of the
    first few (the widest range left payable, then the fewest coins)."""
    if amount <= 0:
        return None
    values = sorted((v for v, n in counts.items() if n > 0), reverse=True)
    cnt = [counts[v] for v in values]
    suffix = [0] * (len(values) + 1)
    for i in range(len(values) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + values[i] * cnt[i]
    if suffix[0] < amount:
        return None
    good_enough = _reach(values, cnt) - amount
    failed: set[tuple[int, int]] = set()
    plan: list[int] = [0] * len(values)
    best: tuple[tuple[int, int], list[int]] | None = None
    found = 0

    def search(i: int, need: int) -> bool:
        nonlocal best, found
        if need == 0:
            left = [n - t for n, t in zip(cnt, plan, strict=True)]
            reach = _reach(values, left)
            score = (reach, -sum(plan))
            if best is None or score > best[0]:
                best = (score, plan.copy())
            found = MAX_SOLUTIONS if reach >= good_enough else found + 1
            return True
        if i == len(values) or suffix[i] < need or (i, need) in failed:
            return False
        v = values[i]
        any_found = False
        for t in range(min(cnt[i], need // v), -1, -1):
            plan[i] = t
            if search(i + 1, need - t * v):
                any_found = True
            if found >= MAX_SOLUTIONS:
                break
        plan[i] = 0
        if not any_found:
            failed.add((i, need))
        return any_found

    search(0, amount)
    if best is None:
        return None
    return {v: k for v, k in zip(values, best[1], strict=True) if k}


def select_exact(amount: int, coins: Sequence[Candidate]) -> list[Candidate] | None:
    """Coins adding up to exactly ``amount`` (see :func:`select_counts`); within
    one value, the coins whose key's spend deadline comes first."""
    by_value: dict[int, list[Candidate]] = {}
    for c in coins:
        by_value.setdefault(c.value, []).append(c)
    plan = select_counts(amount, {v: len(cs) for v, cs in by_value.items()})
    if plan is None:
        return None
    out: list[Candidate] = []
    for v, k in plan.items():
        out.extend(sorted(by_value[v], key=lambda c: (c.deadline, c.coin_id))[:k])
    return out


def suggest_break(amount: int, coins: Sequence[Candidate],
                  denominations: Sequence[int]) -> int | None:
    """The smallest coin value whose exchange for smaller coins would make
    ``amount`` payable exactly (``None`` if no single exchange does)."""
    values = sorted({c.value for c in coins})
    for v in values:
        if v == min(denominations, default=v):
            continue
        rest = list(coins)
        victim = next(c for c in rest if c.value == v)
        rest.remove(victim)
        try:
            parts = choose_denominations(v, [d for d in denominations if d < v],
                                         [c.value for c in rest])
        except NotRepresentable:
            continue
        trial = rest + [Candidate(-i - 1, p, 0) for i, p in enumerate(parts)]
        if select_exact(amount, trial) is not None:
            return v
    return None
