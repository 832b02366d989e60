"""Load, pay, break, renew, close, limits and request checks, against a real
bank over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses

import pytest

from ecash.bank.config import BankConfig
from ecash.crypto.keys import certify_merchant
from ecash.crypto.payment import PaymentRequest, sign_request
from ecash.crypto.sign import SigningKey
from ecash.wallet import (
    CannotPay,
    InsufficientCoins,
    LimitExceeded,
    RequestRefused,
    TerminalError,
)
from ecash.wire import text

from ..bankkit import running_bank
from .kit import Terminal, answered_twice, assert_agree, coin_value, holder

DAY = 86_400


def test_load_pay_repeat_refuse_and_settle(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    shop = Terminal(env, "shop")
    try:
        out = w.load(10_000)
        assert out["state"] == "done" and h.bank_balance() == h.funds - 10_000
        bal = w.balance()
        assert bal["spendable"] == 10_000 and bal["pending"] == 0
        assert {d["value"] for d in bal["denominations"]} >= {1, 2, 4, 8}

        # paid to a terminal: the receipt is checked, the coins are spent
        env1 = shop.request(3_777)
        p = w.pay(env1)
        assert p.status == "confirmed" and p.receipt["amount"] == 3_777
        again = w.pay(env1)
        assert again.repeated and again.text == p.text and again.status == "confirmed"
        assert w.balance()["spendable"] == 10_000 - 3_777

        # the text form, offline: pending until settled
        env2 = shop.request(1_000, pos=False)
        p2 = w.pay(env2)
        assert p2.status == "answered" and p2.text.startswith("ecpay1:")
        assert w.pay(env2).text == p2.text  # the identical payment again
        assert w.balance()["pending"] == 1_000
        assert [v["status"] for v in shop.deposit(text.payment_from_text(p2.text))] \
            == ["accepted"] * len(p2.spends)

        # a terminal that refuses: recorded, pending; paying again sends the same
        shop.refuse = "terminal_closed"
        env3 = shop.request(5)
        with pytest.raises(TerminalError) as refused:
            w.pay(env3)
        assert refused.value.code == "terminal_closed"
        first = w.stored_payment(env3.request.request_id)
        assert first.status == "refused" and w.balance()["pending"] == 1_005
        shop.refuse = None
        p3 = w.pay(env3)
        assert p3.status == "confirmed" and p3.text == first.text

        # a terminal that cannot be reached: sync sends the identical payment later
        env4 = shop.request(16)
        shop.go_offline()
        with pytest.raises(TerminalError) as gone:
            w.pay(env4)
        assert gone.value.code == "terminal_unreachable"
        shop.come_back()
        posts = shop.posts
        out = w.sync()
        assert shop.posts == posts + 1 and out["resent"][0]["status"] == "confirmed"
        assert w.stored_payment(env4.request.request_id).status == "confirmed"
        assert out["settled"]["spent"] >= len(p2.spends)
        assert w.stored_payment(env2.request.request_id).status == "settled"

        shop.deposit_paid()
        w.sync()
        assert answered_twice(w) == []
        figures = assert_agree(env, h, w)
        assert figures["liability"] == coin_value(w, ("unspent",)) == 10_000 - 4_798
    finally:
        shop.close()
        h.close()


def test_forged_swapped_or_expired_requests_are_refused(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    shop = Terminal(env, "shop")
    try:
        w.load(2_000)
        good = shop.request(100)
        bad_sig = dataclasses.replace(good, signature=bytes(64))
        swapped_url = dataclasses.replace(good, pos_url="http://127.0.0.1:9/steal")
        rogue_master = SigningKey.generate()
        rogue_cert = certify_merchant(rogue_master, "shop", shop.key.public_key,
                                      good.certificate.valid_until)
        rogue = dataclasses.replace(good, certificate=rogue_cert)
        # a genuine certificate for another merchant, used for "shop"'s request
        other = SigningKey.generate()
        other_cert = env.merchant("other").certify(other.public_key)
        req = PaymentRequest("shop", 100, "CNY", int(env.clock() * 1000), b"n" * 16)
        mismatched = dataclasses.replace(sign_request(other, other_cert, dataclasses.replace(
            req, merchant_id="other")), request=req)
        # the test bank's signer is in process (a LocalSigner on env.keys_dir)
        expired_cert = env.bank.signer.certify_terminal("shop", shop.key.public_key,
                                                        int(env.clock()) - 1)
        expired = sign_request(shop.key, expired_cert, req)
        wrong_currency = sign_request(shop.key, shop.cert,
                                      dataclasses.replace(req, currency="EUR"))
        for envelope, code in [(bad_sig, "bad_signature"), (swapped_url, "bad_signature"),
                               (rogue, "bad_signature"), (mismatched, "certificate_mismatch"),
                               (expired, "certificate_expired"),
                               (wrong_currency, "currency_mismatch")]:
            with pytest.raises(RequestRefused) as info:
                w.pay(envelope)
            assert info.value.code == code, (code, info.value)
        assert w.payments() == [] and w.balance()["spendable"] == 2_000
        assert w.pay(good).status == "confirmed"
    finally:
        shop.close()
        h.close()


@pytest.fixture(params=["sqlite", "postgres"])
def tight_env(request, tmp_path):
    config = BankConfig(holding_limit=5_000, single_payment_limit=1_000,
                        daily_offline_limit=1_500, consecutive_offline_limit=3)
    with running_bank(request.param, tmp_path, config) as e:
        yield e


def test_policy_limits(tight_env, tmp_path):
    env = tight_env
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    shop = Terminal(env, "shop")
    try:
        with pytest.raises(LimitExceeded) as info:
            w.load(5_001)
        assert info.value.code == "holding_limit"
        w.load(5_000)
        with pytest.raises(LimitExceeded):
            w.load(1)
        with pytest.raises(LimitExceeded) as info:
            w.pay(shop.request(1_001))
        assert info.value.code == "single_payment_limit"
        w.pay(shop.request(1_000))
        with pytest.raises(LimitExceeded) as info:
            w.pay(shop.request(600))
        assert info.value.code == "daily_offline_limit"
        w.pay(shop.request(100))
        w.pay(shop.request(100))
        with pytest.raises(LimitExceeded) as info:
            w.pay(shop.request(100))
        assert info.value.code == "consecutive_offline_limit"
        w.sync()  # online again: the consecutive counter restarts
        w.pay(shop.request(100))
        env.clock.advance(DAY + 1)  # a day later the daily amount is free again
        w.sync()
        w.pay(shop.request(1_000))
        assert w.payments()[0]["status"] == "confirmed"
        with pytest.raises(LimitExceeded):  # the freed holding is only what was paid
            w.load(2_301)
        w.load(2_300)
        shop.deposit_paid()
        w.sync()
        assert_agree(env, h, w)
    finally:
        shop.close()
        h.close()


def test_break_renew_and_close(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    shop = Terminal(env, "shop")
    try:
        w.load(200)
        # consolidate everything into a single 128 and a 64 and an 8 (an exchange)
        ids = [c.coin_id for c in w.spendable()]
        w.exchange("break", ids, [128, 64, 8])
        assert sorted(d["value"] for d in w.balance()["denominations"]) == [8, 64, 128]
        with pytest.raises(CannotPay) as info:
            w.pay(shop.request(3))
        assert "break --value 0.08" in str(info.value)  # yuan, as the CLI takes it
        with pytest.raises(InsufficientCoins):
            w.pay(shop.request(201))
        out = w.break_coin(amount=3)
        assert out["broken"] == 8 and sum(out["into"]) == 8
        assert w.pay(shop.request(3)).status == "confirmed"
        out = w.break_coin(value=128)
        assert sum(out["into"]) == 128 and max(out["into"]) < 128
        assert w.balance()["spendable"] == 197

        # rotation: two new generations; near generation 1's spend deadline, renew
        env.bank.add_generation()
        env.bank.add_generation()
        env.clock.advance(250 * DAY)  # gen 1 spend deadline is at 270 days
        out = w.sync()
        assert out["renew_suggested"] > 0
        out = w.renew()
        assert out["renewed_coins"] > 0 and out["amount"] == 197
        assert w.balance()["spendable"] == 197
        assert w.balance()["spend_deadlines"][0]["spend_deadline"] > env.clock() + 90 * DAY

        shop.deposit_paid()
        before = h.bank_balance()
        out = w.close_account()
        assert out["redeemed"]["value"] == 197 and out["account"]["status"] == "closed"
        assert h.bank_balance() == before + 197
        assert w.balance()["spendable"] == 0
        assert answered_twice(w) == []
        assert_agree(env, h, w)
    finally:
        shop.close()
        h.close()


def test_two_processes_paying_from_one_file_never_share_a_coin(env, tmp_path):
    import threading

    from ecash.wallet import Wallet

    from .kit import PASS

    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    w.load(8_000)
    other = Wallet.open(tmp_path / "w.db", PASS, clock=env.clock)  # a second connection
    h.wallets.append(other)
    shop = Terminal(env, "shop")
    try:
        requests = {id(x): [shop.request(a, pos=False) for a in (300, 250, 120, 64, 8)]
                    for x in (w, other)}
        paid, errors = [], []

        def pay_all(x: Wallet) -> None:
            try:
                for r in requests[id(x)]:
                    paid.append(x.pay(r))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=pay_all, args=(x,)) for x in (w, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        serials = [s.coin.A for p in paid for s in p.spends]
        assert len(serials) == len(set(serials))
        assert answered_twice(w) == []
        for p in paid:
            assert {v["status"] for v in shop.deposit(p.spends)} == {"accepted"}
        w.sync()
        assert_agree(env, h, w)
        assert coin_value(w, ("unspent",)) == 8_000 - 2 * 742
    finally:
        shop.close()
        h.close()
