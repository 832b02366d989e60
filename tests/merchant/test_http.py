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
        assert body["pos_url"] == env.pos_url == f"{url}/pay/{body['request_id']}"
        assert body["svg"].startswith("<svg")
        assert httpx.get(f"{url}/api/requests/{'0' * 64}").status_code == 404
        assert httpx.get(f"{url}/api/requests/{body['request_id']}").json()["status"] == "open"
        assert httpx.get(f"{url}/report").status_code == 200


def test_only_the_cashier_sees_the_point_of_sale(bank, terminal, holder):
    with ThreadedServer(create_app(terminal, cashier_clients=())) as url:
        for path in ("/", "/report", "/api/report", "/api/info"):
            r = httpx.get(url + path)
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
