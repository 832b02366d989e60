"""A redemption is credited only into the account it is bound to (issue 14, item 4):
a transcript read from anywhere is not bearer."""

from __future__ import annotations

import secrets

from hypothesis import given
from hypothesis import strategies as st

from ecash.crypto.payment import PaymentRequest, make_spend
from ecash.wire.redemption import REDEMPTION_PAYEE, is_bound_to, redemption_request

from ..bankkit import balance_of, refused, state_snapshot


def test_a_redemption_is_credited_only_into_its_account(env):
    x = env.holder("X", funds=1000)
    y = env.holder("Y", funds=1000)
    coins = x.withdraw([16, 32])
    spends = x.pay(coins, REDEMPTION_PAYEE)  # bound to X, as X's wallet builds it
    before = state_snapshot(env)
    stolen = y.client.redeem(y.account_id, spends)
    assert [(v["status"], v["code"], v["credited"]) for v in stolen] == [
        ("invalid", "redemption_not_bound", 0)] * 2
    with refused(422, "redemption_refused"):  # nor through an exchange
        y.start([16, 32], exchange=spends)
    assert state_snapshot(env) == before

    first = x.client.redeem(x.account_id, spends)
    assert [(v["status"], v["credited"]) for v in first] == [("accepted", 16), ("accepted", 32)]
    assert balance_of(env, x.account_id) == 1000 - 48 + 48

    after = state_snapshot(env)
    stolen = y.client.redeem(y.account_id, spends)
    assert [(v["status"], v["code"]) for v in stolen] == [("invalid", "redemption_not_bound")] * 2
    with refused(422, "redemption_refused"):
        y.start([16, 32], exchange=spends)
    again = x.client.redeem(x.account_id, spends)  # X's retry changes nothing
    assert [(v["status"], v["replay"], v["credited"]) for v in again] == [
        ("accepted", True, 0)] * 2
    assert state_snapshot(env) == after
    assert balance_of(env, x.account_id) == 1000
    assert balance_of(env, y.account_id) == 1000


def test_an_exchange_redeems_only_into_its_account(env):
    x = env.holder("X", funds=1000)
    y = env.holder("Y", funds=1000)
    coins = x.withdraw([16])
    spends = x.pay(coins, REDEMPTION_PAYEE)
    with refused(422, "redemption_refused"):
        y.start([16], exchange=spends)
    offer, states = x.start([8, 8], exchange=spends)
    answers = x.client.answer(x.account_id, offer["session_id"], [s.challenges for s in states])
    assert len(answers) == 2
    assert balance_of(env, x.account_id) == 1000 - 16
    assert balance_of(env, y.account_id) == 1000


def test_an_unbound_redemption_is_refused_even_to_the_coins_holder(env):
    """The old form (a random nonce) is bearer: refused, whoever presents it."""
    x = env.holder("X", funds=1000)
    coins = x.withdraw([16])
    req = PaymentRequest(REDEMPTION_PAYEE, 16, "CNY", int(env.clock() * 1000),
                         secrets.token_bytes(16))
    spends = [make_spend(*coins[0], x.u1, req)]
    before = state_snapshot(env)
    assert x.client.redeem(x.account_id, spends)[0]["code"] == "redemption_not_bound"
    with refused(422, "redemption_refused"):
        x.start([16], exchange=spends)
    assert state_snapshot(env) == before


account_ids = st.text(min_size=1, max_size=64).filter(lambda s: "\x00" not in s)


@given(account_ids, account_ids, st.integers(0, 2**53 - 1), st.integers(0, 2**53 - 1))
def test_the_binding_names_one_account(mine: str, other: str, amount: int, ts: int) -> None:
    try:
        mine.encode("utf-8")
        other.encode("utf-8")
    except UnicodeEncodeError:
        return
    req = redemption_request(mine, amount, "CNY", ts)
    assert req.merchant_id == REDEMPTION_PAYEE and req.amount == amount
    assert is_bound_to(req, mine)
    assert is_bound_to(req, other) == (other == mine)
    # two requests of the same account, amount and time are distinct
    assert redemption_request(mine, amount, "CNY", ts).request_id != req.request_id
