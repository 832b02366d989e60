"""A real ``ecash wallet`` process killed with SIGKILL at every step of a load
and of a payment, then recovery: no coin lost, none answered for two
requests, the wallet and the bank's ledger agree."""

from __future__ import annotations

import json
import signal

from ecash.wallet import Wallet
from ecash.wallet.faults import ENV as CRASH
from ecash.wallet.faults import LOAD_POINTS, PAY_POINTS
from ecash.wire import text

from .kit import PASS, Terminal, answered_twice, assert_agree, coin_value, holder, run_cli


def _check(path, env) -> Wallet:
    w = Wallet.open(path, PASS, clock=env.clock)
    assert w.audit()["ok"], w.audit()
    assert answered_twice(w) == []
    return w


def test_killed_at_every_step_of_load_and_pay(env, tmp_path):
    h = holder(env)
    path = tmp_path / "w.db"
    h.wallet(path).close()
    h.wallets.clear()
    wallet = ["--wallet", str(path), "--json"]
    shop = Terminal(env, "shop")
    try:
        for n, point in enumerate(LOAD_POINTS, 1):
            r = run_cli(["load", "7", *wallet], env_extra={CRASH: point})  # CNY 7.00
            assert r.returncode == -signal.SIGKILL, (point, r.stdout, r.stderr)
            r = run_cli(["load", "7", *wallet])
            assert r.returncode == 0, (point, r.stderr)
            out = json.loads(r.stdout)
            assert out["resumed"] and out["amount"] == 700, point
            assert h.funds - h.bank_balance() == 700 * n, point
            w = _check(path, env)
            assert coin_value(w, ("unspent",)) == 700 * n, point
            w.close()

        paid = []
        for i, point in enumerate(PAY_POINTS):
            envelope = shop.request(100 + i)
            req = text.request_to_text(envelope)
            r = run_cli(["pay", req, "--yes", *wallet], env_extra={CRASH: point})
            assert r.returncode == -signal.SIGKILL, (point, r.stdout, r.stderr)
            w = _check(path, env)
            stored = w.stored_payment(envelope.request.request_id)
            assert stored is not None and stored.amount == 100 + i  # recorded before sent
            w.close()
            # recovery: `sync` resends an unconfirmed payment; paying again gives
            # the identical payment
            r = run_cli(["sync", *wallet]) if point == "pay.recorded" else \
                run_cli(["pay", req, "--yes", *wallet])
            assert r.returncode == 0, (point, r.stderr)
            w = _check(path, env)
            again = w.pay(envelope)
            assert again.text == stored.text and again.status == "confirmed", point
            rid = envelope.request.request_id.hex()
            assert [s.coin.A for s in shop.paid[rid][0]] == [s.coin.A for s in again.spends]
            paid.append(100 + i)
            w.close()

        # killed right after the record committed: `sync` sends it, identically
        envelope = shop.request(50)
        r = run_cli(["pay", text.request_to_text(envelope), "--yes", *wallet],
                    env_extra={CRASH: "pay.recorded"})
        assert r.returncode == -signal.SIGKILL
        assert envelope.request.request_id.hex() not in shop.paid
        r = run_cli(["sync", *wallet])
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["resent"][0]["status"] == "confirmed"
        paid.append(50)
        assert {v["status"] for v in shop.deposit_paid()} == {"accepted"}
        w = _check(path, env)
        w.sync()
        figures = assert_agree(env, h, w)
        assert figures["liability"] == coin_value(w, ("unspent", "pending"))
        assert coin_value(w, ("unspent",)) == 700 * len(LOAD_POINTS) - sum(paid)
        w.close()
    finally:
        shop.close()
        h.close()


def test_killed_at_every_step_of_an_exchange(env, tmp_path):
    from ecash.wallet.faults import EXCHANGE_POINTS

    h = holder(env)
    path = tmp_path / "w.db"
    w = h.wallet(path)
    w.load(5_000)
    w.close()
    h.wallets.clear()
    wallet = ["--wallet", str(path), "--json"]
    for point in EXCHANGE_POINTS:
        r = run_cli(["break", *wallet], env_extra={CRASH: point})
        assert r.returncode == -signal.SIGKILL, (point, r.stdout, r.stderr)
        r = run_cli(["sync", *wallet])
        assert r.returncode == 0, (point, r.stderr)
        assert [x["state"] for x in json.loads(r.stdout)["resumed"]] == ["done"], point
        w = _check(path, env)
        assert coin_value(w, ("unspent",)) == 5_000 and w.balance()["pending"] == 0, point
        assert w.store.conn.execute("SELECT COUNT(*) FROM ops WHERE state != 'done'"
                                    ).fetchone()[0] == 0
        figures = assert_agree(env, h, w)
        assert figures["liability"] == 5_000
        w.close()
    h.close()
