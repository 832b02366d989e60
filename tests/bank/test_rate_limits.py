"""Rate limits per credential and per address, and the latency histogram,
both kept by the API's outermost middleware, over real HTTP."""

from __future__ import annotations

import re

import httpx

from ecash.bank.ratelimit import RateLimiter

from ..bankkit import running_bank, token_of


def test_a_busy_credential_is_slowed_down_and_nobody_else(tmp_path):
    # one request a second per credential, bursts of four (registering took one)
    limiter = RateLimiter(per_credential=1.0, per_address=1e6, burst=4)
    with running_bank("sqlite", tmp_path, rate_limit=limiter) as env:
        alice = env.holder("Alice", funds=0)  # opened through the operator (its own credential)
        url = f"{env.url}/v1/accounts/{alice.account_id}"
        auth = {"authorization": f"Bearer {token_of(alice.client)}"}
        statuses = [httpx.get(url, headers=auth).status_code for _ in range(8)]
        assert statuses[0] == 200 and 429 in statuses
        assert statuses.index(429) <= 4 and set(statuses[statuses.index(429):]) == {429}
        r = httpx.get(url, headers=auth)
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "rate_limited" and r.json()["status"] == 429
        # the same address without that credential, and another credential, go on
        assert httpx.get(f"{env.url}/v1/keyset").status_code == 200
        bob = env.holder("Bob", funds=0)
        assert httpx.get(f"{env.url}/v1/accounts/{bob.account_id}", headers={
            "authorization": f"Bearer {token_of(bob.client)}"}).status_code == 200


def test_a_busy_address_is_slowed_down(tmp_path):
    limiter = RateLimiter(per_credential=1e6, per_address=1.0, burst=3)
    with running_bank("sqlite", tmp_path, rate_limit=limiter) as env:
        statuses = [httpx.get(f"{env.url}/v1/health").status_code for _ in range(8)]
        assert statuses[0] == 200 and statuses[-1] == 429
        assert set(statuses[statuses.index(429):]) == {429}


def request_count(metrics_text: str, route: str) -> float:
    m = re.search(r'^ecash_request_seconds_count\{route="' + re.escape(route) + r'"\} (\S+)$',
                  metrics_text, re.M)
    return float(m.group(1)) if m else 0.0


def test_latency_is_recorded_per_route(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        before = request_count(env.operator.http.get("/metrics").text, "/v1/keyset")
        for _ in range(3):
            assert httpx.get(f"{env.url}/v1/keyset").status_code == 200
        assert httpx.get(f"{env.url}/v1/no-such-route").status_code == 404
        text = env.operator.http.get("/metrics").text
        assert request_count(text, "/v1/keyset") == before + 3
        assert request_count(text, "other") >= 1  # unrouted requests are counted apart


def test_the_plainly_served_hot_routes_are_labelled_and_documented(tmp_path):
    """Withdrawal and deposit are served by plain Starlette routes ahead of
    their FastAPI twins: still counted under their own route, still in the
    OpenAPI document."""
    start, answer = "/v1/accounts/{account_id}/withdrawals", \
        "/v1/accounts/{account_id}/withdrawals/{session_id}"
    routes = (start, answer, "/v1/merchant/deposits")
    with running_bank("sqlite", tmp_path) as env:
        text = env.operator.http.get("/metrics").text
        before = [request_count(text, r) for r in routes]
        alice = env.holder("Alice", funds=100)
        alice.withdraw([1, 2])
        shop = env.merchant("shop")
        assert shop.deposit(alice.pay(alice.withdraw([4]), "shop"))[0]["status"] == "accepted"
        text = env.operator.http.get("/metrics").text
        assert [request_count(text, r) - b for r, b in zip(routes, before, strict=True)] \
            == [2, 2, 1]
        paths = httpx.get(f"{env.url}/openapi.json").json()["paths"]
        for path in routes:
            assert "requestBody" in paths[path]["post"], path


def group_cpu(metrics_text: str) -> float:
    m = re.search(r"^ecash_commitment_group_cpu_seconds_total (\S+)$", metrics_text, re.M)
    assert m, "the commitments' group CPU is exported"
    return float(m.group(1))


def test_the_commitments_group_cpu_is_counted(tmp_path):
    """What the benchmarks compare the bank's CPU with: the CPU time of the
    commitments' group operations, grown by each session's commitments."""
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=1_000)
        before = group_cpu(env.operator.http.get("/metrics").text)
        alice.withdraw([1] * 32)
        after = group_cpu(env.operator.http.get("/metrics").text)
        # 128 group operations take well over a millisecond of CPU anywhere
        assert 1e-3 < after - before < 5.0
