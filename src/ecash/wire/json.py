"""The JSON objects of ECASH-1 section 8: encoders and strict decoders.

Decoders take already-parsed JSON (``dict``/``list``/...) and either return
the ``ecash.crypto`` object or raise an :class:`~ecash.crypto.EcashError`
(:class:`WireError` for shape/type/range; the crypto encoding errors for
non-canonical elements and scalars). They reject missing and unknown keys,
hex that is not lowercase or not of the exact length, booleans posing as
integers, and integers outside ``[0, 2^53-1]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..crypto import group
from ..crypto.coin import Coin
from ..crypto.errors import EcashError
from ..crypto.keys import (
    MAX_JSON_INT,
    DenominationKey,
    Keyset,
    MerchantCertificate,
    Policy,
    canonical_json,
)
from ..crypto.payment import PaymentRequest, Receipt, SignedRequest, Spend
from ..crypto.refusal import Refusal, check_code
from .errors import WireError

_HEX = frozenset("0123456789abcdef")


def loads(text: str | bytes) -> Any:
    """Parse JSON text; raise :class:`WireError` (never ``JSONDecodeError``)."""
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except _Duplicate as exc:
        raise WireError(f"duplicate key {exc} in a JSON object", "duplicate_key") from None
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not JSON: {exc}", "not_json") from None


class _Duplicate(Exception):
    pass


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """Section 8 objects have exactly their keys: a repeated key is not a choice."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --- field readers -----------------------------------------------------------

def exact_object(v: Any, keys: tuple[str, ...], what: str) -> dict:
    """``v`` if it is a JSON object with exactly ``keys`` (``what`` names it in
    the error): the check every section 8 object starts with, for callers that
    read a small body of their own (the merchant's HTTP API)."""
    if not isinstance(v, dict):
        raise WireError(f"{what}: expected a JSON object", "bad_type")
    missing = [k for k in keys if k not in v]
    if missing:
        raise WireError(f"{what}: missing key(s) {', '.join(missing)}", "missing_key")
    extra = [k for k in v if k not in keys]
    if extra:
        raise WireError(f"{what}: unknown key(s) {', '.join(map(str, extra))}", "unknown_key")
    return v


_object = exact_object


def hex_bytes(v: Any, n: int, what: str) -> bytes:
    if not isinstance(v, str):
        raise WireError(f"{what}: expected a hex string", "bad_type")
    if len(v) != 2 * n:
        raise WireError(f"{what}: expected {2 * n} hex characters, got {len(v)}", "wrong_length")
    if not _HEX.issuperset(v):
        raise WireError(f"{what}: not lowercase hex", "bad_hex")
    return bytes.fromhex(v)


def hex_items(values: list, n: int, name: Callable[[int], str]) -> bytes:
    """The items of ``values``, each ``n`` bytes as lowercase hex, concatenated:
    checked as one string (per-item checks cost more than the parse on the
    large lists of a withdrawal), item by item only to report the first bad
    one, as the field ``name(i)``."""
    if all(type(x) is str for x in values) and set(map(len, values)) <= {2 * n}:
        joined = "".join(values)
        try:
            raw = bytes.fromhex(joined)
        except ValueError:
            raw = None
        if raw is not None and raw.hex() == joined:  # lowercase, no spaces: canonical
            return raw
    for i, x in enumerate(values):
        hex_bytes(x, n, name(i))
    raise AssertionError("unreachable: some item is bad")


def _at(what: str, exc: EcashError) -> EcashError:
    """The same error, naming the field it was found in."""
    return type(exc)(f"{what}: {exc}", exc.code)


def _wrap(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except WireError:
        raise
    except EcashError as exc:
        raise _at(what, exc) from None


def element(v: Any, what: str) -> bytes:
    """A canonical, non-identity ristretto255 element."""
    raw = hex_bytes(v, 32, what)
    try:
        return group.decode_element(raw)
    except EcashError as exc:
        raise _at(what, exc) from None


def scalar(v: Any, what: str) -> int:
    raw = hex_bytes(v, 32, what)
    try:
        return group.decode_scalar(raw)
    except EcashError as exc:
        raise _at(what, exc) from None


def integer(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise WireError(f"{what}: expected an integer", "bad_type")
    if not 0 <= v <= MAX_JSON_INT:
        raise WireError(f"{what}: integer out of range [0, 2^53-1]", "out_of_range")
    return v


def string(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise WireError(f"{what}: expected a string", "bad_type")
    return v


def utf8_string(v: Any, what: str) -> str:
    """A string that is valid Unicode text (no lone surrogates), so it encodes."""
    s = string(v, what)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise WireError(f"{what}: not valid UTF-8 text", "bad_type") from None
    return s


def _currency(v: Any, what: str) -> str:
    s = string(v, what)
    if not (len(s) == 3 and s.isascii() and s.isalpha() and s.isupper()):
        raise WireError(f"{what}: expected 3 uppercase ASCII letters", "bad_currency")
    return s


def _merchant_id(v: Any, what: str) -> str:
    s = string(v, what)
    try:
        n = len(s.encode("utf-8"))
    except UnicodeEncodeError:
        raise WireError(f"{what}: not valid UTF-8 text", "bad_type") from None
    if not 1 <= n <= 64:
        raise WireError(f"{what}: must be 1 to 64 UTF-8 bytes", "request_malformed")
    return s


# --- objects -----------------------------------------------------------------

COIN_KEYS = ("key_id", "A", "B", "z", "a", "b", "r")


def coin_to_json(c: Coin) -> dict:
    return {"key_id": c.key_id.hex(), "A": c.A.hex(), "B": c.B.hex(), "z": c.z.hex(),
            "a": c.a.hex(), "b": c.b.hex(), "r": group.encode_scalar(c.r).hex()}


def coin_from_json(v: Any) -> Coin:
    o = _object(v, COIN_KEYS, "coin")
    return Coin(hex_bytes(o["key_id"], 32, "coin.key_id"), element(o["A"], "coin.A"),
                element(o["B"], "coin.B"), element(o["z"], "coin.z"),
                element(o["a"], "coin.a"), element(o["b"], "coin.b"), scalar(o["r"], "coin.r"))


REQUEST_KEYS = ("merchant_id", "amount", "currency", "timestamp_ms", "nonce")


def request_to_json(r: PaymentRequest) -> dict:
    return {"merchant_id": r.merchant_id, "amount": r.amount, "currency": r.currency,
            "timestamp_ms": r.timestamp_ms, "nonce": r.nonce.hex()}


def request_from_json(v: Any) -> PaymentRequest:
    o = _object(v, REQUEST_KEYS, "request")
    return PaymentRequest(_merchant_id(o["merchant_id"], "request.merchant_id"),
                          integer(o["amount"], "request.amount"),
                          _currency(o["currency"], "request.currency"),
                          integer(o["timestamp_ms"], "request.timestamp_ms"),
                          _nonce(o["nonce"]))


def _nonce(v: Any) -> bytes:
    try:
        return hex_bytes(v, 16, "request.nonce")
    except WireError as exc:
        raise WireError(f"{exc} (a nonce is 16 bytes)", "request_malformed") from None


SPEND_KEYS = ("coin", "request", "r1", "r2")


def spend_to_json(s: Spend) -> dict:
    return {"coin": coin_to_json(s.coin), "request": request_to_json(s.request),
            "r1": group.encode_scalar(s.r1).hex(), "r2": group.encode_scalar(s.r2).hex()}


def spend_from_json(v: Any) -> Spend:
    o = _object(v, SPEND_KEYS, "spend")
    return Spend(coin_from_json(o["coin"]), request_from_json(o["request"]),
                 scalar(o["r1"], "spend.r1"), scalar(o["r2"], "spend.r2"))


KEY_KEYS = ("key_id", "h", "value", "currency", "withdraw_start", "withdraw_end",
            "deposit_end", "signature")


def key_to_json(k: DenominationKey) -> dict:
    if k.signature is None:
        raise ValueError("a published key carries its master signature")
    return {"key_id": k.key_id.hex(), "h": k.h.hex(), "value": k.value,
            "currency": k.currency, "withdraw_start": k.withdraw_start,
            "withdraw_end": k.withdraw_end, "deposit_end": k.deposit_end,
            "signature": k.signature.hex()}


def key_from_json(v: Any, *, signature_optional: bool = False) -> DenominationKey:
    """A ``key`` object. ``signature_optional`` lets a third party verify coins
    under a key whose master signature it does not have (``ecash verify``)."""
    missing_sig = signature_optional and isinstance(v, dict) and "signature" not in v
    o = _object({**v, "signature": ""} if missing_sig else v, KEY_KEYS, "key")
    sig = None if missing_sig else hex_bytes(o["signature"], 64, "key.signature")
    return DenominationKey(hex_bytes(o["key_id"], 32, "key.key_id"), element(o["h"], "key.h"),
                           integer(o["value"], "key.value"),
                           _currency(o["currency"], "key.currency"),
                           integer(o["withdraw_start"], "key.withdraw_start"),
                           integer(o["withdraw_end"], "key.withdraw_end"),
                           integer(o["deposit_end"], "key.deposit_end"), sig)


POLICY_KEYS = ("currency", "deposit_window_s", "floor_limit", "holding_limit",
               "single_payment_limit", "daily_offline_limit", "consecutive_offline_limit",
               "issued_at")


def policy_to_json(p: Policy) -> dict:
    return {k: getattr(p, k) for k in POLICY_KEYS}


def policy_from_json(v: Any) -> Policy:
    o = _object(v, POLICY_KEYS, "policy")
    return Policy(_currency(o["currency"], "policy.currency"),
                  *(integer(o[k], f"policy.{k}") for k in POLICY_KEYS[1:]))


KEYSET_KEYS = ("master_public_key", "keys", "policy", "policy_signature")


def keyset_to_json(ks: Keyset) -> dict:
    return {"master_public_key": ks.master_public_key.hex(),
            "keys": [key_to_json(k) for k in ks.keys], "policy": policy_to_json(ks.policy),
            "policy_signature": ks.policy_signature.hex()}


def keyset_from_json(v: Any) -> Keyset:
    o = _object(v, KEYSET_KEYS, "keyset")
    if not isinstance(o["keys"], list):
        raise WireError("keyset.keys: expected a list", "bad_type")
    return Keyset(hex_bytes(o["master_public_key"], 32, "keyset.master_public_key"),
                  tuple(key_from_json(k) for k in o["keys"]), policy_from_json(o["policy"]),
                  hex_bytes(o["policy_signature"], 64, "keyset.policy_signature"))


def keyset_fingerprint(ks: Keyset) -> str:
    """9.6: first 8 bytes of SHA-256 of the keyset's canonical JSON, in hex."""
    import hashlib

    return hashlib.sha256(canonical_json(keyset_to_json(ks))).digest()[:8].hex()


CERTIFICATE_KEYS = ("merchant_id", "public_key", "valid_until", "signature")


def certificate_to_json(c: MerchantCertificate) -> dict:
    return {"merchant_id": c.merchant_id, "public_key": c.public_key.hex(),
            "valid_until": c.valid_until, "signature": c.signature.hex()}


def certificate_from_json(v: Any) -> MerchantCertificate:
    o = _object(v, CERTIFICATE_KEYS, "certificate")
    return MerchantCertificate(_merchant_id(o["merchant_id"], "certificate.merchant_id"),
                               hex_bytes(o["public_key"], 32, "certificate.public_key"),
                               integer(o["valid_until"], "certificate.valid_until"),
                               hex_bytes(o["signature"], 64, "certificate.signature"))


ENVELOPE_KEYS = ("request", "pos_url", "certificate", "signature")


def envelope_to_json(e: SignedRequest) -> dict:
    return {"request": request_to_json(e.request), "pos_url": e.pos_url,
            "certificate": certificate_to_json(e.certificate), "signature": e.signature.hex()}


def envelope_from_json(v: Any) -> SignedRequest:
    o = _object(v, ENVELOPE_KEYS, "envelope")
    return SignedRequest(request_from_json(o["request"]),
                         utf8_string(o["pos_url"], "envelope.pos_url"),
                         certificate_from_json(o["certificate"]),
                         hex_bytes(o["signature"], 64, "envelope.signature"))


RECEIPT_KEYS = ("request_id", "amount", "signature")


def receipt_to_json(r: Receipt) -> dict:
    return {"request_id": r.request_id.hex(), "amount": r.amount, "signature": r.signature.hex()}


def receipt_from_json(v: Any) -> Receipt:
    o = _object(v, RECEIPT_KEYS, "receipt")
    return Receipt(hex_bytes(o["request_id"], 32, "receipt.request_id"),
                   integer(o["amount"], "receipt.amount"),
                   hex_bytes(o["signature"], 64, "receipt.signature"))


REFUSAL_KEYS = ("request_id", "payment_digest", "code", "signature")


def refusal_to_json(r: Refusal) -> dict:
    return {"request_id": r.request_id.hex(), "payment_digest": r.payment_digest.hex(),
            "code": r.code, "signature": r.signature.hex()}


def refusal_from_json(v: Any) -> Refusal:
    """A refusal's shape (section 8), its code included (``[a-z0-9_]{1,64}``,
    5.1); whether it refuses a given payment is :meth:`Refusal.verify`'s business."""
    o = _object(v, REFUSAL_KEYS, "refusal")
    code = string(o["code"], "refusal.code")
    _wrap("refusal.code", lambda: check_code(code))
    return Refusal(hex_bytes(o["request_id"], 32, "refusal.request_id"),
                   hex_bytes(o["payment_digest"], 32, "refusal.payment_digest"),
                   code, hex_bytes(o["signature"], 64, "refusal.signature"))
