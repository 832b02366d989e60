"""Deposits over HTTP: replays, concurrent double deposits and their fraud
cases, refusals (late, expired, unknown key, wrong payee, wrong currency,
tampered transcripts), coins that share ``A`` and redemptions (ECASH-1 6, 7, 9.4)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ecash.bank.client import BankClient, BankUnreachable
from ecash.bank.service import Bank
from ecash.crypto import group
from ecash.crypto.coin import CoinSecrets
from ecash.crypto.withdrawal import user_blind, user_finish
from ecash.wire.redemption import redemption_request

from ..bankkit import (
    Clock,
    assert_audit_ok,
    at_once,
    balance_of,
    dropping_client,
    pay_request,
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
    assert sorted(c["coin_id"] for c in cases) == sorted(c.coin_id.hex() for c, _ in coins)
    ids = sorted(v["fraud_case"] for v in v1 + v2 if v["status"] == "double_spent")
    assert ids == sorted(c["case"] for c in cases)
    from_balance = sum(c["from_balance"] for c in cases)
    receivable = sum(c["receivable"] for c in cases)
    assert from_balance == min(alice_before, n) and from_balance + receivable == n
    assert balance_of(env, alice.account_id) == alice_before - from_balance
    assert shop1.merchant()["balance"] + shop2.merchant()["balance"] == 2 * n
    assert balance_of(env, bystander.account_id) == 1000
    seen = env.operator.operator_account(alice.account_id)
    assert seen["status"] == "frozen"
    # the freeze says why, with the first case that froze it, to the holder too
    first = min(c["case"] for c in cases)
    assert (seen["frozen_reason"], seen["frozen_case"]) == (f"double spending: case {first}",
                                                            first)
    assert [(e["action"], e["case"]) for e in seen["events"]][:1] == [("frozen", first)]
    with refused(403, "account_frozen") as why:
        alice.start([1])
    assert why.value.extra == {"reason": f"double spending: case {first}", "case": first}
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


@pytest.mark.parametrize("drained", [False, True], ids=["from_balance", "receivable"])
def test_one_double_spend_deposited_many_times_at_once(env, drained):
    """Issue 14, 5: the same double-spend transcript, sent by many connections
    at once (a terminal's retries), each time in a batch with a new coin of
    its own, is answered 200 every time: one deposit opens the fraud case and
    is compensated, the others are its replays, and no batch is rolled back
    (every new coin goes in)."""
    n = 8
    alice = env.holder("Alice", funds=16 + n if drained else 1000)  # drained: 0 left
    shop1, shop2 = env.merchant("shop-1"), env.merchant("shop-2")
    coins, others = alice.withdraw([16]), alice.withdraw([1] * n)
    assert statuses(shop1.deposit(alice.pay(coins, "shop-1"))) == ["accepted"]
    twice = alice.pay(coins, "shop-2")
    batches = [alice.pay([coin], "shop-2") + twice for coin in others]
    clients = [BankClient(env.url, token_of(shop2)) for _ in range(n)]
    try:
        results = at_once(n, lambda i: clients[i].deposit(batches[i]))
    finally:
        for c in clients:
            c.close()
    assert all(isinstance(r, list) for r in results), results  # no 5xx, no refusal
    assert [(r[0]["status"], r[0]["credited"]) for r in results] == [("accepted", 1)] * n
    assert sorted((r[1]["status"], r[1]["replay"], r[1]["credited"]) for r in results) == \
        sorted([("double_spent", False, 16)] + [("double_spent", True, 0)] * (n - 1))
    case, = env.operator.fraud_cases()
    assert {r[1]["fraud_case"] for r in results} == {case["case"]}
    assert case["account_id"] == alice.account_id
    assert shop2.merchant()["balance"] == n + 16
    assert env.operator.operator_account(alice.account_id)["status"] == "frozen"
    assert_audit_ok(env)


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


def withdraw_with_secrets(holder, values: list[int], secrets_of) -> list:
    """Coins withdrawn by a modified wallet that chooses each coin's ``(s, x1,
    x2)`` as ``secrets_of()`` says (fresh blinding each time), one session each."""
    from ecash.crypto.withdrawal import Commitment

    ks = holder.client.keyset()
    coins = []
    for value in values:
        offer = holder.client.start_withdrawal(holder.account_id, [
            next(k.key_id for k in ks.keys if k.value == value)])
        c = offer["coins"][0]
        cm = [bytes.fromhex(h) for h in c["commitments"]]
        state = user_blind(ks.key(bytes.fromhex(c["key_id"])), holder.I,
                           bytes.fromhex(offer["z"][c["key_id"]]),
                           [Commitment(cm[0], cm[1]), Commitment(cm[2], cm[3])], secrets_of())
        (beta, r), = holder.client.answer(holder.account_id, offer["session_id"],
                                          [state.challenges])
        coins.append(user_finish(state, r, beta))
    return coins


def withdraw_with_s(holder, values: list[int], s: int) -> list:
    """One ``s`` (so one ``A``) for every coin, fresh ``x1, x2`` (each its own ``B``)."""
    return withdraw_with_secrets(holder, values, lambda: CoinSecrets(
        s, group.random_scalar(), group.random_scalar()))


def test_coins_sharing_A_are_coins_of_their_own(env):
    """Revision 2: two coins one holder made with one ``s`` share ``A`` but not
    ``coin_id``; each is credited once, and each spent twice names the holder
    (revision 1 refused the second as a "serial collision" and named nobody)."""
    alice = env.holder("Alice", funds=1000)
    shop, kiosk = env.merchant("shop"), env.merchant("kiosk")
    coins = withdraw_with_s(alice, [2, 2], group.random_scalar())
    assert coins[0][0].A == coins[1][0].A and coins[0][0].coin_id != coins[1][0].coin_id
    verdicts = shop.deposit(alice.pay(coins[:1], "shop") + alice.pay(coins[1:], "shop"))
    assert [(v["status"], v.get("code"), v["credited"]) for v in verdicts] == [
        ("accepted", None, 2), ("accepted", None, 2)]
    assert shop.merchant()["balance"] == 4
    assert env.operator.operator_account(alice.account_id)["status"] == "active"
    twice = kiosk.deposit(alice.pay(coins[1:], "kiosk"))
    assert [(v["status"], v["credited"]) for v in twice] == [("double_spent", 2)]
    case, = env.operator.fraud_cases()
    assert case["account_id"] == alice.account_id
    assert case["coin_id"] == coins[1][0].coin_id.hex()
    assert env.operator.operator_account(alice.account_id)["status"] == "frozen"
    assert kiosk.merchant()["balance"] == 2
    assert_audit_ok(env)


def test_another_signature_on_the_same_payment_is_refused_and_names_nobody(env):
    """One coin ``(key_id, A, B)`` signed twice (same ``s, x1, x2``, other
    blinding), both answered to one request: same ``d``, other bytes. Refused,
    nothing credited, nobody named; the second signature answered to another
    request is an ordinary double spend that names the holder."""
    alice = env.holder("Alice", funds=1000)
    shop, kiosk = env.merchant("shop"), env.merchant("kiosk")
    same = CoinSecrets(group.random_scalar(), group.random_scalar(), group.random_scalar())
    first, second = withdraw_with_secrets(alice, [4, 4], lambda: same)
    assert first[0].coin_id == second[0].coin_id and first[0] != second[0]
    spend1 = alice.pay([first], "shop")[0]
    spend2 = pay_request(alice, [second], spend1.request)[0]
    assert [(v["status"], v["credited"]) for v in shop.deposit([spend1, spend1])] == [
        ("accepted", 4), ("accepted", 0)]
    verdict, = shop.deposit([spend2])
    assert (verdict["status"], verdict.get("code"), verdict["credited"]) == (
        "invalid", "other_signature", 0)
    assert env.operator.fraud_cases() == []
    assert env.operator.operator_account(alice.account_id)["status"] == "active"
    assert shop.merchant()["balance"] == 4
    elsewhere, = kiosk.deposit(alice.pay([second], "kiosk"))
    assert (elsewhere["status"], elsewhere["credited"]) == ("double_spent", 4)
    assert [c["account_id"] for c in env.operator.fraud_cases()] == [alice.account_id]
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
    assert [(v["status"], v["code"]) for v in stolen] == [("invalid", "redemption_not_bound")] * 2
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


@contextmanager
def worker_at(env, when: int) -> Iterator[Bank]:
    """Another worker on the same database and keys whose clock reads ``when``
    (workers' clocks differ; here the one running ``maintenance`` is ahead)."""
    clock = Clock()
    clock.frozen = when
    bank = Bank.open(env.db_url, env.keys_dir, clock=clock)
    try:
        yield bank
    finally:
        bank.engine.dispose()


def test_deposit_in_flight_when_its_generation_closes(env):
    """Issue 14, 5: a deposit checked before its coins' ``deposit_end`` that
    reaches the database after ``maintenance`` closed the generation is
    refused as expired: the close counted those coins as breakage, so
    crediting them too would pay them twice (PostgreSQL: their partition is gone)."""
    alice = env.holder("Alice", funds=1000)
    shop = env.merchant("shop")
    coins = alice.withdraw([8, 4])
    deposit_end = env.operator.keyset().key(coins[0][0].key_id).deposit_end
    env.clock.freeze()
    env.clock.advance(deposit_end - env.bank.now() - 5)  # this worker: 5 s before
    spends = alice.pay(coins[:1], "shop")
    with worker_at(env, deposit_end + 1) as ahead:
        assert ahead.close_generations() == [1]
    verdict, = shop.deposit(spends)
    assert (verdict["status"], verdict["code"], verdict["credited"]) == (
        "expired", "key_expired", 0)
    assert shop.merchant()["balance"] == 0
    fig = assert_audit_ok(env)
    assert fig["expired"] == 12 and fig["deposited_or_redeemed"] == 0


def test_exchange_answered_after_its_generation_closed(env):
    """Issue 14, 5: an exchange opened before its redeemed coins' ``deposit_end``
    and answered after ``maintenance`` closed their generation is refused
    cleanly (409): the coin is breakage, never also redeemed (SQLite paid it
    twice; PostgreSQL answered 500 until the session expired)."""
    alice = env.holder("Alice", funds=1000)
    old = alice.withdraw([8])
    deposit_end = env.operator.keyset().key(old[0][0].key_id).deposit_end
    for _ in range(3):  # a generation whose withdrawals are open at that deposit_end
        env.bank.add_generation()
    env.clock.freeze()
    env.clock.advance(deposit_end - env.bank.now() - 10)
    request = redemption_request(alice.account_id, 8, "CNY", int(env.clock() * 1000))
    offer, states = alice.start([8], exchange=pay_request(alice, old, request))
    env.clock.advance(20)  # past deposit_end, inside the session's lifetime
    assert env.operator.maintenance()["closed_generations"] == [1]
    balance = balance_of(env, alice.account_id)
    with refused(409, "redemption_refused"):
        alice.client.answer(alice.account_id, offer["session_id"],
                            [s.challenges for s in states])
    assert balance_of(env, alice.account_id) == balance
    fig = assert_audit_ok(env)
    assert fig["expired"] == 8 and fig["deposited_or_redeemed"] == 0
    # answered again, the same: refused, nothing paid
    with refused(409, "redemption_refused"):
        alice.client.answer(alice.account_id, offer["session_id"],
                            [s.challenges for s in states])
    assert assert_audit_ok(env) == fig
