"""The public spent-set query over HTTP: ``/v1/spent-range`` pages with a
cursor, its caps, its cost limit per client, and ``/v1/generations``'
``spent_count`` (contract 2 of issue 14)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import insert

from ecash.bank.client import BankClient
from ecash.bank.ratelimit import RateLimiter
from ecash.bank.schema import spent_coins
from ecash.bank.spentset import PAGE
from ecash.wire.spentset import bucket_of, prefix_of

from ..bankkit import ENGINES, raw, refused, running_bank


def add_spent(env, n: int, generation: int = 1) -> list[bytes]:
    """``n`` spent coins stored straight into the spent table (the query is
    under test here, not the deposit that would store them)."""
    ids = [os.urandom(32) for _ in range(n)]
    with env.bank.engine.begin() as conn:
        conn.execute(insert(spent_coins), [
            {"generation": generation, "bucket": bucket_of(c), "coin_id": c, "denomination": 0,
             "depositor": 1, "redeemed": False, "deposited_at": 0, "spend": b"",
             "request": b""} for c in ids])
    return ids


def every_page(client: BankClient, generation: int, bits: int, prefixes: list[int]):
    pages, after = [], None
    while True:
        page = client.spent_range(generation, bits, prefixes, after)
        pages.append(page)
        if page["next"] is None:
            return pages
        after = bytes.fromhex(page["next"])


def test_pages_return_every_coin_once_in_order(env):
    ids = add_spent(env, 2 * PAGE + 300)
    public = env.client()
    pages = every_page(public, 1, 0, [0])
    assert [len(p["coin_ids"]) for p in pages] == [PAGE, PAGE, 300]
    got = [bytes.fromhex(c) for p in pages for c in p["coin_ids"]]
    assert got == sorted(ids, key=lambda c: (bucket_of(c), c))
    assert all(p["generation"] == 1 and p["closed"] is False for p in pages)
    # a few buckets at 6 bits: exactly their coins, each once
    asked = [3, 17, 40, 63]
    got = [bytes.fromhex(c) for p in every_page(public, 1, 6, asked) for c in p["coin_ids"]]
    want = sorted((c for c in ids if prefix_of(c, 6) in asked), key=lambda c: (bucket_of(c), c))
    assert got == want and want


def test_a_page_ends_inside_a_range_and_the_next_continues_there(env):
    ids = add_spent(env, PAGE + 10)
    by_prefix = sorted(ids, key=lambda c: (bucket_of(c), c))
    public = env.client()
    # two prefixes at one bit: the first page fills inside one of them
    first = public.spent_range(1, 1, [1, 0])
    assert first["next"] == first["coin_ids"][-1]
    rest = public.spent_range(1, 1, [0, 1], bytes.fromhex(first["next"]))
    assert rest["next"] is None
    assert [bytes.fromhex(c) for c in first["coin_ids"] + rest["coin_ids"]] == by_prefix


def test_caps_are_clear_problems(env):
    public = env.client()
    add_spent(env, 3)
    with refused(422, "bad_prefixes"):
        public.spent_range(1, 8, list(range(65)))
    with refused(422, "bad_prefixes"):
        public.spent_range(1, 8, [5, 5])
    with refused(422, "bad_prefixes"):
        public.spent_range(1, 8, [256])
    with refused(422, "bad_prefixes"):
        public.spent_range(1, 8, [])
    with refused(422, "bad_prefix_bits"):
        public.spent_range(1, 21, [0])
    with refused(404, "unknown_generation"):
        public.spent_range(99, 8, [0])
    for body, code in [({"generation": 1, "prefix_bits": 8, "prefixes": [0]}, "missing_key"),
                       ({"generation": 1, "prefix_bits": 8, "prefixes": [0], "after": "ab"},
                        "wrong_length"),
                       ({"generation": 1, "prefixes": [0], "after": None}, "missing_key")]:
        r = raw(env, "POST", "/v1/spent-range", json_body=body)
        assert (r.status_code, r.json()["code"]) == (422, code)
    assert len(public.spent_range(1, 0, [0])["coin_ids"]) == 3  # 64 prefixes are fine
    assert public.spent_range(1, 6, list(range(64)))["next"] is None


@pytest.mark.parametrize("engine_name", ENGINES)
def test_cost_limit_answers_429_with_retry_after(engine_name, tmp_path):
    limiter = RateLimiter(1e6, 1e6, spent_ids_per_address=100)  # a budget of 400 ids
    with running_bank(engine_name, tmp_path, rate_limit=limiter) as env:
        add_spent(env, PAGE + 5)
        public = env.client()
        first = public.spent_range(1, 0, [0])  # answered whole, the budget overdrawn
        assert len(first["coin_ids"]) == PAGE
        r = raw(env, "POST", "/v1/spent-range", json_body={
            "generation": 1, "prefix_bits": 0, "prefixes": [0], "after": first["next"]})
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= (PAGE - 400) // 100
        with refused(429, "rate_limited") as info:
            public.spent_range(1, 0, [0], bytes.fromhex(first["next"]))
        assert info.value.retry_after >= 1
        # other endpoints, and other clients' budgets, are not spent by it
        assert env.client().generations()


def test_generations_report_spent_count_without_prefix_bits(env):
    add_spent(env, 7)
    gen, = env.client().generations()
    assert "prefix_bits" not in gen
    assert (gen["generation"], gen["spent_count"], gen["closed"]) == (1, 7, False)
    # counted at most once a minute, not on every request
    add_spent(env, 5)
    assert env.client().generations()[0]["spent_count"] == 7
