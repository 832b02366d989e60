"""The wallet's errors: each has a stable ``code`` for scripts (``--json``)
and a message meant for the holder."""

from __future__ import annotations


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
    """The bank answered with a problem; ``code`` is the bank's."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"the bank refused ({status} {code}): {detail}", code)
        self.status = status


class BankUnreachable(WalletError):
    code = "bank_unreachable"


class TerminalError(WalletError):
    """The merchant terminal refused, answered *pending* or did not answer.

    ``outcome`` is ``"pending"`` (the coins stay pending: no final answer, or a
    refusal without a valid signature) or ``"released"`` (a valid signed
    refusal of exactly this payment: the coins are spendable again)."""

    code = "terminal_error"
    outcome = "pending"
