"""The spent-set query's privacy (ECASH-1 9.4, docs/wallet.md): the wallet
sizes its buckets itself, never narrower than its clamp whatever the bank
claims; a claimed count the answers contradict is caught before any of the
wallet's own buckets is asked, and the wallet falls back to coarser buckets
and warns; every page of an answer is followed.

The dishonest bank is a real HTTP server in front of the real bank: it passes
everything through, but can inflate ``spent_count`` and cut answers into
small pages."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from hypothesis import given
from hypothesis import strategies as st

from ecash.serving.threaded import ThreadedServer
from ecash.wallet.spentquery import MAX_QUERY_BITS, TARGET_PER_BUCKET, bits_for
from ecash.wire.spentset import prefix_of

from .kit import Terminal, holder


class FrontBank:
    """Passes every call through to ``bank_url``; ``claim`` replaces every
    generation's ``spent_count``; ``page`` cuts spent-range answers into pages
    of that many coin_ids. ``queries`` records each spent-range body."""

    def __init__(self, bank_url: str) -> None:
        self.claim: int | None = None
        self.page: int | None = None
        self.queries: list[dict] = []
        self.http = httpx.Client(base_url=bank_url, timeout=30)
        app = FastAPI()

        @app.get("/v1/generations")
        def generations() -> dict:
            gens = self.http.get("/v1/generations").json()
            for g in gens["generations"]:
                if self.claim is not None:
                    g["spent_count"] = self.claim
            return gens

        @app.post("/v1/spent-range")
        async def spent_range(request: Request) -> Response:
            body = json.loads(await request.body())
            self.queries.append(body)
            if self.page is None:
                r = self.http.post("/v1/spent-range", json=body)
                return Response(r.content, r.status_code, media_type="application/json")
            everything, after = [], None
            while True:  # the honest answer, whole
                r = self.http.post("/v1/spent-range", json={**body, "after": after}).json()
                everything += r["coin_ids"]
                after = r["next"]
                if after is None:
                    break
            start = everything.index(body["after"]) + 1 if body["after"] else 0
            page = everything[start:start + self.page]
            more = start + self.page < len(everything)
            return Response(json.dumps({"generation": body["generation"], "closed": r["closed"],
                                        "coin_ids": page, "next": page[-1] if more else None}),
                            media_type="application/json")

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def through(path: str, request: Request) -> Response:
            headers = {k: v for k, v in request.headers.items()
                       if k in ("authorization", "content-type")}
            r = self.http.request(request.method, f"/{path}", content=await request.body(),
                                  headers=headers)
            return Response(r.content, r.status_code,
                            media_type=r.headers.get("content-type"))

        self.server = ThreadedServer(app)
        self.url = self.server.start()

    def close(self) -> None:
        self.server.stop()
        self.http.close()


@pytest.fixture
def front(env):
    f = FrontBank(env.url)
    yield f
    f.close()


def _paid_offline_and_deposited(env, h, w, amount: int):
    shop = Terminal(env, "shop")
    try:
        payment = w.pay(shop.request(amount, pos=False))
        assert {v["status"] for v in shop.deposit(payment.spends)} == {"accepted"}
        return payment
    finally:
        shop.close()


def test_a_huge_claimed_count_is_clamped_caught_and_coarsened(env, front, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db", register=False)
    w.register(front.url, h.account_id, h.credential)
    try:
        w.load(1_000)
        payment = _paid_offline_and_deposited(env, h, w, 700)
        own = [s.coin.coin_id for s in payment.spends]
        front.claim = 2**45  # "every bucket is full": asks for the narrowest buckets
        out = w.sync()
        asked = [(q["prefix_bits"], q["prefixes"]) for q in front.queries]
        assert asked and max(bits for bits, _ in asked) == MAX_QUERY_BITS  # the clamp holds
        narrow = [(bits, p) for bits, p in asked if bits > 0]
        # before the lie was caught, none of the wallet's own buckets was asked
        assert narrow and all(prefix_of(c, bits) not in p for bits, p in narrow for c in own)
        assert asked[-1][0] == 0  # the honest set is small: one bucket, all of it
        assert out["warnings"] and "not trusted" in out["warnings"][0]
        assert out["settled"]["spent"] == len(own)  # and the answer was still found
        assert any(e["kind"] == "warning" for e in w.history())
    finally:
        h.close()


def test_an_honest_small_count_asks_one_bucket_and_every_page_is_followed(env, front, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db", register=False)
    w.register(front.url, h.account_id, h.credential)
    try:
        w.load(2_000)
        payment = _paid_offline_and_deposited(env, h, w, 1_999)
        assert len(payment.spends) >= 5
        front.page = 2
        out = w.sync()
        assert out["warnings"] == []
        assert {q["prefix_bits"] for q in front.queries} == {0}
        cursors = [q["after"] for q in front.queries]
        assert len(cursors) >= 3 and cursors[0] is None and all(cursors[1:])
        assert out["settled"]["spent"] == len(payment.spends)
        assert w.balance()["pending"] == 0
    finally:
        h.close()


@given(st.integers(min_value=0, max_value=2**62))
def test_buckets_hold_at_least_64_on_the_bank_figures_and_never_pass_the_clamp(count):
    bits = bits_for(count)
    assert 0 <= bits <= MAX_QUERY_BITS
    if bits > 0:
        assert count >> bits >= TARGET_PER_BUCKET  # no narrower than 64 a bucket
    if bits < MAX_QUERY_BITS:
        assert count >> (bits + 1) < TARGET_PER_BUCKET  # and no coarser than needed
