"""The three outcomes of a payment (ECASH-1 5.1) at the terminal, over real
HTTP against a real bank: an online deposit whose answer comes after the
terminal's timeout is *pending*, never refused, and the identical payment
sent again gets the receipt, the bank having credited the shop once; a
refusal is signed only when the terminal holds none of the payment's
transcripts; the refusal log stays small and shows only our words."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from ecash.bank.client import BankClient
from ecash.merchant import TerminalConfig
from ecash.merchant.page import GENERAL_REFUSAL, refusal_words
from ecash.merchant.refusal_limit import Rate, RefusalLimiter
from ecash.merchant.schema import REFUSALS_KEPT, refusals
from ecash.merchant.settle import retry_pending
from ecash.wire import json as wj

from ..bankkit import pay_request
from .kit import (
    HoldingProxy,
    Switch,
    bank_balance,
    counts,
    decompose,
    new_terminal,
    pay_url,
    post_payment,
    serving,
    switched,
)
from .test_accept import signed_refusal

ONLINE = 16384 + 4096  # above the default floor limit


def _through(proxy: HoldingProxy):
    def factory(_url: str, cred: str, timeout: float) -> BankClient:
        return BankClient(proxy.url, cred, timeout=timeout)

    return factory


def _spent_at_bank(bank) -> int:
    from ecash.bank.schema import spent_coins

    with bank.bank.engine.connect() as c:
        return c.execute(select(func.count()).select_from(spent_coins)).scalar_one()


def test_a_late_bank_answer_is_pending_then_the_identical_payment_gets_the_receipt(
        bank, holder, tmp_path):
    proxy = HoldingProxy(bank.url)
    t = new_terminal(bank, tmp_path / "t.db", bank_factory=_through(proxy),
                     config=TerminalConfig(online_timeout_s=0.5))
    assert t.keys.policy.floor_limit < ONLINE
    coins = holder.withdraw(decompose(ONLINE))
    env = t.create_request(ONLINE)
    spends = pay_request(holder, coins, env.request)
    try:
        with serving(t) as url:
            proxy.hold.set()  # the bank will answer, after the terminal gave up waiting
            r = post_payment(pay_url(url, env.request.request_id), spends)
            assert r.status_code == 202, r.text
            assert r.json()["status"] == "pending" and r.json()["retry_after_s"] > 0
            assert r.headers["retry-after"] == str(r.json()["retry_after_s"])
            assert proxy.answered.is_set()  # the bank did answer: it credited the shop
            assert bank_balance(bank, t.merchant_id) == ONLINE
            assert counts(t) == (len(spends), 0)  # transcripts kept, not yet paid
            status = httpx.get(f"{url}/api/requests/{env.request.request_id.hex()}").json()
            assert status["status"] == "pending" and status["refusal"] is None

            proxy.hold.clear()
            proxy.release.set()
            again = post_payment(pay_url(url, env.request.request_id), spends[::-1])
            assert again.status_code == 200, again.text
            receipt = wj.receipt_from_json(again.json()["receipt"])
            receipt.verify(env.certificate.public_key)
            assert receipt.request_id == env.request.request_id
            # once more: the same receipt, the bank not asked again
            proxy.hold.set()
            proxy.release.clear()
            assert post_payment(pay_url(url, env.request.request_id),
                                spends).json() == again.json()
            proxy.release.set()
    finally:
        proxy.close()
    assert bank_balance(bank, t.merchant_id) == ONLINE  # credited once
    assert _spent_at_bank(bank) == len(spends)
    assert counts(t) == (len(spends), 1)
    assert t.deposit().sent == 0  # every transcript has its verdict
    rep = t.report()
    assert rep["credited"] == {"count": len(spends), "value": ONLINE}
    t.close()


def test_the_background_settles_a_pending_payment(bank, holder, tmp_path):
    switch = Switch()
    t = new_terminal(bank, tmp_path / "t.db", bank_factory=switched(switch))
    env = t.create_request(ONLINE)
    spends = pay_request(holder, holder.withdraw(decompose(ONLINE)), env.request)
    with serving(t) as url:
        switch.down = True
        assert post_payment(pay_url(url, env.request.request_id), spends).status_code == 202
        assert retry_pending(t) == 1  # still no bank: still pending, nothing refused
        assert t.store.request(env.request.request_id).status == "pending"
        switch.down = False
        assert retry_pending(t) == 0  # what the server's settler does every few seconds
        status = httpx.get(f"{url}/api/requests/{env.request.request_id.hex()}").json()
        assert status["status"] == "paid"
        switch.down = True  # the answer no longer needs the bank
        r = post_payment(pay_url(url, env.request.request_id), spends)
        assert r.status_code == 200, r.text
        wj.receipt_from_json(r.json()["receipt"]).verify(env.certificate.public_key)
    assert bank_balance(bank, t.merchant_id) == ONLINE
    t.close()


def test_while_pending_another_payment_is_refused_signed_only_if_disjoint(
        bank, holder, tmp_path):
    switch = Switch()
    t = new_terminal(bank, tmp_path / "t.db", bank_factory=switched(switch))
    env = t.create_request(ONLINE)
    coins = holder.withdraw(decompose(ONLINE))
    spends = pay_request(holder, coins, env.request)
    with serving(t) as url:
        switch.down = True
        assert post_payment(pay_url(url, env.request.request_id), spends).status_code == 202
        # the pending payment's coin 0 with other coins: held transcript, no signature
        first_value = decompose(ONLINE)[0]
        overlapping = [spends[0], *pay_request(
            holder, holder.withdraw(decompose(ONLINE - first_value)), env.request)]
        r = post_payment(pay_url(url, env.request.request_id), overlapping)
        assert r.status_code == 422 and r.json()["code"] == "other_payment_pending"
        assert "refusal" not in r.json()
        disjoint = pay_request(holder, holder.withdraw(decompose(ONLINE)), env.request)
        r = post_payment(pay_url(url, env.request.request_id), disjoint)
        assert r.status_code == 422 and r.json()["code"] == "other_payment_pending"
        signed_refusal(r.json(), env, disjoint)
        switch.down = False
        assert post_payment(pay_url(url, env.request.request_id), spends).status_code == 200
    t.close()


def test_the_refusal_log_keeps_codes_only_and_a_few_per_request(bank, terminal, holder):
    env = terminal.create_request(1250)
    hostile = "<b>CALL 555-0100 FOR A REFUND</b>"
    with serving(terminal, refusal_limiter=RefusalLimiter(Rate(1e6, 1e6), Rate(1e6, 1e6))) \
            as url:
        u = pay_url(url, env.request.request_id)
        for i in range(REFUSALS_KEPT + 5):
            r = httpx.post(u, json={"spends": [{"coin": hostile, "i": i}]})
            assert r.status_code == 422
        status = httpx.get(f"{url}/api/requests/{env.request.request_id.hex()}")
        assert "CALL 555" not in status.text and "<b>" not in status.text
        body = status.json()
        assert body["status"] == "open"  # bodies that are no payment decide nothing
        assert body["refusal"]["count"] == REFUSALS_KEPT + 5
        assert body["refusal"]["words"] == refusal_words(body["refusal"]["code"])
        assert body["refusal"]["words"] == GENERAL_REFUSAL
        assert set(body["refusal"]) == {"code", "words", "at_ms", "count"}
        # a payment still goes through
        ok = post_payment(u, pay_request(holder, holder.withdraw(decompose(1250)), env.request))
        assert ok.status_code == 200, ok.text
    with terminal.store.engine.connect() as c:
        kept = c.execute(select(func.count()).select_from(refusals)).scalar_one()
        assert "detail" not in refusals.c
    assert kept == REFUSALS_KEPT
    assert terminal.report()["payments"]["refused"]["count"] == REFUSALS_KEPT + 5


def test_refusals_are_rate_limited_per_client_and_per_request(bank, holder, tmp_path):
    t = new_terminal(bank, tmp_path / "t.db")
    per_client = RefusalLimiter(per_client=Rate(3, 1e-6), per_request=Rate(1e6, 1e6))
    with serving(t, refusal_limiter=per_client) as url:
        for _ in range(3):
            env = t.create_request(5)
            assert httpx.post(pay_url(url, env.request.request_id), json={}).status_code == 422
        r = httpx.post(pay_url(url, env.request.request_id), json={})
        assert r.status_code == 429 and r.json()["code"] == "too_many_refusals"
        assert int(r.headers["retry-after"]) >= 1
        assert t.store.request(env.request.request_id).refused_count == 1  # not logged
        # a client past its share is answered 429 whatever it sends, until it refills
        coins = holder.withdraw([4, 1])
        env = t.create_request(5)
        assert post_payment(pay_url(url, env.request.request_id),
                            pay_request(holder, coins, env.request)).status_code == 429
    per_request = RefusalLimiter(per_client=Rate(1e6, 1e6), per_request=Rate(2, 1e-6))
    with serving(t, refusal_limiter=per_request) as url:
        busy, other = t.create_request(5), t.create_request(5)
        for _ in range(2):
            assert httpx.post(pay_url(url, busy.request.request_id), json={}).status_code == 422
        assert httpx.post(pay_url(url, busy.request.request_id), json={}).status_code == 429
        assert httpx.post(pay_url(url, other.request.request_id), json={}).status_code == 422
        ok = post_payment(pay_url(url, other.request.request_id),
                          pay_request(holder, holder.withdraw([4, 1]), other.request))
        assert ok.status_code == 200, ok.text
    t.close()
