"""The spec's vectors at a terminal: the valid payment of payment.json is
accepted, and every case of invalid.json that a payer can put in front of a
terminal (coins, spends, binary coins) is refused over HTTP with nothing stored.

The terminal trusts the vectors' keyset: the two denomination keys of
denomination.json, signed by its master seed, and a policy signed here with
that seed. Its clock stands at request 0's timestamp.
"""

from __future__ import annotations

import base64
import dataclasses

import httpx
import pytest

from ecash.crypto import group
from ecash.crypto.keys import DenominationKey, Keyset, Policy, certify_merchant
from ecash.crypto.payment import sign_request
from ecash.crypto.sign import SigningKey
from ecash.merchant import Refusal, Terminal, open_store
from ecash.merchant.keycache import KeyCache
from ecash.merchant.store import RequestRecord, StoredKey
from ecash.wire import json as wj
from ecash.wire.binary import request_to_bytes
from ecash.wire.text import PAYMENT_PREFIX

from ..conftest import load_vector
from ..test_invalid_vectors import EXPECTED
from .kit import counts, serving

DEN = load_vector("denomination.json")
PAY = load_vector("payment.json")
CASES = load_vector("invalid.json")["cases"]
MASTER = SigningKey.from_seed(bytes.fromhex(DEN["master_seed"]))
REQUEST0 = wj.request_from_json(PAY["spends"][0]["spend"]["request"])
NOW = REQUEST0.timestamp_ms / 1000 + 1
VALID = [s["spend"] for s in PAY["spends"] if s["request"] == 0]

# A terminal checks the request a spend answers before its cryptography: a
# spend of a changed request (other nonce, other amount) posted to request 0
# is refused as answering another request.
TERMINAL_CODE = {**EXPECTED, "spend_nonce_one_byte": "request_mismatch",
                 "spend_amount_changed": "request_mismatch"}
# A terminal takes the key named by the coin's key_id from its checked keyset,
# so a coin cannot be verified under another key's key_id or h (a keyset
# with a wrong h is refused: test_keyset_with_a_wrong_h_is_refused).
NOT_AT_A_TERMINAL = {"coin_wrong_key", "coin_wrong_h"}
APPLICABLE = [c for c in CASES if c["kind"] in ("coin", "coin_binary", "spend")
              and c["name"] not in NOT_AT_A_TERMINAL]


def vector_keys() -> tuple[DenominationKey, ...]:
    return tuple(DenominationKey(bytes.fromhex(d["key_id"]), bytes.fromhex(d["h"]), d["value"],
                                 d["currency"], d["withdraw_start"], d["withdraw_end"],
                                 d["deposit_end"], bytes.fromhex(d["master_signature"]))
                 for d in DEN["denominations"])


def vector_keyset(keys: tuple[DenominationKey, ...] | None = None) -> Keyset:
    policy = Policy("EUR", 7 * 86_400, 100_000, 200_000, 50_000, 100_000, 10,
                    REQUEST0.timestamp_ms // 1000 - 86_400)
    return Keyset(MASTER.public_key, keys or vector_keys(), policy, policy.sign(MASTER))


def vector_terminal(tmp_path, merchant_id: str = "shop-42") -> Terminal:
    """A terminal of ``merchant_id`` on the vectors' keyset, no bank needed."""
    store = open_store(tmp_path / f"{merchant_id}.db")
    sk = SigningKey.generate()
    cert = certify_merchant(MASTER, merchant_id, sk.public_key, int(NOW) + 365 * 86_400)
    keys = KeyCache.of(vector_keyset(), MASTER.public_key)
    store.initialise({"merchant_id": merchant_id, "bank_url": "http://127.0.0.1:9",
                      "credential": "none", "master_public_key": MASTER.public_key.hex(),
                      "keyset": keys.to_text(), "keyset_fingerprint": keys.fingerprint},
                     StoredKey(sk.public_key, sk.seed, wj.dumps(wj.certificate_to_json(cert)),
                               cert.valid_until, 0))
    return Terminal(store, clock=lambda: NOW, name="vectors")


def shown(t: Terminal, request) -> None:
    """Make ``request`` one this terminal issued (the vectors fix its nonce)."""
    sk, cert = t.current_key()
    env = sign_request(sk, cert, request)
    assert t.store.insert_request(RequestRecord(request, "", sk.public_key, env.signature,
                                                t.name, request.timestamp_ms + 900_000))


def test_the_valid_vector_payment_is_accepted(tmp_path):
    t = vector_terminal(tmp_path)
    shown(t, REQUEST0)
    with serving(t) as url:
        r = httpx.post(f"{url}/pay/{REQUEST0.request_id.hex()}", json={"spends": VALID})
        assert r.status_code == 200, r.text
        receipt = wj.receipt_from_json(r.json()["receipt"])
        receipt.verify(t.current_key()[0].public_key)
        assert receipt.request_id.hex() == PAY["requests"][0]["request_id"]
    assert counts(t) == (2, 1)
    t.close()


def _partner(case_spend: dict) -> dict:
    """The valid spend of request 0 whose coin is not the case's coin."""
    a = case_spend.get("coin", {}).get("A") if isinstance(case_spend, dict) else None
    return next(s for s in VALID if s["coin"]["A"] != a)


@pytest.mark.parametrize("case", APPLICABLE, ids=[c["name"] for c in APPLICABLE])
def test_every_applicable_invalid_vector_is_refused(case, tmp_path):
    t = vector_terminal(tmp_path, case.get("merchant_id", "shop-42"))
    if case["kind"] == "coin_binary":
        # inside the text form of a payment: request || u16(1) || coin (223 bytes) || r1 || r2
        shown(t, REQUEST0)
        v = VALID[0]
        blob = (request_to_bytes(REQUEST0) + (1).to_bytes(2, "big")
                + bytes.fromhex(case["coin_binary"]) + bytes.fromhex(v["r1"])
                + bytes.fromhex(v["r2"]))
        from ecash.wire.text import payment_from_text

        with pytest.raises(Refusal) as info:
            t.accept(REQUEST0.request_id, lambda: payment_from_text(
                PAYMENT_PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode()))
        assert info.value.code == TERMINAL_CODE[case["name"]]
        assert counts(t) == (0, 0)
        return
    if case["kind"] == "coin":
        # a one-coin payment of a request this terminal issued for the coin's value
        key = next((k for k in vector_keys() if k.key_id.hex() == case["coin"]["key_id"]), None)
        request = dataclasses.replace(REQUEST0, amount=key.value if key else 500)
        shown(t, request)
        v = VALID[0]
        body = {"spends": [{"coin": case["coin"], "request": wj.request_to_json(request),
                            "r1": v["r1"], "r2": v["r2"]}]}
        target = request
    elif "merchant_id" in case:  # spend_other_merchant: shown to kiosk-7 for its own request
        target = t.create_request(1000).request
        body = {"spends": [case["spend"], _partner(case["spend"])]}
    else:
        shown(t, REQUEST0)
        target = REQUEST0
        body = {"spends": [case["spend"], _partner(case["spend"])]}
    with serving(t) as url:
        r = httpx.post(f"{url}/pay/{target.request_id.hex()}", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == TERMINAL_CODE[case["name"]], r.json()
        status = httpx.get(f"{url}/api/requests/{target.request_id.hex()}").json()
        assert status["refusal"]["code"] == r.json()["code"]
        # a payment refused closes its request (5.1), unless it was no payment at all
        assert status["status"] == ("refused" if "refusal" in r.json() else "open")
    assert counts(t) == (0, 0)
    t.close()


def test_keyset_with_a_wrong_h_is_refused():
    keys = vector_keys()
    bad = (dataclasses.replace(keys[0], h=keys[1].h), keys[1])
    from ecash.crypto.errors import KeysetInvalid

    with pytest.raises(KeysetInvalid) as info:
        KeyCache.of(vector_keyset(bad), MASTER.public_key)
    assert info.value.code == "key_id_mismatch"
    with pytest.raises(KeysetInvalid) as info:  # another master key than the pinned one
        KeyCache.of(vector_keyset(), SigningKey.generate().public_key)
    assert info.value.code == "master_key_changed"


def test_tweaked_r1_of_the_vector_payment(tmp_path):
    """The whole vector payment with one coin's r1 + 1: nothing is stored."""
    t = vector_terminal(tmp_path)
    shown(t, REQUEST0)
    spends = [wj.spend_from_json(s) for s in VALID]
    spends[1] = dataclasses.replace(spends[1], r1=(spends[1].r1 + 1) % group.q)
    with pytest.raises(Refusal) as info:
        t.accept(REQUEST0.request_id, spends)
    assert info.value.code == "spend_equation" and "coin 1" in info.value.detail
    assert counts(t) == (0, 0)
    t.close()


REV2 = load_vector("revision2.json")
U1 = int.from_bytes(bytes.fromhex(load_vector("registration.json")["u1"]), "little")


def _case(name: str) -> dict:
    return next(c for c in REV2["invalid"] if c["name"] == name)


def test_payment_same_coin_twice_is_refused_and_signed(tmp_path):
    """revision2.json ``payment_same_coin_twice``: one coin_id, two signatures,
    paid together: refused, nothing stored, the refusal signed (5.1)."""
    from ecash.crypto.refusal import Refusal as SignedRefusal
    from ecash.wire.binary import payment_items

    case = _case("payment_same_coin_twice")
    t = vector_terminal(tmp_path)
    t.clock = lambda: case["now_ms"] / 1000
    request = wj.request_from_json(case["request"])
    assert request.request_id.hex() == case["request_id"]
    shown(t, request)
    with serving(t) as url:
        r = httpx.post(f"{url}/pay/{case['request_id']}", json={"spends": case["payment"]})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "duplicate_coin"
        refusal = wj.refusal_from_json(r.json()["refusal"])
        assert isinstance(refusal, SignedRefusal)
        spends = [wj.spend_from_json(s) for s in case["payment"]]
        refusal.verify(t.current_key()[0].public_key, request.request_id,
                       payment_items(spends))
    assert counts(t) == (0, 0)
    t.close()


def test_two_coins_sharing_A_are_two_coins(tmp_path):
    """revision2.json ``shared_A``: the same ``A``, different ``B``, so two
    coin_ids: paid together they are two coins, accepted and stored both
    (revision 1 refused the second as the same coin)."""
    from ecash.crypto.coin import CoinSecrets
    from ecash.crypto.payment import PaymentRequest, make_spend

    coins = [wj.coin_from_json(c["coin"]) for c in REV2["shared_A"]]
    assert coins[0].A == coins[1].A and coins[0].coin_id != coins[1].coin_id
    secrets_ = [CoinSecrets(*(int.from_bytes(bytes.fromhex(c[k]), "little")
                              for k in ("s", "x1", "x2"))) for c in REV2["shared_A"]]
    t = vector_terminal(tmp_path)
    request = PaymentRequest("shop-42", 1000, "EUR", REQUEST0.timestamp_ms, bytes(range(16)))
    shown(t, request)
    spends = [make_spend(c, s, U1, request) for c, s in zip(coins, secrets_, strict=True)]
    with serving(t) as url:
        r = httpx.post(f"{url}/pay/{request.request_id.hex()}",
                       json={"spends": [wj.spend_to_json(s) for s in spends]})
        assert r.status_code == 200, r.text
    assert counts(t) == (2, 1)
    assert {p.coin_id for p in t.store.pending(10)} == {c.coin_id for c in coins}
    t.close()
