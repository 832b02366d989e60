"""What the terminal says when it will not do something. Every error has a
stable ``code``; payment refusals also carry their HTTP status."""

from __future__ import annotations


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
    """A payment refused as a whole: nothing was stored (HTTP 422)."""

    status = 422

    def __init__(self, code: str, detail: str, **extra: object) -> None:
        super().__init__(code, detail)
        self.extra = extra


class RequestNotFound(MerchantError):
    """Unknown request, or an unpaid request past its expiry (HTTP 404)."""

    status = 404


class AlreadyPaid(Refusal):
    def __init__(self) -> None:
        super().__init__("already_paid", "this request was paid by another payment")


class CoinAlreadyAccepted(Refusal):
    def __init__(self, detail: str = "a coin of this payment was accepted before in another"
                 " payment") -> None:
        super().__init__("already_accepted", detail)
