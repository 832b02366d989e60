"""A paid sale's receipt for the customer: what was paid, when, for what, and
the data that proves it.

The proof is the terminal's ECASH-1 receipt (its signature over the request
id and the amount) with the certified key that made it; a short fingerprint
of the signature (the first 8 bytes of its SHA-256, in groups of four hex
digits) lets a person compare the printed receipt with what their wallet
holds.
"""

from __future__ import annotations

import hashlib
import json

from .errors import MerchantError, RequestNotFound
from .terminal import Terminal


class NotPaid(MerchantError):
    status = 409


def signature_fingerprint(signature: bytes) -> str:
    digest = hashlib.sha256(signature).hexdigest()[:16]
    return " ".join(digest[i:i + 4] for i in range(0, 16, 4))


def receipt_view(t: Terminal, request_id: bytes) -> dict:
    """Everything the receipt page shows; ``verification`` is the QR's text:
    compact JSON of the receipt (section 8 form), the payee, the currency and
    the terminal key that signed it."""
    record = t.store.request(request_id)
    if record is None or record.request.merchant_id != t.merchant_id:
        raise RequestNotFound("unknown_request", "no such payment request at this terminal")
    if record.status != "paid" or record.receipt is None:
        raise NotPaid("not_paid", "this sale is not paid: there is no receipt")
    req = record.request
    proof = {"receipt": {"request_id": request_id.hex(), "amount": req.amount,
                         "signature": record.receipt.hex()},
             "merchant_id": req.merchant_id, "currency": req.currency,
             "merchant_key": record.public_key.hex()}
    return {"request_id": request_id.hex(), "merchant_id": req.merchant_id,
            "terminal": record.terminal, "amount": req.amount, "currency": req.currency,
            "amount_unit": "minor", "paid_ms": record.paid_ms, "coins": record.coins or 0,
            "description": record.description, "signature": record.receipt.hex(),
            "merchant_key": record.public_key.hex(),
            "fingerprint": signature_fingerprint(record.receipt),
            "verification": json.dumps(proof, separators=(",", ":"), sort_keys=True)}
