"""The bank's PostgreSQL connections after the server dropped them (a restart,
a failover, an administrator's ``pg_terminate_backend``): a connection that sat
idle is checked before use and replaced; one used a moment ago is trusted, and
the withdrawal whose transaction broke on it is run again, answered once."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from ecash.bank import store
from ecash.crypto.withdrawal import user_finish

from ..bankkit import PG_URL, assert_audit_ok, balance_of, refused, running_bank


def terminate_others(db_url: str) -> int:
    """Kill every server process of ``db_url``'s database; how many."""
    name = db_url.rsplit("/", 1)[1]
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            return len(c.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).all())
    finally:
        admin.dispose()


def test_an_idle_connection_dropped_by_the_server_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "PING_AFTER_S", 0.0)  # every checkout counts as idle
    with running_bank("postgres", tmp_path) as env:
        alice = env.holder("Alice", funds=100)
        assert terminate_others(env.db_url) >= 1  # the pool's connections
        assert alice.client.account(alice.account_id)["balance"] == 100  # no error


def test_a_withdrawal_broken_by_a_dropped_connection_is_answered_once(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "PING_AFTER_S", 1e9)  # trust every connection: no ping
    with running_bank("postgres", tmp_path) as env:
        alice = env.holder("Alice", funds=100)
        offer, states = alice.start([4, 2])
        assert terminate_others(env.db_url) >= 1
        answers = alice.client.answer(alice.account_id, offer["session_id"],
                                      [s.challenges for s in states])
        coins = [user_finish(s, r, b) for s, (b, r) in zip(states, answers, strict=True)]
        assert len(coins) == 2
        assert balance_of(env, alice.account_id) == 94
        assert_audit_ok(env)


def test_a_request_broken_by_a_dropped_connection_is_a_503(tmp_path, monkeypatch):
    """Outside the retried transactions the client sees a clear, retryable
    error (not a 500), and the next request gets a good connection."""
    monkeypatch.setattr(store, "PING_AFTER_S", 1e9)
    with running_bank("postgres", tmp_path) as env:
        alice = env.holder("Alice", funds=100)
        env.bank._account_pks.clear()  # make the lookup reach the database
        assert terminate_others(env.db_url) >= 1
        with refused(503, "database_unavailable"):
            alice.client.account(alice.account_id)
        assert alice.client.account(alice.account_id)["balance"] == 100


def test_a_broken_connection_is_not_retried_forever(tmp_path):
    calls = []

    def always_broken():
        calls.append(1)
        raise store.Disconnected("server closed the connection")

    with pytest.raises(store.Disconnected):
        store.retrying(always_broken, attempts=3)
    assert len(calls) == 3
