"""A payee name the wallet prints cannot restyle or reorder the line it is on."""

from __future__ import annotations

import io

from rich.console import Console

from ecash.cli.wallet import payee


def rendered(markup: str) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None, highlight=False).print(markup)
    return out.getvalue().rstrip("\n")


def test_markup_in_a_name_is_printed_as_text():
    # PRECIS lets "[" and "]" through: Rich must not read them as styles
    assert rendered(f"to [bold]{payee('shop[/][red]bank')}[/] now") == "to shop[/][red]bank now"


def test_controls_in_a_name_are_made_visible():
    name = "shop\u202egnp.exe\u200b"
    shown = rendered(payee(name))
    assert "\u202e" not in shown and "\u200b" not in shown
    assert shown == "shop\\u202egnp.exe\\u200b"


def test_a_plain_name_is_unchanged():
    assert rendered(payee("Bäckerei-Müller")) == "Bäckerei-Müller"
    assert rendered(payee("咖啡店")) == "咖啡店"
