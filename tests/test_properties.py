"""Property tests (Hypothesis) of the ECASH-1 core and its encodings.

Group operations cost ~60 µs each, so the protocol properties run a modest
number of examples; the decoder fuzzers are cheap and run more.
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass, replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ecash.crypto import (
    CoinSecrets,
    DoubleSpendProof,
    EcashError,
    IdentityElement,
    InvalidSpend,
    InvalidWithdrawalResponse,
    NonCanonicalElement,
    NonCanonicalScalar,
    NotADoubleSpend,
    PaymentRequest,
    SigningKey,
    certify_merchant,
    compute_coin_id,
    group,
    identify,
    make_denomination_key,
    make_receipt,
    make_refusal,
    make_spend,
    registration,
    sign_request,
    spend_challenge,
    user_blind,
    user_finish,
    verify_coin,
    verify_double_spend,
    verify_spend,
    withdrawal,
)
from ecash.crypto.hashing import lp, u64
from ecash.crypto.keys import MAX_JSON_INT, DenominationSecret
from ecash.crypto.params import g1, g2
from ecash.crypto.withdrawal import WithdrawalState
from ecash.wire import binary, text
from ecash.wire import json as wj

q = group.q
CRYPTO = settings(max_examples=40, deadline=None)
CHEAP = settings(max_examples=100, deadline=None)

# --- strategies -------------------------------------------------------------

nonzero_scalars = st.integers(1, q - 1)
scalars = st.integers(0, q - 1)
json_ints = st.integers(0, MAX_JSON_INT)
currencies = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
refusal_codes = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=64)
nonces = st.binary(min_size=16, max_size=16)


def fit_utf8(s: str, limit: int = 64) -> str:
    """The longest prefix of ``s`` whose UTF-8 encoding has at most ``limit`` bytes."""
    out, n = [], 0
    for ch in s:
        n += len(ch.encode("utf-8"))
        if n > limit:
            break
        out.append(ch)
    return "".join(out)


def merchant_ids(exclude: tuple[str, ...] = ("Cs",), exclude_chars: str = "") -> st.SearchStrategy:
    """1 to 64 UTF-8 bytes, ASCII and non-ASCII (multi-byte, astral) alike."""
    chars = st.characters(exclude_categories=exclude, exclude_characters=exclude_chars)
    wide = st.sampled_from("éßøÅ€日本語東京☕😀𝄞")
    return st.text(st.one_of(chars, wide), min_size=1, max_size=64).map(fit_utf8)


@st.composite
def requests(draw, currency: str | None = None, ids: st.SearchStrategy | None = None):
    return PaymentRequest(draw(ids if ids is not None else merchant_ids()), draw(json_ints),
                          currency if currency is not None else draw(currencies),
                          draw(json_ints), draw(nonces))


@dataclass(frozen=True)
class Setup:
    """Everything random about one withdrawal, drawn by Hypothesis."""

    key: DenominationSecret
    u1: int
    secrets: CoinSecrets
    blinding: list[tuple[int, int]]
    ws: list[int]
    beta: int


@st.composite
def setups(draw, branches: int, currency: str):
    start = draw(st.integers(0, 2**40))
    end = start + draw(st.integers(1, 2**30))
    key = make_denomination_key(SigningKey.from_seed(draw(st.binary(min_size=32, max_size=32))),
                                draw(nonzero_scalars), draw(json_ints), currency, start, end,
                                end + draw(st.integers(0, 2**30)))
    secrets = CoinSecrets(draw(nonzero_scalars), draw(nonzero_scalars), draw(scalars))
    blinding = [(draw(nonzero_scalars), draw(scalars)) for _ in range(branches)]
    # the bank's w is fresh for every commitment (9.1)
    ws = draw(st.lists(nonzero_scalars, min_size=branches, max_size=branches, unique=True))
    beta = draw(st.integers(0, branches - 1))
    return Setup(key, draw(nonzero_scalars), secrets, blinding, ws, beta)


def withdraw(setup: Setup):
    """Run the withdrawal of ``setup``; return ``(I, coin, secrets)``."""
    I = registration.identity_of(setup.u1)
    I_g2 = group.add(I, g2)
    z = withdrawal.holder_z(I_g2, setup.key.x)
    cms = [withdrawal.bank_commit(I_g2, w) for w in setup.ws]
    state = user_blind(setup.key.public, I, z, cms, setup.secrets, setup.blinding)
    r = withdrawal.bank_respond(setup.key.x, setup.ws[setup.beta], state.challenges[setup.beta])
    coin, secrets = user_finish(state, r, setup.beta)
    return I, coin, secrets


# --- withdraw -> pay -> verify ---------------------------------------------

@pytest.mark.parametrize("branches", [1, 2], ids=["plain", "clause"])
@CRYPTO
@given(data=st.data())
def test_withdraw_pay_verify_round_trip(branches, data):
    request = data.draw(requests())
    setup = data.draw(setups(branches, request.currency))
    key = setup.key.public
    u1, s = setup.u1, setup.secrets.s

    I = registration.identity_of(u1)
    assert group.mul(g1, u1) == I
    I_g2 = group.add(I, g2)
    z = withdrawal.holder_z(I_g2, setup.key.x)
    assert z == group.mul(I_g2, setup.key.x)
    cms = [withdrawal.bank_commit(I_g2, w) for w in setup.ws]
    try:
        state = user_blind(key, I, z, cms, setup.secrets, setup.blinding)
    except IdentityElement:
        # a degenerate choice (e.g. w = -v/u) makes a' or b' the identity: the
        # wallet refuses to build that coin (9.3); honest randomness never hits it
        assume(False)
    assert len(state.challenges) == branches

    # the wallet persists its state before sending c (plain dict and JSON text)
    assert WithdrawalState.from_dict(state.to_dict()) == state
    restored = WithdrawalState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state

    beta = setup.beta
    r = withdrawal.bank_respond(setup.key.x, setup.ws[beta], restored.challenges[beta])
    if branches == 1:
        coin, secrets = user_finish(restored, r)
    else:
        # the answer for branch beta does not complete the other branch
        with pytest.raises(InvalidWithdrawalResponse) as info:
            user_finish(restored, r, 1 - beta)
        assert info.value.code == "response_equation"
        coin, secrets = user_finish(restored, r, beta)
    assert secrets == setup.secrets
    assert coin.key_id == key.key_id
    assert group.mul(I_g2, s) == coin.A
    assert coin.serial == coin.coin_id == compute_coin_id(coin.key_id, coin.A, coin.B)
    assert coin.z == group.mul(z, s)
    verify_coin(coin, key)
    assert binary.coin_from_bytes(binary.coin_to_bytes(coin)) == coin
    assert wj.coin_from_json(wj.loads(wj.dumps(wj.coin_to_json(coin)))) == coin

    spend = make_spend(coin, secrets, u1, request)
    d = verify_spend(spend, key, merchant_id=request.merchant_id)
    assert d == spend_challenge(coin.A, coin.B, request.request_id) != 0
    assert binary.spend_from_bytes(binary.spend_to_bytes(spend), request) == spend
    assert wj.spend_from_json(wj.loads(wj.dumps(wj.spend_to_json(spend)))) == spend
    assert binary.request_from_bytes(binary.request_to_bytes(request)) == request

    # an answer made without u1 fails the spend equation
    forged = make_spend(coin, secrets, (u1 + 1) % q, request)
    with pytest.raises(InvalidSpend) as info:
        verify_spend(forged, key)
    assert info.value.code == "spend_equation"


# --- double-spender identification ----------------------------------------

def other_request(req: PaymentRequest, candidate: PaymentRequest) -> PaymentRequest:
    """``candidate``, made to differ from ``req`` if Hypothesis drew the same one."""
    if candidate.request_id == req.request_id:
        candidate = replace(candidate, nonce=bytes([candidate.nonce[0] ^ 1]) + candidate.nonce[1:])
    return candidate


@CRYPTO
@given(data=st.data(), branches=st.sampled_from([1, 2]))
def test_two_spends_at_two_requests_name_the_holder(data, branches):
    req1 = data.draw(requests())
    req2 = other_request(req1, data.draw(requests(currency=req1.currency)))
    setup = data.draw(setups(branches, req1.currency))
    key = setup.key.public
    I, coin, secrets = withdraw(setup)
    sp1 = make_spend(coin, secrets, setup.u1, req1)
    sp2 = make_spend(coin, secrets, setup.u1, req2)

    found = identify(sp1, sp2)
    assert (found.I, found.u1, found.s) == (I, setup.u1, setup.secrets.s)
    assert identify(sp2, sp1).I == I
    assert verify_double_spend(key, sp1, sp2).I == I
    proof = DoubleSpendProof(key, sp1, sp2)
    assert proof.verify(I) == I
    assert proof.verify() == I
    someone_else = registration.identity_of(setup.u1 % (q - 1) + 1)
    with pytest.raises(NotADoubleSpend) as info:
        proof.verify(someone_else)
    assert info.value.code == "identity_mismatch"


@CRYPTO
@given(data=st.data(), branches=st.sampled_from([1, 2]))
def test_one_request_twice_is_not_a_double_spend(data, branches):
    req = data.draw(requests())
    setup = data.draw(setups(branches, req.currency))
    key = setup.key.public
    _, coin, secrets = withdraw(setup)
    sp1 = make_spend(coin, secrets, setup.u1, req)
    sp2 = make_spend(coin, secrets, setup.u1, replace(req))  # the same request, presented again
    for refuse in (lambda: identify(sp1, sp2), lambda: verify_double_spend(key, sp1, sp2),
                   lambda: DoubleSpendProof(key, sp1, sp2).verify()):
        with pytest.raises(NotADoubleSpend) as info:
            refuse()
        assert info.value.code == "same_transcript"


# --- tamper evidence: every single-byte change is rejected ------------------

MASTER = SigningKey.from_seed(bytes(range(32)))
MERCHANT = SigningKey.from_seed(bytes(range(32, 64)))
MERCHANT_ID = "Café Zürich ☕ 東京"
FIXED = Setup(make_denomination_key(MASTER, 0x5EED_0001 * 7919, 500, "EUR", 1_700_000_000,
                                    1_800_000_000, 1_900_000_000),
              u1=0x1D_0123_4567, secrets=CoinSecrets(0x5_0001, 0x5_0002, 0x5_0003),
              blinding=[(0xB_0001, 0xB_0002), (0xB_0003, 0xB_0004)], ws=[0xC_0001, 0xC_0002],
              beta=1)
KEY = FIXED.key.public
_, COIN, SECRETS = withdraw(FIXED)
REQUEST = PaymentRequest(MERCHANT_ID, 12_345, "EUR", 1_700_000_000_123, bytes(range(16)))
SPEND = make_spend(COIN, SECRETS, FIXED.u1, REQUEST)
CERT = certify_merchant(MASTER, MERCHANT_ID, MERCHANT.public_key, 1_900_000_000)
ENVELOPE = sign_request(MERCHANT, CERT, REQUEST, "https://pos.example/till/7")
RECEIPT = make_receipt(MERCHANT, REQUEST)
REFUSAL = make_refusal(MERCHANT, REQUEST.request_id, [binary.spend_to_bytes(SPEND)],
                       "request_expired")


def _check_coin_binary(b: bytes) -> None:
    verify_coin(binary.coin_from_bytes(b), KEY)


def _check_coin_json(b: bytes) -> None:
    verify_coin(wj.coin_from_json(wj.loads(b)), KEY)


def _check_spend_binary(b: bytes) -> None:
    verify_spend(binary.spend_from_bytes(b, REQUEST), KEY)


def _check_spend_json(b: bytes) -> None:
    verify_spend(wj.spend_from_json(wj.loads(b)), KEY)


def _check_envelope_json(b: bytes) -> None:
    wj.envelope_from_json(wj.loads(b)).verify(MASTER.public_key)


def _check_envelope_binary(b: bytes) -> None:
    binary.envelope_from_bytes(b).verify(MASTER.public_key)


def _check_receipt_json(b: bytes) -> None:
    wj.receipt_from_json(wj.loads(b)).verify(MERCHANT.public_key)


def _check_refusal_json(b: bytes) -> None:
    wj.refusal_from_json(wj.loads(b)).verify(MERCHANT.public_key, REQUEST.request_id,
                                             [binary.spend_to_bytes(SPEND)])


def _check_request_text(b: bytes) -> None:
    text.request_from_text(b.decode("latin-1")).verify(MASTER.public_key)


def _check_payment_text(b: bytes) -> None:
    for spend in text.payment_from_text(b.decode("latin-1")):
        verify_spend(spend, KEY)


def _json_bytes(obj: dict) -> bytes:
    return wj.dumps(obj).encode("utf-8")


TARGETS = {
    "coin_binary": (binary.coin_to_bytes(COIN), _check_coin_binary),
    "coin_json": (_json_bytes(wj.coin_to_json(COIN)), _check_coin_json),
    "spend_binary": (binary.spend_to_bytes(SPEND), _check_spend_binary),
    "spend_json": (_json_bytes(wj.spend_to_json(SPEND)), _check_spend_json),
    "envelope_json": (_json_bytes(wj.envelope_to_json(ENVELOPE)), _check_envelope_json),
    "envelope_binary": (binary.envelope_to_bytes(ENVELOPE), _check_envelope_binary),
    "receipt_json": (_json_bytes(wj.receipt_to_json(RECEIPT)), _check_receipt_json),
    "refusal_json": (_json_bytes(wj.refusal_to_json(REFUSAL)), _check_refusal_json),
    "request_text": (text.request_to_text(ENVELOPE).encode("ascii"), _check_request_text),
    "payment_text": (text.payment_to_text([SPEND]).encode("ascii"), _check_payment_text),
}


def test_tamper_targets_are_valid_unmodified():
    assert len(TARGETS["coin_binary"][0]) == binary.COIN_BYTES == 224
    assert len(TARGETS["spend_binary"][0]) == binary.SPEND_BYTES == 288
    for encoded, check in TARGETS.values():
        check(encoded)


def _flip(data: bytes, pos: int, delta: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ delta]) + data[pos + 1:]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_position_is_tamper_evident(name):
    """Exhaustive over positions, one bit each (the low bit, then the high bit)."""
    encoded, check = TARGETS[name]
    for pos in range(len(encoded)):
        for delta in (0x01, 0x80):
            with pytest.raises(EcashError):
                check(_flip(encoded, pos, delta))


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_rejected(name, data):
    encoded, check = TARGETS[name]
    pos = data.draw(st.integers(0, len(encoded) - 1), label="pos")
    delta = data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(EcashError):
        check(_flip(encoded, pos, delta))


@CRYPTO
@given(data=st.data())
def test_any_changed_hex_character_of_a_json_coin_is_rejected(data):
    """Includes upper-casing a hex letter: section 1 allows lowercase hex only."""
    obj = wj.coin_to_json(COIN)
    field = data.draw(st.sampled_from(sorted(obj)))
    pos = data.draw(st.integers(0, len(obj[field]) - 1))
    old = obj[field][pos]
    new = data.draw(st.sampled_from("0123456789abcdefABCDEF") | st.characters())
    if new == old:
        new = old.upper() if old.isalpha() else "g"
    obj[field] = obj[field][:pos] + new + obj[field][pos + 1:]
    with pytest.raises(EcashError):
        verify_coin(wj.coin_from_json(obj), KEY)


@CRYPTO
@given(data=st.data())
def test_tampered_json_spend_for_random_requests_is_rejected(data):
    """Random request (non-ASCII merchant ids; no escaped characters, so every
    byte of the JSON text is significant), one byte of its spend JSON changed."""
    req = data.draw(requests(currency="EUR", ids=merchant_ids(("Cs", "Cc"), '"\\')))
    spend = make_spend(COIN, SECRETS, FIXED.u1, req)
    encoded = _json_bytes(wj.spend_to_json(spend))
    _check_spend_json(encoded)
    pos = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(EcashError):
        _check_spend_json(_flip(encoded, pos, data.draw(st.integers(1, 255))))


def test_changed_receipt_fields_are_rejected():
    rc = wj.receipt_to_json(RECEIPT)
    for field, value in (("amount", RECEIPT.amount + 1), ("amount", 0),
                         ("request_id", bytes(32).hex()),
                         ("signature", bytes(64).hex()),
                         ("request_id", rc["request_id"].upper())):
        with pytest.raises(EcashError):
            wj.receipt_from_json({**rc, field: value}).verify(MERCHANT.public_key)


# --- decoders raise EcashError and nothing else ----------------------------

OBJECT_KEYS = {"coin_from_json": wj.COIN_KEYS, "request_from_json": wj.REQUEST_KEYS,
               "spend_from_json": wj.SPEND_KEYS, "key_from_json": wj.KEY_KEYS,
               "policy_from_json": wj.POLICY_KEYS, "keyset_from_json": wj.KEYSET_KEYS,
               "certificate_from_json": wj.CERTIFICATE_KEYS,
               "envelope_from_json": wj.ENVELOPE_KEYS, "receipt_from_json": wj.RECEIPT_KEYS,
               "refusal_from_json": wj.REFUSAL_KEYS}
JSON_DECODERS = {name: getattr(wj, name) for name in OBJECT_KEYS}
ENCODERS = {name: getattr(wj, name.replace("_from_json", "_to_json")) for name in OBJECT_KEYS}


def test_every_json_decoder_is_fuzzed():
    found = {n for n, fn in vars(wj).items() if n.endswith("_from_json") and callable(fn)}
    assert found == set(OBJECT_KEYS), "a new *_from_json decoder: add it to OBJECT_KEYS"


def _hex(n: int) -> st.SearchStrategy:
    return st.binary(min_size=n, max_size=n).map(bytes.hex)


ELEMENTS = [group.base_mul(k) for k in (1, 2, 3, 0xABCDEF)] + [g1, g2]
element_hex = st.sampled_from([e.hex() for e in ELEMENTS])
near_element_hex = st.one_of(
    _hex(32), st.just(group.IDENTITY.hex()), element_hex.map(str.upper),
    st.sampled_from(ELEMENTS).map(lambda e: (e[:31] + bytes([e[31] | 0x80])).hex()))
scalar_hex = scalars.map(lambda k: group.encode_scalar(k).hex())
near_scalar_hex = st.integers(q, 2**256 - 1).map(lambda k: k.to_bytes(32, "little").hex())
# JSON text can carry lone surrogates ("\\ud800"): ANY_TEXT has them often, CLEAN_TEXT never
ANY_TEXT = st.text(st.characters() | st.characters(categories=("Cs",)), max_size=80)
CLEAN_TEXT = st.text(max_size=80)


def json_values_of(txt: st.SearchStrategy) -> st.SearchStrategy:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), txt)
    return st.recursive(
        leaves,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(txt, kids, max_size=4),
        max_leaves=12)


json_values = json_values_of(ANY_TEXT)

NESTED = {"coin": "coin_from_json", "request": "request_from_json",
          "certificate": "certificate_from_json", "policy": "policy_from_json"}
ELEMENT_FIELDS = frozenset({"A", "B", "z", "a", "b", "h"})
SCALAR_FIELDS = frozenset({"r", "r1", "r2"})
HEX32_FIELDS = frozenset({"key_id", "request_id", "public_key", "master_public_key",
                          "payment_digest"})
HEX64_FIELDS = frozenset({"signature", "policy_signature"})


def good_field(k: str, txt: st.SearchStrategy) -> st.SearchStrategy:
    """A value of the right type and range for key ``k`` (it may still fail a check)."""
    if k in NESTED:
        return json_objects(NESTED[k], txt)
    if k == "keys":
        return st.lists(json_objects("key_from_json", txt), max_size=2)
    return (element_hex if k in ELEMENT_FIELDS else scalar_hex if k in SCALAR_FIELDS
            else _hex(32) if k in HEX32_FIELDS else _hex(64) if k in HEX64_FIELDS
            else _hex(16) if k == "nonce" else merchant_ids() if k == "merchant_id"
            else currencies if k == "currency" else txt if k == "pos_url"
            else refusal_codes if k == "code" else json_ints)


def near_field(k: str, txt: st.SearchStrategy) -> st.SearchStrategy:
    """A value for key ``k`` just outside what section 8 allows."""
    wrong_hex = st.one_of(_hex(31), _hex(33), _hex(32).map(str.upper), st.just("g" * 64))
    if k in ELEMENT_FIELDS:
        return near_element_hex
    if k in SCALAR_FIELDS:
        return near_scalar_hex | wrong_hex
    if k in HEX32_FIELDS | HEX64_FIELDS or k == "nonce":
        return wrong_hex | _hex(15) | _hex(17) | _hex(64).map(lambda h: h[:-1] + "G")
    if k == "merchant_id":
        return st.sampled_from(["", "x" * 65, "é" * 33]) | txt
    if k == "currency":
        return st.sampled_from(["eur", "EU", "EURO", "ÉUR", "E1R", "EUR "]) | txt
    if k == "code":
        return st.sampled_from(["", "Coin-Seen", "x" * 65, "é", "a b"]) | txt
    if k in NESTED or k in ("keys", "pos_url"):
        return json_values_of(txt)
    return st.one_of(st.integers(-(2**64), -1), st.integers(MAX_JSON_INT + 1, 2**70),
                     st.booleans(), st.floats(), st.integers().map(str))


@st.composite
def json_objects(draw, name: str, txt: st.SearchStrategy = ANY_TEXT):
    """A valid-looking object for ``name``, then (maybe) one thing wrong with it."""
    keys = OBJECT_KEYS[name]
    obj = {k: draw(good_field(k, txt)) for k in keys}
    how = draw(st.sampled_from(["as_is", "near", "as_is", "arbitrary", "drop", "extra",
                                "not_a_dict"]))
    k = draw(st.sampled_from(keys))
    if how == "near":
        obj[k] = draw(near_field(k, txt))
    elif how == "arbitrary":
        obj[k] = draw(json_values_of(txt))
    elif how == "drop":
        del obj[k]
    elif how == "extra":
        obj[draw(txt.filter(lambda x: x not in keys))] = draw(json_values_of(txt))
    elif how == "not_a_dict":
        return draw(st.sampled_from([list(obj.values()), list(obj), None, k]))
    return obj


SHAPED = {name: json_objects(name) for name in OBJECT_KEYS}
SHAPED_CLEAN = {name: json_objects(name, CLEAN_TEXT) for name in OBJECT_KEYS}


def decode_json(name: str, value: object):
    """Decode; if it succeeds, the input was canonical: re-encoding gives it back."""
    try:
        obj = JSON_DECODERS[name](value)
    except EcashError:
        return None
    assert ENCODERS[name](obj) == value
    _assert_section8_types(value)
    return obj


def _assert_section8_types(value: object) -> None:
    """Section 8 objects hold strings, integers (never booleans), lists and objects."""
    if isinstance(value, dict):
        for v in value.values():
            _assert_section8_types(v)
    elif isinstance(value, list):
        for v in value:
            _assert_section8_types(v)
    else:
        assert isinstance(value, str) or (type(value) is int and 0 <= value <= MAX_JSON_INT)


INT_FIELDS = [(name, k) for name, keys in OBJECT_KEYS.items() for k in keys
              if k in ("amount", "timestamp_ms", "value", "withdraw_start", "withdraw_end",
                       "deposit_end", "valid_until", "issued_at", "deposit_window_s")
              or k.endswith("_limit")]
VALID_JSON = {"request_from_json": wj.request_to_json(REQUEST),
              "receipt_from_json": wj.receipt_to_json(RECEIPT),
              "refusal_from_json": wj.refusal_to_json(REFUSAL),
              "certificate_from_json": wj.certificate_to_json(CERT),
              "key_from_json": wj.key_to_json(KEY),
              "policy_from_json": {"currency": "EUR", "deposit_window_s": 86_400,
                                   "floor_limit": 1, "holding_limit": 2,
                                   "single_payment_limit": 3, "daily_offline_limit": 4,
                                   "consecutive_offline_limit": 5, "issued_at": 6}}


def test_valid_json_objects_decode():
    for name, obj in VALID_JSON.items():
        assert decode_json(name, obj) is not None


@pytest.mark.parametrize(("name", "field"), INT_FIELDS)
@pytest.mark.parametrize("bad", [True, False, 1.0, -1, MAX_JSON_INT + 1, "1", None])
def test_json_integers_are_integers_in_range(name, field, bad):
    with pytest.raises(EcashError) as info:
        JSON_DECODERS[name]({**VALID_JSON[name], field: bad})
    assert info.value.code in ("bad_type", "out_of_range")


@CHEAP
@given(name=st.sampled_from(sorted(JSON_DECODERS)), value=json_values)
def test_json_decoders_on_arbitrary_values(name, value):
    decode_json(name, value)


@CHEAP
@given(data=st.data(), name=st.sampled_from(sorted(JSON_DECODERS)))
def test_json_decoders_on_right_keys_with_random_values(data, name):
    decode_json(name, data.draw(SHAPED[name]))


@CHEAP
@given(value=json_values | SHAPED["key_from_json"])
def test_key_decoder_with_optional_signature(value):
    try:
        key = wj.key_from_json(value, signature_optional=True)
    except EcashError:
        return
    if key.signature is not None:
        assert wj.key_to_json(key) == value


def _verify_decoded(name: str, obj) -> None:
    """Everything a holder of the decoded object then checks."""
    checks = {
        "coin_from_json": lambda: verify_coin(obj, KEY),
        "request_from_json": lambda: obj.request_id,
        "spend_from_json": lambda: verify_spend(obj, KEY),
        "key_from_json": lambda: obj.check_signature(MASTER.public_key),
        "policy_from_json": lambda: obj.verify(MASTER.public_key, bytes(64)),
        "keyset_from_json": lambda: obj.check(),
        "certificate_from_json": lambda: obj.verify(MASTER.public_key),
        "envelope_from_json": lambda: obj.verify(MASTER.public_key, now=1_800_000_000),
        "receipt_from_json": lambda: obj.verify(MERCHANT.public_key),
        "refusal_from_json": lambda: obj.verify(MERCHANT.public_key, REQUEST.request_id,
                                                [binary.spend_to_bytes(SPEND)]),
    }
    with contextlib.suppress(EcashError):
        checks[name]()


@CHEAP
@given(data=st.data(), name=st.sampled_from(sorted(JSON_DECODERS)))
def test_decoded_json_objects_verify_or_raise_ecash_error(data, name):
    """Without lone surrogates (see the test below for those)."""
    obj = decode_json(name, data.draw(SHAPED_CLEAN[name]))
    if obj is not None:
        _verify_decoded(name, obj)


def test_envelope_with_surrogate_pos_url_is_refused_with_ecash_error():
    doc = json.dumps(wj.envelope_to_json(ENVELOPE)).replace(
        json.dumps(ENVELOPE.pos_url), '"https://pos.example/\\ud800"')
    with pytest.raises(EcashError):
        wj.envelope_from_json(wj.loads(doc)).verify(MASTER.public_key)


@CHEAP
@given(raw=st.text() | st.binary() | json_values.map(json.dumps).map(lambda s: s[:-1]))
def test_json_loads_on_arbitrary_input(raw):
    with contextlib.suppress(EcashError):
        wj.loads(raw)


finite_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=12)


@CHEAP
@given(value=finite_json)
def test_json_loads_round_trips_finite_json(value):
    assert wj.loads(json.dumps(value)) == value
    assert wj.loads(wj.dumps(value).encode("utf-8")) == value


@pytest.mark.parametrize("doc", ["NaN", "[Infinity]", '{"a": -Infinity}', "[" * 100_000,
                                 b"\xff\xfe\x00", "", "1" * 5000, '{"a": 1'])
def test_json_loads_refusals_are_wire_errors(doc):
    with pytest.raises(EcashError) as info:
        wj.loads(doc)
    assert info.value.code == "not_json"


# binary: arbitrary bytes, and concatenations of plausible pieces

def _u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


REQUEST_BYTES = binary.request_to_bytes(REQUEST)
pieces = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20).map(lambda s: lp(s.encode("utf-8"))),
    st.binary(max_size=70).map(lp),
    json_ints.map(u64), st.integers(0, 2**64 - 1).map(u64), st.integers(0, 2000).map(_u16),
    currencies.map(str.encode), st.sampled_from(ELEMENTS), st.binary(min_size=32, max_size=32),
    scalars.map(group.encode_scalar), st.just(REQUEST_BYTES),
    st.just(binary.spend_to_bytes(SPEND)), st.just(binary.coin_to_bytes(COIN)),
)
b32 = st.binary(min_size=32, max_size=32)
b64 = st.binary(min_size=64, max_size=64)
# well-formed encodings; damaged() below then breaks them in one place
request_bytes = st.builds(
    lambda mid, amount, cur, ts, nonce: lp(mid.encode()) + u64(amount) + cur.encode() + u64(ts)
    + nonce, merchant_ids(), json_ints, currencies, json_ints, nonces)
coin_bytes = st.tuples(b32, *[st.sampled_from(ELEMENTS)] * 5,
                       scalars.map(group.encode_scalar)).map(b"".join)
spend_bytes = st.tuples(coin_bytes, *[scalars.map(group.encode_scalar)] * 2).map(b"".join)
envelope_bytes = st.tuples(request_bytes, st.text(max_size=40).map(str.encode).map(lp),
                           merchant_ids().map(str.encode).map(lp), b32, json_ints.map(u64),
                           b64, b64).map(b"".join)
payment_bytes = st.builds(lambda req, spends: req + _u16(len(spends)) + b"".join(spends),
                          request_bytes, st.lists(spend_bytes, max_size=3))


@st.composite
def damaged(draw, shape: st.SearchStrategy):
    """A well-formed encoding, then maybe one flipped byte, a zeroed (identity)
    32-byte word, a truncation or extra bytes."""
    data = draw(shape)
    how = draw(st.sampled_from(["as_is", "flip", "zero32", "truncate", "extend"]))
    if how == "flip" and data:
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1:]
    elif how == "zero32" and len(data) >= 32:
        pos = 32 * draw(st.integers(0, len(data) // 32 - 1))  # aligned: coins and spends
        data = data[:pos] + bytes(32) + data[pos + 32:]
    elif how == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "extend":
        data += draw(st.binary(min_size=1, max_size=40))
    return data


arbitrary_bytes = st.one_of(st.binary(max_size=700), st.lists(pieces, max_size=12).map(b"".join))
SHAPES = {"coin": coin_bytes, "spend": spend_bytes, "request": request_bytes,
          "envelope": envelope_bytes, "payment": payment_bytes}

BINARY_DECODERS = {
    "coin": (binary.coin_from_bytes, binary.coin_to_bytes),
    "spend": (lambda b: binary.spend_from_bytes(b, REQUEST), binary.spend_to_bytes),
    "request": (binary.request_from_bytes, binary.request_to_bytes),
    "envelope": (binary.envelope_from_bytes, binary.envelope_to_bytes),
    "payment": (binary.payment_from_bytes, binary.payment_to_bytes),
}


def test_every_binary_decoder_is_fuzzed():
    found = {n.removesuffix("_from_bytes") for n in vars(binary) if n.endswith("_from_bytes")}
    assert found == set(BINARY_DECODERS), "a new *_from_bytes decoder: add it to BINARY_DECODERS"


def _verify_binary(name: str, obj) -> None:
    checks = {
        "coin": lambda: verify_coin(obj, KEY),
        "spend": lambda: verify_spend(obj, KEY),
        "request": lambda: obj.request_id,
        "envelope": lambda: obj.verify(MASTER.public_key),
        "payment": lambda: [verify_spend(s, KEY) for s in obj],
    }
    with contextlib.suppress(EcashError):
        checks[name]()


def decode_binary(name: str, data: bytes):
    decode, encode = BINARY_DECODERS[name]
    try:
        obj = decode(data)
    except EcashError:
        return None
    assert encode(obj) == data  # only the canonical encoding decodes
    _verify_binary(name, obj)
    return obj


@CHEAP
@given(name=st.sampled_from(sorted(BINARY_DECODERS)), data=arbitrary_bytes)
def test_binary_decoders_on_arbitrary_bytes(name, data):
    decode_binary(name, data)


@CHEAP
@given(name=st.sampled_from(sorted(BINARY_DECODERS)), data=st.data())
def test_binary_decoders_on_damaged_encodings(name, data):
    decode_binary(name, data.draw(damaged(SHAPES[name])))


@CHEAP
@given(name=st.sampled_from(["envelope", "payment"]), tail=st.lists(pieces, max_size=10))
def test_binary_decoders_after_a_valid_request(name, tail):
    decode_binary(name, REQUEST_BYTES + b"".join(tail))


def test_binary_decoders_accept_their_canonical_forms():
    assert decode_binary("coin", binary.coin_to_bytes(COIN)) == COIN
    assert decode_binary("spend", binary.spend_to_bytes(SPEND)) == SPEND
    assert decode_binary("request", REQUEST_BYTES) == REQUEST
    assert decode_binary("envelope", binary.envelope_to_bytes(ENVELOPE)) == ENVELOPE
    assert decode_binary("payment", binary.payment_to_bytes([SPEND, SPEND])) == [SPEND, SPEND]


# text forms

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


TEXT_DECODERS = {
    text.REQUEST_PREFIX: (text.request_from_text, text.request_to_text),
    text.PAYMENT_PREFIX: (text.payment_from_text, text.payment_to_text),
}


@CHEAP
@given(prefix=st.sampled_from(sorted(TEXT_DECODERS)),
       body=st.one_of(st.text(), st.text(alphabet="ABCabc019-_=+/ \n"),
                      st.binary(max_size=600).map(_b64url),
                      st.lists(pieces, max_size=10).map(b"".join).map(_b64url),
                      st.lists(pieces, max_size=10).map(lambda p: REQUEST_BYTES + b"".join(p))
                      .map(_b64url)),
       with_prefix=st.booleans(), pad=st.sampled_from(["", " ", "\n\t "]))
def test_text_decoders_on_arbitrary_text(prefix, body, with_prefix, pad):
    decode, encode = TEXT_DECODERS[prefix]
    raw = pad + (prefix if with_prefix else "") + body + pad
    try:
        obj = decode(raw)
    except EcashError:
        return
    assert encode(obj) == "".join(raw.split())  # line breaks inside a text are ignored


@CHEAP
@given(raw=st.text())
def test_text_decoders_on_any_text(raw):
    for decode, _ in TEXT_DECODERS.values():
        with contextlib.suppress(EcashError):
            decode(raw)


# --- text forms round-trip -------------------------------------------------

@CRYPTO
@given(request=requests(), pos_url=st.text(st.characters(exclude_categories=("Cs",)),
                                           max_size=100),
       valid_until=json_ints, pad=st.sampled_from(["", " ", "\n"]))
def test_request_text_round_trip(request, pos_url, valid_until, pad):
    cert = certify_merchant(MASTER, request.merchant_id, MERCHANT.public_key, valid_until)
    env = sign_request(MERCHANT, cert, request, pos_url)
    txt = text.request_to_text(env)
    assert txt.startswith(text.REQUEST_PREFIX) and txt.isascii()
    back = text.request_from_text(pad + txt + pad)
    assert back == env
    back.verify(MASTER.public_key)
    assert binary.envelope_from_bytes(binary.envelope_to_bytes(env)) == env
    assert wj.envelope_from_json(wj.loads(wj.dumps(wj.envelope_to_json(env)))) == env


# a few coins of one key and one holder, withdrawn once
POOL = [withdraw(replace(FIXED, secrets=CoinSecrets(0x77 + i, 0x88 + i, 0x99 + i), beta=i % 2))
        for i in range(3)]


@CRYPTO
@given(request=requests(currency="EUR"), picks=st.lists(st.integers(0, len(POOL) - 1),
                                                         min_size=1, max_size=3))
def test_payment_text_round_trip(request, picks):
    spends = [make_spend(POOL[i][1], POOL[i][2], FIXED.u1, request) for i in picks]
    txt = text.payment_to_text(spends)
    assert txt.startswith(text.PAYMENT_PREFIX) and txt.isascii()
    back = text.payment_from_text(txt)
    assert back == spends
    for spend in back:
        verify_spend(spend, KEY, merchant_id=request.merchant_id)


# --- the group ----------------------------------------------------------------

@CHEAP
@given(enc=st.binary(min_size=32, max_size=32))
def test_decode_element_rejects_bit_255(enc):
    enc = enc[:31] + bytes([enc[31] | 0x80])
    with pytest.raises(NonCanonicalElement) as info:
        group.decode_element(enc, allow_identity=True)
    assert info.value.code == "non_canonical_element"
    assert not group.is_canonical_element(enc)


@CRYPTO
@given(k=nonzero_scalars)
def test_valid_element_with_bit_255_set_is_rejected(k):
    P = group.base_mul(k)
    assert group.decode_element(P) == P
    with pytest.raises(NonCanonicalElement):
        group.decode_element(P[:31] + bytes([P[31] | 0x80]))


@CHEAP
@given(k=st.integers(q, 2**256 - 1))
def test_decode_scalar_rejects_values_from_q(k):
    with pytest.raises(NonCanonicalScalar) as info:
        group.decode_scalar(k.to_bytes(32, "little"))
    assert info.value.code == "non_canonical_scalar"


@CHEAP
@given(k=scalars)
def test_decode_scalar_accepts_canonical(k):
    assert group.decode_scalar(group.encode_scalar(k)) == k


@CRYPTO
@given(k=st.integers(0, 2**256), j=nonzero_scalars)
def test_identity_never_crashes_group_operations(k, j):
    O = group.IDENTITY
    P = group.base_mul(j)
    assert group.mul(O, k) == O
    assert group.mul(P, 0) == group.mul(P, q) == group.base_mul(0) == O
    assert group.add(O, O) == group.sub(O, O) == O
    assert group.add(P, O) == group.add(O, P) == group.sub(P, O) == P
    assert group.sub(P, P) == O
    assert group.add(group.mul(P, k), group.mul(P, q - k % q)) == O
    assert group.base_mul(q - j) == group.sub(O, P)
    with pytest.raises(IdentityElement):
        group.decode_element(O)
    assert group.decode_element(O, allow_identity=True) == O


# --- the bank's nonce PRF (9.1) ------------------------------------------------

def test_commitment_nonces_are_pinned():
    """Open sessions outlive a restart or an upgrade of the bank: the same
    nonce must give the same ``w`` forever (known answers of the first code)."""
    from ecash.crypto.withdrawal import CommitmentNonces

    nonces = CommitmentNonces(bytes(range(32)), bytes(range(32, 64)))
    assert nonces(0, 0) == 0x7c1c1cff8025c71646e420391326fb0cb9f02e9c0d090da60b2e07a6aa2a27f
    assert nonces(7, 1) == 0x7ed497f975c2bea6c14a73199440522148c115bf06c28913aa520de4dbaaba3


@given(st.binary(min_size=32, max_size=64), st.binary(min_size=32, max_size=32),
       st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 1)), max_size=20))
def test_commitment_nonces_in_bulk_are_the_same(secret, nonce, pairs):
    from ecash.crypto.withdrawal import CommitmentNonces

    nonces = CommitmentNonces(secret, nonce)
    assert nonces.many(pairs) == [nonces(i, b) for i, b in pairs]
    assert nonces.many(iter(pairs)) == nonces.many(pairs)


_HEXISH = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=8, max_size=8),  # good
    st.text(alphabet="0123456789abcdefABCDEF \u00e9g", min_size=8, max_size=8),  # mostly bad
    st.text(alphabet="0123456789abcdef", max_size=10),  # mostly the wrong length
    st.integers(0, 9))


@given(st.lists(_HEXISH, max_size=6))
def test_hex_items_agrees_with_one_item_at_a_time(values):
    """The bulk check accepts exactly the lists whose every item is 4 bytes of
    lowercase hex, with the same bytes; otherwise it names the first bad item."""
    first_bad, expected = None, b""
    for i, v in enumerate(values):
        try:
            expected += wj.hex_bytes(v, 4, f"x[{i}]")
        except EcashError as exc:
            first_bad = str(exc)
            break
    if first_bad is None:
        assert wj.hex_items(values, 4, lambda i: f"x[{i}]") == expected
    else:
        with pytest.raises(EcashError) as info:
            wj.hex_items(values, 4, lambda i: f"x[{i}]")
        assert str(info.value) == first_bad
