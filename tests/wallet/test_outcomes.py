"""The three outcomes of a payment (ECASH-1 5, 5.1) as the wallet lives them,
against a real bank and real terminals over HTTP: a signed refusal releases
the coins at once, a refusal that does not verify leaves them pending, a
pending answer is resolved by ``sync``, a request too far from the wallet's
clock is refused before anything is sent, and a refused or unanswered payment
whose coins turn up spent becomes a dispute, never ``settled``."""

from __future__ import annotations

import json

import pytest

from ecash.crypto.sign import SigningKey
from ecash.wallet import RequestRefused, TerminalError

from ..merchant.kit import Switch, new_terminal, serving, switched
from .kit import Terminal, coin_value, holder, run_cli

ONLINE = 20_480  # above the default floor limit: the terminal deposits online


def _row(w, request_id: bytes) -> dict:
    r = w.store.conn.execute("SELECT status, detail, envelope, refusal, dispute FROM payments"
                             " WHERE request_id = ?", (request_id,)).fetchone()
    return dict(zip(("status", "detail", "envelope", "refusal", "dispute"), r, strict=True))


def test_a_signed_refusal_releases_the_coins_and_is_kept(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    t = new_terminal(env, tmp_path / "t.db", "shop-1")
    try:
        w.load(2_000)
        with serving(t) as url:
            envelope = t.create_request(700, pos_base=url, ttl_s=60)
            env.clock.advance(120)  # expired at the terminal, two minutes old for the wallet
            with pytest.raises(TerminalError) as refused:
                w.pay(envelope)
            assert refused.value.outcome == "released"
            assert refused.value.code == "request_expired"
            rid = envelope.request.request_id
            row = _row(w, rid)
            assert row["status"] == "released" and row["detail"] == "request_expired"
            assert json.loads(row["envelope"])["certificate"]  # the request with its certificate
            assert json.loads(row["refusal"])["code"] == "request_expired"
            bal = w.balance()
            assert bal["pending"] == 0 and bal["spendable"] == 2_000
            assert w.pay(envelope).status == "released"  # asked again: nothing is sent
            # the released coins pay another request at once
            again = w.pay(t.create_request(2_000, pos_base=url))
            assert again.status == "confirmed"
            assert w.audit()["ok"], w.audit()
    finally:
        t.close()
        h.close()


@pytest.mark.parametrize("forgery", ["other_key", "other_payment", "none"])
def test_a_refusal_that_does_not_verify_keeps_the_coins_pending(env, tmp_path, forgery):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    shop = Terminal(env, "shop")
    try:
        w.load(1_000)
        shop.refuse = "terminal_closed"
        shop.refusal_key = {"other_key": SigningKey.generate(), "other_payment": shop.key,
                            "none": None}[forgery]
        envelope = shop.request(300)
        if forgery == "other_payment":  # a valid refusal, of the request paid with other coins
            real = shop._refusal

            def swapped(req, spends):
                return real(req, spends[:-1] or [*spends, *spends])

            shop._refusal = swapped
        with pytest.raises(TerminalError) as refused:
            w.pay(envelope)
        assert refused.value.outcome == "pending"
        row = _row(w, envelope.request.request_id)
        assert row["status"] == "refused" and row["refusal"] is None
        assert w.balance()["pending"] == 300
    finally:
        shop.close()
        h.close()


def test_pending_at_the_terminal_is_answered_by_a_later_sync(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    switch = Switch()
    t = new_terminal(env, tmp_path / "t.db", "shop-1", bank_factory=switched(switch))
    try:
        w.load(ONLINE + 1_000)
        with serving(t) as url:
            envelope = t.create_request(ONLINE, pos_base=url)
            switch.down = True  # the terminal cannot reach the bank: pending, never refused
            with pytest.raises(TerminalError) as pending:
                w.pay(envelope)
            assert pending.value.code == "payment_pending"
            assert pending.value.outcome == "pending"
            rid = envelope.request.request_id
            assert _row(w, rid)["status"] == "answered" and w.balance()["pending"] == ONLINE
            w.sync()  # still no bank behind the terminal: still pending
            assert _row(w, rid)["status"] == "answered"
            switch.down = False
            out = w.sync()  # the identical payment again: the final answer
            assert out["resent"][0]["status"] == "confirmed"
            assert _row(w, rid)["status"] == "confirmed"
            assert w.balance()["pending"] == 0
    finally:
        t.close()
        h.close()


@pytest.mark.parametrize("minutes, code", [(11, "request_expired"), (-11, "request_from_future")])
def test_a_request_more_than_ten_minutes_off_is_refused_before_sending(env, tmp_path, minutes,
                                                                       code):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    shop = Terminal(env, "shop")
    try:
        w.load(1_000)
        stamp = int((env.clock() - minutes * 60) * 1000)
        with pytest.raises(RequestRefused) as refused:
            w.pay(shop.request(100, timestamp_ms=stamp))
        assert refused.value.code == code
        assert shop.posts == 0 and w.payments() == [] and w.balance()["pending"] == 0
        near = int((env.clock() - (minutes - minutes // abs(minutes) * 2) * 60) * 1000)
        assert w.pay(shop.request(100, timestamp_ms=near)).status == "confirmed"  # 9 min: paid
    finally:
        shop.close()
        h.close()


def test_a_refused_payment_deposited_anyway_is_a_dispute_filed_with_the_bank(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    shop = Terminal(env, "shop")
    try:
        w.load(1_000)
        shop.refuse, shop.refusal_key = "terminal_closed", shop.key
        envelope = shop.request(300)
        with pytest.raises(TerminalError) as refused:
            w.pay(envelope)
        assert refused.value.outcome == "released" and w.balance()["spendable"] == 1_000
        rid = envelope.request.request_id
        # the merchant deposits the transcripts it signed a refusal of
        assert {v["status"] for v in shop.deposit(shop.refused[rid.hex()])} == {"accepted"}
        out = w.sync()
        row = _row(w, rid)
        assert row["status"] == "disputed" and row["detail"] == "deposited_after_refusal"
        assert w.balance()["spendable"] == 700  # those coins are gone: never paid again
        assert out["settled"]["disputed"] == 1
        [filed] = out["disputes_filed"]
        assert filed["filed"] and filed["status"] == "upheld", filed
        assert json.loads(row["dispute"])["status"] == "upheld"
        [d] = w.disputes()
        assert d["evidence"]["refusal"]["code"] == "terminal_closed"
        assert d["evidence"]["request"] and d["evidence"]["payment"].startswith("ecpay1:")
        assert w.sync()["disputes_filed"] == []  # filed once
        assert w.balance()["disputes"][0]["filed"] == "upheld"
    finally:
        shop.close()
        h.close()


def test_an_unsigned_refusal_whose_coins_turn_up_spent_is_disputed_not_settled(env, tmp_path):
    h = holder(env)
    path = tmp_path / "w.db"
    w = h.wallet(path)
    shop = Terminal(env, "shop")
    try:
        w.load(1_000)
        shop.refuse = "bank_unreachable"  # no signature: the terminal may hold them
        envelope = shop.request(300)
        with pytest.raises(TerminalError):
            w.pay(envelope)
        rid = envelope.request.request_id
        assert w.balance()["pending"] == 300
        shop.deposit(shop.refused[rid.hex()])
        out = w.sync()
        row = _row(w, rid)
        assert row["status"] == "disputed" and row["detail"] == "spent_after_refusal"
        assert out["settled"]["disputed"] == 1 and out["disputes_filed"] == []
        assert coin_value(w, ("pending",)) == 0 and coin_value(w, ("spent",)) == 300
        [d] = w.disputes()
        assert d["evidence"]["refusal"] is None and d["filed"] is None
        assert [p["status"] for p in w.payments() if p["kind"] == "pay"] == ["disputed"]
        w.close()
        h.wallets.remove(w)
        shown = run_cli(["disputes", "--wallet", str(path), "--json"])
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["disputes"][0]["request_id"] == rid.hex()
        bal = run_cli(["balance", "--wallet", str(path)])
        assert "1 disputed payment" in bal.stdout, bal.stdout
    finally:
        shop.close()
        h.close()
