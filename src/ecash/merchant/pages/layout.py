"""What every till page shares: the language, the head, the header.

Nothing comes from another site (no CDN, no fonts, no images but inline QR
codes): the till works on a shop's local network without the internet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib.resources import files

from babel.dates import format_datetime

from ...money import format_money
from ...wire.payee import shown
from .. import i18n
from .words import Gettext


@cache
def asset(name: str) -> str:
    """A static file of this package (the page's CSS and script)."""
    return (files(__package__) / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Ctx:
    """The reader: their language and how amounts and times read in it."""

    lang: str

    @property
    def _(self) -> Gettext:
        return i18n.gettext_for(self.lang)

    @property
    def locale(self) -> str:
        return i18n.FORMAT_LOCALE[self.lang]

    @property
    def html_lang(self) -> str:
        return i18n.HTML_LANG[self.lang]

    def money(self, minor: int, currency: str) -> str:
        """Every amount shown: the one money module, with the locale's symbol."""
        return format_money(minor, currency, locale=self.locale, symbol=True)

    def time(self, ms: int | None) -> str:
        """A moment in UTC, as the locale writes a date and time."""
        if ms is None:
            return ""
        when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        return format_datetime(when, "medium", tzinfo=dt.UTC, locale=self.locale) + " UTC"


def head(ctx: Ctx, title: str, *, body_attrs: str = "") -> str:
    return (f'<!doctype html><html lang="{ctx.html_lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title><style>{asset('till.css')}</style></head>"
            f"<body{body_attrs}>")


def header(ctx: Ctx, merchant_id: str, terminal: str, path: str) -> str:
    """The shop as customers know it and this till's name (never a key hash),
    the pages, and the language switch (each language in its own words)."""
    _ = ctx._
    langs = " · ".join(
        f'<a href="{escape(path)}?lang={i18n.HTML_LANG[code]}" lang="{i18n.HTML_LANG[code]}"'
        f' hreflang="{i18n.HTML_LANG[code]}" data-lang="{code}"'
        + (' aria-current="true"' if code == ctx.lang else "")
        + f">{escape(i18n.NATIVE_NAME[code])}</a>" for code in i18n.LANGUAGES)
    return (f'<header><div><strong id="shop">{escape(shown(merchant_id))}</strong>'
            f' <span id="terminal-name">{escape(_("Till"))}: {escape(shown(terminal))}</span>'
            f'</div><nav aria-label="{escape(_("Pages"))}"><a href="/">{escape(_("Sale"))}</a>'
            f' · <a href="/day">{escape(_("Day"))}</a> · <a href="/report">'
            f'{escape(_("Settlement"))}</a></nav><nav id="languages" aria-label="'
            f'{escape(_("Language"))}">{langs}</nav></header>')


def foot() -> str:
    return "</body></html>"
