"""Acceptance and refusal at the terminal's endpoint, over real HTTP, against a
real bank: every refusal stores nothing (but a line in the refusal log), and
is signed (ECASH-1 5.1) when the terminal holds none of the payment's
transcripts; the first payment decides the request."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from ecash.crypto import group
from ecash.crypto.payment import PaymentRequest, Spend
from ecash.merchant.errors import MerchantError
from ecash.wire import json as wj
from ecash.wire.binary import payment_items

from ..bankkit import Clock, pay_request, running_bank
from .kit import counts, decompose, new_terminal, pay_url, post_payment, serving


def _refused(r: httpx.Response, code: str) -> dict:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == 422 and body["title"] == code and body["detail"]
    return body


def signed_refusal(body: dict, env, spends: list[Spend]):
    """The refusal in a 422 body, checked as a wallet checks it: a valid
    refusal of exactly this payment by the request's certified key."""
    refusal = wj.refusal_from_json(body["refusal"])
    refusal.verify(env.certificate.public_key, env.request.request_id, payment_items(spends))
    assert refusal.code == body["code"]
    return refusal


def test_pay_then_the_identical_payment_gets_the_same_receipt(bank, terminal, holder):
    coins = holder.withdraw(decompose(1250))
    env = terminal.create_request(1250)
    env.verify(bank.bank.master_public_key, now=int(bank.clock()))  # what a wallet does
    spends = pay_request(holder, coins, env.request)
    with serving(terminal) as url:
        first = post_payment(pay_url(url, env.request.request_id), spends)
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "paid"
        receipt = wj.receipt_from_json(first.json()["receipt"])
        assert receipt.request_id == env.request.request_id and receipt.amount == 1250
        receipt.verify(env.certificate.public_key)
        assert counts(terminal) == (5, 1)
        # the identical payment again (coins in another order): same answer, nothing stored
        again = post_payment(pay_url(url, env.request.request_id), spends[::-1])
        assert again.status_code == 200 and again.json() == first.json()
        assert counts(terminal) == (5, 1)
        # another payment for the paid request is refused, and signed: the terminal
        # holds none of its transcripts
        other = pay_request(holder, holder.withdraw(decompose(1250)), env.request)
        body = _refused(post_payment(pay_url(url, env.request.request_id), other),
                        "already_paid")
        signed_refusal(body, env, other)
        # one that shares a coin with the accepted payment is refused unsigned: the
        # terminal holds that transcript (5.1)
        overlapping = [spends[0], *pay_request(holder, holder.withdraw(decompose(1250 - 1024)),
                                               env.request)]
        assert spends[0].coin.coin_id in {s.coin.coin_id for s in overlapping}
        body = _refused(post_payment(pay_url(url, env.request.request_id), overlapping),
                        "already_paid")
        assert "refusal" not in body
        assert counts(terminal) == (5, 1)
        status = httpx.get(f"{url}/api/requests/{env.request.request_id.hex()}").json()
        assert status["status"] == "paid" and status["receipt"]["signature"] == \
            receipt.signature.hex()


def _variant(request: PaymentRequest, **change) -> PaymentRequest:
    return dataclasses.replace(request, **change)


BAD = ["wrong_currency", "wrong_amount", "wrong_merchant", "other_request", "same_coin_twice",
       "r1_tweaked", "paid_at_another_request", "accepted_before_and_deposited",
       "one_coin_of_two_accepted_before"]


@pytest.mark.parametrize("case", BAD)
def test_bad_payment_refused_and_nothing_stored(case, bank, terminal, holder):
    coins = holder.withdraw([1024, 128, 64, 32, 2])
    env = terminal.create_request(1250)
    req = env.request
    spends = pay_request(holder, coins, req)
    expected = {"wrong_currency": "currency_mismatch", "wrong_amount": "amount_mismatch",
                "wrong_merchant": "wrong_merchant", "other_request": "request_mismatch",
                "same_coin_twice": "duplicate_coin", "r1_tweaked": "spend_equation"}
    with serving(terminal) as url:
        if case == "wrong_currency":
            spends = pay_request(holder, coins, _variant(req, currency="EUR"))
        elif case == "wrong_amount":
            spends = spends[1:]  # 1248 for a request of 1250
        elif case == "wrong_merchant":
            spends = pay_request(holder, coins, _variant(req, merchant_id="shop-2"))
        elif case == "other_request":
            spends = pay_request(holder, coins, terminal.create_request(1250).request)
        elif case == "same_coin_twice":
            env = terminal.create_request(2048)
            req = env.request
            spends = pay_request(holder, coins[:1], req) * 2
        elif case == "r1_tweaked":
            spends[2] = dataclasses.replace(spends[2], r1=(spends[2].r1 + 1) % group.q)
        else:
            # the coins were accepted for another request of this terminal
            first = terminal.create_request(1250)
            done = post_payment(pay_url(url, first.request.request_id),
                                pay_request(holder, coins, first.request))
            assert done.status_code == 200
            if case == "accepted_before_and_deposited":
                assert terminal.deposit().accepted == 5
            if case == "one_coin_of_two_accepted_before":
                fresh = holder.withdraw([1024])
                env = terminal.create_request(2048)
                req = env.request
                spends = pay_request(holder, [coins[0], fresh[0]], req)
            expected[case] = "already_accepted"
        before = counts(terminal)
        body = _refused(post_payment(pay_url(url, req.request_id), spends), expected[case])
        assert counts(terminal) == before  # the whole payment or nothing
        signed_refusal(body, env, spends)  # it holds none of this payment's transcripts
        status = httpx.get(f"{url}/api/requests/{req.request_id.hex()}").json()
        assert status["status"] == "refused"  # the first payment decides the request
        assert status["refusal"]["code"] == status["reason"]["code"] == body["code"]
        # the identical payment again: the same signed refusal; another: refused too
        again = _refused(post_payment(pay_url(url, req.request_id), spends), expected[case])
        assert again["refusal"] == body["refusal"]
        if case == "one_coin_of_two_accepted_before":
            # the coin that was not taken is still good for a payment of its own
            alone = terminal.create_request(1024)
            ok = post_payment(pay_url(url, alone.request.request_id),
                              pay_request(holder, [fresh[0]], alone.request))
            assert ok.status_code == 200, ok.text
    assert terminal.report()["payments"]["refused"]["codes"] == {expected[case]: 2}


def test_coin_of_an_unknown_key(bank, terminal, holder, tmp_path):
    with running_bank("sqlite", tmp_path / "other-bank") as other:
        stranger = other.holder("Mallory")
        coins = stranger.withdraw([1024, 128, 64, 32, 2])
    env = terminal.create_request(1250)
    with serving(terminal) as url:
        r = post_payment(pay_url(url, env.request.request_id),
                         pay_request(stranger, coins, env.request))
        _refused(r, "unknown_key")
    assert counts(terminal) == (0, 0)


def test_key_past_its_spend_deadline(bank, holder, tmp_path):
    clock = Clock()
    t = new_terminal(bank, tmp_path / "t.db", clock=clock)
    coins = holder.withdraw([8])
    key = t.keys.by_id[coins[0][0].key_id]
    deadline = t.keys.spend_deadline(key)
    assert deadline == key.deposit_end - t.keys.policy.deposit_window_s
    with serving(t) as url:
        clock.advance(deadline - clock() - 5)  # just before: accepted
        env = t.create_request(8)
        ok = post_payment(pay_url(url, env.request.request_id),
                          pay_request(holder, coins, env.request))
        assert ok.status_code == 200, ok.text
        late_coins = holder.withdraw([8])
        clock.advance(10)  # just after: refused
        env = t.create_request(8)
        _refused(post_payment(pay_url(url, env.request.request_id),
                              pay_request(holder, late_coins, env.request)),
                 "past_spend_deadline")
    assert counts(t) == (1, 1)
    t.close()


def test_unknown_requests_are_404_expired_ones_refused(bank, holder, tmp_path):
    clock = Clock()
    t = new_terminal(bank, tmp_path / "t.db", clock=clock)
    coins = holder.withdraw([4, 1])
    paid = t.create_request(5)
    paid_spends = pay_request(holder, coins, paid.request)
    with serving(t) as url:
        assert post_payment(pay_url(url, paid.request.request_id), paid_spends).status_code == 200
        r = post_payment(pay_url(url, bytes(32)), paid_spends)
        assert r.status_code == 404 and r.json()["code"] == "unknown_request"
        assert httpx.post(f"{url}/pay/not-hex", json={}).status_code == 404
        env = t.create_request(5)
        spends = pay_request(holder, holder.withdraw([4, 1]), env.request)
        clock.advance(t.config.request_ttl_s + 1)
        status = httpx.get(f"{url}/api/requests/{env.request.request_id.hex()}").json()
        assert status["status"] == "expired"
        # an expired request refuses, signed: the wallet may release its coins at once
        body = _refused(post_payment(pay_url(url, env.request.request_id), spends),
                        "request_expired")
        signed_refusal(body, env, spends)
        # a paid request still answers its own payment with its receipt after expiry
        r = post_payment(pay_url(url, paid.request.request_id), paid_spends)
        assert r.status_code == 200
    assert counts(t) == (2, 1)
    t.close()


def test_malformed_bodies_are_refused(bank, terminal, holder):
    env = terminal.create_request(5)
    u = None
    with serving(terminal) as url:
        u = pay_url(url, env.request.request_id)
        assert httpx.post(u, content=b"{").json()["code"] == "not_json"
        assert httpx.post(u, json={"spends": []}).json()["code"] == "bad_type"
        assert httpx.post(u, json={"spends": [], "x": 1}).json()["code"] == "unknown_key"
        assert httpx.post(u, json=[]).json()["code"] == "bad_type"
        big = httpx.post(u, content=b" " * (1024 * 1024 + 1))
        assert big.status_code == 413 and big.json()["code"] == "body_too_large"
    assert counts(terminal) == (0, 0)


def test_above_the_floor_limit_only_online(bank, holder, tmp_path):
    from .kit import Switch, switched

    switch = Switch()
    t = new_terminal(bank, tmp_path / "t.db", bank_factory=switched(switch))
    floor = t.keys.policy.floor_limit
    amount = 16384 + 4096
    assert amount > floor
    coins = holder.withdraw(decompose(amount))
    env = t.create_request(amount)
    spends = pay_request(holder, coins, env.request)
    small_coins = holder.withdraw([4])
    small = t.create_request(4)
    with serving(t) as url:
        switch.down = True
        # no answer from the bank: pending (5.1), never refused; the transcripts are kept
        r = post_payment(pay_url(url, env.request.request_id), spends)
        assert r.status_code == 202, r.text
        assert r.json() == {"status": "pending", "request_id": env.request.request_id.hex(),
                            "retry_after_s": t.config.pending_retry_s,
                            "detail": r.json()["detail"]}
        assert counts(t) == (len(spends), 0)
        status = httpx.get(f"{url}/api/requests/{env.request.request_id.hex()}").json()
        assert status["status"] == "pending" and status["words"] == "Checking with the bank…"
        # another payment to the request while it is pending is refused
        other = pay_request(holder, holder.withdraw([4]), t.create_request(4).request)
        assert post_payment(pay_url(url, env.request.request_id), other).status_code == 422
        # below the floor limit the terminal needs no bank
        r = post_payment(pay_url(url, small.request.request_id),
                         pay_request(holder, small_coins, small.request))
        assert r.status_code == 200
        switch.down = False  # the identical payment again: the answer
        r = post_payment(pay_url(url, env.request.request_id), spends)
        assert r.status_code == 200, r.text
    rep = t.report()
    assert rep["accepted"] == {"count": 3, "value": amount + 4}
    assert rep["credited"] == {"count": 2, "value": amount}  # deposited before answering
    assert rep["pending"] == {"count": 1, "value": 4}
    assert bank.operator.operator_account(_merchant_account(bank, t))["balance"] == amount
    t.close()


def _merchant_account(bank, t) -> str:
    from sqlalchemy import select

    from ecash.bank.schema import accounts

    with bank.bank.engine.connect() as c:
        return c.execute(select(accounts.c.account_id).where(
            accounts.c.merchant_id == t.merchant_id)).scalar_one()


def test_online_payment_with_a_double_spent_coin_is_refused(bank, holder, tmp_path):
    t = new_terminal(bank, tmp_path / "t.db")
    amount = 16384 + 4096
    coins = holder.withdraw(decompose(amount))
    shop2 = bank.merchant("shop-2")
    assert shop2.deposit(holder.pay(coins[:1], "shop-2"))[0]["status"] == "accepted"
    env = t.create_request(amount)
    with serving(t) as url:
        r = post_payment(pay_url(url, env.request.request_id),
                         pay_request(holder, coins, env.request))
        body = _refused(r, "bank_refused")
        assert body["bank_codes"] == ["double_spent"]
        assert "refusal" not in body  # the bank took its coins: no signature (5.1)
    rep = t.report()
    assert rep["accepted"]["count"] == 0 and rep["payments"]["paid"]["count"] == 0
    # the bank took the coins online: the terminal keeps their record
    assert rep["unsold"]["count"] == 2 and rep["unsold"]["value"] == amount
    t.close()


def test_a_request_lives_at_most_the_ten_minutes_wallets_accept(terminal):
    """ECASH-1 5: wallets refuse a request stamped more than ten minutes ago,
    so the terminal never shows one that would outlive that."""
    assert terminal.config.request_ttl_s <= 600
    env = terminal.create_request(5, ttl_s=600)
    assert env.request.amount == 5
    with pytest.raises(MerchantError) as info:
        terminal.create_request(5, ttl_s=601)
    assert info.value.code == "bad_ttl"
