"""Load limits (daily and net over the deposit window) and exchanges, which
redeem coins and withdraw new ones in one transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ecash.bank.client import BankUnreachable
from ecash.bank.config import DAY, BankConfig
from ecash.bank.schema import spent_coins
from ecash.crypto.coin import verify_coin
from ecash.crypto.payment import make_spend
from ecash.crypto.withdrawal import user_finish
from ecash.wire.redemption import redemption_request

from ..bankkit import (
    ENGINES,
    assert_audit_ok,
    balance_of,
    dropping_client,
    refused,
    running_bank,
    token_of,
)

LIMITS = BankConfig(daily_load_limit=1000, net_load_limit=1500)


def spent_count(env) -> int:
    with env.bank.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(spent_coins)).scalar_one()


def exchange(holder, coins, values):
    """Redeem ``coins`` for new coins of ``values``; return the new coins."""
    offer, states = holder.start(values, exchange=holder.pay(coins, "bank"))
    answers = holder.client.answer(holder.account_id, offer["session_id"],
                                   [s.challenges for s in states])
    return [user_finish(s, r, b) for s, (b, r) in zip(states, answers, strict=True)]


def start_of_day(env) -> None:
    """Move the clock to just after midnight (UTC), so a test's day does not end."""
    now = env.bank.now()
    env.clock.advance(DAY - now % DAY + 10)


@pytest.mark.parametrize("engine", ENGINES)
def test_daily_and_net_load_limits(engine, tmp_path):
    with running_bank(engine, tmp_path, LIMITS) as env:
        start_of_day(env)
        alice = env.holder("Alice", funds=100_000)
        assert alice.client.account(alice.account_id)["daily_load_limit"] == 1000
        coins = alice.withdraw([512, 256, 128, 64, 32, 8])  # 1000: the whole day
        offer, states = alice.start([1])
        with refused(403, "daily_load_limit"):
            alice.client.answer(alice.account_id, offer["session_id"],
                                [s.challenges for s in states])
        assert balance_of(env, alice.account_id) == 99_000
        # an exchange is not a load: allowed at the daily limit ...
        new = exchange(alice, coins[5:], [8])
        assert balance_of(env, alice.account_id) == 99_000
        # ... but what it withdraws beyond what it redeems is one
        with refused(403, "daily_load_limit"):
            exchange(alice, new, [8, 1])
        assert balance_of(env, alice.account_id) == 99_000
        env.clock.advance(DAY)
        alice.withdraw([256, 128, 64, 32, 16, 4])  # 500 more: net 1500
        offer, states = alice.start([1])
        with refused(403, "net_load_limit"):  # 1 <= daily limit, but net 1501
            alice.client.answer(alice.account_id, offer["session_id"],
                                [s.challenges for s in states])
        # an exchange does not lower the net load
        new = exchange(alice, new, [8])
        with refused(403, "net_load_limit"):
            alice.withdraw([1])
        # a redemption does
        verdicts = alice.client.redeem(alice.account_id, alice.pay(coins[3:4], "bank"))
        assert verdicts[0]["credited"] == 64
        alice.withdraw([64])  # net 1500 again, 564 today
        with refused(403, "net_load_limit"):
            alice.withdraw([1])
        assert balance_of(env, alice.account_id) == 100_000 - 1500
        # loads older than the deposit window no longer count
        env.clock.advance(env.bank.config.deposit_window_s + DAY)
        alice.withdraw([512, 256, 128, 64, 32, 8])
        assert_audit_ok(env)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_exchange_cannot_load_past_the_net_limit(engine, tmp_path):
    """What an exchange loads beyond what it redeems is checked against the net
    load before the exchange: its own redemption is matched by the coins it
    reissues, so it must not make room for the load."""
    with running_bank(engine, tmp_path, LIMITS) as env:
        start_of_day(env)
        alice = env.holder("Alice", funds=100_000)
        alice.withdraw([512, 256, 128, 64, 32, 8])  # 1000 today
        env.clock.advance(DAY)
        coins = alice.withdraw([256, 128, 64, 32, 8, 8])  # net 1496
        with refused(403, "net_load_limit"):  # redeems 8, reissues 8 and loads 8: net 1504
            exchange(alice, coins[5:], [8, 8])
        assert balance_of(env, alice.account_id) == 100_000 - 1496
        exchange(alice, coins[5:], [4, 4])  # net unchanged: allowed
        assert_audit_ok(env)


@pytest.mark.parametrize("engine", ENGINES)
def test_operator_credit_is_not_limited(engine, tmp_path):
    with running_bank(engine, tmp_path, LIMITS) as env:
        alice = env.holder("Alice", funds=5000)
        env.operator.credit(alice.account_id, 5000, "more")
        assert balance_of(env, alice.account_id) == 10_000


def test_exchange(env):
    alice = env.holder("Alice", funds=1000)
    coins = alice.withdraw([64, 32])
    before = assert_audit_ok(env)
    client, transport = dropping_client(env, token_of(alice.client))
    alice.client = client
    redeem = alice.pay(coins, "bank")
    offer, states = alice.start([32, 32, 16, 16], exchange=redeem)
    assert (offer["total"], offer["redeem_total"]) == (96, 96)
    assert spent_count(env) == 0  # nothing is redeemed before the answer
    challenges = [s.challenges for s in states]
    transport.drop = 1
    with pytest.raises(BankUnreachable):
        client.answer(alice.account_id, offer["session_id"], challenges)
    answers = client.answer(alice.account_id, offer["session_id"], challenges)
    assert client.answer(alice.account_id, offer["session_id"], challenges) == answers
    new = [user_finish(s, r, b) for s, (b, r) in zip(states, answers, strict=True)]
    ks = env.operator.keyset()
    for coin, _ in new:
        verify_coin(coin, ks.key(coin.key_id))
    assert balance_of(env, alice.account_id) == 1000 - 96
    assert spent_count(env) == 2
    after = assert_audit_ok(env)
    assert after["liability"] == before["liability"] == 96
    assert after["issued"] == 192 and after["deposited_or_redeemed"] == 96
    # the redeemed coins are spent: redeeming them again is a replay
    assert [v["replay"] for v in client.redeem(alice.account_id, redeem)] == [True, True]
    assert balance_of(env, alice.account_id) == 1000 - 96
    # withdrawing more than is redeemed takes the rest from the balance
    more = exchange(alice, new[:1], [32, 8])
    assert balance_of(env, alice.account_id) == 1000 - 96 - 8
    # and less gives the rest back
    exchange(alice, more, [16])
    assert balance_of(env, alice.account_id) == 1000 - 96 - 8 + 24
    fig = assert_audit_ok(env)
    assert fig["liability"] == 96 - 32 + 40 - 40 + 16


def test_exchange_refusals(env):
    alice = env.holder("Alice", funds=1000)
    shop = env.merchant("shop")
    coins = alice.withdraw([4, 8, 16])
    with refused(422, "redemption_refused"):  # paid to a shop, not to the bank
        alice.start([4], exchange=alice.pay(coins[:1], "shop"))
    twice = alice.pay(coins[:1], "bank")
    with refused(422, "redemption_refused"):
        alice.start([8], exchange=twice + twice)
    req = redemption_request(alice.account_id, 5, "CNY", int(env.clock() * 1000))
    with refused(422, "redemption_refused"):  # the coins are worth 4, not 5
        alice.start([4], exchange=[make_spend(*coins[0], alice.u1, req)])
    with refused(402, "insufficient_funds"):
        alice.start([1024], exchange=alice.pay(coins[:1], "bank"))
    # a coin spent between the start and the answer
    offer, states = alice.start([4, 8], exchange=alice.pay(coins[:2], "bank"))
    assert shop.deposit(alice.pay(coins[1:2], "shop"))[0]["status"] == "accepted"
    before = (balance_of(env, alice.account_id), spent_count(env))
    with refused(409, "coin_already_spent"):
        alice.client.answer(alice.account_id, offer["session_id"],
                            [s.challenges for s in states])
    assert (balance_of(env, alice.account_id), spent_count(env)) == before
    fig = assert_audit_ok(env)
    assert fig["issued"] == 28 and fig["liability"] == 20
