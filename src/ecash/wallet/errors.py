"""The wallet's errors: each has a stable ``code`` for scripts (``--json``)
and a message meant for the holder."""

from __future__ import annotations

from typing import Any


class WalletError(Exception):
    code = "wallet_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def to_json(self) -> dict:
        return {"error": self.code, "message": str(self)}


class WrongPassphrase(WalletError):
    code = "wrong_passphrase"


class CorruptWallet(WalletError):
    code = "corrupt_wallet"


class WalletExists(WalletError):
    code = "wallet_exists"


class NoWallet(WalletError):
    code = "no_wallet"


class NotRegistered(WalletError):
    code = "not_registered"


class KeysetRefused(WalletError):
    code = "keyset_refused"


class RequestRefused(WalletError):
    """A payment request the wallet will not pay (forged, swapped, expired...)."""

    code = "request_refused"


class LimitExceeded(WalletError):
    code = "limit_exceeded"


class CannotPay(WalletError):
    """No exact combination of spendable coins (the message says what is missing)."""

    code = "cannot_pay_exactly"


class InsufficientCoins(WalletError):
    code = "insufficient_coins"


class BankRefused(WalletError):
    """The bank answered with a problem; ``code`` is the bank's.

    ``extra`` holds the problem's own members: for ``account_frozen`` the
    operator's ``reason`` and the fraud ``case`` (or null), which the holder
    needs in order to know why and whom to ask; they reach the message and,
    through :meth:`to_json`, the CLI's ``--json`` error.
    """

    def __init__(self, status: int, code: str, detail: str,
                 extra: dict[str, Any] | None = None) -> None:
        self.extra = dict(extra or {})
        super().__init__(_bank_words(status, code, detail, self.extra), code)
        self.status = status

    def to_json(self) -> dict:
        return {**super().to_json(), **self.extra}


def _bank_words(status: int, code: str, detail: str, extra: dict[str, Any]) -> str:
    """The bank's refusal in words for the holder (a frozen account names its case)."""
    if code != "account_frozen":
        return f"the bank refused ({status} {code}): {detail}"
    case, reason = extra.get("case"), extra.get("reason") or detail
    where = f" (case {case})" if case is not None else ""
    because = f": {reason}" if reason else ""
    return f"the bank has frozen this account{where}{because}; contact the bank"


class BankUnreachable(WalletError):
    code = "bank_unreachable"


class TerminalError(WalletError):
    """The merchant terminal refused, answered *pending* or did not answer.

    ``outcome`` is ``"pending"`` (the coins stay pending: no final answer, or a
    refusal without a valid signature) or ``"released"`` (a valid signed
    refusal of exactly this payment: the coins are spendable again)."""

    code = "terminal_error"
    outcome = "pending"
