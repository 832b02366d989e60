"""Credentials and roles, identity registration (ECASH-1 3.2), credits,
merchants and certificates, over HTTP."""

from __future__ import annotations

import pytest

from ecash.bank.client import BankHTTPError
from ecash.crypto import group
from ecash.crypto import registration as reg
from ecash.crypto.sign import SigningKey
from ecash.wire import json as wj

from ..bankkit import (
    assert_audit_ok,
    at_once,
    balance_of,
    raw,
    refused,
    state_snapshot,
    token_of,
)

HOLDER_ENDPOINTS = [  # (method, path, body); {a} is the account, {s} a session
    ("GET", "/v1/accounts/{a}", None),
    ("POST", "/v1/accounts/{a}/identity", {"I": "00" * 32, "t": "00" * 32, "p": "00" * 32}),
    ("POST", "/v1/accounts/{a}/withdrawals", {"key_ids": ["{k}"]}),
    ("POST", "/v1/accounts/{a}/exchanges", {"spends": [], "key_ids": ["{k}"]}),
    ("POST", "/v1/accounts/{a}/withdrawals/{s}", {"challenges": [["01" + "00" * 31] * 2]}),
    ("GET", "/v1/accounts/{a}/withdrawals", None),
    ("POST", "/v1/accounts/{a}/redemptions", {"spends": []}),
    ("POST", "/v1/accounts/{a}/close", None),
]
MERCHANT_ENDPOINTS = [
    ("GET", "/v1/merchant", None),
    ("POST", "/v1/merchant/certificate", {"public_key": "11" * 32}),
    ("POST", "/v1/merchant/deposits", {"spends": []}),
]
OPERATOR_ENDPOINTS = [
    ("POST", "/v1/operator/accounts", {"holder": "Mallory"}),
    ("POST", "/v1/operator/accounts/{a}/credit", {"amount": 5, "reference": "x"}),
    ("POST", "/v1/operator/accounts/{a}/status", {"status": "frozen"}),
    ("POST", "/v1/operator/accounts/{a}/merchant", {"merchant_id": "mallory"}),
    ("GET", "/v1/operator/accounts/{a}", None),
    ("GET", "/v1/operator/fraud", None),
    ("GET", "/v1/operator/fraud/1", None),
    ("GET", "/v1/operator/audit", None),
    ("POST", "/v1/operator/maintenance", None),
]


def _fill(obj, subs: dict[str, str]):
    if isinstance(obj, str):
        for k, v in subs.items():
            obj = obj.replace(k, v)
        return obj
    if isinstance(obj, list):
        return [_fill(x, subs) for x in obj]
    if isinstance(obj, dict):
        return {k: _fill(v, subs) for k, v in obj.items()}
    return obj


def _problem(r, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.text


@pytest.fixture
def world(env):
    alice = env.holder("Alice", funds=1000)
    bob = env.holder("Bob", funds=1000)
    shop = env.merchant("shop")
    offer, _ = alice.start([1])
    ks = env.operator.keyset()
    subs = {"{a}": alice.account_id, "{s}": offer["session_id"], "{k}": ks.keys[0].key_id.hex()}
    return env, alice, bob, shop, subs


def test_endpoints_refuse_the_wrong_role(world):
    env, _, bob, shop, subs = world
    tokens = {"holder": token_of(bob.client), "merchant": token_of(shop),
              "operator": token_of(env.operator)}
    before = state_snapshot(env)
    groups = {"holder": HOLDER_ENDPOINTS, "merchant": MERCHANT_ENDPOINTS,
              "operator": OPERATOR_ENDPOINTS}
    for role, endpoints in groups.items():
        for method, path, body in endpoints:
            path, body = _fill(path, subs), _fill(body, subs)
            for who, token in tokens.items():
                if who == role and role != "holder":
                    continue  # bob IS a holder, but of another account: refused too
                r = raw(env, method, path, token, json_body=body)
                _problem(r, 403, "forbidden")
            for token in (None, "ech_not-a-credential", token_of(bob.client) + "x"):
                _problem(raw(env, method, path, token, json_body=body), 401,
                         "unauthenticated")
            r = raw(env, method, path, json_body=body,
                    headers={"authorization": "Basic " + tokens[role]})
            _problem(r, 401, "unauthenticated")
    assert state_snapshot(env) == before


def test_holder_cannot_act_on_another_holders_account(world):
    env, alice, bob, shop, subs = world
    with refused(403, "forbidden"):
        bob.client.account(alice.account_id)
    with refused(403, "forbidden"):
        bob.client.start_withdrawal(alice.account_id, [bytes.fromhex(subs["{k}"])])
    with refused(403, "forbidden"):
        bob.client.withdrawal_records(alice.account_id)
    with refused(403, "forbidden"):
        bob.client.close_account(alice.account_id)
    with refused(403, "forbidden"):
        bob.client.register(alice.account_id, reg.prove(bob.u1, alice.account_id))
    # a merchant credential is no holder credential, not even for its own account
    shop_account = shop.merchant()["account_id"]
    with refused(403, "forbidden"):
        shop.account(shop_account)
    with refused(403, "forbidden"):
        shop.account(alice.account_id)
    with refused(403, "forbidden"):
        shop.start_withdrawal(shop_account, [bytes.fromhex(subs["{k}"])])
    with refused(403, "forbidden"):
        alice.client.deposit(alice.pay(alice.withdraw([2]), "shop"))
    assert alice.client.account(alice.account_id)["balance"] == 998
    assert balance_of(env, bob.account_id) == 1000
    # an unknown account is not found for anyone
    with refused(404, "not_found"):
        bob.client.account("acct-0000000000")


def test_public_endpoints_need_no_credential(env):
    assert raw(env, "GET", "/v1/health").json() == {"status": "ok"}
    ks = wj.keyset_from_json(raw(env, "GET", "/v1/keyset").json())
    ks.check()
    gens = raw(env, "GET", "/v1/generations").json()["generations"]
    assert [g["generation"] for g in gens] == [1]
    r = raw(env, "POST", "/v1/spent-range", json_body={"generation": 1, "prefix_bits": 8,
                                                        "prefixes": [0], "after": None})
    assert r.status_code == 200 and r.json()["coin_ids"] == []


def test_registration(env):
    account_a, token_a = env.operator.open_account("A")
    account_b, token_b = env.operator.open_account("B")
    env.operator.credit(account_a, 100, "r1")
    a, b = env.client(token_a), env.client(token_b)
    ks = env.operator.keyset()
    with refused(409, "identity_not_registered"):
        a.start_withdrawal(account_a, [ks.keys[0].key_id])
    u1 = group.random_scalar()
    with refused(422, "proof_invalid"):  # a proof made for another account id
        a.register(account_a, reg.prove(u1, account_b))
    assert a.account(account_a)["identity"] is None
    assert a.register(account_a, reg.prove(u1, account_a)) == {
        "status": "registered", "identity": reg.identity_of(u1).hex()}
    # again (a lost reply), even with a fresh proof: the same, nothing changes
    assert a.register(account_a, reg.prove(u1, account_a))["status"] == "registered"
    assert a.account(account_a)["identity"] == reg.identity_of(u1).hex()
    with refused(409, "identity_taken"):
        b.register(account_b, reg.prove(u1, account_b))
    assert b.account(account_b)["identity"] is None
    with refused(409, "identity_registered"):
        a.register(account_a, reg.prove(group.random_scalar(), account_a))
    b.register(account_b, reg.prove(group.random_scalar(), account_b))
    a.start_withdrawal(account_a, [ks.keys[0].key_id])


def test_credit_is_idempotent_per_reference(env):
    account, _ = env.operator.open_account("C")
    assert env.operator.credit(account, 500, "wire-1") == 500
    assert env.operator.credit(account, 500, "wire-1") == 500
    assert env.operator.credit(account, 7, "wire-2") == 507
    other, _ = env.operator.open_account("D")
    assert env.operator.credit(other, 3, "wire-1") == 3  # references are per account
    with refused(422, "bad_amount"):
        env.operator.credit(account, 0, "wire-3")
    with refused(422, "bad_reference"):
        env.operator.credit(account, 1, "")
    with refused(404, "not_found"):
        env.operator.credit("acct-nobody", 1, "wire-4")
    fig = assert_audit_ok(env)
    assert fig["cash_in"] == 510 and fig["holder_balances"] == 510


def test_merchants_and_certificates(env):
    account, _ = env.operator.open_account("Shop owner")
    token = env.operator.register_merchant(account, "shop")
    with refused(409, "already_merchant"):
        env.operator.register_merchant(account, "shop-2")
    other, _ = env.operator.open_account("Other")
    with refused(409, "merchant_id_taken"):
        env.operator.register_merchant(other, "shop")
    with refused(409, "merchant_id_taken"):
        env.operator.register_merchant(other, "bank")  # the payee of redemptions
    with refused(422, "bad_merchant_id"):
        env.operator.register_merchant(other, " padded")
    with refused(422, "bad_merchant_id"):
        env.operator.register_merchant(other, "x" * 65)
    shop = env.client(token)
    assert shop.merchant() == {"merchant_id": "shop", "account_id": account, "balance": 0,
                               "status": "active"}
    terminal = SigningKey.from_seed(b"\x05" * 32)
    cert = shop.certify(terminal.public_key)
    assert cert.merchant_id == "shop" and cert.public_key == terminal.public_key
    assert shop.certify(terminal.public_key) == cert
    other_shop = env.client(env.operator.register_merchant(other, "other"))
    with refused(403, "forbidden"):
        other_shop.certify(terminal.public_key)
    env.operator.set_status(other, "frozen", "test: frozen")
    with refused(403, "forbidden"):
        other_shop.certify(SigningKey.from_seed(b"\x06" * 32).public_key)
    with refused(422, "bad_status"):
        env.operator.set_status(other, "closed", "test")


def _at_once(n: int, fn) -> list:
    """``at_once``, a refusal as its ``(status, code)``."""
    return [(r.status, r.code) if isinstance(r, BankHTTPError) else r for r in at_once(n, fn)]


def _race_round(env, n: int, tag: str) -> None:
    opened = [env.operator.open_account(f"R{tag}-{i}") for i in range(n)]
    holders = [(a, env.client(t)) for a, t in opened]
    u1 = group.random_scalar()
    proofs = [reg.prove(u1, a) for a, _ in opened]

    def register(i: int) -> str:
        account, client = holders[i]
        return client.register(account, proofs[i])["status"]

    got = _at_once(n, register)
    assert sorted(map(str, got)) == sorted(
        ["registered"] + [str((409, "identity_taken"))] * (n - 1))
    operators = [env.client(token_of(env.operator)) for _ in range(n)]

    def make_merchant(i: int) -> bool:
        return bool(operators[i].register_merchant(opened[i][0], f"m-{tag}"))

    got = _at_once(n, make_merchant)
    assert sorted(map(str, got)) == sorted(
        ["True"] + [str((409, "merchant_id_taken"))] * (n - 1))


def test_concurrent_claims_of_one_identity_merchant_id_or_key(env):
    """Unique claims racing on several accounts: one wins, the others get the
    409 a sequential request gets (never a 500 from the unique index)."""
    n = 6
    for round_ in range(4):
        _race_round(env, n, str(round_))
    shop_token = env.operator.register_merchant(env.operator.open_account("S")[0], "s")
    shops = [env.client(shop_token) for _ in range(n)]
    key = SigningKey.from_seed(b"\x09" * 32).public_key
    certs = _at_once(n, lambda i: shops[i].certify(key))
    assert len(set(certs)) == 1 and certs[0].public_key == key


def test_an_accounts_merchant_id_is_learnt_once_it_is_set(env):
    """Deposits find the payee by the remembered merchant_id: an account that
    is not a merchant yet must not be remembered as none."""
    account_id, _ = env.operator.open_account("Later a shop")
    with env.bank.engine.connect() as conn:
        pk = env.bank.account_pk(conn, account_id).id
    assert env.bank.merchant_id_of(pk) is None
    env.operator.register_merchant(account_id, "late-shop")
    assert env.bank.merchant_id_of(pk) == "late-shop"
