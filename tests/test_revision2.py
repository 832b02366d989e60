"""ECASH-1 revision 2's cryptography reproduced from ``vectors/revision2.json``:
``coin_id`` (4.1), ``payment_digest`` and signed refusals (5.1)."""

from __future__ import annotations

import pytest

from ecash.crypto import (
    InvalidRefusal,
    SigningKey,
    compute_coin_id,
    make_refusal,
    payment_digest,
    verify_coin,
)
from ecash.crypto.hashing import preimage
from ecash.crypto.keys import DenominationKey
from ecash.crypto.refusal import refusal_message
from ecash.wire import binary
from ecash.wire import json as wj

from .conftest import load_vector

R2 = load_vector("revision2.json")
WD = load_vector("withdrawal.json")
DEN = load_vector("denomination.json")


def key_of(i: int) -> DenominationKey:
    d = DEN["denominations"][i]
    return DenominationKey(bytes.fromhex(d["key_id"]), bytes.fromhex(d["h"]), d["value"],
                           d["currency"], d["withdraw_start"], d["withdraw_end"],
                           d["deposit_end"], bytes.fromhex(d["master_signature"]))


@pytest.mark.parametrize("case", R2["coin_ids"], ids=lambda c: c["coin"])
def test_coin_id(case):
    key_id, A, B = (bytes.fromhex(case[k]) for k in ("key_id", "A", "B"))
    assert preimage("coin-id", key_id, A, B).hex() == case["coin_id_preimage_hex"]
    assert compute_coin_id(key_id, A, B).hex() == case["coin_id"]


def test_coin_id_of_withdrawn_coins():
    coins = [wj.coin_from_json(w["coin"]) for w in WD["withdrawals"]]
    assert [c.coin_id.hex() for c in coins] == [c["coin_id"] for c in R2["coin_ids"][:3]]
    assert all(c.serial == c.coin_id for c in coins)


@pytest.mark.parametrize("family", ["shared_A", "same_coin"])
def test_two_signatures_valid_coins(family):
    entries = R2[family]
    coins = [wj.coin_from_json(e["coin"]) for e in entries]
    for e, c in zip(entries, coins, strict=True):
        assert binary.coin_to_bytes(c).hex() == e["coin_binary"]
        assert c.coin_id.hex() == e["coin_id"]
        verify_coin(c, key_of(e["denomination"]))
    assert coins[0].A == coins[1].A
    if family == "shared_A":
        # revision 1 called these one coin (one A); they are two
        assert coins[0].coin_id != coins[1].coin_id
    else:
        assert coins[0].coin_id == coins[1].coin_id
        assert binary.coin_to_bytes(coins[0]) != binary.coin_to_bytes(coins[1])


def test_payment_digest_sorts_its_fields():
    v = R2["payment_digest"]
    rid = bytes.fromhex(v["request_id"])
    request = wj.request_from_json(v["request"])
    assert request.request_id == rid
    sent = [bytes.fromhex(s["spend_binary"]) for s in v["spends"]]
    assert sent != sorted(sent)  # the vector's order is not ascending
    assert [s.hex() for s in sorted(sent)] == v["sorted_spends_binary"]
    assert preimage("payment", rid, *sorted(sent)).hex() == v["preimage_hex"]
    assert payment_digest(rid, sent).hex() == v["payment_digest"]
    assert payment_digest(rid, reversed(sent)).hex() == v["payment_digest"]


def test_refusal_signed_and_verified():
    v = R2["refusal"]
    key = SigningKey.from_seed(bytes.fromhex(v["merchant_seed"]))
    assert key.public_key.hex() == v["merchant_public_key"]
    rid = bytes.fromhex(R2["payment_digest"]["request_id"])
    items = [bytes.fromhex(s["spend_binary"]) for s in R2["payment_digest"]["spends"]]
    digest = bytes.fromhex(R2["payment_digest"]["payment_digest"])
    assert refusal_message(rid, digest, v["code"]).hex() == v["message_hex"]
    refusal = make_refusal(key, rid, items, v["code"])
    assert wj.refusal_to_json(refusal) == v["refusal"]
    decoded = wj.refusal_from_json(v["refusal"])
    assert decoded == refusal
    decoded.verify(key.public_key, rid, items)
    decoded.verify(key.public_key, rid, list(reversed(items)))
    with pytest.raises(InvalidRefusal):  # one coin fewer is another payment
        decoded.verify(key.public_key, rid, items[:1])
    with pytest.raises(InvalidRefusal):
        decoded.verify(key.public_key, bytes(32), items)


REFUSAL_CASES = [c for c in R2["invalid"] if c["kind"] == "refusal"]


@pytest.mark.parametrize("case", REFUSAL_CASES, ids=lambda c: c["name"])
def test_invalid_refusals_rejected(case):
    rid = bytes.fromhex(case["request_id"])
    spends = [wj.spend_from_json(s) for s in case["payment"]]
    items = binary.payment_items(spends)
    with pytest.raises(InvalidRefusal):  # the code's charset is checked as it is decoded
        refusal = wj.refusal_from_json(case["refusal"])
        refusal.verify(bytes.fromhex(case["merchant_public_key"]), rid, items)


def test_invalid_list_is_what_the_readme_says():
    kinds = [c["kind"] for c in R2["invalid"]]
    assert kinds.count("refusal") == 4 and kinds.count("payment") == 1


def test_refusal_code_charset_enforced_when_signing():
    key = SigningKey.generate()
    for bad in ("", "Coin-Seen", "x" * 65, "é", "\ud800"):
        with pytest.raises(InvalidRefusal):
            make_refusal(key, bytes(32), [b"x"], bad)


