"""Payment requests (ECASH-1 5, 8): a fresh 16-byte nonce from the CSPRNG for
every request, stored under a unique constraint so that no nonce is ever
used twice, and the envelope signed with the terminal's certified key."""

from __future__ import annotations

import secrets

from ..crypto.keys import MAX_JSON_INT
from ..crypto.payment import NONCE_BYTES, PaymentRequest, SignedRequest, sign_request
from ..wire import json as wj
from ..wire.description import BadDescription, Description, check_description, sign_description
from .errors import MerchantError, RequestNotFound
from .store import RequestRecord
from .terminal import Terminal


def pay_url(base: str, request_id: bytes) -> str:
    """The ``pos_url`` of a request: where a wallet POSTs its payment."""
    return f"{base.rstrip('/')}/pay/{request_id.hex()}"


# ECASH-1 5: a wallet refuses a request whose timestamp is more than ten minutes
# from its clock, so a request that lived longer could not be paid anyway.
MAX_TTL_S = 600


def create_request(t: Terminal, amount: int, *, pos_base: str | None = None,
                   ttl_s: int | None = None, description: str | None = None) -> SignedRequest:
    """A new signed request for ``amount`` minor units, stored before it is
    returned. ``description`` (what is being bought, docs/extensions.md) is
    signed with the same certified key and stored beside it: the envelope's
    own signature does not cover it (ECASH-1 5)."""
    if description is not None:
        try:
            check_description(description)
        except BadDescription as exc:
            raise MerchantError("bad_description", str(exc)) from None
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
        signed = (sign_description(sk, request.request_id, description)
                  if description is not None else None)
        record = RequestRecord(request, pos_url, sk.public_key, envelope.signature, t.name,
                               request.timestamp_ms + ttl * 1000,
                               description=description,
                               description_signature=signed.signature if signed else None)
        if t.store.insert_request(record):
            return envelope
    raise MerchantError("nonce_reused", "the random generator keeps repeating nonces")


def envelope_of(t: Terminal, record: RequestRecord) -> SignedRequest:
    """The signed envelope of a stored request, as it was shown."""
    return SignedRequest(record.request, record.pos_url, t.certificate(record.public_key),
                         record.signature)


def description_of(t: Terminal, record: RequestRecord) -> Description | None:
    """The stored request's signed description (None when the sale has none)."""
    if record.description is None or record.description_signature is None:
        return None
    return Description(record.description, record.description_signature)


class RequestGone(MerchantError):
    """A request a link names that can no longer be paid (HTTP 410)."""

    status = 410


def envelope_for_link(t: Terminal, request_id: bytes) -> dict:
    """What ``GET /r/<request_id>`` answers (docs/extensions.md): the section 8
    envelope and the sale's signed description (null when none), as the
    ``ecash:`` link's hash covers them. A cancelled request, or an open one
    past its expiry, is gone: a wallet must not start paying it."""
    record = t.store.request(request_id)
    if record is None or record.request.merchant_id != t.merchant_id:
        raise RequestNotFound("unknown_request", "no such payment request at this terminal")
    if record.status == "cancelled":
        raise RequestGone("request_cancelled", "the cashier cancelled this request")
    if record.status == "open" and t.now_ms() > record.expires_ms:
        raise RequestGone("request_expired", "this request has expired")
    description = description_of(t, record)
    return {"envelope": wj.envelope_to_json(envelope_of(t, record)),
            "description": description.to_json() if description else None}
