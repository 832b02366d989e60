"""The hot endpoints (withdrawal, deposit) are plain Starlette routes ahead of
their FastAPI twins (``api.PlainRoute``): they must still answer every failure
with a problem document, be rate limited, and leave other methods on their
paths to FastAPI."""

from __future__ import annotations

import httpx

from ecash.bank.ratelimit import RateLimiter

from ..bankkit import raw, running_bank, token_of

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
    limiter = RateLimiter(per_credential=1.0, per_address=1e6, burst=3)
    with running_bank("sqlite", tmp_path, rate_limit=limiter) as env:
        statuses = [httpx.post(f"{env.url}/v1/merchant/deposits", json={"spends": []},
                               headers={"authorization": "Bearer nobody"}).status_code
                    for _ in range(6)]
        assert statuses[:3] == [401] * 3 and statuses[3:] == [429] * 3
