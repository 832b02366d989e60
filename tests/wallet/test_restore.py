"""Restore from the seed phrase: across a key rotation, after a crash between
challenge and answer, with coins paid but not yet deposited (pending, the
holder never named); two copies of one seed loading at once never collide."""

from __future__ import annotations

import threading

import pytest

from ecash.bank.client import BankClient
from ecash.wallet import TEST_KDF, BankUnreachable, InsufficientCoins, Wallet, WalletError
from ecash.wallet.core import CLOCK_MARGIN_S
from ecash.wire import text

from .kit import PASS, FlakyTransport, Terminal, answered_twice, coin_value, holder

DAY = 86_400


def test_restore_after_rotation_lost_replies_and_unsettled_payments(env, tmp_path):
    h = holder(env)
    flaky = FlakyTransport()
    w1, phrase = Wallet.create(tmp_path / "w1.db", PASS, kdf=TEST_KDF, clock=env.clock,
                               transport=flaky)
    h.wallets.append(w1)
    w1.register(env.url, h.account_id, h.credential)
    shop = Terminal(env, "shop")
    try:
        w1.load(1_000)  # generation 1
        env.bank.add_generation()
        env.clock.advance(91 * DAY)  # generation 2 is now the withdrawable one
        fp_before = w1.store.meta_text("keyset_fingerprint")
        w1.load(500)
        assert w1.store.meta_text("keyset_fingerprint") != fp_before
        gens = {w1.key(bytes(k)).withdraw_start for (k,) in w1.store.conn.execute(
            "SELECT key_id FROM coins")}
        assert len(gens) == 2

        # crash between challenge and answer: challenges stored, never sent
        flaky.arm("/withdrawals/", "before")
        with pytest.raises(BankUnreachable):
            w1.load(300)
        # ... and a reply lost after the bank answered (and debited)
        w1.store.conn.execute("UPDATE ops SET state = 'failed' WHERE state = 'open'")
        flaky.arm("/withdrawals/", "reply")
        with pytest.raises(BankUnreachable):
            w1.load(200)
        debited = h.funds - h.bank_balance()
        assert debited == 1_000 + 500 + 200  # the unsent challenges cost nothing

        # paid but not deposited yet; and paid and deposited
        unsettled = w1.pay(shop.request(300, pos=False))
        settled = w1.pay(shop.request(250))
        shop.deposit(settled.spends)

        # the device is lost; restore from the phrase
        w2, out = h.restore(tmp_path / "w2.db", phrase)
        assert out["unrecognised"] == 0 and out["expired"] == 0
        assert out["spent"] == len(settled.spends)
        assert coin_value(w2, ("unspent", "pending", "spent")) == debited  # nothing lost
        assert out["pending_value"] == debited - 250
        expected_until = env.clock() + w2.deposit_window + CLOCK_MARGIN_S
        assert expected_until - 5 <= out["pending_until"] <= expected_until
        assert w2.balance()["spendable"] == 0
        with pytest.raises(InsufficientCoins):
            w2.pay(shop.request(1))

        # the merchant deposits late (within T): the restored wallet learns it
        assert {v["status"] for v in shop.deposit(text.payment_from_text(unsettled.text))} \
            == {"accepted"}
        s = w2.sync()["settled"]
        assert s["spent"] == len(unsettled.spends) and s["freed"] == 0
        env.clock.advance(w2.deposit_window + CLOCK_MARGIN_S + 1)
        s = w2.sync()["settled"]
        assert s["freed_value"] == debited - 550 and s["still_pending"] == 0
        assert w2.balance()["spendable"] == debited - 550

        # spend everything the restored wallet has, deposit it: nobody is named
        for amount in (700, 400, 50):
            shop.deposit(w2.pay(shop.request(amount)).spends)
        assert env.operator.fraud_cases() == []
        assert answered_twice(w2) == []
        rep = env.operator.audit()
        assert rep["ok"], rep["problems"]
        assert rep["figures"]["issued"] == coin_value(w2, ("unspent", "pending", "spent"))
        assert rep["figures"]["liability"] == coin_value(w2, ("unspent",))
        # the range queries never carried a serial: only prefixes went out
    finally:
        shop.close()
        h.close()


def test_restore_refuses_a_phrase_of_another_account(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    assert w.account_id == h.account_id
    other, phrase = Wallet.create(tmp_path / "o.db", PASS, kdf=TEST_KDF)
    other.close()
    with pytest.raises(WalletError) as info:
        h.restore(tmp_path / "r.db", phrase)
    assert info.value.code == "identity_mismatch"
    assert not (tmp_path / "r.db").exists()


def test_two_copies_of_one_seed_loading_at_once_never_collide(env, tmp_path):
    h = holder(env, funds=100_000)
    w1 = h.wallet(tmp_path / "w1.db")
    w2, _ = h.restore(tmp_path / "w2.db", w1.phrase)
    errors: list[BaseException] = []

    def load(w: Wallet) -> None:
        try:
            for _ in range(3):
                w.load(1_500)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(w,)) for w in (w1, w2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    serials = [{bytes(r[0]) for r in w.store.conn.execute("SELECT serial FROM coins")}
               for w in (w1, w2)]
    assert serials[0] and serials[1] and not serials[0] & serials[1]
    shop = Terminal(env, "shop")
    try:
        for w in (w1, w2):
            spends = w.pay(shop.request(4_000)).spends
            assert {v["status"] for v in shop.deposit(spends)} == {"accepted"}
        assert env.operator.fraud_cases() == []
        assert h.funds - h.bank_balance() == 9_000
        rep = env.operator.audit()
        assert rep["ok"] and rep["figures"]["liability"] == 1_000
    finally:
        shop.close()
        h.close()


def test_range_queries_are_unauthenticated_and_padded(env, tmp_path, monkeypatch):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    w.load(300)
    seen = []
    real = BankClient.spent_range

    def spy(self, generation, prefix_bits, prefixes, after=None):
        seen.append(("authorization" in self.http.headers, prefix_bits, list(prefixes)))
        return real(self, generation, prefix_bits, prefixes, after)

    monkeypatch.setattr(BankClient, "spent_range", spy)
    shop = Terminal(env, "shop")
    try:
        w.pay(shop.request(100, pos=False))
        w.sync()
        assert seen and all(not auth for auth, _, _ in seen)
        # every query asks 32 distinct buckets or more, or every bucket there is
        assert all(len(set(p)) == len(p) and (len(p) >= 32 or len(p) == 1 << bits)
                   for _, bits, p in seen)
    finally:
        shop.close()
        h.close()
