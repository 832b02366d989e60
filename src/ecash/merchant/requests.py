"""Payment requests (ECASH-1 5, 8): a fresh 16-byte nonce from the CSPRNG for
every request, stored under a unique constraint so that no nonce is ever
used twice, and the envelope signed with the terminal's certified key."""

from __future__ import annotations

import secrets

from ..crypto.keys import MAX_JSON_INT
from ..crypto.payment import NONCE_BYTES, PaymentRequest, SignedRequest, sign_request
from .errors import MerchantError
from .store import RequestRecord
from .terminal import Terminal


def pay_url(base: str, request_id: bytes) -> str:
    """The ``pos_url`` of a request: where a wallet POSTs its payment."""
    return f"{base.rstrip('/')}/pay/{request_id.hex()}"


# ECASH-1 5: a wallet refuses a request whose timestamp is more than ten minutes
# from its clock, so a request that lived longer could not be paid anyway.
MAX_TTL_S = 600


def create_request(t: Terminal, amount: int, *, pos_base: str | None = None,
                   ttl_s: int | None = None) -> SignedRequest:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_JSON_INT:
        raise MerchantError("bad_amount", "the amount is a positive whole number of minor units")
    keys = t.keys
    ttl = ttl_s if ttl_s is not None else t.config.request_ttl_s
    longest = min(MAX_TTL_S, keys.window_s // 2)
    if not 0 < ttl <= longest:
        raise MerchantError("bad_ttl", f"a request lives 1 s to {longest} s (wallets refuse a"
                            " request stamped more than ten minutes ago; at most half the"
                            " deposit window)")
    sk, cert = t.current_key()
    now = t.now()
    if cert.valid_until <= now:
        raise MerchantError("certificate_expired", "the terminal's certificate has expired;"
                            " run `ecash merchant sync` while online")
    for _ in range(4):
        request = PaymentRequest(t.merchant_id, amount, keys.currency, int(now * 1000),
                                 secrets.token_bytes(NONCE_BYTES))
        pos_url = pay_url(pos_base, request.request_id) if pos_base else ""
        envelope = sign_request(sk, cert, request, pos_url)
        record = RequestRecord(request, pos_url, sk.public_key, envelope.signature, t.name,
                               request.timestamp_ms + ttl * 1000)
        if t.store.insert_request(record):
            return envelope
    raise MerchantError("nonce_reused", "the random generator keeps repeating nonces")


def envelope_of(t: Terminal, record: RequestRecord) -> SignedRequest:
    """The signed envelope of a stored request, as it was shown."""
    return SignedRequest(record.request, record.pos_url, t.certificate(record.public_key),
                         record.signature)
