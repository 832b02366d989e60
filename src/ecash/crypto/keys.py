"""Bank keys and signed public objects: denomination keys (3.1), merchant
certificates (3.3), the policy (3.4) and the one-keyset rule (9.6)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from . import group, sign
from .errors import InvalidRequest, KeysetInvalid
from .hashing import H_bytes, lp, u64

MAX_JSON_INT = 2**53 - 1


def check_currency(currency: str) -> bytes:
    """3 uppercase ASCII letters, returned as the bytes that are hashed."""
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii()
            and currency.isalpha() and currency.isupper()):
        raise InvalidRequest(f"currency must be 3 uppercase ASCII letters, got {currency!r}")
    return currency.encode("ascii")


def check_json_int(n: int, what: str) -> int:
    if not (isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_JSON_INT):
        raise InvalidRequest(f"{what} must be an integer in [0, 2^53-1]")
    return n


def check_merchant_id(merchant_id: str) -> bytes:
    try:
        raw = merchant_id.encode("utf-8") if isinstance(merchant_id, str) else b""
    except UnicodeEncodeError:
        raise InvalidRequest("merchant_id is not valid UTF-8 text") from None
    if not 1 <= len(raw) <= 64:
        raise InvalidRequest("merchant_id must be 1 to 64 UTF-8 bytes")
    return raw


@dataclass(frozen=True)
class DenominationKey:
    """The public half of a denomination key. ``signature`` is the master
    signature over ``key_id`` (may be absent when only the math matters)."""

    key_id: bytes
    h: bytes
    value: int
    currency: str
    withdraw_start: int
    withdraw_end: int
    deposit_end: int
    signature: bytes | None = None

    def expected_key_id(self) -> bytes:
        return compute_key_id(self.h, self.value, self.currency, self.withdraw_start,
                              self.withdraw_end, self.deposit_end)

    def check_key_id(self) -> None:
        """Raise unless ``key_id`` is recomputed from the key's own fields."""
        group.decode_element(self.h)
        if self.expected_key_id() != self.key_id:
            raise KeysetInvalid("key_id does not match the key's fields", "key_id_mismatch")

    def check_signature(self, master_public_key: bytes) -> None:
        self.check_key_id()
        if self.signature is None:
            raise KeysetInvalid("key carries no master signature", "unsigned_key")
        sign.verify(master_public_key, denomination_message(self.key_id), self.signature)

    def spend_deadline(self, deposit_window_s: int) -> int:
        """ECASH-1 9.4: merchants refuse this key's coins after ``deposit_end - T``."""
        return self.deposit_end - deposit_window_s


def compute_key_id(h: bytes, value: int, currency: str, withdraw_start: int,
                   withdraw_end: int, deposit_end: int) -> bytes:
    return H_bytes("denomination", h, u64(value), check_currency(currency),
                   u64(withdraw_start), u64(withdraw_end), u64(deposit_end))[:32]


def denomination_message(key_id: bytes) -> bytes:
    return b"ECASH-1/denomination" + key_id


@dataclass(frozen=True, repr=False)
class DenominationSecret:
    """A denomination key with its secret exponent ``x`` (bank only)."""

    x: int
    public: DenominationKey

    def __repr__(self) -> str:
        return f"DenominationSecret(key_id={self.public.key_id.hex()})"


def make_denomination_key(master: sign.SigningKey, x: int, value: int, currency: str,
                          withdraw_start: int, withdraw_end: int,
                          deposit_end: int) -> DenominationSecret:
    """Build and sign a key from its secret ``x`` (use :func:`group.random_scalar`)."""
    group.nonzero(x, "x")
    if not withdraw_start < withdraw_end <= deposit_end:
        raise ValueError("need withdraw_start < withdraw_end <= deposit_end")
    h = group.base_mul(x)
    key_id = compute_key_id(h, value, currency, withdraw_start, withdraw_end, deposit_end)
    public = DenominationKey(key_id, h, value, currency, withdraw_start, withdraw_end,
                             deposit_end, master.sign(denomination_message(key_id)))
    return DenominationSecret(x, public)


@dataclass(frozen=True)
class MerchantCertificate:
    merchant_id: str
    public_key: bytes
    valid_until: int
    signature: bytes

    def message(self) -> bytes:
        return certificate_message(self.merchant_id, self.public_key, self.valid_until)

    def verify(self, master_public_key: bytes) -> None:
        sign.verify(master_public_key, self.message(), self.signature)


def certificate_message(merchant_id: str, public_key: bytes, valid_until: int) -> bytes:
    return (b"ECASH-1/merchant" + lp(check_merchant_id(merchant_id)) + public_key
            + u64(valid_until))


def certify_merchant(master: sign.SigningKey, merchant_id: str, public_key: bytes,
                     valid_until: int) -> MerchantCertificate:
    if len(public_key) != sign.PUBLIC_KEY_BYTES:
        raise ValueError("merchant public key must be 32 bytes")
    msg = certificate_message(merchant_id, public_key, valid_until)
    return MerchantCertificate(merchant_id, public_key, valid_until, master.sign(msg))


@dataclass(frozen=True)
class Policy:
    """Section 3.4. Field names are exactly the JSON keys of section 8."""

    currency: str
    deposit_window_s: int
    floor_limit: int
    holding_limit: int
    single_payment_limit: int
    daily_offline_limit: int
    consecutive_offline_limit: int
    issued_at: int

    def canonical_json(self) -> bytes:
        return canonical_json(asdict(self))

    def message(self) -> bytes:
        return b"ECASH-1/policy" + hashlib.sha512(self.canonical_json()).digest()

    def sign(self, master: sign.SigningKey) -> bytes:
        return master.sign(self.message())

    def verify(self, master_public_key: bytes, signature: bytes) -> None:
        sign.verify(master_public_key, self.message(), signature)


def canonical_json(obj: object) -> bytes:
    """UTF-8 JSON, keys sorted, separators ``,`` and ``:``, no whitespace (3.4)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check_keyset(master_public_key: bytes, keys: Iterable[DenominationKey], policy: Policy,
                 policy_signature: bytes) -> None:
    """Everything a wallet or terminal checks offline before trusting a keyset:
    every key's ``key_id`` and master signature, the policy signature, one
    currency, and no two keys of one ``(currency, value)`` with overlapping
    withdrawal windows (9.6)."""
    policy.verify(master_public_key, policy_signature)
    seen: dict[tuple[str, int], list[DenominationKey]] = {}
    ids: set[bytes] = set()
    for key in keys:
        key.check_signature(master_public_key)
        if key.key_id in ids:
            raise KeysetInvalid("the same key appears twice", "duplicate_key")
        ids.add(key.key_id)
        if key.currency != policy.currency:
            raise KeysetInvalid("key currency differs from the policy's", "currency_mismatch")
        for other in seen.setdefault((key.currency, key.value), []):
            if (key.withdraw_start < other.withdraw_end
                    and other.withdraw_start < key.withdraw_end):
                raise KeysetInvalid(
                    f"two keys of value {key.value} {key.currency} overlap in their"
                    " withdrawal windows (ECASH-1 9.6)", "overlapping_keys")
        seen[(key.currency, key.value)].append(key)


@dataclass(frozen=True)
class Keyset:
    """What a bank publishes: its master key, every live key, the signed policy."""

    master_public_key: bytes
    keys: tuple[DenominationKey, ...]
    policy: Policy
    policy_signature: bytes

    def check(self, trusted_master_public_key: bytes | None = None) -> None:
        """Everything of :func:`check_keyset`; with ``trusted_master_public_key``
        (the pinned key) also that the keyset is signed by that key."""
        if (trusted_master_public_key is not None
                and trusted_master_public_key != self.master_public_key):
            raise KeysetInvalid("keyset is signed by another master key", "master_key_changed")
        check_keyset(self.master_public_key, self.keys, self.policy, self.policy_signature)

    def key(self, key_id: bytes) -> DenominationKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)
