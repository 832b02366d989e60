"""The hot endpoints (withdrawal, deposit) are served ahead of FastAPI's stack
(``api.BankAPI``): they must still answer every failure with a problem
document, be rate limited, authenticate before reading a body, leave other
methods on their paths to FastAPI, and do what their FastAPI twins (kept for
``/openapi.json``) do."""

from __future__ import annotations

import socket

import httpx
from fastapi import FastAPI

from ecash.bank.api import MAX_BODY, create_app
from ecash.bank.client import BankClient
from ecash.bank.ratelimit import RateLimiter
from ecash.bank.server import ThreadedServer
from ecash.crypto.coin import verify_coin

from ..bankkit import Holder, raw, running_bank, token_of

PROBLEM = "application/problem+json"


def test_an_unexpected_error_in_a_hot_endpoint_is_a_500_problem(tmp_path, monkeypatch):
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=100)

        def broken(*_a, **_k):
            raise RuntimeError("a bug")

        monkeypatch.setattr(env.bank, "start_withdrawal", broken)
        key = env.operator.keyset().keys[0].key_id.hex()
        r = raw(env, "POST", f"/v1/accounts/{alice.account_id}/withdrawals",
                token_of(alice.client), json_body={"key_ids": [key]})
        assert r.status_code == 500 and r.headers["content-type"] == PROBLEM
        assert r.json()["code"] == "internal" and "a bug" not in r.text
        monkeypatch.undo()
        assert alice.withdraw([1, 2])  # the server goes on serving


def test_other_methods_on_hot_paths_get_fastapi_problems(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        r = raw(env, "GET", "/v1/merchant/deposits")
        assert r.status_code == 405 and r.headers["content-type"] == PROBLEM
        assert r.json()["code"] == "method_not_allowed"
        r = raw(env, "POST", "/v1/merchant/deposits/extra", json_body={})
        assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_hot_endpoints_are_rate_limited(tmp_path):
    """Per authenticated principal: an unknown credential is refused, not
    given a bucket of its own."""
    limiter = RateLimiter(per_credential=1.0, per_address=1e6, burst=3)
    with running_bank("sqlite", tmp_path, rate_limit=limiter) as env:
        shop = token_of(env.merchant("shop"))
        statuses = [httpx.post(f"{env.url}/v1/merchant/deposits", json={"spends": []},
                               headers={"authorization": f"Bearer {shop}"}).status_code
                    for _ in range(6)]
        assert statuses[:3] == [422] * 3 and statuses[3:] == [429] * 3
        assert httpx.post(f"{env.url}/v1/merchant/deposits", json={"spends": []}, headers={
            "authorization": "Bearer nobody"}).status_code == 401


def test_the_fastapi_twins_serve_the_same_withdrawal_and_deposit(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=100)
        shop = env.merchant("shop")
        app = create_app(env.bank, rate_limit=RateLimiter(1e6, 1e6))

        async def fastapi_only(scope, receive, send):  # skips the hot dispatch
            await FastAPI.__call__(app, scope, receive, send)

        with ThreadedServer(fastapi_only) as url:
            twin = Holder(alice.account_id, BankClient(url, token_of(alice.client)), alice.u1)
            coins = twin.withdraw([1, 2, 4])
            ks = env.operator.keyset()
            for c, _ in coins:
                verify_coin(c, ks.key(c.key_id))  # raises on a bad signature
            spends = alice.pay(coins, "shop")
            twin_shop = BankClient(url, token_of(shop))
            verdicts = twin_shop.deposit(spends)
            twin.client.close()
            twin_shop.close()
        assert [(v["status"], v["credited"]) for v in verdicts] == [
            ("accepted", 1), ("accepted", 2), ("accepted", 4)]
        assert alice.client.account(alice.account_id)["balance"] == 93


def test_a_hot_endpoint_authenticates_before_it_reads_the_body(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        host, port = env.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as s:
            # a body declared too large, never sent: refused for the credential
            s.sendall(b"POST /v1/merchant/deposits HTTP/1.1\r\nhost: x\r\n"
                      b"content-type: application/json\r\n"
                      b"content-length: %d\r\n\r\n" % (MAX_BODY + 1))
            s.settimeout(10)
            head = s.recv(65536)
        assert head.startswith(b"HTTP/1.1 401 ")
        assert b"unauthenticated" in head


def test_a_hot_endpoint_reads_a_chunked_body(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=100)
        key = env.operator.keyset().keys[0].key_id.hex()
        body = b'{"key_ids": ["%s"]}' % key.encode()

        def pieces():
            yield body[:7]
            yield body[7:]

        r = raw(env, "POST", f"/v1/accounts/{alice.account_id}/withdrawals",
                token_of(alice.client), content=pieces(),
                headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert len(r.json()["coins"]) == 1
