"""Signed refusals of a payment (ECASH-1 5.1, rev. 2).

A terminal that refuses a payment, and holds none of its transcripts, signs
``"ECASH-1/refusal" || request_id || payment_digest || lp(code)`` with the
request's certified key. A wallet that holds a valid refusal of exactly its
payment may release the coins at once instead of keeping them pending for the
deposit window (9.4); it keeps the refusal as evidence, and the bank weighs it
if the merchant later deposits one of the refused transcripts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from . import sign
from .errors import BadSignature, InvalidRefusal
from .hashing import H_bytes, lp

CODE_PATTERN = re.compile(rb"[a-z0-9_]{1,64}")


def payment_digest(request_id: bytes, items: Iterable[bytes]) -> bytes:
    """``H_bytes("payment", request_id, item_1, ..., item_n)[0:32]``.

    ``items`` are the payment's coins in binary (a plain coin's 288-byte
    spend, a chain of two or more hops as its binary chain), in any order: the
    fields are hashed in ascending byte order, so the order the wallet sent
    them in does not matter (Python's ``bytes`` ordering is the spec's: the
    first differing byte decides, a proper prefix sorts first).
    """
    return H_bytes("payment", request_id, *sorted(items))[:32]


def check_code(code: str) -> bytes:
    """The code's ASCII bytes; raise :class:`InvalidRefusal` unless ``[a-z0-9_]{1,64}``."""
    raw = code.encode("ascii") if isinstance(code, str) and code.isascii() else b""
    if not CODE_PATTERN.fullmatch(raw):
        raise InvalidRefusal("refusal code must be 1 to 64 of [a-z0-9_]", "refusal_code")
    return raw


def refusal_message(request_id: bytes, digest: bytes, code: str) -> bytes:
    return b"ECASH-1/refusal" + request_id + digest + lp(check_code(code))


@dataclass(frozen=True)
class Refusal:
    """The ``refusal`` of section 8: ``{request_id, payment_digest, code, signature}``."""

    request_id: bytes
    payment_digest: bytes
    code: str
    signature: bytes

    def verify(self, merchant_public_key: bytes, request_id: bytes,
               items: Iterable[bytes]) -> None:
        """Raise unless this is a valid refusal of exactly the payment ``items``
        (binary spends or chains) to ``request_id``, signed by
        ``merchant_public_key`` (the request's certified key, checked by the
        caller against the master key as for the request itself)."""
        check_code(self.code)
        if self.request_id != request_id:
            raise InvalidRefusal("refusal is for another request", "refusal_other_request")
        if self.payment_digest != payment_digest(request_id, items):
            raise InvalidRefusal("refusal is for another payment", "refusal_other_payment")
        try:
            sign.verify(merchant_public_key,
                        refusal_message(self.request_id, self.payment_digest, self.code),
                        self.signature)
        except BadSignature as exc:
            raise InvalidRefusal(f"refusal signature: {exc}", "refusal_signature") from None


def make_refusal(merchant_key: sign.SigningKey, request_id: bytes, items: Iterable[bytes],
                 code: str) -> Refusal:
    """Sign a refusal of the payment ``items`` to ``request_id``.

    The caller must hold none of the payment's transcripts and never deposit
    any of them (5.1): a signed refusal releases the holder's coins at once.
    """
    digest = payment_digest(request_id, items)
    return Refusal(request_id, digest, code,
                   merchant_key.sign(refusal_message(request_id, digest, code)))
