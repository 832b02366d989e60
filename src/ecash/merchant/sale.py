"""The till's side of a sale, between the cashier's page and the protocol.

Why a module of its own: the page's HTTP handlers only translate and render;
what a sale may be (an amount a person typed, within the bank's
single-payment limit, with an optional description), how the customer's own
payment text is taken, and what state a sale is in live here, so that they
are tested without a browser and the handlers hold no protocol logic.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto.payment import SignedRequest
from ..money import MoneyError, parse_money
from ..wire.text import payment_from_text
from ..wire.uri import offline_text, payment_uri
from . import requests as rq
from .errors import MerchantError, RequestNotFound
from .store import RequestRecord
from .terminal import Terminal


class OverLimit(MerchantError):
    """An amount above the bank's single-payment limit: no wallet may pay it."""

    def __init__(self, amount: int, limit: int) -> None:
        super().__init__("over_limit", f"{amount} is above the bank's single-payment limit"
                         f" of {limit} (minor units)")
        self.extra = {"limit": limit}


def sale_amount(t: Terminal, *, amount: int | None = None,
                amount_text: str | None = None) -> int:
    """The sale's amount in minor units: ``amount_text`` as the cashier typed it
    (major units, such as ``"1,234.50"``), or ``amount`` already in minor units
    (API clients). Refused in words when it is not an amount or is above the
    policy's ``single_payment_limit`` (a wallet would refuse to pay it)."""
    keys = t.keys
    if amount_text is not None:
        try:
            amount = parse_money(amount_text, keys.currency)
        except MoneyError as exc:
            raise MerchantError("bad_amount", str(exc)) from None
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise MerchantError("bad_amount", "the amount is a positive whole number of minor units")
    limit = keys.policy.single_payment_limit
    if amount > limit:
        raise OverLimit(amount, limit)
    return amount


def start_sale(t: Terminal, amount: int, *, pos_base: str | None,
               description: str | None = None) -> SignedRequest:
    """A new signed request for ``amount``; an empty description is none."""
    description = (description or "").strip() or None
    return rq.create_request(t, amount, pos_base=pos_base, description=description)


def qr_content(t: Terminal, record: RequestRecord, *, networked: bool) -> tuple[str, str]:
    """What the waiting screen's QR holds, as ``(kind, text)``.

    ``"uri"``: the short ``ecash:`` link a phone opens, only when the terminal
    has a public URL a phone can reach; otherwise ``"offline"``: the whole
    signed request as text, which a wallet without network can read and pay
    offline (the customer then shows their payment text to the till).
    """
    env = rq.envelope_of(t, record)
    description = rq.description_of(t, record)
    if networked:
        link = payment_uri(env, description)
        if link:
            return "uri", link
    return "offline", offline_text(env, description)


def take_payment_text(t: Terminal, request_id: bytes, text: str):
    """Accept the payment the customer's wallet printed (``ecpay1:...``, pasted
    or scanned at the till), line breaks and spaces from wrapping ignored.
    Outcomes as for ``/pay``: a receipt, :class:`~.errors.Refusal` or
    :class:`~.errors.PaymentPending`."""
    joined = "".join((text or "").split())
    return t.accept(request_id, lambda: payment_from_text(joined))


@dataclass(frozen=True)
class SaleState:
    """Where a sale stands for the cashier: ``waiting``, ``pending``, ``paid``,
    ``refused``, ``expired`` or ``cancelled``, and the codes behind it."""

    record: RequestRecord
    state: str
    reason: str | None  # the refusal code of a refused sale
    last_refusal: str | None  # the latest refused attempt, while still waiting
    refusal_count: int
    last_refusal_ms: int | None


def sale_state(t: Terminal, request_id: bytes) -> SaleState:
    record = t.store.request(request_id)
    if record is None or record.request.merchant_id != t.merchant_id:
        raise RequestNotFound("unknown_request", "no such payment request at this terminal")
    log = t.store.refusal_log(request_id)
    state = {"open": "waiting"}.get(record.status, record.status)
    if state == "waiting" and t.now_ms() > record.expires_ms:
        state = "expired"
    last = log.last[0] if log.last else None
    return SaleState(record, state, record.code if state == "refused" else None,
                     last.code if last else None, log.count, last.at_ms if last else None)
