"""On PostgreSQL the withdrawal's transactions run on the event loop, their
round trips awaited (``txn.AsyncLane``): the loop must go on serving while one
waits for the database, calls that need more (an exchange's redemption) must
move to a thread before they write, and a refusal must leave no lock held."""

from __future__ import annotations

import threading
import time

import httpx
from sqlalchemy import create_engine, text

from ecash.bank import txn
from ecash.bank.store import Sql
from ecash.crypto.withdrawal import user_finish

from ..bankkit import assert_audit_ok, balance_of, refused, running_bank


def _count(monkeypatch, obj, name: str) -> list:
    calls: list = []
    original = getattr(obj, name)

    def counted(*a, **k):
        calls.append(name)
        return original(*a, **k)

    monkeypatch.setattr(obj, name, counted)
    return calls


def test_a_withdrawal_runs_on_the_loop_and_an_exchange_moves_to_a_thread(tmp_path, monkeypatch):
    with running_bank("postgres", tmp_path) as env:
        alice = env.holder("Alice", funds=100)
        threads_start = _count(monkeypatch, env.bank, "start_withdrawal")
        threads_answer = _count(monkeypatch, env.bank, "answer_withdrawal")
        coins = alice.withdraw([4, 2])
        assert threads_start == [] and threads_answer == []  # the loop's driver did both
        # an exchange: started on a thread (not a hot route), answered there too
        offer, states = alice.start([2], exchange=alice.pay([coins[1]], "bank"))
        answers = alice.client.answer(alice.account_id, offer["session_id"],
                                      [s.challenges for s in states])
        assert threads_start == ["start_withdrawal"]
        assert threads_answer == ["answer_withdrawal"]
        assert len([user_finish(s, r, b) for s, (b, r) in zip(states, answers, strict=True)]) == 1
        assert balance_of(env, alice.account_id) == 94
        assert_audit_ok(env)


def test_the_loop_serves_others_while_a_withdrawal_waits_for_a_lock(tmp_path):
    with running_bank("postgres", tmp_path) as env:
        alice, bob = env.holder("Alice", funds=100), env.holder("Bob", funds=100)
        offer, states = alice.start([4])
        pk = env.bank.check_owner(env.bank.authenticate(
            alice.client.http.headers["authorization"][7:]), alice.account_id)
        admin = create_engine(env.db_url.replace("postgresql://", "postgresql+psycopg://"))
        answered: list = []
        with admin.connect() as other:
            other.execute(text("SELECT 1 FROM accounts WHERE id = :pk FOR UPDATE"), {"pk": pk})
            waiting = threading.Thread(target=lambda: answered.append(alice.client.answer(
                alice.account_id, offer["session_id"], [s.challenges for s in states])))
            waiting.start()
            time.sleep(0.3)  # the answer is now waiting for the row lock
            assert not answered
            r = httpx.get(f"{env.url}/v1/health", timeout=5)
            assert r.status_code == 200
            assert len(bob.withdraw([1, 2])) == 2  # the loop and the database serve Bob
            assert not answered
            other.rollback()  # the lock goes; Alice's answer proceeds
        waiting.join(10)
        admin.dispose()
        assert len(answered) == 1 and len(answered[0]) == 1
        assert balance_of(env, alice.account_id) == 96
        assert balance_of(env, bob.account_id) == 97


def test_a_refusal_on_the_loop_leaves_no_lock_and_a_good_connection(tmp_path):
    with running_bank("postgres", tmp_path) as env:
        alice = env.holder("Alice", funds=10)
        offer, states = alice.start([8])
        env.operator.set_status(alice.account_id, "frozen")  # refused after the locks
        with refused(403, "account_not_active"):
            alice.client.answer(alice.account_id, offer["session_id"],
                                [s.challenges for s in states])
        env.operator.set_status(alice.account_id, "active")  # the row is not locked
        env.operator.credit(alice.account_id, 5, "more")
        answers = alice.client.answer(alice.account_id, offer["session_id"],
                                      [s.challenges for s in states])
        assert len(answers) == 1
        assert balance_of(env, alice.account_id) == 7
        assert_audit_ok(env)


def test_steps_that_ask_for_a_connection_move_to_a_thread_before_they_write(tmp_path):
    """The loop's driver refuses ``CONNECTION`` with ``NeedsThread``, having
    rolled back: what the steps did before is undone."""
    import asyncio

    with running_bank("postgres", tmp_path) as env:
        alice = env.holder("Alice", funds=10)

        def steps():
            yield txn.Pipeline([(_SET_HOLDER, {"name": "changed"})])
            yield txn.CONNECTION
            raise AssertionError("not reached on the loop")

        lane = txn.AsyncLane(env.bank.engine, executor=None)  # type: ignore[arg-type]

        async def main():
            try:
                await lane.run(steps())
            except txn.NeedsThread:
                return "moved"

        assert asyncio.run(main()) == "moved"
        lane.close()
        assert env.operator.operator_account(alice.account_id)["holder"] == "Alice"


_SET_HOLDER = Sql("UPDATE accounts SET holder = %(name)s")
