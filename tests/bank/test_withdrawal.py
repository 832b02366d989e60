"""Clause-form withdrawal over HTTP: the whole flow, retries after a lost
reply, the one-answer rule (ECASH-1 9.1, 9.2), expiry, caps, and a session
answered by another bank instance on the same database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from ecash.bank.client import BankClient, BankHTTPError, BankUnreachable
from ecash.bank.config import BankConfig
from ecash.bank.schema import withdraw_sessions
from ecash.bank.signer import check_challenges
from ecash.crypto import group
from ecash.crypto.coin import verify_coin
from ecash.crypto.errors import EcashError
from ecash.crypto.withdrawal import user_finish

from ..bankkit import (
    ENGINES,
    assert_audit_ok,
    at_once,
    balance_of,
    dropping_client,
    refused,
    running_bank,
    second_server,
    token_of,
)


def sessions(env, state: str | None = None) -> int:
    stmt = select(func.count()).select_from(withdraw_sessions)
    if state:
        stmt = stmt.where(withdraw_sessions.c.state == state)
    with env.bank.engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def at_once_on_own_clients(n: int, url: str, token: str, call) -> list[object]:
    """``call(client, i)`` from ``n`` threads released together, each on its own
    connection (see ``at_once``)."""
    clients = [BankClient(url, token) for _ in range(n)]
    try:
        return at_once(n, lambda i: call(clients[i], i))
    finally:
        for c in clients:
            c.close()


def test_full_withdrawal_and_deposit(env):
    alice = env.holder("Alice", funds=10_000)
    shop = env.merchant("shop-1")
    ks = env.operator.keyset()
    before = assert_audit_ok(env)
    coins = alice.withdraw([1, 8, 64, 1024])
    for coin, _ in coins:
        verify_coin(coin, ks.key(coin.key_id))
    assert len({c.A for c, _ in coins}) == 4
    assert balance_of(env, alice.account_id) == 10_000 - 1097
    mid = assert_audit_ok(env)
    assert mid["issued"] - before["issued"] == 1097
    assert mid["liability"] - before["liability"] == 1097
    verdicts = shop.deposit(alice.pay(coins, "shop-1"))
    assert [(v["status"], v["replay"]) for v in verdicts] == [("accepted", False)] * 4
    assert [v["credited"] for v in verdicts] == [1, 8, 64, 1024]
    assert shop.merchant()["balance"] == 1097
    after = assert_audit_ok(env)
    assert after["liability"] == before["liability"]
    assert after["deposited_or_redeemed"] == 1097
    assert after["holder_balances"] == before["holder_balances"]


def test_the_bank_picks_each_coins_branch_at_random(env):
    """9.2 step 3: one CSPRNG bit per coin. 64 coins on one branch, or fewer
    than 12 on either, would happen about once in ten million sessions."""
    alice = env.holder("Alice", funds=1000)
    offer, states = alice.start([1] * 64)
    answers = alice.client.answer(alice.account_id, offer["session_id"],
                                  [s.challenges for s in states])
    assert 12 <= sum(beta for beta, _ in answers) <= 52
    ks = env.operator.keyset()
    for s, (beta, r) in zip(states, answers, strict=True):
        coin, _ = user_finish(s, r, beta)
        verify_coin(coin, ks.key(coin.key_id))


def test_lost_start_reply_is_harmless(env):
    alice = env.holder("Alice", funds=1000)
    client, transport = dropping_client(env, token_of(alice.client))
    alice.client = client
    ks = client.keyset()
    transport.drop = 1
    with pytest.raises(BankUnreachable):
        alice.start([4], ks)
    assert sessions(env, "open") == 1  # opened, never seen: it just expires
    assert balance_of(env, alice.account_id) == 1000
    coins = alice.withdraw([4])
    assert balance_of(env, alice.account_id) == 996
    assert sessions(env, "open") == 1 and sessions(env, "answered") == 1
    env.clock.advance(env.bank.config.session_ttl_s + 1)
    assert alice.withdraw([2])  # the forgotten session no longer counts
    assert balance_of(env, alice.account_id) == 994
    verify_coin(coins[0][0], env.operator.keyset().key(coins[0][0].key_id))
    assert_audit_ok(env)


def test_lost_answer_reply_same_challenges_debit_once(env):
    alice = env.holder("Alice", funds=1000)
    client, transport = dropping_client(env, token_of(alice.client))
    alice.client = client
    offer, states = alice.start([16, 32])
    challenges = [s.challenges for s in states]
    transport.drop = 1
    with pytest.raises(BankUnreachable):
        client.answer(alice.account_id, offer["session_id"], challenges)
    assert balance_of(env, alice.account_id) == 952  # the bank did answer
    first = client.answer(alice.account_id, offer["session_id"], challenges)
    second = client.answer(alice.account_id, offer["session_id"], challenges)
    assert first == second
    assert balance_of(env, alice.account_id) == 952
    coins = [user_finish(s, r, b) for s, (b, r) in zip(states, first, strict=True)]
    ks = env.operator.keyset()
    for coin, _ in coins:
        verify_coin(coin, ks.key(coin.key_id))
    fig = assert_audit_ok(env)
    assert fig["issued"] == 48


def test_other_challenges_for_an_answered_session_refused(env):
    alice = env.holder("Alice", funds=1000)
    offer, states = alice.start([4, 4])
    challenges = [s.challenges for s in states]
    answers = alice.client.answer(alice.account_id, offer["session_id"], challenges)
    other = [challenges[0], (challenges[1][0], (challenges[1][1] + 1) % group.q)]
    with refused(409, "challenges_mismatch"):
        alice.client.answer(alice.account_id, offer["session_id"], other)
    swapped = [(c1, c0) for c0, c1 in challenges]
    with refused(409, "challenges_mismatch"):
        alice.client.answer(alice.account_id, offer["session_id"], swapped)
    assert alice.client.answer(alice.account_id, offer["session_id"], challenges) == answers
    assert balance_of(env, alice.account_id) == 992
    assert_audit_ok(env)


def test_non_canonical_or_zero_challenge_refused_session_still_answerable(env):
    alice = env.holder("Alice", funds=1000)
    offer, states = alice.start([4, 4, 4])
    good = [s.challenges for s in states]
    for bad, code in ((group.q, "non_canonical_scalar"), (2**256 - 1, "non_canonical_scalar"),
                      (0, "zero_scalar")):
        challenges = [good[0], (good[1][0], bad), good[2]]
        with refused(422, code) as problem:
            alice.client.answer(alice.account_id, offer["session_id"], challenges)
        assert "challenges[1][1]" in problem.value.detail
    assert balance_of(env, alice.account_id) == 1000
    answers = alice.client.answer(alice.account_id, offer["session_id"], good)
    assert [user_finish(s, r, b) for s, (b, r) in zip(states, answers, strict=True)]
    assert balance_of(env, alice.account_id) == 988


def test_expired_session_refused_nothing_debited(env):
    alice = env.holder("Alice", funds=1000)
    offer, states = alice.start([64])
    env.clock.advance(env.bank.config.session_ttl_s)  # expires_at is exclusive
    with refused(410, "session_expired"):
        alice.client.answer(alice.account_id, offer["session_id"],
                            [s.challenges for s in states])
    assert balance_of(env, alice.account_id) == 1000
    assert sessions(env, "answered") == 0
    fig = assert_audit_ok(env)
    assert fig["issued"] == 0 and fig["liability"] == 0


def test_wrong_number_of_challenges_and_unknown_session(env):
    alice = env.holder("Alice", funds=1000)
    bob = env.holder("Bob", funds=1000)
    offer, states = alice.start([1, 2])
    with refused(422, "bad_challenges"):
        alice.client.answer(alice.account_id, offer["session_id"], [states[0].challenges])
    with refused(404, "not_found"):  # bob's session is not alice's
        bob_offer, bob_states = bob.start([1])
        alice.client.answer(alice.account_id, bob_offer["session_id"],
                            [bob_states[0].challenges])
    with refused(404, "not_found"):
        alice.client.answer(alice.account_id, "00" * 16, [states[0].challenges])
    assert balance_of(env, alice.account_id) == 1000
    assert balance_of(env, bob.account_id) == 1000


def test_insufficient_funds(env):
    alice = env.holder("Alice", funds=100)
    with refused(402, "insufficient_funds"):
        alice.start([128])
    offer_a, states_a = alice.start([64])
    offer_b, states_b = alice.start([64])  # each alone is covered
    alice.client.answer(alice.account_id, offer_a["session_id"],
                        [s.challenges for s in states_a])
    with refused(402, "insufficient_funds"):
        alice.client.answer(alice.account_id, offer_b["session_id"],
                            [s.challenges for s in states_b])
    assert balance_of(env, alice.account_id) == 36
    assert assert_audit_ok(env)["issued"] == 64


@pytest.mark.parametrize("engine", ENGINES)
def test_outstanding_commitment_cap_and_coins_per_session(engine, tmp_path):
    config = BankConfig(max_outstanding_coins=4, max_coins_per_session=3,
                        denominations=[1, 2, 4, 8])
    with running_bank(engine, tmp_path, config) as env:
        alice = env.holder("Alice", funds=1000)
        bob = env.holder("Bob", funds=1000)
        offer3, states3 = alice.start([1, 2, 4])
        with refused(429, "too_many_open_commitments"):
            alice.start([1, 1])
        bob.start([1, 2, 4])  # the cap is per account
        offer1, states1 = alice.start([8])  # 3 + 1 = 4: exactly the cap
        with refused(429, "too_many_open_commitments"):
            alice.start([1])
        alice.client.answer(alice.account_id, offer3["session_id"],
                            [s.challenges for s in states3])
        alice.start([1, 2, 4])  # answered sessions no longer count
        with refused(429, "too_many_open_commitments"):
            alice.start([1])
        env.clock.advance(config.session_ttl_s + 1)
        with refused(410, "session_expired"):
            alice.client.answer(alice.account_id, offer1["session_id"],
                                [s.challenges for s in states1])
        alice.start([1, 2, 4])  # expired sessions no longer count
        with refused(422):  # more coins than one session may hold
            alice.start([1, 1, 1, 1])
        assert balance_of(env, alice.account_id) == 1000 - 7
        assert_audit_ok(env)


def test_session_answered_by_another_server(env):
    alice = env.holder("Alice", funds=1000)
    offer, states = alice.start([1, 256])
    challenges = [s.challenges for s in states]
    with second_server(env) as url2, BankClient(url2, token_of(alice.client)) as other:
        answers = other.answer(alice.account_id, offer["session_id"], challenges)
        assert other.account(alice.account_id)["balance"] == 1000 - 257
        # and a session the second server opened, answered by the first
        ks = other.keyset()
        live = {k.value: k.key_id for k in ks.keys}
        offer2 = other.start_withdrawal(alice.account_id, [live[2]])
    states2 = alice.blind(offer2, ks)
    answers2 = alice.client.answer(alice.account_id, offer2["session_id"],
                                   [s.challenges for s in states2])
    assert alice.client.answer(alice.account_id, offer["session_id"], challenges) == answers
    coins = [user_finish(s, r, b) for s, (b, r) in zip(states + states2, answers + answers2,
                                                          strict=True)]
    for coin, _ in coins:
        verify_coin(coin, ks.key(coin.key_id))
    assert balance_of(env, alice.account_id) == 1000 - 259
    shop = env.merchant("shop")
    assert [v["status"] for v in shop.deposit(alice.pay(coins, "shop"))] == ["accepted"] * 3
    assert_audit_ok(env)


def test_frozen_account_cannot_withdraw(env):
    alice = env.holder("Alice", funds=1000)
    offer, states = alice.start([1])
    env.operator.set_status(alice.account_id, "frozen", "card reported stolen")
    # the refusal says why, for the holder's wallet to show (and names no case)
    with refused(403, "account_frozen") as why:
        alice.start([1])
    assert why.value.extra == {"reason": "card reported stolen", "case": None}
    with refused(403, "account_frozen") as why:
        alice.client.answer(alice.account_id, offer["session_id"], [states[0].challenges])
    assert why.value.extra == {"reason": "card reported stolen", "case": None}
    seen = alice.client.account(alice.account_id)
    assert (seen["status"], seen["frozen_reason"], seen["frozen_case"]) == (
        "frozen", "card reported stolen", None)
    env.operator.set_status(alice.account_id, "active", "the card was found")
    seen = alice.client.account(alice.account_id)
    assert (seen["status"], seen["frozen_reason"], seen["frozen_case"]) == ("active", None, None)
    events = env.operator.operator_account(alice.account_id)["events"]
    assert [(e["action"], e["text"], e["case"]) for e in events] == [
        ("frozen", "card reported stolen", None), ("unfrozen", "the card was found", None)]
    assert all(isinstance(e["at"], int) for e in events)
    alice.client.answer(alice.account_id, offer["session_id"], [states[0].challenges])
    assert balance_of(env, alice.account_id) == 999


def test_unknown_and_unwithdrawable_keys(env):
    alice = env.holder("Alice", funds=1000)
    with refused(422, "unknown_key"):
        alice.client.start_withdrawal(alice.account_id, [b"\x01" * 32])
    env.bank.add_generation()
    ks = env.operator.keyset()
    future = [k for k in ks.keys if k.withdraw_start > env.bank.now()]
    assert future
    with refused(422, "key_not_withdrawable"):
        alice.client.start_withdrawal(alice.account_id, [future[0].key_id])
    assert sessions(env) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_concurrent_answers_never_exceed_the_daily_limit(engine, tmp_path):
    with running_bank(engine, tmp_path, BankConfig(daily_load_limit=1000)) as env:
        alice = env.holder("Alice", funds=1_000_000)
        n = 10
        opened = [alice.start([128]) for _ in range(n)]

        def answer(c: BankClient, i: int) -> object:
            offer, states = opened[i]
            return c.answer(alice.account_id, offer["session_id"], [s.challenges for s in states])

        results = at_once_on_own_clients(n, env.url, token_of(alice.client), answer)
        ok = [r for r in results if isinstance(r, list)]
        refusals = [r for r in results if isinstance(r, BankHTTPError)]
        assert len(ok) == 7 and len(refusals) == 3
        assert {(r.status, r.code) for r in refusals} == {(403, "daily_load_limit")}
        assert balance_of(env, alice.account_id) == 1_000_000 - 7 * 128
        assert assert_audit_ok(env)["issued"] == 7 * 128


def test_commitments_follow_the_registered_identity_not_a_stale_hint(env):
    """The commitments are made outside the transaction for the identity last
    seen on the account; the locked row decides. A stale hint (another
    worker's registration raced the first read) must not give coins that fail."""
    alice = env.holder("Alice", funds=1000)
    with env.bank.engine.connect() as conn:
        pk = env.bank.account_pk(conn, alice.account_id).id
    env.bank._identity_hint[pk] = group.base_mul(group.random_scalar())  # not alice's I
    coins = alice.withdraw([1, 2])
    ks = env.operator.keyset()
    for coin, _ in coins:
        verify_coin(coin, ks.key(coin.key_id))
    assert env.bank._identity_hint[pk] == alice.I
    assert balance_of(env, alice.account_id) == 997


@pytest.mark.parametrize("engine", ENGINES)
def test_concurrent_starts_never_exceed_the_open_commitment_cap(engine, tmp_path):
    config = BankConfig(max_outstanding_coins=6, denominations=[1, 2, 4, 8])
    with running_bank(engine, tmp_path, config) as env:
        alice = env.holder("Alice", funds=1000)
        live = {k.value: k.key_id for k in env.operator.keyset().keys}
        results = at_once_on_own_clients(
            10, env.url, token_of(alice.client),
            lambda c, _: c.start_withdrawal(alice.account_id, [live[1], live[2]]))
        opened = [r for r in results if isinstance(r, dict)]
        refusals = [r for r in results if isinstance(r, BankHTTPError)]
        assert len(opened) == 3 and len(refusals) == 7  # 3 sessions of 2 coins: the cap
        assert {(r.status, r.code) for r in refusals} == {(429, "too_many_open_commitments")}
        assert sessions(env, "open") == 3


@given(st.lists(st.sampled_from([0, 1, 2**252 - 1, group.q - 1, group.q, group.q + 1,
                                 2**252 + 2**200, 2**255, 2**256 - 1]) | st.integers(0, 2**256 - 1),
                min_size=2, max_size=12).filter(lambda v: len(v) % 2 == 0))
def test_challenge_bulk_check_agrees_with_one_by_one(values):
    """The bulk test (last byte, zero run) refuses exactly what decoding each
    scalar and requiring it non-zero refuses, and names the first bad one."""
    packed = b"".join(v.to_bytes(32, "little") for v in values)
    first_bad = next((i for i, v in enumerate(values) if not 0 < v < group.q), None)
    if first_bad is None:
        check_challenges(packed)
        return
    with pytest.raises(EcashError) as info:
        check_challenges(packed)
    assert f"challenges[{first_bad // 2}][{first_bad % 2}]" in str(info.value)
    assert info.value.code == ("zero_scalar" if values[first_bad] == 0
                               else "non_canonical_scalar")
