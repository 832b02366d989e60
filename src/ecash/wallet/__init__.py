"""The holder's wallet (ECASH-1 4, 5, 9.4, 9.6, 9.7): a library and the
``ecash wallet`` CLI on top of it."""

from .errors import (
    BankRefused,
    BankUnreachable,
    CannotPay,
    CorruptWallet,
    InsufficientCoins,
    KeysetRefused,
    LimitExceeded,
    NotRegistered,
    RequestRefused,
    TerminalError,
    WalletError,
    WalletExists,
    WrongPassphrase,
)
from .pay import Payment
from .secrets import KDF_PROFILES, TEST_KDF, KdfParams
from .wallet import Wallet

__all__ = [
    "KDF_PROFILES", "TEST_KDF", "BankRefused", "BankUnreachable", "CannotPay", "CorruptWallet",
    "InsufficientCoins", "KdfParams", "KeysetRefused", "LimitExceeded", "NotRegistered",
    "Payment", "RequestRefused", "TerminalError", "Wallet", "WalletError", "WalletExists",
    "WrongPassphrase",
]
