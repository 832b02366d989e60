"""The cashier's Cancel: a request shown to a customer is made unpayable.

A customer may still hold the old request (a photo of its QR, a wallet that
read it); after the cancel, any payment to it is refused with the code
``request_cancelled``, signed like the other refusals (ECASH-1 5.1) because
the terminal stores none of that payment's coins, so the wallet may release
them at once. Only an open request can be cancelled: one that took a payment
(paid, or being checked with the bank) or refused one is already decided.
"""

from __future__ import annotations

from .errors import MerchantError, RequestNotFound
from .store import RequestRecord
from .terminal import Terminal


class CannotCancel(MerchantError):
    """The request is decided already (HTTP 409); the words say how."""

    status = 409


_DECIDED = {
    "paid": "this sale is paid; it cannot be cancelled (refund it instead)",
    "pending": "a payment for this sale is being checked with the bank; wait for the"
               " answer before cancelling",
    "refused": "this sale already refused a payment; it takes no other",
}


def cancel_request(t: Terminal, request_id: bytes) -> RequestRecord:
    """Cancel the open request ``request_id`` (again: no change) and return it.

    Raises :class:`RequestNotFound` for an unknown request and
    :class:`CannotCancel` for one a payment decided.
    """
    before = t.store.cancel(request_id, t.now_ms())
    record = t.store.request(request_id)
    if before is None or record is None or record.request.merchant_id != t.merchant_id:
        raise RequestNotFound("unknown_request", "no such payment request at this terminal")
    if before not in ("open", "cancelled"):
        raise CannotCancel("cannot_cancel", _DECIDED.get(before, "this sale is decided"))
    return record
