"""Races at the bank, on both engines, over real HTTP."""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from ecash.bank.client import BankHTTPError
from ecash.bank.config import BankConfig
from ecash.crypto.payment import PaymentRequest, make_spend

from ..bankkit import running_bank


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_100_coins_deposited_at_once_by_two_merchants(engine, tmp_path):
    """Exactly 100 credits from the liability, 100 fraud cases naming the right holders."""
    with running_bank(engine, tmp_path) as env:
        holders = [env.holder(f"holder {i}") for i in range(4)]
        shops = [env.merchant("shop-a"), env.merchant("shop-b")]
        coins = [(h, c) for h in holders for c in h.withdraw([4] * 25)]
        batches = []
        for shop_id in ("shop-a", "shop-b"):
            spends = []
            for h, (coin, sec) in coins:
                req = PaymentRequest(shop_id, 4, "CNY", int(time.time() * 1000),
                                     secrets.token_bytes(16))
                spends.append(make_spend(coin, sec, h.u1, req))
            batches.append(spends)
        before = env.operator.audit()["figures"]["liability"]
        results: dict[int, list] = {}
        barrier = threading.Barrier(2)

        def run(i: int) -> None:
            barrier.wait()
            results[i] = shops[i].deposit(batches[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in range(100):
            statuses = sorted(results[i][n]["status"] for i in range(2))
            assert statuses == ["accepted", "double_spent"]
        # the same batches again answer as the first time and move nothing
        for i in range(2):
            again = shops[i].deposit(batches[i])
            assert [(v["status"], v["amount"]) for v in again] == [
                (v["status"], v["amount"]) for v in results[i]]
            assert all(v["replay"] and v["credited"] == 0 for v in again)
        audit = env.operator.audit()
        assert audit["ok"], audit
        assert before - audit["figures"]["liability"] == 400  # 100 coins of 4, once
        cases = env.operator.fraud_cases()
        assert len(cases) == 100
        by_holder = {h.account_id: h for h in holders}
        for case in cases:
            assert case["identity"] == by_holder[case["account_id"]].I.hex()
        named = {c["account_id"] for c in cases}
        assert named == set(by_holder)
        # both merchants were paid for every coin
        total = sum(env.operator.operator_account(a)["balance"] for a in _merchant_accounts(env))
        assert total == 800


def _merchant_accounts(env) -> list[str]:
    from sqlalchemy import select

    from ecash.bank.schema import accounts

    with env.bank.engine.connect() as conn:
        return [r.account_id for r in conn.execute(select(accounts.c.account_id).where(
            accounts.c.merchant_id.in_(["shop-a", "shop-b"])))]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_concurrent_withdrawals_never_exceed_the_daily_limit(engine, tmp_path):
    config = BankConfig(daily_load_limit=1000)
    with running_bank(engine, tmp_path, config=config) as env:
        alice = env.holder("Alice")
        offers = [alice.start([64]) for _ in range(30)]  # 30 x 64 > 1000
        outcomes: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(len(offers))

        def answer(offer, states) -> None:
            barrier.wait()
            try:
                alice.client.answer(alice.account_id, offer["session_id"],
                                    [s.challenges for s in states])
                result = "ok"
            except BankHTTPError as exc:
                result = exc.code
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=answer, args=o) for o in offers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count("ok") == 1000 // 64
        assert set(outcomes) == {"ok", "daily_load_limit"}
        assert alice.client.account(alice.account_id)["balance"] == 1_000_000 - 64 * (1000 // 64)
        assert env.operator.audit()["ok"]
