"""The cashier's Cancel: a request shown to a customer stops taking payments,
and a wallet that pays it anyway gets a signed refusal (it may release its
coins at once); a decided sale cannot be cancelled."""

from __future__ import annotations

import httpx
import pytest

from ecash.merchant.cancel import CannotCancel, cancel_request
from ecash.merchant.dayclose import day_close
from ecash.merchant.errors import RequestNotFound
from ecash.merchant.requests import pay_url
from ecash.wire import json as wj
from ecash.wire.binary import payment_items

from ..bankkit import pay_request
from .kit import counts, post_payment, serving, serving_networked


def _sale(url: str, amount_text: str) -> dict:
    r = httpx.post(f"{url}/api/requests", json={"amount_text": amount_text})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_cancelled_request_refuses_a_wallet_signed(bank, terminal, holder):
    with serving(terminal) as url:
        sale = _sale(url, "3.00")
        env = wj.envelope_from_json(sale["envelope"])
        r = httpx.post(f"{url}/api/requests/{sale['request_id']}/cancel", json={})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["state"] == "cancelled"
        # cancelling again changes nothing
        assert httpx.post(f"{url}/api/requests/{sale['request_id']}/cancel",
                          json={}).json()["state"] == "cancelled"
        spends = pay_request(holder, holder.withdraw([2, 1]), env.request)
        for _ in range(2):  # the identical payment again: the same answer
            r = post_payment(pay_url(url, env.request.request_id), spends)
            assert r.status_code == 422 and r.json()["code"] == "request_cancelled", r.text
            refusal = wj.refusal_from_json(r.json()["refusal"])
            refusal.verify(env.certificate.public_key, env.request.request_id,
                           payment_items(spends))
            assert refusal.code == "request_cancelled"
        state = httpx.get(f"{url}/api/requests/{sale['request_id']}").json()
        assert state["state"] == "cancelled"
        assert state["refusal"]["words"] == "The cashier cancelled this sale."
    assert counts(terminal) == (0, 0)  # no coin of the refused payment is kept
    close = day_close(terminal)  # on both stores: the day close counts it as cancelled
    assert close["store"]["cancelled"] == {"count": 1, "value": 300}
    assert [s["state"] for s in close["sales"]] == ["cancelled"]
    payments = terminal.report()["payments"]  # the settlement report counts it apart
    assert payments["cancelled"] == 1 and payments["open"] == payments["expired"] == 0


def test_a_decided_sale_cannot_be_cancelled(bank, terminal, holder):
    env = terminal.create_request(3)
    spends = pay_request(holder, holder.withdraw([2, 1]), env.request)
    with serving(terminal) as url:
        assert post_payment(f"{url}/pay/{env.request.request_id.hex()}",
                            spends).status_code == 200
        r = httpx.post(f"{url}/api/requests/{env.request.request_id.hex()}/cancel", json={},
                       headers={"accept-language": "zh-CN"})
        assert r.status_code == 409 and r.json()["code"] == "cannot_cancel"
        assert r.json()["words"] == "这笔交易已有结果，无法取消。"
        assert httpx.post(f"{url}/api/requests/{'ab' * 32}/cancel",
                          json={}).status_code == 404
    with pytest.raises(CannotCancel, match="paid"):
        cancel_request(terminal, env.request.request_id)
    with pytest.raises(RequestNotFound):
        cancel_request(terminal, bytes(32))
    assert terminal.store.request(env.request.request_id).status == "paid"


def test_a_payment_that_claimed_the_request_first_wins(bank, terminal, holder):
    """Cancel and payment race for the open request in the store: whichever
    claims it first decides; here the cancel comes second and is refused."""
    env = terminal.create_request(4)
    terminal.accept(env.request.request_id,
                    pay_request(holder, holder.withdraw([4]), env.request))
    assert terminal.store.cancel(env.request.request_id, terminal.now_ms()) == "paid"
    other = terminal.create_request(4)
    assert terminal.store.cancel(other.request.request_id, terminal.now_ms()) == "open"
    assert terminal.store.request(other.request.request_id).status == "cancelled"


def test_a_real_wallet_gets_its_coins_back_from_a_cancelled_sale(bank, tmp_path):
    """The customer's wallet read the QR before the cashier pressed Cancel:
    it pays, is refused with a signed ``request_cancelled`` and may spend the
    same coins again at once."""
    from ecash.wallet import TerminalError
    from ecash.wallet.request_source import resolve_request

    from ..wallet.kit import holder as wallet_holder
    from .kit import new_terminal

    h = wallet_holder(bank)
    w = h.wallet(tmp_path / "w.db")
    t = new_terminal(bank, tmp_path / "t.db")
    try:
        w.load(2_000)
        with serving_networked(t) as url:
            sale = _sale(url, "7.00")
            seen = resolve_request(sale["qr_text"])  # what the phone read from the QR
            r = httpx.post(f"{url}/api/requests/{sale['request_id']}/cancel", json={})
            assert r.json()["state"] == "cancelled"
            with pytest.raises(TerminalError) as refused:
                w.pay(seen.envelope)
            assert refused.value.outcome == "released"
            assert refused.value.code == "request_cancelled"
            assert w.balance()["spendable"] == 2_000 and w.balance()["pending"] == 0
            again = _sale(url, "7.00")  # the same coins pay the next sale
            assert w.pay(resolve_request(again["qr_text"]).envelope).status == "confirmed"
    finally:
        h.close()
        t.close()
