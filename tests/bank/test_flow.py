"""Withdrawal and deposit over HTTP, end to end."""

from __future__ import annotations


def test_withdraw_pay_deposit_and_double_spend(env):
    alice = env.holder("Alice")
    shop1, shop2 = env.merchant("shop-1"), env.merchant("shop-2")
    coins = alice.withdraw([1, 2, 4, 512])
    assert alice.client.account(alice.account_id)["balance"] == 1_000_000 - 519
    verdicts = shop1.deposit(alice.pay(coins, "shop-1"))
    assert [v["status"] for v in verdicts] == ["accepted"] * 4
    assert sum(v["credited"] for v in verdicts) == 519
    again = shop1.deposit(alice.pay(coins[:1], "shop-2"))
    assert again[0]["code"] == "wrong_merchant"
    fraud = shop2.deposit(alice.pay(coins[:1], "shop-2"))
    assert fraud[0]["status"] == "double_spent" and fraud[0]["credited"] == 1
    assert alice.client.account(alice.account_id)["status"] == "frozen"
    cases = env.operator.fraud_cases()
    assert [c["account_id"] for c in cases] == [alice.account_id]
    assert cases[0]["identity"] == alice.I.hex()
    assert env.operator.audit()["ok"]
