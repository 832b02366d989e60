"""What the terminal says when it will not do something. Every error has a
stable ``code``; payment refusals also carry their HTTP status."""

from __future__ import annotations

from typing import ClassVar

from ..crypto.refusal import Refusal as SignedRefusal


class MerchantError(Exception):
    """An operation the terminal cannot perform (set-up, sync, deposit...)."""

    status = 400

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


class Forbidden(MerchantError):
    status = 403


class NotInitialised(MerchantError):
    def __init__(self, detail: str = "the store holds no terminal; run `ecash merchant init`"
                 ) -> None:
        super().__init__("not_initialised", detail)


class Refusal(MerchantError):
    """A payment refused as a whole (HTTP 422).

    ``signed`` is the refusal the terminal signed (ECASH-1 5.1), set once the
    refusal is recorded and only when the terminal holds none of the
    payment's transcripts; a wallet holding it may release its coins at once.
    """

    status = 422

    def __init__(self, code: str, detail: str, **extra: object) -> None:
        super().__init__(code, detail)
        self.extra = extra
        self.signed: SignedRefusal | None = None


class PaymentPending(MerchantError):
    """The outcome is not known yet (HTTP 202): the terminal holds the
    transcripts and is still asking the bank; the identical payment sent
    again later gets the final answer. Never a refusal (ECASH-1 5.1)."""

    status = 202

    def __init__(self, request_id: bytes, retry_after_s: int,
                 detail: str = "the terminal is checking the payment with the bank;"
                 " send the identical payment again later for the answer") -> None:
        super().__init__("payment_pending", detail)
        self.request_id, self.retry_after_s = request_id, retry_after_s


class RequestNotFound(MerchantError):
    """Unknown request (HTTP 404). An expired one is refused (5.1: signed)."""

    status = 404


class RequestTaken(Refusal):
    """The request took another payment already (5.1: at most one per request)."""

    WORDS: ClassVar[dict[str, tuple[str, str]]] = {
        "paid": ("already_paid", "this request was paid by another payment"),
        "refused": ("already_refused", "this request refused another payment; it takes"
                    " no other"),
        "pending": ("other_payment_pending", "another payment to this request is being"
                    " checked with the bank"),
        "cancelled": ("request_cancelled", "the cashier cancelled this request; it takes"
                      " no payment")}

    def __init__(self, status: str) -> None:
        super().__init__(*self.WORDS[status])


class CoinAlreadyAccepted(Refusal):
    def __init__(self, detail: str = "a coin of this payment was accepted before in another"
                 " payment") -> None:
        super().__init__("already_accepted", detail)
