"""A seeded random run of a few hundred operations against a model of the
bank: every verdict, every balance and the audit figures must match the
model, and the audit must balance, on both engines."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from ecash.bank.client import BankHTTPError
from ecash.crypto.withdrawal import user_finish
from ecash.wire import binary

from ..bankkit import VALUE_OF, Holder, assert_audit_ok, balance_of

VALUES = [1, 2, 4, 8, 16, 32, 64]
OPERATIONS = 500


@dataclass
class Model:
    balances: dict[str, int] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    spent: dict[bytes, tuple[str, bytes]] = field(default_factory=dict)  # A -> first
    cases: set[bytes] = field(default_factory=set)  # transcripts that opened a case
    issued: int = 0
    deposited: int = 0
    receivable: int = 0
    references: dict[tuple[str, str], int] = field(default_factory=dict)  # -> amount

    @property
    def liability(self) -> int:
        return self.issued - self.deposited

    def deposit(self, depositor: str, spends: list, owner: dict[bytes, str],
                redemption: bool) -> list[tuple[str, bool, int]]:
        """Expected ``(status, replay, credited)`` per transcript, in order:
        new serials first (one insert), then the rest in order (as the bank)."""
        out: list[tuple[str, bool, int] | None] = [None] * len(spends)
        keys = [binary.spend_to_bytes(s) + binary.request_to_bytes(s.request) for s in spends]
        credited = 0
        for i, s in enumerate(spends):
            if s.coin.A not in self.spent:
                self.spent[s.coin.A] = (depositor, keys[i])
                value = VALUE_OF[s.coin.key_id]
                self.deposited += value
                credited += value
                out[i] = ("accepted", False, value)
        for i, s in enumerate(spends):
            if out[i] is not None:
                continue
            first_depositor, first_key = self.spent[s.coin.A]
            if first_key == keys[i]:
                assert first_depositor == depositor  # the run never redeems another's
                out[i] = ("accepted", True, 0)
            elif keys[i] in self.cases:
                out[i] = ("double_spent", True, 0)
            else:
                self.cases.add(keys[i])
                cheater = owner[s.coin.A]
                value = VALUE_OF[s.coin.key_id]
                if self.status[cheater] != "closed":
                    self.status[cheater] = "frozen"
                if redemption:
                    out[i] = ("double_spent", False, 0)
                    continue
                from_balance = min(max(self.balances[cheater], 0), value)
                self.balances[cheater] -= from_balance
                self.receivable += value - from_balance
                credited += value
                out[i] = ("double_spent", False, value)
        self.balances[depositor] += credited
        return out  # type: ignore[return-value]


def _binary_values(total: int) -> list[int]:
    return [v for v in VALUES[::-1] if total & v] if total < 128 else []


def test_random_run_balances(env):
    rng = random.Random(0xEC1)
    model = Model()
    holders: list[Holder] = []
    for name in ("Alice", "Bob", "Carol"):
        h = env.holder(name, funds=800)
        holders.append(h)
        model.balances[h.account_id] = 800
        model.status[h.account_id] = "active"
        model.references[(h.account_id, "initial")] = 800
    merchants = {}
    for mid in ("shop-a", "shop-b"):
        merchants[mid] = env.merchant(mid)
        account = merchants[mid].merchant()["account_id"]
        model.balances[account] = 0
        model.status[account] = "active"
    merchant_account = {mid: m.merchant()["account_id"] for mid, m in merchants.items()}
    fresh: dict[str, list] = {h.account_id: [] for h in holders}  # never paid
    used: dict[str, list] = {h.account_id: [] for h in holders}  # paid at least once
    owner: dict[bytes, str] = {}
    pending: dict[str, list] = {mid: [] for mid in merchants}
    batches: list[tuple[str, list, list]] = []
    ks = env.operator.keyset()
    counts: dict[str, int] = {}

    def withdraw(h: Holder, drain: bool = False) -> None:
        values = [rng.choice(VALUES) for _ in range(rng.randint(1, 3))]
        if drain:  # all but a few: later double spends leave a receivable
            left = max(model.balances[h.account_id] - rng.randint(0, 3), 1)
            values = [1 << i for i in range(17) if left >> i & 1]
        total = sum(values)
        try:
            coins = h.withdraw(values, ks)
        except BankHTTPError as exc:
            if model.status[h.account_id] != "active":
                assert (exc.status, exc.code) == (403, refusal_of(model.status[h.account_id]))
            else:
                assert model.balances[h.account_id] < total
                assert (exc.status, exc.code) == (402, "insufficient_funds")
            return
        assert model.status[h.account_id] == "active"
        model.balances[h.account_id] -= total
        model.issued += total
        for c in coins:
            owner[c[0].A] = h.account_id
        fresh[h.account_id] += coins

    def pay(h: Holder, double: bool) -> None:
        pool = used[h.account_id] if double else fresh[h.account_id]
        if not pool:
            return
        coins = rng.sample(pool, min(len(pool), rng.randint(1, 2)))
        mid = rng.choice(list(merchants))
        pending[mid] += h.pay(coins, mid)
        for c in coins:
            if c in fresh[h.account_id]:
                fresh[h.account_id].remove(c)
                used[h.account_id].append(c)

    def deposit(mid: str) -> None:
        spends = pending[mid]
        if not spends:
            return
        rng.shuffle(spends)
        pending[mid] = []
        expected = model.deposit(merchant_account[mid], spends, owner, redemption=False)
        verdicts = merchants[mid].deposit(spends)
        assert [(v["status"], v["replay"], v["credited"]) for v in verdicts] == expected
        batches.append((mid, spends, expected))

    def replay() -> None:
        if not batches:
            return
        mid, spends, first = rng.choice(batches)
        verdicts = merchants[mid].deposit(spends)
        assert [(v["status"], v["replay"], v["credited"]) for v in verdicts] == [
            (status, True, 0) for status, _, _ in first]

    def redeem(h: Holder) -> None:
        from_used = rng.random() < 0.25 and used[h.account_id]
        pool = used[h.account_id] if from_used else fresh[h.account_id]
        if not pool:
            return
        coins = rng.sample(pool, 1)
        spends = h.pay(coins, "bank")
        expected = model.deposit(h.account_id, spends, owner, redemption=True)
        verdicts = h.client.redeem(h.account_id, spends)
        assert [(v["status"], v["replay"], v["credited"]) for v in verdicts] == expected
        for c in coins:
            if c in fresh[h.account_id]:
                fresh[h.account_id].remove(c)
            if c not in used[h.account_id]:
                used[h.account_id].append(c)
        if rng.random() < 0.3:  # a retried redemption
            again = h.client.redeem(h.account_id, spends)
            assert [(v["status"], v["replay"], v["credited"]) for v in again] == [
                (s, True, 0) for s, _, _ in expected]

    def exchange(h: Holder) -> None:
        pool = fresh[h.account_id]
        if not pool:
            return
        coins = rng.sample(pool, min(len(pool), 2))
        values = _binary_values(sum(VALUE_OF[c.key_id] for c, _ in coins))
        if not values:
            return
        try:
            offer, states = h.start(values, ks, exchange=h.pay(coins, "bank"))
        except BankHTTPError as exc:
            assert model.status[h.account_id] != "active"
            assert (exc.status, exc.code) == (403, refusal_of(model.status[h.account_id]))
            return
        answers = h.client.answer(h.account_id, offer["session_id"],
                                  [s.challenges for s in states])
        new = [user_finish(s, r, b) for s, (b, r) in zip(states, answers, strict=True)]
        for c in coins:
            pool.remove(c)
            model.spent[c[0].A] = (h.account_id, b"exchange")
        model.issued += sum(values)
        model.deposited += sum(values)
        for c in new:
            owner[c[0].A] = h.account_id
        pool += new

    def credit(h: Holder) -> None:
        reference = f"ref-{rng.randint(0, 15)}"
        known = model.references.get((h.account_id, reference))
        amount = known if known is not None and rng.random() < 0.5 else rng.randint(1, 500)
        if known is not None and known != amount:  # a reference reused for another amount
            with pytest.raises(BankHTTPError) as info:
                env.operator.credit(h.account_id, amount, reference)
            assert (info.value.status, info.value.code) == (409, "reference_reused")
            return
        balance = env.operator.credit(h.account_id, amount, reference)
        if known is None:
            model.references[(h.account_id, reference)] = amount
            model.balances[h.account_id] += amount
        assert balance == model.balances[h.account_id]

    def unfreeze(h: Holder) -> None:
        if model.status[h.account_id] == "frozen":
            env.operator.set_status(h.account_id, "active", "test: unfrozen")
            model.status[h.account_id] = "active"

    ops = [("withdraw", 6), ("drain", 1), ("pay", 6), ("double", 1), ("deposit", 4), ("replay", 1),
           ("redeem", 2), ("exchange", 1), ("credit", 1), ("unfreeze", 1)]
    names = [n for n, _ in ops]
    weights = [w for _, w in ops]
    for step in range(OPERATIONS):
        op = rng.choices(names, weights)[0]
        counts[op] = counts.get(op, 0) + 1
        h = rng.choice(holders)
        if op == "pay" and model.status[h.account_id] == "frozen" and rng.random() < 0.5:
            op = "unfreeze"  # keep most holders able to withdraw
        if op in ("withdraw", "drain"):
            withdraw(h, op == "drain")
        elif op in ("pay", "double"):
            pay(h, op == "double")
        elif op == "deposit":
            deposit(rng.choice(list(merchants)))
        elif op == "replay":
            replay()
        elif op == "redeem":
            redeem(h)
        elif op == "exchange":
            exchange(h)
        elif op == "credit":
            credit(h)
        else:
            unfreeze(h)
        if step % 50 == 49:
            assert_audit_ok(env)
    for mid in merchants:
        deposit(mid)

    for account, expected in model.balances.items():
        assert balance_of(env, account) == expected, account
        assert env.operator.operator_account(account)["status"] == model.status[account]
    fig = assert_audit_ok(env)
    assert fig["issued"] == model.issued
    assert fig["deposited_or_redeemed"] == model.deposited
    assert fig["liability"] == model.liability
    assert fig["receivable"] == model.receivable
    assert fig["holder_balances"] == sum(model.balances.values())
    assert len(env.operator.fraud_cases()) == len(model.cases)
    # the run exercised what it is about
    assert len(model.cases) > 10 and model.receivable > 0 and len(batches) > 10
    assert counts.get("exchange", 0) > 3 and counts.get("replay", 0) > 3


def refusal_of(status: str) -> str:
    """The code a withdrawal from an account in ``status`` is refused with."""
    return "account_frozen" if status == "frozen" else "account_not_active"
