"""Refusals of the bank core, each with a stable code and an HTTP status."""

from __future__ import annotations


class BankError(Exception):
    """A request the bank refuses; nothing was changed."""

    def __init__(self, code: str, detail: str, status: int = 422, **extra: object) -> None:
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status
        # members of the problem document beside the standard ones (an
        # ``account_frozen`` problem's ``reason`` and ``case``)
        self.extra = extra


def not_found(what: str) -> BankError:
    return BankError("not_found", f"{what} not found", 404)


def forbidden(detail: str) -> BankError:
    return BankError("forbidden", detail, 403)


def conflict(code: str, detail: str) -> BankError:
    return BankError(code, detail, 409)
