"""Amounts are whole minor units (ECASH-1 8); this only formats them for people."""

from __future__ import annotations

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENT = {"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
             "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
             "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3}


def exponent(currency: str) -> int:
    return _EXPONENT.get(currency, 2)


def fmt(amount: int, currency: str) -> str:
    """``1250, "CNY"`` -> ``"12.50 CNY"``."""
    e = exponent(currency)
    if e == 0:
        return f"{amount} {currency}"
    major, minor = divmod(amount, 10**e)
    return f"{major}.{minor:0{e}d} {currency}"
