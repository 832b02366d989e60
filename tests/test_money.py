"""The money module: people's units in, people's units out, exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecash.money import MoneyError, exponent, format_amount, format_money, parse_money


@pytest.mark.parametrize(("currency", "digits"), [("CNY", 2), ("JPY", 0), ("KWD", 3)])
def test_exponents_are_iso_4217(currency: str, digits: int) -> None:
    assert exponent(currency) == digits


def test_formatting_groups_digits_and_shows_the_currency() -> None:
    assert format_money(100000, "CNY") == "CNY\xa01,000.00"
    assert format_money(2048, "CNY", symbol=True, locale="zh_CN") == "¥20.48"
    assert format_money(1234, "JPY") == "JPY\xa01,234"
    assert format_money(1234, "KWD") == "KWD\xa01.234"
    assert format_amount(123456789, "CNY") == "1,234,567.89"


@pytest.mark.parametrize(("text", "minor"), [
    ("1000", 100000), ("1,000.00", 100000), ("1000.5", 100050), ("CNY 20.48", 2048),
    ("¥20.48", 2048), ("20.48 CNY", 2048), (" 7 ", 700), ("12,345,678.9", 1234567890)])
def test_what_people_type_is_read_in_major_units(text: str, minor: int) -> None:
    assert parse_money(text, "CNY") == minor


@pytest.mark.parametrize(("text", "words"), [
    ("1.005", "at most 2 decimals"), ("-5", "negative"), ("abc", "not an amount"),
    ("1,00", "not an amount"), ("USD 5", "not 'USD'"), ("0", "more than zero"),
    ("", "no amount"), ("1e5", "not an amount"), ("CNY 5 CNY", "once")])
def test_what_is_not_an_amount_is_refused_in_words(text: str, words: str) -> None:
    with pytest.raises(MoneyError, match=words):
        parse_money(text, "CNY")


def test_a_yen_amount_has_no_decimals() -> None:
    assert parse_money("1,234", "JPY") == 1234
    with pytest.raises(MoneyError, match="no decimals"):
        parse_money("1.5", "JPY")


@given(st.integers(min_value=1, max_value=10**15), st.sampled_from(["CNY", "JPY", "KWD", "USD"]))
def test_formatting_then_parsing_gives_the_same_minor_units(minor: int, currency: str) -> None:
    assert parse_money(format_money(minor, currency), currency) == minor
    assert parse_money(format_amount(minor, currency), currency) == minor
