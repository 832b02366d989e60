"""Key generations over time: rotation, deposit deadlines, breakage of a
closed generation, and closing an account (payout after its keys' deposit_end)."""

from __future__ import annotations

from ecash.crypto.coin import verify_coin

from ..bankkit import (
    assert_audit_ok,
    balance_of,
    holder_at,
    refused,
    signer_backed_server,
    signer_process,
    signer_socket,
)


def generation_of(env, key_id: bytes) -> int:
    info = env.bank.key(key_id)
    assert info is not None
    return info.generation


def test_key_rotation(env):
    env.clock.freeze()
    alice = env.holder("Alice", funds=100_000)
    shop = env.merchant("shop")
    old = alice.withdraw([1, 2, 4])
    assert {generation_of(env, c.key_id) for c, _ in old} == {1}
    assert env.bank.add_generation() == 2
    gens = {g["generation"]: g for g in env.operator.generations()}
    assert gens[2]["withdraw_start"] == gens[1]["withdraw_end"]  # no overlap (9.6)
    ks = env.operator.keyset()
    ks.check()
    assert len(ks.keys) == 2 * len(env.bank.config.denominations)
    # before the old window ends, withdrawals still use generation 1
    assert {generation_of(env, c.key_id) for c, _ in alice.withdraw([8])} == {1}
    new_key = next(k for k in ks.keys if generation_of(env, k.key_id) == 2)
    with refused(422, "key_not_withdrawable"):
        alice.client.start_withdrawal(alice.account_id, [new_key.key_id])
    env.clock.advance(gens[1]["withdraw_end"] - env.bank.now())
    new = alice.withdraw([16, 32])
    assert {generation_of(env, c.key_id) for c, _ in new} == {2}
    for coin, _ in new:
        verify_coin(coin, ks.key(coin.key_id))
    old_key = next(k for k in ks.keys if generation_of(env, k.key_id) == 1)
    with refused(422, "key_not_withdrawable"):
        alice.client.start_withdrawal(alice.account_id, [old_key.key_id])
    # old coins are still good until their deposit_end
    assert [v["status"] for v in shop.deposit(alice.pay(old[:1], "shop"))] == ["accepted"]
    env.clock.advance(gens[1]["deposit_end"] - env.bank.now())
    assert [v["status"] for v in shop.deposit(alice.pay(old[1:2], "shop"))] == ["accepted"]
    assert len(env.operator.keyset().keys) == 2 * len(env.bank.config.denominations)
    env.clock.advance(1)
    verdicts = shop.deposit(alice.pay(old[2:], "shop") + alice.pay(new, "shop"))
    assert [(v["status"], v.get("code")) for v in verdicts] == [
        ("expired", "key_expired"), ("accepted", None), ("accepted", None)]
    live = env.operator.keyset().keys
    assert {generation_of(env, k.key_id) for k in live} == {2}
    assert len(live) == len(env.bank.config.denominations)
    assert [g["generation"] for g in env.operator.generations()] == [1, 2]
    assert shop.merchant()["balance"] == 1 + 2 + 16 + 32
    assert_audit_ok(env)


def test_rotation_reaches_a_running_signer(env):
    """A generation the operator adds (opening the key directory itself) is
    answered by a signer process that started before it, without a restart;
    the workers (no key of their own) take its keys from the database."""
    env.clock.freeze()
    with signer_socket() as sock, signer_process(env.keys_dir, sock), \
            signer_backed_server(env, sock) as url:
        alice = holder_at(env, url, funds=1000)
        assert {generation_of(env, c.key_id) for c, _ in alice.withdraw([1])} == {1}
        assert env.bank.add_generation() == 2
        gens = env.operator.generations()
        env.clock.advance(gens[1]["withdraw_start"] - env.bank.now())
        coins = alice.withdraw([4, 16])
        assert {generation_of(env, c.key_id) for c, _ in coins} == {2}
        ks = alice.client.keyset()
        for coin, _ in coins:
            verify_coin(coin, ks.key(coin.key_id))
        assert balance_of(env, alice.account_id) == 1000 - 21


def test_breakage_after_deposit_end(env):
    env.clock.freeze()
    alice = env.holder("Alice", funds=100_000)
    shop = env.merchant("shop")
    coins = alice.withdraw([1, 2, 4, 8, 16])
    shop.deposit(alice.pay(coins[:2], "shop"))
    env.bank.add_generation()
    assert env.operator.maintenance() == {"closed_generations": [], "payouts": []}
    gens = env.operator.generations()
    env.clock.advance(gens[1]["withdraw_start"] - env.bank.now())
    new = alice.withdraw([64])  # generation 2
    env.clock.advance(gens[0]["deposit_end"] - env.bank.now())
    assert env.operator.maintenance()["closed_generations"] == []  # not yet past it
    before = assert_audit_ok(env)
    assert before["liability"] == 28 + 64
    env.clock.advance(1)
    assert env.operator.maintenance()["closed_generations"] == [1]
    after = assert_audit_ok(env)
    assert after["expired"] == 28  # the unspent value
    assert after["liability"] == 64
    assert after["issued"] == before["issued"]
    assert after["deposited_or_redeemed"] == 3  # archived with the generation
    assert env.operator.maintenance()["closed_generations"] == []  # once
    assert assert_audit_ok(env) == after
    gens = env.operator.generations()
    assert [(g["generation"], g["closed"]) for g in gens] == [(1, True), (2, False)]
    verdicts = shop.deposit(alice.pay(coins[2:], "shop") + alice.pay(coins[:1], "shop"))
    assert {(v["status"], v["credited"]) for v in verdicts} == {("expired", 0)}
    verdicts = alice.client.redeem(alice.account_id, alice.pay(coins[2:3], "bank"))
    assert [(v["status"], v["credited"]) for v in verdicts] == [("expired", 0)]
    closed = env.operator.spent_range(1, 0, [0])
    assert closed["closed"] and closed["coin_ids"] == [] and closed["next"] is None
    assert shop.merchant()["balance"] == 3
    assert balance_of(env, alice.account_id) == 100_000 - 31 - 64
    assert env.operator.fraud_cases() == []
    # the next generation is unaffected
    assert [v["status"] for v in shop.deposit(alice.pay(new, "shop"))] == ["accepted"]
    fig = assert_audit_ok(env)
    assert fig["liability"] == 0 and fig["expired"] == 28


def test_close_account_pays_out_after_deposit_end(env):
    env.clock.freeze()
    alice = env.holder("Alice", funds=1000)
    idle = env.holder("Idle", funds=300)
    coins = alice.withdraw([4, 8])
    key = env.operator.keyset().key(coins[0][0].key_id)
    closed = alice.client.close_account(alice.account_id)
    assert closed == {"status": "closed", "payout_after": key.deposit_end, "balance": 988}
    assert alice.client.close_account(alice.account_id) == closed  # idempotent
    with refused(403, "account_not_active"):
        alice.start([1])
    with refused(422, "account_closed"):
        env.operator.credit(alice.account_id, 5, "late credit")
    # an account that never withdrew is paid out at once
    assert idle.client.close_account(idle.account_id)["payout_after"] <= env.bank.now()
    out = env.operator.maintenance()
    assert out["payouts"] == [{"account_id": idle.account_id, "amount": 300}]
    assert balance_of(env, alice.account_id) == 988
    env.clock.advance(key.deposit_end - env.bank.now() - 10)
    assert env.operator.maintenance()["payouts"] == []
    # coins the holder kept can still be deposited, and double-spent, until then
    shop = env.merchant("shop")
    assert shop.deposit(alice.pay(coins[:1], "shop"))[0]["status"] == "accepted"
    v = shop.deposit(alice.pay(coins[:1], "shop"))[0]
    assert (v["status"], v["credited"]) == ("double_spent", 4)
    assert env.operator.fraud_cases()[0]["from_balance"] == 4
    assert balance_of(env, alice.account_id) == 984
    assert env.operator.operator_account(alice.account_id)["status"] == "closed"
    env.clock.advance(10)
    out = env.operator.maintenance()
    assert out["payouts"] == [{"account_id": alice.account_id, "amount": 984}]
    assert env.operator.maintenance()["payouts"] == []
    assert balance_of(env, alice.account_id) == 0
    fig = assert_audit_ok(env)
    assert fig["paid_out"] == 1284


def test_frozen_account_cannot_close(env):
    alice = env.holder("Alice", funds=10)
    env.operator.set_status(alice.account_id, "frozen", "test: frozen")
    with refused(409, "account_frozen"):
        alice.client.close_account(alice.account_id)
