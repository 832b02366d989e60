"""ECASH-1 revision 2 at the bank: a coin is its ``coin_id``, not its ``A``.

``revision2.json``'s deposit vectors are reproduced step by step, first
through the classification the deposit uses (:func:`ecash.bank.deposit.lookup`)
and then end to end: the vectors' denomination keys installed in a real bank
on SQLite and PostgreSQL, its clock set to each step's time, each transcript
deposited over HTTP by the merchant it names. Then the attack revision 2
closes: a wallet reusing ``s`` gets two coins with one ``A``, redeems the
cheap one and pays the dear one twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import insert

from ecash.bank.deposit import lookup
from ecash.bank.keyring import Generation, write_secret
from ecash.bank.schema import denomination_keys, generations
from ecash.bank.store import ensure_partition
from ecash.crypto import group
from ecash.crypto import registration as reg
from ecash.crypto.keys import DenominationSecret
from ecash.crypto.payment import spend_challenge
from ecash.wire import binary
from ecash.wire import json as wj
from ecash.wire.redemption import redemption_request

from ..bankkit import BankEnv, balance_of, pay_request
from .test_deposit import withdraw_with_s

VECTORS = Path(__file__).parent.parent / "vectors"
REV2 = json.loads((VECTORS / "revision2.json").read_text())
DEPOSITS = ["shared_A_deposits", "same_coin_deposits"]


def spend_of(step: dict):
    return wj.spend_from_json(step["spend"])


@pytest.mark.parametrize("name", DEPOSITS)
def test_vector_lookups(name):
    """Each step's hop is classified as the vector says, on a spent table that
    starts empty and keeps what the vector stores."""
    table: dict[bytes, tuple[bytes, bytes]] = {}
    for step in REV2[name]["steps"]:
        sp = spend_of(step)
        assert sp.request.request_id.hex() == step["request_id"]
        assert group.encode_scalar(spend_challenge(sp.coin.A, sp.coin.B,
                                                   sp.request.request_id)).hex() == step["d"]
        transcript = (binary.spend_to_bytes(sp), binary.request_to_bytes(sp.request))
        assert [lookup(table.get(sp.coin.coin_id), *transcript)] == step["hops"]
        for ds in step["double_spends"]:
            assert ds["coin_id"] == sp.coin.coin_id.hex()
        if step["stored_hops"]:
            table[sp.coin.coin_id] = transcript


def install_vector_keys(env: BankEnv) -> None:
    """Add denomination.json's keys to the bank as one more generation: the
    secret halves in its key directory, the public ones in its database."""
    den = json.loads((VECTORS / "denomination.json").read_text())
    with env.bank.engine.begin() as conn:
        number = max(g for (g,) in conn.execute(generations.select().with_only_columns(
            generations.c.generation))) + 1
        keys = [DenominationSecret(group.decode_scalar(bytes.fromhex(d["x"])), wj.key_from_json({
            "key_id": d["key_id"], "h": d["h"], "value": d["value"], "currency": d["currency"],
            "withdraw_start": d["withdraw_start"], "withdraw_end": d["withdraw_end"],
            "deposit_end": d["deposit_end"], "signature": d["master_signature"]}))
            for d in den["denominations"]]
        write_secret(env.keys_dir / f"generation-{number:04d}.json",
                     Generation(number, keys).to_json())
        first = keys[0].public
        conn.execute(insert(generations).values(
            generation=number, withdraw_start=first.withdraw_start,
            withdraw_end=first.withdraw_end, deposit_end=first.deposit_end))
        conn.execute(insert(denomination_keys), [
            {"key_id": k.public.key_id, "generation": number, "denomination": i,
             "value": k.public.value, "currency": k.public.currency, "h": k.public.h,
             "withdraw_start": k.public.withdraw_start, "withdraw_end": k.public.withdraw_end,
             "deposit_end": k.public.deposit_end, "signature": k.public.signature}
            for i, k in enumerate(keys)])
        ensure_partition(conn, number)


def vector_holder(env: BankEnv) -> str:
    """An account holding registration.json's identity ``I``."""
    u1 = group.decode_scalar(bytes.fromhex(json.loads(
        (VECTORS / "registration.json").read_text())["u1"]))
    account_id, token = env.operator.open_account("vector holder")
    env.client(token).register(account_id, reg.prove(u1, account_id))
    return account_id


@pytest.mark.parametrize("name", DEPOSITS)
def test_vector_deposits_end_to_end(env, name):
    vector = REV2[name]
    install_vector_keys(env)
    holder = vector_holder(env)
    assert env.operator.operator_account(holder)["identity"] == vector["registered_I"]
    shops = {r["merchant_id"]: env.merchant(r["merchant_id"]) for r in vector["requests"]}
    cases_before = 0
    for step in vector["steps"]:
        env.clock.frozen = step["now_ms"] / 1000
        shop = shops[step["depositor"]]
        before = shop.merchant()["balance"]
        verdict, = shop.deposit([spend_of(step)])
        gained = shop.merchant()["balance"] - before
        cases = env.operator.fraud_cases()
        outcome = step["outcome"]
        if outcome == "credited":
            assert (verdict["status"], verdict["replay"]) == ("accepted", False)
            assert verdict["credited"] == gained == step["credit"]
        elif outcome == "replay":
            assert (verdict["status"], verdict["replay"]) == ("accepted", True)
            assert verdict["credited"] == gained == step["credit"] == 0
        elif outcome == "refused":
            assert (verdict["status"], verdict["code"], verdict["credited"], gained) == (
                "invalid", "other_signature", 0, 0)
        else:
            assert outcome == "double_spend"
            assert verdict["status"] == "double_spent"
            ds, = step["double_spends"]
            case = env.operator.fraud_case(verdict["fraud_case"])
            assert case["coin_id"] == ds["coin_id"]
            assert case["identity"] == ds["recovered_I"] == vector["registered_I"]
            assert (case["account_id"] is not None) == ds["named"]
            assert case["account_id"] == holder and not case["alarm"]
            # the shop is compensated in full (from the holder, else receivable)
            assert verdict["credited"] == gained == spend_of(step).request.amount
        if outcome != "double_spend":
            assert len(cases) == cases_before, "nobody is named"
            assert env.operator.operator_account(holder)["status"] == "active"
        else:
            assert len(cases) == cases_before + 1
            assert env.operator.operator_account(holder)["status"] == "frozen"
        cases_before = len(cases)


def test_one_A_two_values_redeem_cheap_pay_dear_twice(env):
    """Issue 14's attack: a wallet reusing ``s`` withdraws a 1 and a 64 with one
    ``A``, redeems the 1 into its account, then pays the 64 at two shops.
    The first shop is credited; the second deposit names the holder, freezes
    the account and is compensated."""
    alice = env.holder("Alice", funds=1000)
    shop1, shop2 = env.merchant("shop-1"), env.merchant("shop-2")
    cheap, dear = withdraw_with_s(alice, [1, 64], group.random_scalar())
    assert cheap[0].A == dear[0].A
    request = redemption_request(alice.account_id, 1, "CNY", int(env.clock() * 1000))
    redeemed = alice.client.redeem(alice.account_id, pay_request(alice, [cheap], request))
    assert [(v["status"], v["credited"]) for v in redeemed] == [("accepted", 1)]
    first, = shop1.deposit(alice.pay([dear], "shop-1"))
    assert (first["status"], first["credited"]) == ("accepted", 64)
    second, = shop2.deposit(alice.pay([dear], "shop-2"))
    assert (second["status"], second["credited"]) == ("double_spent", 64)
    case, = env.operator.fraud_cases()
    assert case["account_id"] == alice.account_id
    assert case["coin_id"] == dear[0].coin_id.hex()
    assert env.operator.operator_account(alice.account_id)["status"] == "frozen"
    assert shop1.merchant()["balance"] == 64 and shop2.merchant()["balance"] == 64
    assert balance_of(env, alice.account_id) == 1000 - 65 + 1 - 64
