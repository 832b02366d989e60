"""Compact text forms for QR codes and copy-paste.

``ecreq1:`` + base64url (no padding) of the binary envelope (a signed payment
request), ``ecpay1:`` + base64url of the binary payment. Decoders accept
surrounding whitespace and nothing else.
"""

from __future__ import annotations

import base64
import binascii

from ..crypto.payment import SignedRequest, Spend
from .binary import envelope_from_bytes, envelope_to_bytes, payment_from_bytes, payment_to_bytes
from .errors import WireError

REQUEST_PREFIX = "ecreq1:"
PAYMENT_PREFIX = "ecpay1:"
MAX_TEXT = 600_000


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str, prefix: str) -> bytes:
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise WireError("text form too long", "too_large")
    if not text.startswith(prefix):
        raise WireError(f"expected text starting with {prefix!r}", "bad_prefix")
    body = text[len(prefix):]
    if not body or not body.isascii() or "=" in body or len(body) % 4 == 1:
        raise WireError("not unpadded base64url", "bad_base64")
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise WireError("not unpadded base64url", "bad_base64") from None
    if _b64e(data) != body:  # non-canonical trailing bits
        raise WireError("non-canonical base64url", "bad_base64")
    return data


def request_to_text(env: SignedRequest) -> str:
    return REQUEST_PREFIX + _b64e(envelope_to_bytes(env))


def request_from_text(text: str) -> SignedRequest:
    return envelope_from_bytes(_b64d(text, REQUEST_PREFIX))


def payment_to_text(spends: list[Spend]) -> str:
    return PAYMENT_PREFIX + _b64e(payment_to_bytes(spends))


def payment_from_text(text: str) -> list[Spend]:
    return payment_from_bytes(_b64d(text, PAYMENT_PREFIX))
