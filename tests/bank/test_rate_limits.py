"""Rate limits per credential and per address, and the latency histogram,
both kept by the API's outermost middleware, over real HTTP."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from ecash.bank.ratelimit import RateLimiter
from ecash.bank.server import serve

from ..bankkit import running_bank, token_of
from ..rediskit import redis_server


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


def test_a_limit_holds_in_any_window_and_keys_are_apart():
    limiter = RateLimiter(per_credential=2.0, per_address=3.0, burst=2)
    assert [limiter.allow_principal("holder:1") for _ in range(5)] == [True] * 4 + [False]
    assert limiter.allow_principal("holder:2")  # another principal has its own budget
    assert [limiter.allow("198.51.100.7") for _ in range(7)] == [True] * 6 + [False]
    assert limiter.allow("holder:1")  # an address never shares a principal's budget


def hits_from_processes(storage_uri: str, processes: int = 2, each: int = 10) -> int:
    """How many of ``each`` requests per process the processes' own limiters
    (one request a second, bursts of four) let through, all at once."""
    code = ("import sys; from ecash.bank.ratelimit import RateLimiter;"
            " r = RateLimiter(1e6, 1.0, burst=4, storage_uri=sys.argv[1]);"
            f" print(sum(r.allow('198.51.100.7') for _ in range({each})))")
    procs = [subprocess.Popen([sys.executable, "-c", code, storage_uri], stdout=subprocess.PIPE,
                              text=True) for _ in range(processes)]
    return sum(int(p.communicate(timeout=60)[0]) for p in procs)


def test_workers_sharing_a_redis_storage_share_one_limit(tmp_path):
    assert hits_from_processes("memory://") == 8  # apart, each grants the whole burst
    with redis_server(tmp_path) as url:
        assert hits_from_processes(url) == 4


def test_several_workers_need_a_shared_storage(tmp_path):
    with pytest.raises(SystemExit, match="rate-limit storage they share"):
        serve(f"sqlite:///{tmp_path / 'bank.db'}", tmp_path / "signer.sock", workers=2)


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
