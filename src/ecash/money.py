"""Money as people type and read it: the one place amounts meet people.

Everything that moves money (the wire, the databases, ``--json``) counts
whole *minor units* (fen, cents; ECASH-1 section 8). People count in the
currency's *major unit* (yuan, dollars), so every amount a person types goes
through :func:`parse_money` and every amount a person reads through
:func:`format_money`. Both rest on Babel's CLDR data: the number of decimals
is the currency's ISO 4217 exponent (JPY 0, CNY 2, KWD 3), grouping and
symbols follow the locale.

The CLI shows ``CNY 1,000.00`` (the ISO code: unambiguous across currencies
that share a symbol, such as yuan and yen); the till's page shows the
locale's symbol (``¥1,000.00`` in zh-CN).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from babel.numbers import (
    NumberFormatError,
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    parse_decimal,
)

DEFAULT_LOCALE = "en_US"
# the currency code before the amount, a no-break space between
_CODE_FORMAT = "¤¤\xa0#,##0.###"
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class MoneyError(ValueError):
    """An amount a person typed that is not one: the message says why in words."""


def check_currency(currency: str) -> str:
    """``currency`` if it is an ISO 4217-shaped code (three capitals), else :class:`MoneyError`."""
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise MoneyError(f"{currency!r} is not a currency code (three capital letters,"
                         " such as CNY)")
    return currency


def exponent(currency: str) -> int:
    """How many decimals the currency's major unit has (ISO 4217): JPY 0, CNY 2, KWD 3."""
    return int(get_currency_precision(check_currency(currency)))


def to_major(minor: int, currency: str) -> Decimal:
    """``2048, "CNY"`` -> ``Decimal("20.48")``: exact, never a float."""
    return Decimal(minor).scaleb(-exponent(currency))


def format_money(minor: int, currency: str, *, locale: str = DEFAULT_LOCALE,
                 symbol: bool = False) -> str:
    """An amount in minor units as a person reads it.

    ``format_money(100000, "CNY")`` is ``"CNY 1,000.00"``; with ``symbol=True``
    and ``locale="zh_CN"`` it is ``"¥1,000.00"``. Always the currency's own
    number of decimals, grouped as the locale groups digits.
    """
    value = to_major(minor, currency)
    digits = exponent(currency)
    if symbol:
        return format_currency(value, currency, locale=locale)
    pattern = "¤¤\xa0#,##0" + ("." + "0" * digits if digits else "")
    return format_currency(value, currency, format=pattern, locale=locale,
                           currency_digits=False)


def format_amount(minor: int, currency: str, *, locale: str = DEFAULT_LOCALE) -> str:
    """The number alone, grouped with the currency's decimals: ``"1,000.00"``."""
    digits = exponent(currency)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_currency(to_major(minor, currency), currency, format=pattern,
                           locale=locale, currency_digits=False)


def parse_money(text: str, currency: str, *, locale: str = DEFAULT_LOCALE,
                allow_zero: bool = False) -> int:
    """What a person typed (major units) as minor units, or :class:`MoneyError`.

    Accepts ``"1000"``, ``"1,000.00"``, ``"1000.5"``, and the amount after or
    before the currency's own code or symbol (``"CNY 20.48"``, ``"¥20.48"``).
    Refuses, saying why: another currency, a negative or empty amount, more
    decimals than the currency has (``"1.005"`` yuan is not a whole number of
    fen), misplaced grouping (``"1,00"``), and anything that is not a number.
    """
    check_currency(currency)
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        raise MoneyError("no amount given")
    body = _strip_currency(raw, currency, locale)
    if body.startswith(("-", "−")):
        raise MoneyError(f"{raw!r}: an amount cannot be negative")
    if not re.fullmatch(r"[0-9][0-9,.\u00a0\u202f ]*", body):
        raise MoneyError(f"{raw!r} is not an amount: use digits, such as 1000 or 1,000.00")
    try:
        value = parse_decimal(body, locale=locale, strict=True)
    except NumberFormatError as exc:
        raise MoneyError(f"{raw!r} is not an amount: {_why(exc)}") from None
    except InvalidOperation:
        raise MoneyError(f"{raw!r} is not an amount") from None
    digits = exponent(currency)
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        unit = "no decimals" if digits == 0 else f"at most {digits} decimals"
        raise MoneyError(f"{raw!r}: {currency} amounts have {unit}")
    if minor == 0 and not allow_zero:
        raise MoneyError(f"{raw!r}: the amount must be more than zero")
    return int(minor)


def _strip_currency(raw: str, currency: str, locale: str) -> str:
    """The amount without a leading or trailing code or symbol of ``currency``."""
    marks = {currency, get_currency_symbol(currency, locale=locale),
             get_currency_symbol(currency, locale="zh_CN" if currency == "CNY" else locale)}
    found = re.fullmatch(r"\s*([^\d\s.,\-−]*)\s*(.*?)\s*([^\d\s.,]*)\s*", raw)
    if found is None:  # pragma: no cover - the pattern matches any string
        return raw
    before, body, after = found.groups()
    if not body:
        raise MoneyError(f"{raw!r} is not an amount: use digits, such as 1000 or 1,000.00")
    for mark in (before, after):
        if mark and mark not in marks:
            raise MoneyError(f"{raw!r}: amounts here are in {currency}, not {mark!r}")
    if before and after:
        raise MoneyError(f"{raw!r}: give the currency once")
    return body


def _why(exc: NumberFormatError) -> str:
    text = str(exc)
    if "grouping" in text.lower():
        return "the digit grouping is misplaced (write 1,000.00 or 1000.00)"
    return "use digits, such as 1000 or 1,000.00"
