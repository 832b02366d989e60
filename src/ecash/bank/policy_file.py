"""The bank's policy as the operator writes it: a TOML file in major units.

Every tunable number of :class:`BankConfig` has a key here, in one of five
tables, so nothing is settable only in Python:

- ``[limits]``: amounts a wallet or an account may hold, pay or load;
- ``[coins]``: the denominations (amounts of the coins a generation has);
- ``[periods]``: windows and lifetimes, in seconds;
- ``[caps]``: counts that bound a request's work.

Amounts are in the currency's major unit ("500.00" or 500: read by
:func:`ecash.money.parse_money`); the bank stores and signs minor units. A
file may name only some keys: the others keep their current values (at
``bank init``, the defaults). A file is refused whole, naming the key, for an
unknown table or key, a wrong type, a bad amount, or numbers that contradict
each other (a limit below the smallest coin, a coin above the holding limit);
nothing is changed then. The bank charges no fees: there is nothing to set.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..money import MoneyError, format_money, parse_money, to_major
from .config import BankConfig

MAX_INT = 2**53 - 1
MAX_DENOMINATIONS = 64
MAX_CAP = 4096  # the signer's bound on the coins of one request

AMOUNTS = ("floor_limit", "holding_limit", "single_payment_limit", "daily_offline_limit",
           "daily_load_limit", "net_load_limit")
SECTIONS: dict[str, tuple[str, ...]] = {
    "limits": (*AMOUNTS, "consecutive_offline_limit"),
    "coins": ("denominations",),
    "periods": ("deposit_window_s", "withdraw_period_s", "spend_period_s", "session_ttl_s",
                "certificate_validity_s"),
    "caps": ("max_coins_per_session", "max_outstanding_coins", "max_deposit_batch"),
}
SETTINGS = tuple(k for keys in SECTIONS.values() for k in keys)
"""The tunable numbers, in the file's order (``currency`` and the redemptions'
payee are fixed when the bank is made)."""
SECTION_OF = {k: section for section, keys in SECTIONS.items() for k in keys}
ZERO_ALLOWED = {"floor_limit", "consecutive_offline_limit"}


class PolicyError(ValueError):
    """A policy refused, naming the key (``limits.floor_limit``) and why."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def key_name(name: str) -> str:
    """``floor_limit`` -> ``limits.floor_limit``: the name a person finds in the file."""
    return f"{SECTION_OF[name]}.{name}" if name in SECTION_OF else name


# --- reading -------------------------------------------------------------------

def read_policy_file(path: Path, base: BankConfig, *, currency_fixed: bool = True
                     ) -> BankConfig:
    """The file at ``path`` over ``base``; :class:`OSError` if unreadable,
    :class:`PolicyError` if refused."""
    return parse_policy(path.read_text(encoding="utf-8"), base, currency_fixed=currency_fixed)


def parse_policy(text: str, base: BankConfig, *, currency_fixed: bool = True) -> BankConfig:
    """A TOML policy over ``base`` (keys it leaves out keep ``base``'s values)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("file", f"not TOML: {exc}") from None
    changes: dict[str, Any] = {}
    currency = doc.pop("currency", base.currency)
    if not isinstance(currency, str):
        raise PolicyError("currency", "a currency code in quotes, such as \"CNY\"")
    if currency != base.currency and currency_fixed:
        raise PolicyError("currency", f"this bank's currency is {base.currency}; it is fixed"
                          " when the bank is made")
    try:
        from ..money import check_currency

        check_currency(currency)
    except MoneyError as exc:
        raise PolicyError("currency", str(exc)) from None
    for section, table in doc.items():
        if section not in SECTIONS:
            raise PolicyError(section, "unknown table (known: currency, "
                              + ", ".join(f"[{s}]" for s in SECTIONS) + ")")
        if not isinstance(table, dict):
            raise PolicyError(section, f"[{section}] is a table of settings")
        for name, value in table.items():
            if name not in SECTIONS[section]:
                raise PolicyError(f"{section}.{name}", f"unknown key (known in [{section}]: "
                                  + ", ".join(SECTIONS[section]) + ")")
            changes[name] = _value(name, value, currency)
    config = replace(base, currency=currency, **changes)
    check_config(config)
    return config


def _value(name: str, value: Any, currency: str) -> Any:
    key = key_name(name)
    if name == "denominations":
        if not isinstance(value, list) or not value:
            raise PolicyError(key, "a list of amounts, such as [\"0.01\", \"0.02\", \"0.05\"]")
        return sorted(_amount(key, v, currency, zero=False) for v in value)
    if name in AMOUNTS:
        return _amount(key, value, currency, zero=name in ZERO_ALLOWED)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(key, f"a whole number{' of seconds' if name.endswith('_s') else ''},"
                          f" not {value!r}")
    return value


def _amount(key: str, value: Any, currency: str, *, zero: bool) -> int:
    """An amount in major units (string or number) as minor units."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PolicyError(key, f"an amount in {currency} such as \"500.00\", not {value!r}")
    try:
        return parse_money(str(value), currency, allow_zero=zero)
    except MoneyError as exc:
        raise PolicyError(key, str(exc)) from None


# --- checking ---------------------------------------------------------------------

def check_config(config: BankConfig) -> None:
    """Every number in range and none contradicting another, or :class:`PolicyError`."""
    for name in SETTINGS:
        values = getattr(config, name)
        for value in (values if isinstance(values, list) else [values]):
            low = 0 if name in ZERO_ALLOWED else 1
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INT:
                raise PolicyError(key_name(name), f"must be a whole number from {low} to {MAX_INT}"
                                  f" (minor units for amounts), not {value!r}")
    money = lambda v: format_money(v, config.currency)  # noqa: E731
    coins = config.denominations
    if len(coins) > MAX_DENOMINATIONS:
        raise PolicyError("coins.denominations", f"at most {MAX_DENOMINATIONS} denominations")
    if len(set(coins)) != len(coins):
        raise PolicyError("coins.denominations", "a denomination is listed twice")
    smallest, largest = min(coins), max(coins)
    for name in ("single_payment_limit", "daily_offline_limit", "daily_load_limit"):
        if getattr(config, name) < smallest:
            raise PolicyError(key_name(name), f"{money(getattr(config, name))} is below the"
                              f" smallest denomination {money(smallest)}: nothing could be"
                              " paid or loaded")
    if config.holding_limit < largest:
        raise PolicyError("limits.holding_limit", f"{money(config.holding_limit)} is below the"
                          f" largest denomination {money(largest)}: no wallet could hold"
                          " that coin")
    if config.floor_limit > config.single_payment_limit:
        raise PolicyError("limits.floor_limit", f"{money(config.floor_limit)} is above the"
                          f" single-payment limit {money(config.single_payment_limit)}")
    if config.single_payment_limit > config.holding_limit:
        raise PolicyError("limits.single_payment_limit",
                          f"{money(config.single_payment_limit)} is above the holding limit"
                          f" {money(config.holding_limit)}")
    if config.net_load_limit < config.daily_load_limit:
        raise PolicyError("limits.net_load_limit", f"{money(config.net_load_limit)} is below"
                          f" the daily load limit {money(config.daily_load_limit)}")
    for name in SECTIONS["caps"]:
        if getattr(config, name) > MAX_CAP:
            raise PolicyError(key_name(name), f"at most {MAX_CAP}")
    if config.max_coins_per_session > config.max_outstanding_coins:
        raise PolicyError("caps.max_coins_per_session", "above caps.max_outstanding_coins: no"
                          " session could be opened")


# --- writing -------------------------------------------------------------------------

def _major(minor: int, currency: str) -> str:
    return str(to_major(minor, currency))


def policy_toml(config: BankConfig) -> str:
    """The policy as a file :func:`parse_policy` reads back to the same numbers."""
    import tomli_w  # the bank extra's, imported where it is used

    doc: dict[str, Any] = {"currency": config.currency}
    for section, keys in SECTIONS.items():
        table: dict[str, Any] = {}
        for name in keys:
            value = getattr(config, name)
            if name == "denominations":
                table[name] = [_major(v, config.currency) for v in value]
            elif name in AMOUNTS:
                table[name] = _major(value, config.currency)
            else:
                table[name] = value
        doc[section] = table
    head = (f"# The bank's policy. Amounts in {config.currency} (major units), periods in"
            " seconds.\n# `ecash bank policy set FILE` reads this file back; see"
            " docs/operator.md.\n")
    return head + tomli_w.dumps(doc, multiline_strings=False)


def policy_json(config: BankConfig) -> dict[str, Any]:
    """Every setting in minor units (``--json`` and the operator API)."""
    data = asdict(config)
    return {"currency": config.currency, **{k: data[k] for k in SETTINGS}}


def config_from_json(data: dict[str, Any], base: BankConfig) -> BankConfig:
    """The settings of :func:`policy_json` (minor units) over ``base``, checked."""
    unknown = set(data) - set(SETTINGS) - {"currency"}
    if unknown:
        raise PolicyError(sorted(unknown)[0], "unknown setting")
    if data.get("currency", base.currency) != base.currency:
        raise PolicyError("currency", f"this bank's currency is {base.currency}; it is fixed"
                          " when the bank is made")
    values = {k: v for k, v in data.items() if k in SETTINGS}
    if "denominations" in values and isinstance(values["denominations"], list):
        values["denominations"] = sorted(values["denominations"])
    config = replace(base, **values)
    check_config(config)
    return config

