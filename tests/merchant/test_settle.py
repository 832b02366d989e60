"""Settlement: deposit in batches, interrupted and retried, verdicts recorded
once, double spends and late transcripts in the report, background deposit."""

from __future__ import annotations

import time

from ecash.bank.client import BankClient
from ecash.merchant.serve import Settler

from ..bankkit import DroppingTransport, pay_request
from .kit import Switch, bank_balance, decompose, new_terminal, switched


def test_deposit_interrupted_and_retried(bank, holder, tmp_path):
    transport = DroppingTransport()
    t = new_terminal(bank, tmp_path / "t.db", bank_factory=lambda url, cred, timeout:
                     BankClient(url, cred, timeout=timeout, transport=transport))
    coins = holder.withdraw(decompose(1250))
    env = t.create_request(1250)
    t.accept(env.request.request_id, pay_request(holder, coins, env.request))
    transport.drop = 1  # the bank stores the first batch, its answer is lost
    res = t.deposit(batch=2)
    assert res.error and res.error.startswith("bank_unreachable") and res.sent == 0
    rep = t.report()
    assert rep["pending"] == {"count": 5, "value": 1250}
    assert 0 < bank_balance(bank, "shop-1") < 1250  # the bank has the first batch
    res = t.deposit(batch=2)  # retried: the bank answers the first batch as the first time
    assert res.error is None and res.sent == 5 and res.batches == 3
    assert res.accepted == 5 and res.credited == 1250
    rep = t.report()
    assert rep["pending"]["count"] == 0
    assert rep["credited"] == {"count": 5, "value": 1250}
    assert bank_balance(bank, "shop-1") == 1250  # credited once
    again = t.deposit()
    assert again.sent == 0 and again.error is None
    t.close()


def test_double_spent_coin_reported_back_by_the_bank(bank, holder, terminal):
    coins = holder.withdraw([64, 8])
    # the holder spends the 64 at another shop first...
    assert bank.merchant("shop-2").deposit(holder.pay(coins[:1], "shop-2"))[0]["status"] \
        == "accepted"
    # ...then both coins here, offline: the terminal cannot know
    env = terminal.create_request(72)
    terminal.accept(env.request.request_id, pay_request(holder, coins, env.request))
    res = terminal.deposit()
    assert res.accepted == 1 and res.double_spent == 1 and res.compensated == 64
    rep = terminal.report()
    assert rep["accepted"] == {"count": 2, "value": 72}
    assert rep["deposited"] == {"count": 2, "value": 72}
    assert rep["credited"] == {"count": 1, "value": 8}
    assert rep["double_spent"] == {"count": 1, "value": 64}
    assert rep["compensated"] == {"count": 1, "value": 64}
    assert rep["totals"] == {"sales": 72, "credited": 72, "outstanding": 0, "lost": 0}
    assert bank.operator.fraud_cases()[0]["account_id"] == holder.account_id
    assert holder.client.account(holder.account_id)["status"] == "frozen"


def test_deadline_warnings_and_late_transcripts(bank, holder, tmp_path):
    switch = Switch()
    t = new_terminal(bank, tmp_path / "t.db", bank_factory=switched(switch))
    window = t.keys.window_s
    env = t.create_request(12)
    t.accept(env.request.request_id, pay_request(holder, holder.withdraw([8, 4]), env.request))
    switch.down = True
    res = t.deposit()
    assert res.error.startswith("bank_unreachable") and res.warnings == []
    bank.clock.advance(window - 3600)  # an hour left
    res = t.deposit()
    assert len(res.warnings) == 1 and "must be deposited" in res.warnings[0]
    assert t.report()["deadlines"]["due_soon"] == {"count": 2, "value": 12}
    bank.clock.advance(3601)  # too late
    assert "PAST" in t.deposit().warnings[0]
    assert t.report()["deadlines"]["overdue"] == {"count": 2, "value": 12}
    switch.down = False
    res = t.deposit()
    assert res.refused == 2 and res.sent == 2
    rep = t.report()
    assert rep["refused"] == {"count": 2, "value": 12} and rep["refused_codes"] == {"late": 2}
    assert rep["totals"]["lost"] == 12 and rep["pending"]["count"] == 0
    t.close()


def test_background_deposit_whenever_the_bank_answers(bank, holder, tmp_path):
    switch = Switch()
    t = new_terminal(bank, tmp_path / "t.db", bank_factory=switched(switch))
    env = t.create_request(3)
    t.accept(env.request.request_id, pay_request(holder, holder.withdraw([2, 1]), env.request))
    switch.down = True
    settler = Settler(t, deposit_every=0.05, sync_every=0)
    settler.start()
    try:
        time.sleep(0.3)
        assert t.report()["pending"]["count"] == 2  # tried, bank down
        switch.down = False
        deadline = time.monotonic() + 20
        while t.report()["pending"]["count"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert t.report()["credited"] == {"count": 2, "value": 3}
    finally:
        settler.stopping.set()
        settler.join(5)
    t.close()
