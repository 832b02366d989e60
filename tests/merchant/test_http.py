"""The point of sale's own API, and who may use it."""

from __future__ import annotations

import httpx

from ecash.merchant.http import create_app
from ecash.serving.threaded import ThreadedServer
from ecash.wire.text import request_from_text

from ..bankkit import pay_request
from .kit import post_payment, serving


def test_cashier_api(bank, terminal):
    with serving(terminal) as url:
        info = httpx.get(f"{url}/api/info").json()
        assert info["merchant_id"] == "shop-1" and info["currency"] == "CNY"
        assert info["keyset_fingerprint"] == terminal.keys.fingerprint
        r = httpx.post(f"{url}/api/requests", content=b'{"amount": 5}')  # not declared JSON
        assert r.status_code == 400 and r.json()["code"] == "bad_content_type"
        r = httpx.post(f"{url}/api/requests", json={"amount": 0})
        assert r.status_code == 400 and r.json()["code"] == "bad_amount"
        r = httpx.post(f"{url}/api/requests", json={"amount": 5, "tip": 1})
        assert r.status_code == 422 and r.json()["code"] == "unknown_key"
        r = httpx.post(f"{url}/api/requests", json={"amount": 5})
        assert r.status_code == 200
        body = r.json()
        env = request_from_text(body["text"])
        # no public URL: no pos_url, so no wallet posts to an address it cannot reach
        assert body["pos_url"] == env.pos_url == "" and body["request_id"]
        assert body["svg"].startswith("<svg")
        assert httpx.get(f"{url}/api/requests/{'0' * 64}").status_code == 404
        assert httpx.get(f"{url}/api/requests/{body['request_id']}").json()["status"] == "open"
        assert httpx.get(f"{url}/report").status_code == 200


def test_the_sale_screen_api(bank, terminal):
    """Amounts as typed (major units) within the bank's single-payment limit;
    amounts in minor units for programs; every answer says which unit."""
    limit = terminal.keys.policy.single_payment_limit
    with serving(terminal) as url:
        info = httpx.get(f"{url}/api/info").json()
        assert info["single_payment_limit"] == limit and info["amount_unit"] == "minor"
        assert info["terminal"] == terminal.name and info["networked"] is False
        sale = httpx.post(f"{url}/api/requests", json={"amount_text": "1,234.5"})
        assert sale.status_code == 400 and sale.json()["code"] == "over_limit"
        assert sale.json()["limit"] == limit
        sale = httpx.post(f"{url}/api/requests", json={"amount": limit + 1})
        assert sale.status_code == 400 and sale.json()["code"] == "over_limit"
        for bad in ({"amount_text": "12,34"}, {"amount_text": "-1"}, {"amount_text": "abc"},
                    {"amount_text": 12}, {"amount": 5, "amount_text": "5"}, {}):
            r = httpx.post(f"{url}/api/requests", json=bad)
            assert r.status_code in (400, 422) and r.json()["words"], bad
            assert r.json()["code"] != "internal"
        body = httpx.post(f"{url}/api/requests",
                          json={"amount_text": "12.5", "description": "2 coffees"}).json()
        assert body["amount"] == 1250 and body["amount_unit"] == "minor"
        assert body["amount_text"] == "CN¥12.50" and body["description"] == "2 coffees"
        assert body["qr_kind"] == "offline" and body["svg"].startswith("<svg")
        assert body["lifetime_ms"] == terminal.config.request_ttl_s * 1000
        state = httpx.get(f"{url}/api/requests/{body['request_id']}").json()
        assert state["state"] == "waiting" and state["status"] == "open"
        r = httpx.post(f"{url}/api/requests", json={"amount": 5, "description": "a\u202eb"})
        assert r.status_code in (400, 422) and r.json()["code"] == "bad_description"
        assert "characters a wallet cannot show" in r.json()["words"]


def test_only_the_cashier_sees_the_point_of_sale(bank, terminal, holder):
    with ThreadedServer(create_app(terminal, cashier_clients=())) as url:
        rid = "ab" * 32
        for path in ("/", "/report", "/api/report", "/api/info", "/day", "/api/day",
                     f"/receipt/{rid}", f"/api/requests/{rid}", f"/api/requests/{rid}/receipt"):
            r = httpx.get(url + path)
            assert r.status_code == 403 and r.json()["code"] == "cashier_only"
        for path in ("/api/requests", f"/api/requests/{rid}/cancel",
                     f"/api/requests/{rid}/payment"):
            r = httpx.post(url + path, json={"amount": 5})
            assert r.status_code == 403 and r.json()["code"] == "cashier_only"
        assert httpx.get(url + "/health").status_code == 200
        env = terminal.create_request(3)  # the wallets' endpoint stays open
        r = post_payment(f"{url}/pay/{env.request.request_id.hex()}",
                         pay_request(holder, holder.withdraw([2, 1]), env.request))
        assert r.status_code == 200
    with serving(terminal) as url:  # a page elsewhere, through DNS rebinding
        r = httpx.get(url + "/api/report", headers={"host": "evil.example"})
        assert r.status_code == 403
        assert httpx.get(url + "/api/report", headers={"host": "localhost"}).status_code == 200
