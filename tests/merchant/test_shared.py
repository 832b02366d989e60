"""Two terminals of one shop on one PostgreSQL store: a coin accepted at one is
refused at the other, also when both receive it at the same moment."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from ecash.merchant import Terminal

from ..bankkit import fresh_database, pay_request
from .kit import counts, new_terminal, pay_url, post_payment, serving


@pytest.fixture
def two_terminals(bank, tmp_path):
    with fresh_database("postgres", tmp_path) as url:
        first = new_terminal(bank, url, name="till-1")
        second = Terminal.open(url, clock=bank.clock, name="till-2")  # joins the shop's store
        try:
            yield first, second
        finally:
            first.close()
            second.close()


def test_a_coin_accepted_at_one_terminal_is_refused_at_the_other(bank, holder, two_terminals):
    one, two = two_terminals
    coins = holder.withdraw([16, 4])
    with serving(one) as url1, serving(two) as url2:
        r1 = one.create_request(20)
        ok = post_payment(pay_url(url1, r1.request.request_id),
                          pay_request(holder, coins, r1.request))
        assert ok.status_code == 200, ok.text
        r2 = two.create_request(20)
        again = post_payment(pay_url(url2, r2.request.request_id),
                             pay_request(holder, coins, r2.request))
        assert again.status_code == 422 and again.json()["code"] == "already_accepted"
        r3 = two.create_request(20)  # the refusal decided r2 (ECASH-1 5.1)
        fresh = post_payment(pay_url(url2, r3.request.request_id),
                             pay_request(holder, holder.withdraw([16, 4]), r3.request))
        assert fresh.status_code == 200, fresh.text
    assert counts(one) == counts(two) == (4, 2)
    assert two.store.request(r2.request.request_id).status == "refused"
    # either terminal settles for the shop
    assert two.deposit().accepted == 4
    assert one.report()["credited"] == {"count": 4, "value": 40}


def test_the_same_coin_at_both_terminals_at_once(bank, holder, two_terminals):
    one, two = two_terminals
    with serving(one) as url1, serving(two) as url2, ThreadPoolExecutor(2) as pool:
        for _ in range(4):
            coins = holder.withdraw([8, 2])
            r1, r2 = one.create_request(10), two.create_request(10)
            s1 = pay_request(holder, coins, r1.request)
            s2 = pay_request(holder, coins, r2.request)
            f1 = pool.submit(post_payment, pay_url(url1, r1.request.request_id), s1)
            f2 = pool.submit(post_payment, pay_url(url2, r2.request.request_id), s2)
            answers = sorted([f1.result().status_code, f2.result().status_code])
            assert answers == [200, 422]
            losers = [f.result().json() for f in (f1, f2) if f.result().status_code == 422]
            assert losers[0]["code"] == "already_accepted"
    assert counts(one) == (8, 4)
