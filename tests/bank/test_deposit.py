"""Deposits over HTTP: replays, concurrent double deposits and their fraud
cases, refusals (late, expired, unknown key, wrong payee, wrong currency,
tampered transcripts), serial collisions and redemptions (ECASH-1 6, 7, 9.4)."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from ecash.bank.client import BankClient, BankUnreachable
from ecash.crypto import group
from ecash.crypto.coin import CoinSecrets
from ecash.crypto.withdrawal import user_blind, user_finish

from ..bankkit import (
    assert_audit_ok,
    balance_of,
    dropping_client,
    refused,
    token_of,
)


def statuses(verdicts: list[dict]) -> list[str]:
    return [v["status"] for v in verdicts]


def test_batch_sent_twice_credits_once(env):
    alice = env.holder("Alice", funds=1000)
    shop = env.merchant("shop")
    dropping, transport = dropping_client(env, token_of(shop))
    spends = alice.pay(alice.withdraw([1, 2, 4]), "shop")
    transport.drop = 1
    with pytest.raises(BankUnreachable):
        dropping.deposit(spends)
    assert shop.merchant()["balance"] == 7
    again = dropping.deposit(spends)
    assert [(v["status"], v["replay"], v["credited"]) for v in again] == [
        ("accepted", True, 0)] * 3
    assert shop.deposit(spends[1:]) == again[1:]
    assert shop.merchant()["balance"] == 7
    fig = assert_audit_ok(env)
    assert fig["liability"] == 0 and fig["deposited_or_redeemed"] == 7


def test_one_coin_twice_in_one_batch(env):
    alice = env.holder("Alice", funds=1000)
    shop = env.merchant("shop")
    coins = alice.withdraw([8])
    first, second = alice.pay(coins, "shop"), alice.pay(coins, "shop")
    verdicts = shop.deposit(first + second + first)
    assert statuses(verdicts) == ["accepted", "double_spent", "accepted"]
    assert [v["replay"] for v in verdicts] == [False, False, True]
    assert shop.merchant()["balance"] == 16  # 8 from the liability, 8 from Alice
    assert balance_of(env, alice.account_id) == 1000 - 16
    fig = assert_audit_ok(env)
    assert fig["liability"] == 0 and fig["receivable"] == 0


@pytest.mark.parametrize("drained", [False, True], ids=["from_balance", "receivable"])
def test_same_coins_deposited_by_two_merchants_at_once(env, drained):
    n = 20
    alice = env.holder("Alice", funds=1000)
    bystander = env.holder("Bob", funds=1000)
    coins = alice.withdraw([1] * n)
    if drained:  # leave Alice 5 to pay the double spends with
        alice.withdraw([512, 256, 128, 64, 8, 4, 2, 1])
        assert balance_of(env, alice.account_id) == 5
    alice_before = balance_of(env, alice.account_id)
    shop1, shop2 = env.merchant("shop-1"), env.merchant("shop-2")
    batch1 = alice.pay(coins, "shop-1")
    batch2 = alice.pay(coins, "shop-2")[::-1]  # opposite order: lock order races too
    before = assert_audit_ok(env)
    barrier = threading.Barrier(2)
    results: dict[str, list[dict]] = {}

    def deposit(name: str, shop: BankClient, batch: list) -> None:
        with BankClient(env.url, token_of(shop)) as c:
            barrier.wait()
            results[name] = c.deposit(batch)

    threads = [threading.Thread(target=deposit, args=("1", shop1, batch1)),
               threading.Thread(target=deposit, args=("2", shop2, batch2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    v1, v2 = results["1"], results["2"][::-1]
    for a, b in zip(v1, v2, strict=True):
        assert sorted([a["status"], b["status"]]) == ["accepted", "double_spent"]
        assert not a["replay"] and not b["replay"]
        assert a["credited"] == b["credited"] == 1  # the loser is compensated in full
    cases = env.operator.fraud_cases()
    assert len(cases) == n
    assert {c["account_id"] for c in cases} == {alice.account_id}
    assert {c["identity"] for c in cases} == {alice.I.hex()}
    assert sorted(c["serial"] for c in cases) == sorted(c.A.hex() for c, _ in coins)
    ids = sorted(v["fraud_case"] for v in v1 + v2 if v["status"] == "double_spent")
    assert ids == sorted(c["case"] for c in cases)
    from_balance = sum(c["from_balance"] for c in cases)
    receivable = sum(c["receivable"] for c in cases)
    assert from_balance == min(alice_before, n) and from_balance + receivable == n
    assert balance_of(env, alice.account_id) == alice_before - from_balance
    assert shop1.merchant()["balance"] + shop2.merchant()["balance"] == 2 * n
    assert balance_of(env, bystander.account_id) == 1000
    assert env.operator.operator_account(alice.account_id)["status"] == "frozen"
    with refused(403, "account_not_active"):
        alice.start([1])
    after = assert_audit_ok(env)
    assert before["liability"] - after["liability"] == n  # each coin leaves once
    assert after["receivable"] == receivable
    assert after["deposited_or_redeemed"] == n
    # a replay of both batches changes nothing
    assert all(v["replay"] for v in shop1.deposit(batch1) + shop2.deposit(batch2))
    assert len(env.operator.fraud_cases()) == n
    assert assert_audit_ok(env) == after
    proof = env.operator.fraud_case(cases[0]["case"])
    assert proof["spend1"]["coin"] == proof["spend2"]["coin"]
    assert proof["spend1"]["request"] != proof["spend2"]["request"]


def _tamper(spend, **changes):
    return dataclasses.replace(spend, **changes)


def test_refused_transcripts_credit_nothing(env):
    alice = env.holder("Alice", funds=10_000)
    shop = env.merchant("shop")
    env.merchant("other")
    coins = alice.withdraw([1, 2, 4, 8, 16, 32, 64])
    before = assert_audit_ok(env)
    window_ms = env.bank.config.deposit_window_s * 1000
    now_ms = int(env.clock() * 1000)
    late = alice.pay(coins[0:1], "shop", timestamp_ms=now_ms - window_ms - 5_000)
    wrong_merchant = alice.pay(coins[1:2], "other")
    wrong_currency = alice.pay(coins[2:3], "shop", currency="USD")
    good = alice.pay(coins[3:6], "shop")
    bad_r1 = _tamper(good[0], r1=(good[0].r1 + 1) % group.q)
    bad_coin = _tamper(good[1], coin=dataclasses.replace(good[1].coin,
                                                         r=(good[1].coin.r + 1) % group.q))
    other_key = next(k for k in env.operator.keyset().keys if k.key_id != good[2].coin.key_id)
    swapped_key = _tamper(good[2], coin=dataclasses.replace(good[2].coin,
                                                            key_id=other_key.key_id))
    unknown_key = _tamper(good[2], coin=dataclasses.replace(good[2].coin,
                                                            key_id=b"\x07" * 32))
    bad_amount = _tamper(good[2], request=dataclasses.replace(good[2].request, amount=1))
    verdicts = shop.deposit([late[0], wrong_merchant[0], wrong_currency[0], bad_r1, bad_coin,
                             swapped_key, unknown_key, bad_amount])
    got = [(v["status"], v.get("code"), v["credited"]) for v in verdicts]
    assert got == [("late", "late", 0), ("invalid", "wrong_merchant", 0),
                   ("invalid", "currency_mismatch", 0), ("invalid", "spend_equation", 0),
                   ("invalid", "coin_equation", 0), ("invalid", "coin_equation", 0),
                   ("invalid", "unknown_key", 0), ("invalid", "spend_equation", 0)]
    assert shop.merchant()["balance"] == 0
    assert env.operator.fraud_cases() == []
    assert assert_audit_ok(env) == before
    # the honest transcripts of the same coins still go in, once
    assert statuses(shop.deposit(good)) == ["accepted"] * 3
    assert shop.merchant()["balance"] == 8 + 16 + 32


def test_expired_key_refused(env):
    alice = env.holder("Alice", funds=1000)
    shop = env.merchant("shop")
    coins = alice.withdraw([4, 8])
    key = env.operator.keyset().key(coins[0][0].key_id)
    assert statuses(shop.deposit(alice.pay(coins[:1], "shop"))) == ["accepted"]
    env.clock.advance(key.deposit_end - env.bank.now() + 1)
    spends = alice.pay(coins[1:], "shop")  # timestamped by the bank's clock: not late
    verdicts = shop.deposit(spends)
    assert [(v["status"], v["code"], v["credited"]) for v in verdicts] == [
        ("expired", "key_expired", 0)]
    assert shop.merchant()["balance"] == 4
    assert assert_audit_ok(env)["liability"] == 8


def test_serial_collision(env):
    """Two coins one holder made with one ``s`` share ``A`` but not ``B``."""
    alice = env.holder("Alice", funds=1000)
    shop = env.merchant("shop")
    ks = env.operator.keyset()
    s = group.random_scalar()
    coins = []
    for _ in range(2):
        offer = alice.client.start_withdrawal(alice.account_id, [
            next(k.key_id for k in ks.keys if k.value == 2)])
        c = offer["coins"][0]
        cm = [bytes.fromhex(h) for h in c["commitments"]]
        from ecash.crypto.withdrawal import Commitment

        state = user_blind(ks.key(bytes.fromhex(c["key_id"])), alice.I,
                           bytes.fromhex(offer["z"][c["key_id"]]),
                           [Commitment(cm[0], cm[1]), Commitment(cm[2], cm[3])],
                           CoinSecrets(s, group.random_scalar(), group.random_scalar()))
        (beta, r), = alice.client.answer(alice.account_id, offer["session_id"],
                                         [state.challenges])
        coins.append(user_finish(state, r, beta))
    assert coins[0][0].A == coins[1][0].A and coins[0][0].B != coins[1][0].B
    verdicts = shop.deposit(alice.pay(coins[:1], "shop") + alice.pay(coins[1:], "shop"))
    assert [(v["status"], v.get("code"), v["credited"]) for v in verdicts] == [
        ("accepted", None, 2), ("serial_collision", "serial_collision", 0)]
    assert env.operator.fraud_cases() == []
    assert env.operator.operator_account(alice.account_id)["status"] == "active"
    assert shop.merchant()["balance"] == 2
    assert_audit_ok(env)


def test_redemption(env):
    alice = env.holder("Alice", funds=1000)
    bob = env.holder("Bob", funds=1000)
    shop = env.merchant("shop")
    coins = alice.withdraw([16, 32, 64])
    client, transport = dropping_client(env, token_of(alice.client))
    spends = alice.pay(coins[:2], "bank")
    transport.drop = 1
    with pytest.raises(BankUnreachable):
        client.redeem(alice.account_id, spends)
    assert balance_of(env, alice.account_id) == 1000 - 112 + 48
    again = client.redeem(alice.account_id, spends)
    assert [(v["status"], v["replay"], v["credited"]) for v in again] == [
        ("accepted", True, 0)] * 2
    assert balance_of(env, alice.account_id) == 1000 - 112 + 48
    # someone else's redemption transcript is not Bob's to redeem
    stolen = bob.client.redeem(bob.account_id, spends)
    assert [(v["status"], v["code"]) for v in stolen] == [("invalid", "already_deposited")] * 2
    # a merchant cannot deposit a spend made to the bank, a holder cannot redeem
    # one made to a merchant
    assert shop.deposit(spends)[0]["code"] == "wrong_merchant"
    to_shop = alice.pay(coins[2:], "shop")
    assert alice.client.redeem(alice.account_id, to_shop)[0]["code"] == "wrong_merchant"
    assert balance_of(env, bob.account_id) == 1000
    # the bank is paid through the "bank" merchant: its account gains nothing
    assert balance_of(env, "bank") == 0
    # redeeming a coin already spent at a shop names the holder, pays nothing
    assert statuses(shop.deposit(to_shop)) == ["accepted"]
    twice = alice.client.redeem(alice.account_id, alice.pay(coins[2:], "bank"))
    assert (twice[0]["status"], twice[0]["credited"]) == ("double_spent", 0)
    assert [c["account_id"] for c in env.operator.fraud_cases()] == [alice.account_id]
    assert env.operator.fraud_cases()[0]["receivable"] == 0
    assert balance_of(env, alice.account_id) == 1000 - 112 + 48
    fig = assert_audit_ok(env)
    assert fig["liability"] == 0 and fig["deposited_or_redeemed"] == 112


def test_fraud_case_names_the_spender_with_proof(env):
    """The case names the account whose ``I`` the two transcripts recover, and
    carries both transcripts and the key (the proof anyone can check)."""
    alice = env.holder("Alice", funds=1000)
    shop1, shop2 = env.merchant("shop-1"), env.merchant("shop-2")
    coins = alice.withdraw([2])
    shop1.deposit(alice.pay(coins, "shop-1"))
    v = shop2.deposit(alice.pay(coins, "shop-2"))[0]
    case = env.operator.fraud_case(v["fraud_case"])
    assert case["account_id"] == alice.account_id and not case["alarm"]
    assert case["from_balance"] == 2 and case["receivable"] == 0
    from ecash.crypto.identify import identify
    from ecash.wire import json as wj

    found = identify(wj.spend_from_json(case["spend1"]), wj.spend_from_json(case["spend2"]))
    assert found.I == alice.I
    with refused(404, "not_found"):
        env.operator.fraud_case(v["fraud_case"] + 1000)


def test_deposit_timing_is_checked_against_the_bank_clock(env):
    alice = env.holder("Alice", funds=1000)
    shop = env.merchant("shop")
    coins = alice.withdraw([1, 2])
    window = env.bank.config.deposit_window_s
    spends = alice.pay(coins, "shop", timestamp_ms=int(time.time() * 1000))
    env.clock.advance(window - 5)
    assert statuses(shop.deposit(spends[:1])) == ["accepted"]
    env.clock.advance(10)
    assert [(v["status"], v["code"]) for v in shop.deposit(spends[1:])] == [("late", "late")]
    # the one deposited in time is still a replay, not late
    assert shop.deposit(spends[:1])[0]["replay"]
    assert shop.merchant()["balance"] == 1
