"""Redemption requests bound to the redeeming account.

A redemption (an exchange's or a close's coins paid to the bank) is a payment
to the bank's own payee, ``"bank"``. Its transcripts are stored like any
other, so if the request said nothing about who redeems, anyone who read them
(from the bank's database, a backup, a wallet file) could present them into
their own account and be credited: they would be bearer.

The request's 16-byte nonce therefore carries the account:

    nonce = salt || H_bytes("redemption-account", account_id_utf8, salt)[0:10]

with ``salt`` 6 random bytes. The bank credits a redemption only into the
account whose id reproduces the nonce. This is safe because the nonce is part
of ``request_id`` and every coin's answer ``d = H("spend", A, B, request_id)``
depends on it: whoever holds a transcript but not the coin's secrets cannot
change the nonce without invalidating the spend, and for another account to
match a given nonce it would need an 80-bit second preimage of the hash
(account ids are assigned by the bank, not chosen). The salt keeps two
redemptions of the same amount by one account in the same millisecond apart
(the wallet keys its records by ``request_id``). The account is no secret
from the bank, which credits it anyway, so the binding reveals nothing.
"""

from __future__ import annotations

import secrets

from ..crypto.hashing import H_bytes
from ..crypto.payment import NONCE_BYTES, PaymentRequest

REDEMPTION_PAYEE = "bank"  # the merchant_id the bank redeems coins under
SALT_BYTES = 6
TAG = "redemption-account"


def _tag(account_id: str, salt: bytes) -> bytes:
    return H_bytes(TAG, account_id.encode("utf-8"), salt)[:NONCE_BYTES - SALT_BYTES]


def redemption_request(account_id: str, amount: int, currency: str,
                       timestamp_ms: int) -> PaymentRequest:
    """A request to pay ``amount`` to the bank, creditable only into ``account_id``."""
    salt = secrets.token_bytes(SALT_BYTES)
    return PaymentRequest(REDEMPTION_PAYEE, amount, currency, timestamp_ms,
                          salt + _tag(account_id, salt))


def is_bound_to(request: PaymentRequest, account_id: str) -> bool:
    """Whether the redemption ``request`` may be credited into ``account_id``
    (its payee is the depositor's check, as for any payment)."""
    nonce = request.nonce
    if len(nonce) != NONCE_BYTES:
        return False
    return secrets.compare_digest(nonce[SALT_BYTES:], _tag(account_id, nonce[:SALT_BYTES]))
