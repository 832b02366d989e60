"""Holders' disputes (ECASH-1 5.1, rev. 2; issue 14, item 2): a merchant that
signed a refusal of a payment and deposited it anyway is caught; the holder it
got named is cleared. End to end over the bank's HTTP API."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecash.bank.client import BankClient
from ecash.crypto import sign
from ecash.crypto.keys import MerchantCertificate, certify_merchant
from ecash.crypto.payment import PaymentRequest, SignedRequest, Spend, sign_request
from ecash.crypto.refusal import Refusal, make_refusal
from ecash.money import format_money
from ecash.wire import binary
from ecash.wire import json as wj

from ..bankkit import (
    Holder,
    assert_audit_ok,
    at_once,
    balance_of,
    pay_request,
    raw,
    refused,
    state_snapshot,
    token_of,
)

ECASH = Path(sys.executable).with_name("ecash")


@dataclass
class Terminal:
    """A merchant's certified terminal key: what signs requests and refusals."""

    merchant_id: str
    bank: BankClient  # the merchant's credential
    key: sign.SigningKey
    certificate: MerchantCertificate

    def request(self, amount: int, env) -> SignedRequest:  # type: ignore[no-untyped-def]
        req = PaymentRequest(self.merchant_id, amount, "CNY", int(env.clock() * 1000),
                             secrets.token_bytes(16))
        return sign_request(self.key, self.certificate, req)

    def refuse(self, envelope: SignedRequest, spends: list[Spend],
               code: str = "request_expired") -> Refusal:
        return make_refusal(self.key, envelope.request.request_id,
                            binary.payment_items(spends), code)


def terminal(env, merchant_id: str) -> Terminal:  # type: ignore[no-untyped-def]
    shop = env.merchant(merchant_id)
    key = sign.SigningKey.generate()
    return Terminal(merchant_id, shop, key, shop.certify(key.public_key))


def refused_then_deposited(env, alice: Holder, evil: Terminal, values: list[int]):  # type: ignore[no-untyped-def]
    """Alice pays ``evil``, which signs a refusal and deposits the payment anyway."""
    coins = alice.withdraw(values)
    envelope = evil.request(sum(values), env)
    spends = pay_request(alice, coins, envelope.request)
    refusal = evil.refuse(envelope, spends)
    assert [v["status"] for v in evil.bank.deposit(spends)] == ["accepted"] * len(values)
    return coins, envelope, spends, refusal


def spend_again(env, alice: Holder, shop: Terminal, coins) -> list[dict]:  # type: ignore[no-untyped-def]
    """The wallet released the coins on the refusal: it pays them elsewhere."""
    return shop.bank.deposit(pay_request(alice, coins, shop.request(
        sum(value_of(env, c) for c, _ in coins), env).request))


def value_of(env, coin) -> int:  # type: ignore[no-untyped-def]
    return env.bank.key(coin.key_id).public.value


def test_upheld_dispute_clears_the_holder_and_opens_a_merchant_case(env):
    alice = env.holder("Alice", funds=1000)
    evil, honest = terminal(env, "evil"), terminal(env, "honest")
    coins, envelope, spends, refusal = refused_then_deposited(env, alice, evil, [16, 32])
    # the wallet released the coins: it spends the 16 at an honest shop, is named
    [verdict] = spend_again(env, alice, honest, coins[:1])
    assert verdict["status"] == "double_spent"
    named = env.operator.fraud_case(verdict["fraud_case"])
    assert named["account_id"] == alice.account_id and named["from_balance"] == 16
    assert env.operator.operator_account(alice.account_id)["status"] == "frozen"
    assert balance_of(env, alice.account_id) == 1000 - 48 - 16

    answer = alice.client.dispute(alice.account_id, envelope, spends, refusal)
    assert answer["status"] == "upheld" and answer["case"] is not None, answer
    # the holder is cleared: the case voided, the money back, the account active
    assert env.operator.operator_account(alice.account_id)["status"] == "active"
    assert balance_of(env, alice.account_id) == 1000 - 48
    # the merchant repays what it took for the payment it refused; the honest shop keeps its 16
    assert evil.bank.merchant()["balance"] == 0
    assert honest.bank.merchant()["balance"] == 16
    shown = env.operator.dispute_info(answer["dispute"])
    assert shown["voided_fraud_cases"] == [verdict["fraud_case"]]
    case = shown["merchant_case"]
    assert (case["value"], case["from_balance"], case["refunded"]) == (48, 48, 16)
    assert sorted(d["coin_id"] for d in case["deposited"]) == sorted(
        c.coin_id.hex() for c, _ in coins)
    assert shown["merchant_id"] == "evil" and shown["account_id"] == alice.account_id
    assert shown["evidence"]["refusal"] == wj.refusal_to_json(refusal)
    assert [d["dispute"] for d in env.operator.disputes()] == [answer["dispute"]]
    assert [c["voided_by"] for c in env.operator.fraud_cases()] == [answer["dispute"]]
    assert_audit_ok(env)

    # the same dispute again answers the same and changes nothing
    before = state_snapshot(env)
    assert alice.client.dispute(alice.account_id, envelope, spends, refusal) == answer
    assert state_snapshot(env) == before

    # the 32 was released too: spent again, it conflicts with the disputed
    # transcript and names nobody; the shop is paid
    [verdict] = spend_again(env, alice, honest, coins[1:])
    assert (verdict["status"], verdict["credited"]) == ("double_spent", 32)
    again = env.operator.fraud_case(verdict["fraud_case"])
    assert again["account_id"] is None and not again["alarm"]
    assert env.operator.operator_account(alice.account_id)["status"] == "active"
    assert balance_of(env, alice.account_id) == 1000 - 48
    assert honest.bank.merchant()["balance"] == 48
    assert_audit_ok(env)


def test_merchant_that_deposited_second_is_caught_too(env):
    """The honest shop deposits first; the refusing merchant's deposit of the
    refused transcript is the second one and gets compensation from the holder."""
    alice = env.holder("Alice", funds=1000)
    evil, honest = terminal(env, "evil"), terminal(env, "honest")
    coins = alice.withdraw([64])
    envelope = evil.request(64, env)
    spends = pay_request(alice, coins, envelope.request)
    refusal = evil.refuse(envelope, spends)
    assert [v["status"] for v in spend_again(env, alice, honest, coins)] == ["accepted"]
    [verdict] = evil.bank.deposit(spends)
    assert (verdict["status"], verdict["credited"]) == ("double_spent", 64)
    assert balance_of(env, alice.account_id) == 1000 - 64 - 64

    answer = alice.client.dispute(alice.account_id, envelope, spends, refusal)
    assert answer["status"] == "upheld", answer
    assert balance_of(env, alice.account_id) == 1000 - 64
    assert env.operator.operator_account(alice.account_id)["status"] == "active"
    assert evil.bank.merchant()["balance"] == 0
    assert honest.bank.merchant()["balance"] == 64
    assert_audit_ok(env)


def test_a_released_coin_disputed_before_it_is_named_can_be_redeemed(env):
    """The wallet sees its released coin in the spent set and disputes at once;
    it then redeems the coin: nobody is named and the holder gets its value."""
    alice = env.holder("Alice", funds=1000)
    evil = terminal(env, "evil")
    coins, envelope, spends, refusal = refused_then_deposited(env, alice, evil, [16])
    answer = alice.client.dispute(alice.account_id, envelope, spends, refusal)
    assert answer["status"] == "upheld"
    assert env.operator.dispute_info(answer["dispute"])["voided_fraud_cases"] == []
    assert evil.bank.merchant()["balance"] == 0
    [verdict] = alice.client.redeem(alice.account_id, alice.pay(coins, "bank"))
    assert (verdict["status"], verdict["credited"]) == ("double_spent", 16)
    assert env.operator.operator_account(alice.account_id)["status"] == "active"
    assert balance_of(env, alice.account_id) == 1000
    assert_audit_ok(env)


def test_a_holder_frozen_by_another_case_stays_frozen(env):
    alice = env.holder("Alice", funds=1000)
    evil, honest = terminal(env, "evil"), terminal(env, "honest")
    other = alice.withdraw([4])  # a real double spend of another coin, below
    coins, envelope, spends, refusal = refused_then_deposited(env, alice, evil, [8])
    spend_again(env, alice, honest, coins)
    spend_again(env, alice, honest, other)
    [cheat] = spend_again(env, alice, evil, other)
    assert cheat["status"] == "double_spent"
    answer = alice.client.dispute(alice.account_id, envelope, spends, refusal)
    assert answer["status"] == "upheld"
    assert env.operator.operator_account(alice.account_id)["status"] == "frozen"
    assert env.operator.dispute_info(answer["dispute"])["voided_fraud_cases"] != [
        cheat["fraud_case"]]
    assert_audit_ok(env)


def test_an_operators_freeze_is_not_lifted_by_a_dispute(env):
    alice = env.holder("Alice", funds=1000)
    evil, honest = terminal(env, "evil"), terminal(env, "honest")
    coins, envelope, spends, refusal = refused_then_deposited(env, alice, evil, [16])
    [verdict] = spend_again(env, alice, honest, coins)
    assert verdict["status"] == "double_spent"
    # the operator's own decision
    env.operator.set_status(alice.account_id, "frozen", "checking a complaint")
    answer = alice.client.dispute(alice.account_id, envelope, spends, refusal)
    assert answer["status"] == "upheld"
    assert env.operator.dispute_info(answer["dispute"])["voided_fraud_cases"] == [
        verdict["fraud_case"]]
    assert env.operator.operator_account(alice.account_id)["status"] == "frozen"
    env.operator.set_status(alice.account_id, "active", "complaint settled")
    assert env.operator.operator_account(alice.account_id)["status"] == "active"
    assert_audit_ok(env)


def test_disputes_that_do_not_hold_are_rejected_with_a_reason(env):
    alice = env.holder("Alice", funds=1000)
    evil, honest = terminal(env, "evil"), terminal(env, "honest")
    coins = alice.withdraw([16, 32])
    envelope = evil.request(48, env)
    spends = pay_request(alice, coins, envelope.request)
    refusal = evil.refuse(envelope, spends)

    def rejected(envelope=envelope, spends=spends, refusal=refusal) -> str:  # type: ignore[no-untyped-def]
        answer = alice.client.dispute(alice.account_id, envelope, spends, refusal)
        assert answer["status"] == "rejected" and answer["case"] is None, answer
        return answer["reason"]

    before = state_snapshot(env)
    # an honest refusal: the merchant deposited nothing
    assert "deposited none" in rejected()
    # a refusal signed by another key, or of another payment
    assert "refusal" in rejected(refusal=honest.refuse(envelope, spends))
    assert "refusal" in rejected(refusal=evil.refuse(envelope, spends[:1]))
    # a request whose certificate this bank never issued
    forged = sign.SigningKey.generate()
    cert = certify_merchant(forged, "evil", evil.key.public_key, evil.certificate.valid_until)
    assert "master key" in rejected(envelope=sign_request(evil.key, cert, envelope.request))
    after = state_snapshot(env)
    assert {k: v for k, v in after.items() if k != "disputes"} == \
        {k: v for k, v in before.items() if k != "disputes"}
    assert all(d["status"] == "rejected" for d in env.operator.disputes())

    # the merchant deposits the refused payment later: the dispute sent again is upheld
    evil.bank.deposit(spends)
    first = env.operator.disputes()[0]["dispute"]
    answer = alice.client.dispute(alice.account_id, envelope, spends, refusal)
    assert (answer["dispute"], answer["status"]) == (first, "upheld")
    assert_audit_ok(env)


def test_bad_dispute_bodies_change_nothing(env):
    alice = env.holder("Alice", funds=1000)
    bob = env.holder("Bob", funds=0)
    evil = terminal(env, "evil")
    _coins, envelope, spends, refusal = refused_then_deposited(env, alice, evil, [16])
    body = {"envelope": wj.envelope_to_json(envelope),
            "spends": [wj.spend_to_json(s) for s in spends],
            "refusal": wj.refusal_to_json(refusal)}
    path = f"/v1/accounts/{alice.account_id}/disputes"
    token = token_of(alice.client)
    other = alice.withdraw([4])
    stray = pay_request(alice, other, evil.request(4, env).request)  # another request
    before = state_snapshot(env)
    for bad in ({**body, "spends": []}, {**body, "extra": 1},
                {k: v for k, v in body.items() if k != "refusal"},
                {**body, "spends": body["spends"] * 2},
                {**body, "refusal": {**body["refusal"], "code": "\ud800"}}):
        r = raw(env, "POST", path, token, json_body=bad)
        assert r.status_code in (400, 422) and r.json()["code"], r.text
    with refused(422, "bad_dispute"):
        alice.client.dispute(alice.account_id, envelope, spends + stray, refusal)
    with refused(403):  # Bob's credential, Alice's account
        bob.client.dispute(alice.account_id, envelope, spends, refusal)
    with refused(401):
        env.client().dispute(alice.account_id, envelope, spends, refusal)
    with refused(403):  # the operator's views need the operator
        alice.client.disputes()
    with refused(404, "not_found"):
        env.operator.dispute_info(999)
    assert state_snapshot(env) == before


def test_the_same_dispute_at_once_is_decided_once(env):
    alice = env.holder("Alice", funds=1000)
    evil, honest = terminal(env, "evil"), terminal(env, "honest")
    coins, envelope, spends, refusal = refused_then_deposited(env, alice, evil, [16, 32])
    spend_again(env, alice, honest, coins)
    answers = at_once(4, lambda _: alice.client.dispute(alice.account_id, envelope, spends,
                                                        refusal))
    assert all(a == answers[0] for a in answers) and answers[0]["status"] == "upheld", answers
    assert len(env.operator.disputes()) == 1
    assert balance_of(env, alice.account_id) == 1000 - 48
    assert evil.bank.merchant()["balance"] == 0
    assert_audit_ok(env)


def test_operator_cli_lists_and_shows_disputes(env):
    if not env.db_url.startswith("sqlite"):
        pytest.skip("the CLI reads the same tables on both engines; once is enough")
    alice = env.holder("Alice", funds=1000)
    evil, honest = terminal(env, "evil"), terminal(env, "honest")
    coins, envelope, spends, refusal = refused_then_deposited(env, alice, evil, [16])
    [named] = spend_again(env, alice, honest, coins)
    answer = alice.client.dispute(alice.account_id, envelope, spends, refusal)
    db = ["--db", env.db_url, "--keys", str(env.keys_dir)]

    def cli(*args: str) -> str:
        r = subprocess.run([str(ECASH), "bank", *args, *db], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "COLUMNS": "200"})
        assert r.returncode == 0, r.stderr
        return r.stdout

    listed = cli("dispute", "list")
    assert "upheld" in listed and alice.account_id in listed and "evil" in listed
    shown = cli("dispute", "show", str(answer["dispute"]))
    assert f"merchant case {answer['case']}: value {format_money(16, 'CNY')}" in shown
    assert f"voided fraud cases: {named['fraud_case']}" in shown
    assert coins[0][0].coin_id.hex() in shown
    assert f"by dispute {answer['dispute']}" in cli("fraud", "list")
