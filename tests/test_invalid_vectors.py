"""Every case of ``invalid.json`` is rejected, for its stated reason."""

from __future__ import annotations

import pytest

from ecash.crypto import EcashError, identify, verify_coin, verify_spend
from ecash.crypto import registration as reg
from ecash.crypto.coin import PublicKeyLike
from ecash.crypto.keys import DenominationKey
from ecash.crypto.withdrawal import Commitment, check_response
from ecash.wire import binary
from ecash.wire import json as wj

from .conftest import load_vector

CASES = load_vector("invalid.json")["cases"]

EXPECTED = {
    "element_bit255_set": "non_canonical_element",
    "element_ge_p": "non_canonical_element",
    "element_negative_s": "non_canonical_element",
    "element_wrong_length": "wrong_length",
    "identity_A": "identity_element",
    "scalar_r_noncanonical": "non_canonical_scalar",
    "coin_r_tweaked": "coin_equation",
    "coin_A_other_point": "coin_equation",
    "coin_wrong_key": "key_mismatch",
    "coin_key_id_swapped": "coin_equation",
    "coin_wrong_h": "coin_equation",
    "binary_coin_short": "wrong_length",
    "spend_r1_tweaked": "spend_equation",
    "spend_r2_noncanonical": "non_canonical_scalar",
    "spend_nonce_one_byte": "spend_equation",
    "spend_amount_changed": "spend_equation",
    "spend_coin_invalid": "coin_equation",
    "merchant_id_65_bytes": "request_malformed",
    "merchant_id_64_bytes_multibyte": "request_malformed",
    "merchant_id_empty": "request_malformed",
    "nonce_15_bytes": "request_malformed",
    "spend_other_merchant": "wrong_merchant",
    "identify_same_transcript": "same_transcript",
    "registration_identity_I": "identity_element",
    "registration_I_g2_identity": "identity_element",
    "registration_p_tweaked": "proof_invalid",
    "registration_other_account": "proof_invalid",
    "withdrawal_r_tweaked": "response_equation",
    "withdrawal_z_wrong": "response_equation",
}


def _key(case: dict) -> PublicKeyLike:
    k = case["key"]
    return DenominationKey(bytes.fromhex(k["key_id"]), bytes.fromhex(k["h"]), 0, "EUR", 0, 1, 1)


def _reject(case: dict) -> None:
    kind = case["kind"]
    if kind == "coin":
        verify_coin(wj.coin_from_json(case["coin"]), _key(case))
    elif kind == "coin_binary":
        verify_coin(binary.coin_from_bytes(bytes.fromhex(case["coin_binary"])), _key(case))
    elif kind == "spend":
        verify_spend(wj.spend_from_json(case["spend"]), _key(case),
                     merchant_id=case.get("merchant_id"))
    elif kind == "identify":
        identify(wj.spend_from_json(case["spend1"]), wj.spend_from_json(case["spend2"]))
    elif kind == "registration":
        proof = reg.RegistrationProof(bytes.fromhex(case["I"]), bytes.fromhex(case["t"]),
                                      int.from_bytes(bytes.fromhex(case["p"]), "little"))
        reg.verify(proof, case["account_id"])
    elif kind == "withdrawal_response":
        h = lambda n: bytes.fromhex(case[n])  # noqa: E731
        s = lambda n: int.from_bytes(h(n), "little")  # noqa: E731
        check_response(h("h"), h("I"), h("z"), Commitment(h("a"), h("b")), s("c"), s("r"))
    else:
        raise AssertionError(f"unknown kind {kind}")


def test_every_case_is_named():
    assert {c["name"] for c in CASES} == set(EXPECTED)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_invalid_case_rejected_for_its_reason(case):
    with pytest.raises(EcashError) as info:
        _reject(case)
    assert info.value.code == EXPECTED[case["name"]], str(info.value)
