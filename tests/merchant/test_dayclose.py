"""The day's sales and the day close: per till name and for the shop, paid,
deposited, awaiting deposit, checking with the bank, refused, cancelled,
expired and waiting; the receipt of a paid sale."""

from __future__ import annotations

import datetime as dt
import hashlib

import httpx
import pytest

from ecash.crypto.payment import Receipt
from ecash.merchant import Terminal
from ecash.merchant.cancel import cancel_request
from ecash.merchant.dayclose import day_bounds, day_close
from ecash.merchant.errors import MerchantError
from ecash.merchant.receiptview import receipt_view

from ..bankkit import Clock, pay_request
from .kit import Switch, decompose, new_terminal, serving, switched


def test_day_bounds_are_utc_days():
    assert day_bounds("2026-12-03", 0) == ("2026-12-03", 1_796_256_000_000,
                                           1_796_342_400_000)
    # no date: today, UTC
    assert day_bounds(None, 1_796_256_000_000 + 5)[0] == "2026-12-03"
    for bad in ("2026-13-01", "yesterday", "2026-1-1", "20261203"):
        with pytest.raises(MerchantError) as exc:
            day_bounds(bad, 0)
        assert exc.value.code == "bad_date"


def test_day_close_per_till_and_for_the_shop(bank, holder, tmp_path):
    switch, clock = Switch(), Clock()
    a = new_terminal(bank, tmp_path / "shop.db", name="front", clock=clock,
                     bank_factory=switched(switch))
    b = Terminal.open(tmp_path / "shop.db", name="back", clock=clock)
    try:
        paid_a = a.create_request(1250, description="2 coffees")
        a.accept(paid_a.request.request_id,
                 pay_request(holder, holder.withdraw(decompose(1250)), paid_a.request))
        paid_b = b.create_request(300)
        b.accept(paid_b.request.request_id,
                 pay_request(holder, holder.withdraw(decompose(300)), paid_b.request))
        assert a.deposit().sent == len(decompose(1250)) + len(decompose(300))
        refused = a.create_request(500)
        with pytest.raises(MerchantError):  # the coins add up to 256: refused
            a.accept(refused.request.request_id,
                     pay_request(holder, holder.withdraw([256]), refused.request))
        cancel_request(b, b.create_request(700).request.request_id)
        waiting = b.create_request(100)
        expired = b.create_request(60, ttl_s=1)
        unpaid_b = b.create_request(40)  # paid offline, not deposited yet
        b.accept(unpaid_b.request.request_id,
                 pay_request(holder, holder.withdraw(decompose(40)), unpaid_b.request))
        big = 20480
        assert big > a.keys.policy.floor_limit
        pending = a.create_request(big)
        switch.down = True
        with pytest.raises(MerchantError):  # PaymentPending: the bank does not answer
            a.accept(pending.request.request_id,
                     pay_request(holder, holder.withdraw(decompose(big)), pending.request))
        clock.advance(2)
        today = dt.datetime.fromtimestamp(paid_a.request.timestamp_ms / 1000, dt.UTC).date()
        close = day_close(a, today.isoformat())
    finally:
        b.close()
    assert close["zone"] == "UTC" and close["currency"] == "CNY"
    shop = close["store"]
    assert shop["paid"] == {"count": 3, "value": 1590}
    assert shop["deposited"] == 1550 and shop["awaiting_deposit"] == 40
    assert shop["pending"] == {"count": 1, "value": big}
    assert shop["refused"] == {"count": 1, "value": 500}
    assert shop["cancelled"] == {"count": 1, "value": 700}
    assert shop["expired"] == {"count": 1, "value": 60}
    assert shop["waiting"] == {"count": 1, "value": 100}
    front, back = close["terminals"]["front"], close["terminals"]["back"]
    assert front["paid"] == {"count": 1, "value": 1250} and front["deposited"] == 1250
    assert front["pending"]["count"] == 1 and front["refused"]["count"] == 1
    assert back["paid"] == {"count": 2, "value": 340} and back["awaiting_deposit"] == 40
    assert back["cancelled"]["count"] == back["expired"]["count"] == 1
    states = [(s["terminal"], s["amount"], s["state"]) for s in close["sales"]]
    assert states[:2] == [("front", 1250, "paid"), ("back", 300, "paid")]
    assert ("front", 500, "refused") in states and ("back", 100, "waiting") in states
    refused_row = next(s for s in close["sales"] if s["state"] == "refused")
    assert refused_row["reason"] == "amount_mismatch"
    assert close["sales"][0]["description"] == "2 coffees"
    # another day holds none of them
    other = (today - dt.timedelta(days=1)).isoformat()
    assert day_close(a, other)["store"]["paid"]["count"] == 0
    assert waiting.request.request_id.hex() in {s["request_id"] for s in close["sales"]}
    assert expired.request.request_id.hex() in {s["request_id"] for s in close["sales"]}

    view = receipt_view(a, paid_a.request.request_id)
    assert view["amount"] == 1250 and view["terminal"] == "front"
    assert view["description"] == "2 coffees" and view["coins"] == len(decompose(1250))
    Receipt(paid_a.request.request_id, 1250,
            bytes.fromhex(view["signature"])).verify(bytes.fromhex(view["merchant_key"]))
    fp = hashlib.sha256(bytes.fromhex(view["signature"])).hexdigest()[:16]
    assert view["fingerprint"].replace(" ", "") == fp
    with pytest.raises(MerchantError) as exc:
        receipt_view(a, refused.request.request_id)
    assert exc.value.code == "not_paid"

    with serving(a) as url:
        r = httpx.get(f"{url}/api/day", params={"date": today.isoformat()})
        assert r.status_code == 200 and r.json()["store"] == shop
        r = httpx.get(f"{url}/api/day", params={"date": "2026-02-30"})
        assert r.status_code == 400 and r.json()["code"] == "bad_date"
        r = httpx.get(f"{url}/day", params={"date": "2026-02-30", "lang": "zh-CN"})
        assert r.status_code == 400 and "这不是日期。请使用 2026-12-03 的格式。" in r.text
        page = httpx.get(f"{url}/day", params={"date": today.isoformat()}).text
        assert "CN¥15.90" in page and "@media print" in page
        page = httpx.get(f"{url}/day", params={"date": today.isoformat(), "lang": "zh-CN"}).text
        assert "¥15.90" in page and "全店" in page
        r = httpx.get(f"{url}/receipt/{paid_a.request.request_id.hex()}")
        assert r.status_code == 200 and view["fingerprint"] in r.text and "<svg" in r.text
        assert httpx.get(f"{url}/receipt/{refused.request.request_id.hex()}").status_code == 409
        r = httpx.post(f"{url}/api/requests/{waiting.request.request_id.hex()}/payment",
                       json={"text": "ecpay1:AAAA"})
        assert r.status_code == 422 and r.json()["outcome"] == "refused"
        assert "AAAA" not in r.json()["words"]
    a.close()


def test_the_customers_payment_text_is_taken_at_the_till(bank, terminal, holder):
    from ecash.wire.text import payment_to_text

    with serving(terminal) as url:
        sale = httpx.post(f"{url}/api/requests", json={"amount_text": "0.05"}).json()
        env = terminal.store.request(bytes.fromhex(sale["request_id"]))
        text = payment_to_text(pay_request(holder, holder.withdraw([4, 1]), env.request))
        wrapped = "\n".join(text[i:i + 60] for i in range(0, len(text), 60))  # as pasted
        r = httpx.post(f"{url}/api/requests/{sale['request_id']}/payment",
                       json={"text": wrapped})
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "paid" and r.json()["sale"]["state"] == "paid"
